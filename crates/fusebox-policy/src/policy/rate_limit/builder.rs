//! The builder both limiter kinds start from, and the validation of its settings.

use std::fmt;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::Quota;
use governor::state::InMemoryState;
use governor::state::keyed::HashMapStateStore;

use fusebox_core::breaker::Name;
use fusebox_core::clock::{IntoClock, PreciseClock, SharedClock};
use fusebox_core::{ConfigError, RateLimited};

use super::direct::{DirectInner, RateLimiter};
use super::keyed::{KeyedInner, KeyedRateLimiter};
use super::{LimiterClock, Listeners, RateLimitMode, Settings};

/// Builds a [`RateLimiter`] or a [`KeyedRateLimiter`].
///
/// ```
/// use fusebox_policy::policy::RateLimiter;
/// use std::time::Duration;
/// let limiter = RateLimiter::builder("search")
///     .quota(100, Duration::from_secs(60))
///     .burst(10)
///     .build()?;
/// assert_eq!(limiter.burst(), 10);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct RateLimiterBuilder {
    pub(super) name: Name,
    pub(super) permits: u64,
    pub(super) period: Duration,
    pub(super) burst: Option<u64>,
    pub(super) mode: RateLimitMode,
    pub(super) clock: Option<SharedClock>,
    pub(super) listeners: Listeners,
}

impl RateLimiterBuilder {
    /// Allows `n` calls a second (the default is 1), bursting up to `n` at once.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("a").per_second(5).build()?;
    /// assert_eq!(limiter.burst(), 5);
    /// let err = RateLimiter::builder("a").per_second(0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("permits"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn per_second(self, n: u64) -> Self {
        self.quota(n, Duration::from_secs(1))
    }

    /// Allows `permits` calls every `per`, one freed every `per / permits`, bursting up to
    /// `permits` at once unless [`burst`](Self::burst) says otherwise.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// use std::time::Duration;
    /// let limiter = RateLimiter::builder("a").quota(3, Duration::from_millis(300)).build()?;
    /// assert_eq!(limiter.interval(), Duration::from_millis(100));
    /// let err = RateLimiter::builder("a").quota(3, Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.field(), Some("per"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn quota(mut self, permits: u64, per: Duration) -> Self {
        self.permits = permits;
        self.period = per;
        self
    }

    /// Calls allowed at once after a quiet spell (default: the quota's permits).
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("a").per_second(10).burst(1).build()?;
    /// assert_eq!(limiter.burst(), 1);
    /// let err = RateLimiter::builder("a").burst(0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("burst"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn burst(mut self, n: u64) -> Self {
        self.burst = Some(n);
        self
    }

    /// What to do with a call that finds no permit (default: refuse at once).
    ///
    /// ```
    /// use fusebox_policy::policy::{RateLimitMode, RateLimiter};
    /// let limiter = RateLimiter::builder("a").mode(RateLimitMode::Reject).build()?;
    /// assert_eq!(limiter.mode(), RateLimitMode::Reject);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn mode(mut self, mode: RateLimitMode) -> Self {
        self.mode = mode;
        self
    }

    /// Waits for a permit for at most `max_wait`, then refuses: shorthand for
    /// [`mode`](Self::mode)`(RateLimitMode::Wait { max_wait })`.
    ///
    /// ```
    /// use fusebox_policy::policy::{RateLimitMode, RateLimiter};
    /// use std::time::Duration;
    /// let limiter = RateLimiter::builder("a").max_wait(Duration::from_secs(1)).build()?;
    /// assert_eq!(limiter.mode(), RateLimitMode::Wait { max_wait: Duration::from_secs(1) });
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_wait(self, max_wait: Duration) -> Self {
        self.mode(RateLimitMode::Wait { max_wait })
    }

    /// The clock permits are counted on (default: [`PreciseClock`], the exact monotonic time). Waits sleep on
    /// tokio's timers, so a limiter that waits should run on a clock that follows them
    /// ([`TokioClock`](crate::TokioClock)) when tests pause time.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_policy::policy::RateLimiter;
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let limiter = RateLimiter::builder("a").per_second(1).clock(clock.clone()).build()?;
    /// assert!(limiter.try_acquire().is_ok());
    /// assert!(limiter.try_acquire().is_err());
    /// clock.advance(Duration::from_secs(1));
    /// assert!(limiter.try_acquire().is_ok());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clock(mut self, clock: impl IntoClock) -> Self {
        self.clock = Some(clock.into_handle());
        self
    }

    /// Calls `f` with every refusal, for alerts and metrics.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// # use std::sync::atomic::{AtomicU32, Ordering};
    /// # use std::sync::Arc;
    /// let refused = Arc::new(AtomicU32::new(0));
    /// let count = refused.clone();
    /// let limiter = RateLimiter::builder("a")
    ///     .per_second(1)
    ///     .on_limited(move |_| {
    ///         count.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build()?;
    /// let _ = limiter.try_acquire();
    /// let _ = limiter.try_acquire();
    /// assert_eq!(refused.load(Ordering::Relaxed), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_limited(mut self, f: impl Fn(&RateLimited) + Send + Sync + 'static) -> Self {
        self.listeners.on_limited.push(Arc::new(f));
        self
    }

    /// Calls `f` with the expected wait each time a call in wait mode starts to sleep.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::{TokioClock, policy::RateLimiter};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// let waits = Arc::new(Mutex::new(Vec::new()));
    /// let seen = waits.clone();
    /// let limiter = RateLimiter::builder("a")
    ///     .per_second(10)
    ///     .burst(1)
    ///     .max_wait(Duration::from_secs(1))
    ///     .clock(TokioClock::new())
    ///     .on_wait(move |d| seen.lock().unwrap().push(d))
    ///     .build()?;
    /// limiter.acquire().await.unwrap();
    /// limiter.acquire().await.unwrap();
    /// assert_eq!(*waits.lock().unwrap(), [Duration::from_millis(100)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_wait(mut self, f: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        self.listeners.on_wait.push(Arc::new(f));
        self
    }

    /// The limiter's name, for hooks that label by it rather than by a refusal's key.
    #[cfg(feature = "metrics")]
    pub(crate) fn limiter_name(&self) -> Name {
        self.name.clone()
    }

    /// Validates the settings.
    fn settings(self) -> Result<Settings, ConfigError> {
        let permits = nonzero_u32("permits", self.permits)?;
        let period = fusebox_core::check::nonzero_duration("per", self.period)?;
        let burst = match self.burst {
            Some(b) => nonzero_u32("burst", b)?,
            None => permits,
        };
        // One permit every period / permits; nanosecond precision, at least one nanosecond.
        let interval = period / permits.get();
        let quota = Quota::with_period(interval)
            .ok_or_else(|| ConfigError::invalid("per", "is too short for that many permits"))?
            .allow_burst(burst);
        if let RateLimitMode::Wait { max_wait } = self.mode {
            // Durations past what a tokio timer can hold (about two years) are refused
            // rather than wrapped.
            if max_wait > Duration::from_secs(365 * 24 * 3600) {
                return Err(ConfigError::invalid("max_wait", "must be at most a year"));
            }
        }
        Ok(Settings {
            name: self.name,
            quota,
            mode: self.mode,
            // Not the coarse monotonic clock breakers default to: its millisecond steps would
            // release permits in clumps and round every `retry_after`.
            clock: LimiterClock(self.clock.unwrap_or_else(|| PreciseClock.into_handle())),
            listeners: self.listeners,
        })
    }

    /// Builds a limiter all calls share.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("a").per_second(2).build()?;
    /// assert_eq!(limiter.name(), "a");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<RateLimiter, ConfigError> {
        let settings = self.settings()?;
        let gcra = governor::RateLimiter::new(
            settings.quota,
            InMemoryState::default(),
            settings.clock.clone(),
        );
        Ok(RateLimiter {
            inner: Arc::new(DirectInner { settings, gcra }),
        })
    }

    /// Builds a limiter with a separate quota for each key (a tenant, a host...).
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("tenants").per_second(1).build_keyed::<String>()?;
    /// assert!(limiter.try_acquire(&"acme".to_string()).is_ok());
    /// assert!(limiter.try_acquire(&"acme".to_string()).is_err());
    /// assert!(limiter.try_acquire(&"initech".to_string()).is_ok());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build_keyed<K>(self) -> Result<KeyedRateLimiter<K>, ConfigError>
    where
        K: Hash + Eq + Clone + fmt::Display,
    {
        let settings = self.settings()?;
        let gcra = governor::RateLimiter::new(
            settings.quota,
            HashMapStateStore::default(),
            settings.clock.clone(),
        );
        Ok(KeyedRateLimiter {
            inner: Arc::new(KeyedInner { settings, gcra }),
        })
    }
}

fn nonzero_u32(field: &'static str, n: u64) -> Result<NonZeroU32, ConfigError> {
    let n = u32::try_from(n)
        .map_err(|_| ConfigError::invalid(field, "must fit in 32 bits (at most 4294967295)"))?;
    NonZeroU32::new(n).ok_or_else(|| ConfigError::invalid(field, "must be at least 1"))
}
