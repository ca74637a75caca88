//! The cost guard's builder.

use std::fmt;
use std::sync::Arc;

use super::event::{CostEvent, CostListener, CostRejected, OnEvent, OnRejection};
use super::meter::CostMeter;
use super::policy::CostPolicy;
use super::shell::{CostGuard, Shared};
use crate::ConfigError;
use crate::breaker::Name;
use crate::clock::{ClockHandle, IntoClock};
use crate::sync::Mutex;

/// Builds a [`CostGuard`]; checked by [`build`](Self::build).
///
/// ```
/// use fusebox_core::guard::{CostGuard, CostPolicy};
///
/// let err = CostGuard::builder("", CostPolicy::builder(1.0).build()?).build().unwrap_err();
/// assert_eq!(err.field(), Some("name"));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use]
pub struct CostGuardBuilder {
    pub(super) name: Name,
    pub(super) policy: CostPolicy,
    pub(super) clock: Option<ClockHandle>,
    pub(super) listeners: Vec<Arc<dyn CostListener>>,
}

impl fmt::Debug for CostGuardBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CostGuardBuilder")
            .field("name", &self.name)
            .field("policy", &self.policy)
            .field("clock", &self.clock)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

impl CostGuardBuilder {
    /// The clock. Default: [`UnixClock`](crate::clock::UnixClock) for calendar windows,
    /// [`MonotonicClock`](crate::clock::MonotonicClock) for rolling ones. Calendar windows
    /// read the clock as time since the Unix epoch, so a [`ManualClock`](crate::clock::ManualClock)
    /// for them should be set to a Unix time.
    ///
    /// ```
    /// use fusebox_core::clock::{ManualClock, MonotonicClock};
    /// use fusebox_core::guard::{CostGuard, CostPolicy, CostWindow};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// clock.set(Duration::from_secs(1_704_067_200)); // 2024-01-01 00:00 UTC
    /// let daily = CostPolicy::builder(5.0).window(CostWindow::CalendarDay).build()?;
    /// let guard = CostGuard::builder("llm", daily.clone()).clock(clock).build()?;
    /// assert_eq!(guard.status().period_start_nanos, 1_704_067_200_000_000_000);
    ///
    /// // A clock with an arbitrary origin cannot tell where days begin.
    /// let err = CostGuard::builder("llm", daily).clock(MonotonicClock).build().unwrap_err();
    /// assert_eq!(err.field(), Some("clock"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clock(mut self, clock: impl IntoClock) -> Self {
        self.clock = Some(clock.into_handle().0);
        self
    }

    /// Adds a listener for spend events and rejections.
    ///
    /// ```
    /// use fusebox_core::guard::{CostGuard, CostListener, CostPolicy};
    /// use std::sync::Arc;
    ///
    /// struct Quiet;
    /// impl CostListener for Quiet {}
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?)
    ///     .listener(Arc::new(Quiet))
    ///     .build()?;
    /// assert_eq!(guard.name(), "llm");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn listener(mut self, listener: Arc<dyn CostListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Calls `f` on every spend event: warning, breach and spike (each at most once per
    /// period) and every unknown cost.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::guard::{CostEventKind, CostGuard, CostPolicy};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    ///
    /// let breached = Arc::new(AtomicBool::new(false));
    /// let flag = Arc::clone(&breached);
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(5.0).build()?)
    ///     .clock(ManualClock::new())
    ///     .on_event(move |e| {
    ///         if e.kind == CostEventKind::Breach {
    ///             flag.store(true, Ordering::Relaxed);
    ///         }
    ///     })
    ///     .build()?;
    /// guard.record_cost(6.0)?;
    /// assert!(breached.load(Ordering::Relaxed));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_event<F>(self, f: F) -> Self
    where
        F: Fn(&CostEvent) + Send + Sync + 'static,
    {
        self.listener(Arc::new(OnEvent(f)))
    }

    /// Calls `f` on every refused call.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    ///
    /// let refused = Arc::new(AtomicU32::new(0));
    /// let count = Arc::clone(&refused);
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?)
    ///     .clock(ManualClock::new())
    ///     .on_rejection(move |_| {
    ///         count.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build()?;
    /// guard.record_cost(2.0)?;
    /// let _ = guard.try_acquire();
    /// assert_eq!(refused.load(Ordering::Relaxed), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_rejection<F>(self, f: F) -> Self
    where
        F: Fn(&CostRejected) + Send + Sync + 'static,
    {
        self.listener(Arc::new(OnRejection(f)))
    }

    /// Checks the name and clock and builds the guard.
    ///
    /// # Errors
    /// The name is empty (field `name`), or a calendar window is paired with a clock that
    /// does not count from the Unix epoch (conflict between `clock` and `window`).
    ///
    /// ```
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?).build()?;
    /// assert_eq!(guard.policy().budget().limit, 1.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<CostGuard, ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::invalid("name", "must not be empty"));
        }
        let calendar = self.policy.window().is_calendar();
        let clock = match self.clock {
            Some(ClockHandle::Monotonic | ClockHandle::Precise) if calendar => {
                return Err(ConfigError::conflict(
                    "clock",
                    "window",
                    "calendar windows need a clock counting from the Unix epoch, such as \
                     UnixClock or a ManualClock set to a Unix time",
                ));
            }
            Some(clock) => clock,
            None if calendar => crate::clock::UnixClock::new().into_handle().0,
            None => ClockHandle::Monotonic,
        };
        Ok(CostGuard {
            shared: Arc::new(Shared {
                meter: Mutex::new(CostMeter::new(self.policy.clone())),
                policy: self.policy,
                name: self.name,
                clock,
                listeners: self.listeners.into_boxed_slice(),
            }),
        })
    }
}
