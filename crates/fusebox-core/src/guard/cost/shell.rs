//! The concurrent cost guard: what users hold.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::meter::{CostEventKind, CostEvents, CostMeter, CostStatus, CostTicket};
use super::policy::{CostPolicy, CostRejectReason};
use crate::ConfigError;
use crate::breaker::{Name, RetryHint};
use crate::clock::{ClockHandle, IntoClock};
use crate::error::Error;
use crate::sync::{Mutex, MutexGuard};

/// A call refused by a [`CostGuard`], with the numbers behind the refusal.
///
/// ```
/// use fusebox_core::clock::ManualClock;
/// use fusebox_core::guard::{CostGuard, CostPolicy, CostRejectReason, CostWindow};
/// use std::time::Duration;
///
/// let policy = CostPolicy::builder(10.0).window(CostWindow::CalendarHour).build()?;
/// let guard = CostGuard::builder("llm", policy).clock(ManualClock::new()).build()?;
/// guard.record_cost(10.0)?;
/// let rejected = guard.try_acquire().unwrap_err();
/// assert_eq!(rejected.reason, CostRejectReason::BudgetBreached);
/// assert_eq!((rejected.spent, rejected.limit), (10.0, 10.0));
/// assert_eq!(
///     rejected.to_string(),
///     "cost guard `llm` refused the call: budget breached (10 of 10 spent); retry after 3600s"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "cost guard `{name}` refused the call: {reason} ({spent} of {limit} spent){}",
    RetryHint(*.retry_after)
)]
#[non_exhaustive]
pub struct CostRejected {
    /// The guard that refused the call.
    pub name: Name,
    /// Why.
    pub reason: CostRejectReason,
    /// When a call would be admitted if nothing else were spent meanwhile, if known.
    pub retry_after: Option<Duration>,
    /// Spend in the window, with the estimates of calls in flight.
    pub spent: f64,
    /// The limit.
    pub limit: f64,
}

/// One spend event of a [`CostGuard`], as given to listeners.
///
/// ```
/// use fusebox_core::clock::ManualClock;
/// use fusebox_core::guard::{CostEventKind, CostGuard, CostPolicy};
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = Arc::clone(&seen);
/// let guard = CostGuard::builder("llm", CostPolicy::builder(1000.0).build()?)
///     .clock(ManualClock::new())
///     .on_event(move |event| log.lock().unwrap().push((event.kind, event.status.spent)))
///     .build()?;
/// guard.record_cost(920.0)?;
/// assert_eq!(*seen.lock().unwrap(), [(CostEventKind::Warning, 920.0)]);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CostEvent {
    /// The guard's name.
    pub name: Name,
    /// What happened.
    pub kind: CostEventKind,
    /// The totals when it happened.
    pub status: CostStatus,
    /// When, in the guard's clock.
    pub at_nanos: u64,
}

/// Receives a [`CostGuard`]'s spend events and rejections.
///
/// Listeners run on the thread that caused the event, after the guard's state has changed
/// and with no lock held, so they may call back into the guard.
///
/// ```
/// use fusebox_core::clock::ManualClock;
/// use fusebox_core::guard::{CostGuard, CostListener, CostPolicy, CostRejected};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// #[derive(Default)]
/// struct Refusals(AtomicUsize);
/// impl CostListener for Refusals {
///     fn on_rejection(&self, _: &CostRejected) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// let refusals = Arc::new(Refusals::default());
/// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?)
///     .clock(ManualClock::new())
///     .listener(refusals.clone())
///     .build()?;
/// guard.record_cost(1.0)?;
/// assert!(guard.try_acquire().is_err());
/// assert_eq!(refusals.0.load(Ordering::Relaxed), 1);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub trait CostListener: Send + Sync + 'static {
    /// A warning, breach, spike or unknown cost.
    fn on_event(&self, event: &CostEvent) {
        let _ = event;
    }
    /// A refused call.
    fn on_rejection(&self, rejected: &CostRejected) {
        let _ = rejected;
    }
}

struct OnEvent<F>(F);
impl<F: Fn(&CostEvent) + Send + Sync + 'static> CostListener for OnEvent<F> {
    fn on_event(&self, event: &CostEvent) {
        (self.0)(event)
    }
}

struct OnRejection<F>(F);
impl<F: Fn(&CostRejected) + Send + Sync + 'static> CostListener for OnRejection<F> {
    fn on_rejection(&self, rejected: &CostRejected) {
        (self.0)(rejected)
    }
}

/// Decides the cost of a call from its result: tokens used times a price, a header value…
/// `None` means the cost is unknown (see [`UnknownCost`](super::UnknownCost)).
///
/// Closures `Fn(&Result<T, E>) -> Option<f64>` are extractors.
///
/// ```
/// use fusebox_core::guard::CostExtractor;
///
/// struct Reply { tokens: u32 }
/// const PRICE_PER_TOKEN: f64 = 0.000_002;
/// let cost = |r: &Result<Reply, String>| match r {
///     Ok(reply) => Some(f64::from(reply.tokens) * PRICE_PER_TOKEN),
///     Err(_) => Some(0.0), // refused requests are not billed
/// };
/// assert_eq!(cost.cost(&Ok(Reply { tokens: 500_000 })), Some(1.0));
/// ```
pub trait CostExtractor<T, E> {
    /// The cost of one call, or `None` when it cannot be told.
    fn cost(&self, result: &Result<T, E>) -> Option<f64>;
}

impl<T, E, F> CostExtractor<T, E> for F
where
    F: Fn(&Result<T, E>) -> Option<f64>,
{
    #[inline]
    fn cost(&self, result: &Result<T, E>) -> Option<f64> {
        self(result)
    }
}

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
    name: Name,
    policy: CostPolicy,
    clock: Option<ClockHandle>,
    listeners: Vec<Arc<dyn CostListener>>,
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

struct Shared {
    meter: Mutex<CostMeter>,
    policy: CostPolicy,
    name: Name,
    clock: ClockHandle,
    listeners: Box<[Arc<dyn CostListener>]>,
}

/// A cost guard: a breaker that trips on spend. Named, cheap to clone, shared by every clone.
///
/// It accumulates the cost of calls in a window, warns at the warning ratio of the limit,
/// and refuses calls while the limit is reached, while the window spikes over its baseline,
/// or (failing closed) while an unknown cost blocks the window. Each admitted call holds a
/// [`CostPermit`] that records its cost.
///
/// # How far a burst can overshoot
///
/// Admission and the reservation of the [estimated cost](super::CostPolicyBuilder::estimated_cost)
/// happen under one short lock, so calls in flight count against the budget as soon as they
/// are admitted and concurrent callers never share the same remaining budget. A call is
/// admitted only while recorded spend plus reservations is below the limit, so the spend of
/// a window ends below
///
/// ```text
/// limit + estimate + Σ over calls in flight of max(0, actual cost - estimate)
/// ```
///
/// With an estimate that bounds each call's cost, overshoot is less than one estimate; with
/// no estimate (the default, 0), at most `concurrency × max call cost`. The lock holds no
/// I/O and no allocation, a few tens of nanoseconds against calls that cost money and take
/// milliseconds; an exact bound is worth more here than a lock-free guess.
///
/// ```
/// use fusebox_core::clock::ManualClock;
/// use fusebox_core::guard::{CostGuard, CostPolicy, CostRejectReason, CostWindow};
///
/// let policy = CostPolicy::builder(1000.0).window(CostWindow::CalendarHour).build()?;
/// let guard = CostGuard::builder("llm", policy).clock(ManualClock::new()).build()?;
///
/// let permit = guard.try_acquire()?;
/// assert!(!permit.warning());
/// permit.record_cost(920.0);
///
/// let permit = guard.try_acquire()?; // 920 of 1000: admitted, with a warning
/// assert!(permit.warning());
/// permit.record_cost(80.0);
///
/// let rejected = guard.try_acquire().unwrap_err();
/// assert_eq!(rejected.reason, CostRejectReason::BudgetBreached);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct CostGuard {
    shared: Arc<Shared>,
}

impl fmt::Debug for CostGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CostGuard")
            .field("name", &self.shared.name)
            .field("policy", &self.shared.policy)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The meter's invariants hold between its method calls, and nothing it runs can panic
    // half-way through one, so a poisoned lock is still consistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CostGuard {
    /// Starts building a guard called `name` that judges by `policy`.
    ///
    /// ```
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// let guard = CostGuard::builder("embeddings", CostPolicy::builder(3.0).build()?).build()?;
    /// assert_eq!(guard.name(), "embeddings");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder(name: impl Into<Name>, policy: CostPolicy) -> CostGuardBuilder {
        CostGuardBuilder {
            name: name.into(),
            policy,
            clock: None,
            listeners: Vec::new(),
        }
    }

    /// The guard's name.
    ///
    /// ```
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?).build()?;
    /// assert_eq!(guard.name().as_str(), "llm");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &Name {
        &self.shared.name
    }

    /// The policy.
    ///
    /// ```
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(9.0).build()?).build()?;
    /// assert_eq!(guard.policy().budget().limit, 9.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn policy(&self) -> &CostPolicy {
        &self.shared.policy
    }

    /// Asks to make one call. Admitted, the [`CostPermit`] holds the policy's estimated cost
    /// until it records the real one; dropped without a cost, it counts as an unknown cost.
    ///
    /// # Errors
    /// [`CostRejected`] when the budget is breached, the window spikes, or an unknown cost
    /// blocks the window.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// guard.try_acquire()?.record_cost(0.4);
    /// assert_eq!(guard.status().spent, 0.4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire(&self) -> Result<CostPermit<'_>, CostRejected> {
        let (ticket, warning) = self.shared.acquire()?;
        Ok(CostPermit {
            shared: &self.shared,
            reservation: Some(Reservation { ticket, warning }),
        })
    }

    /// Like [`try_acquire`](Self::try_acquire), but the permit owns a handle to the guard,
    /// for futures that must be `'static` (tower services, spawned tasks).
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let permit = guard.try_acquire_owned()?;
    /// std::thread::spawn(move || permit.record_cost(0.25)).join().unwrap();
    /// assert_eq!(guard.status().spent, 0.25);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_acquire_owned(&self) -> Result<OwnedCostPermit, CostRejected> {
        let (ticket, warning) = self.shared.acquire()?;
        Ok(OwnedCostPermit {
            shared: Arc::clone(&self.shared),
            reservation: Some(Reservation { ticket, warning }),
        })
    }

    /// Records a cost no permit reserved: one known out of band (a billing record, a call
    /// made around the guard).
    ///
    /// # Errors
    /// `cost` is negative or not finite (field `cost`); nothing is recorded.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// guard.record_cost(0.5)?;
    /// assert_eq!(guard.record_cost(-1.0).unwrap_err().field(), Some("cost"));
    /// assert_eq!(guard.status().spent, 0.5);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn record_cost(&self, cost: f64) -> Result<(), ConfigError> {
        let shared = &*self.shared;
        let now = shared.clock.now_nanos();
        let settled = lock(&shared.meter).record(now, cost)?;
        shared.dispatch(settled.events, &settled.status, now);
        Ok(())
    }

    /// The current totals: spend, reservations, the budget and baseline readings.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(100.0).build()?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// guard.record_cost(25.0)?;
    /// let status = guard.status();
    /// assert_eq!((status.budget.usage_ratio, status.budget.remaining), (0.25, 75.0));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn status(&self) -> CostStatus {
        let now = self.shared.clock.now_nanos();
        lock(&self.shared.meter).status(now)
    }

    /// Lifts the block an unknown cost put on the window
    /// ([`UnknownCost::Reject`](super::UnknownCost::Reject)), once the real spend has been
    /// checked (and recorded with [`record_cost`](Self::record_cost)); true if there was one.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::guard::{CostGuard, CostPolicy, UnknownCost};
    /// let policy = CostPolicy::builder(10.0).unknown_cost(UnknownCost::Reject).build()?;
    /// let guard = CostGuard::builder("llm", policy).clock(ManualClock::new()).build()?;
    /// guard.try_acquire()?.record_unknown();
    /// assert!(guard.try_acquire().is_err());
    /// guard.record_cost(1.2)?; // found on the bill
    /// assert!(guard.clear_unknown());
    /// assert!(guard.try_acquire().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clear_unknown(&self) -> bool {
        lock(&self.shared.meter).clear_unknown()
    }

    /// Runs an async call through the guard; `extractor` tells its cost from its result.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    ///
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let tokens_cost = |r: &Result<u32, std::io::Error>| r.as_ref().ok().map(|t| f64::from(*t) * 0.001);
    /// let tokens = guard.call(&tokens_cost, || async { Ok(250) }).await?;
    /// assert_eq!(tokens, 250);
    /// assert_eq!(guard.status().spent, 0.25);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<X, F, Fut, T, E>(&self, extractor: &X, f: F) -> Result<T, Error<E>>
    where
        X: CostExtractor<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self
            .try_acquire()
            .map_err(|refused| Error::CostRejected(Box::new(refused)))?;
        let result = f().await;
        permit.record(extractor.cost(&result));
        result.map_err(Error::Inner)
    }

    /// Runs a blocking call through the guard; `extractor` tells its cost from its result.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// use fusebox_core::Error;
    ///
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let flat = |_: &Result<(), ()>| Some(0.6);
    /// guard.call_sync(&flat, || Ok(())).unwrap();
    /// guard.call_sync(&flat, || Ok(())).unwrap();
    /// let refused = guard.call_sync(&flat, || Ok(())).unwrap_err();
    /// assert!(matches!(refused, Error::CostRejected(_)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn call_sync<X, F, T, E>(&self, extractor: &X, f: F) -> Result<T, Error<E>>
    where
        X: CostExtractor<T, E> + ?Sized,
        F: FnOnce() -> Result<T, E>,
    {
        let permit = self
            .try_acquire()
            .map_err(|refused| Error::CostRejected(Box::new(refused)))?;
        let result = f();
        permit.record(extractor.cost(&result));
        result.map_err(Error::Inner)
    }
}

impl Shared {
    fn acquire(&self) -> Result<(CostTicket, bool), CostRejected> {
        let now = self.clock.now_nanos();
        let decided = lock(&self.meter).admit(now);
        match decided {
            Ok(admitted) => {
                self.dispatch(admitted.events, &admitted.status, now);
                Ok((admitted.ticket, admitted.warning))
            }
            Err(refused) => {
                self.dispatch(refused.events, &refused.status, now);
                let rejected = CostRejected {
                    name: self.name.clone(),
                    reason: refused.reason,
                    retry_after: refused.retry_after,
                    spent: refused.status.budget.current_spend,
                    limit: refused.status.budget.limit,
                };
                tracing::debug!(
                    guard = %self.name,
                    reason = rejected.reason.as_str(),
                    spent = rejected.spent,
                    limit = rejected.limit,
                    "call refused by cost guard"
                );
                for l in self.listeners.iter() {
                    l.on_rejection(&rejected);
                }
                Err(rejected)
            }
        }
    }

    fn settle(&self, ticket: CostTicket, cost: Option<f64>) {
        let now = self.clock.now_nanos();
        let settled = lock(&self.meter).settle(now, ticket, cost);
        if let Some(invalid) = cost.filter(|_| settled.unknown) {
            tracing::warn!(
                guard = %self.name,
                cost = invalid,
                "invalid cost reported (negative or not finite); counted as unknown"
            );
        }
        self.dispatch(settled.events, &settled.status, now);
    }

    fn cancel(&self, ticket: CostTicket) {
        lock(&self.meter).cancel(ticket);
    }

    fn dispatch(&self, events: CostEvents, status: &CostStatus, now: u64) {
        for kind in events.iter() {
            let budget = &status.budget;
            match kind {
                CostEventKind::Warning => tracing::warn!(
                    guard = %self.name,
                    spent = budget.current_spend,
                    limit = budget.limit,
                    usage_ratio = budget.usage_ratio,
                    "spend reached the warning ratio"
                ),
                CostEventKind::Breach => tracing::warn!(
                    guard = %self.name,
                    spent = budget.current_spend,
                    limit = budget.limit,
                    "spend reached the limit; calls are refused"
                ),
                CostEventKind::Spike => tracing::warn!(
                    guard = %self.name,
                    spent = budget.current_spend,
                    baseline = status.baseline.map(|r| r.baseline()),
                    threshold = status.baseline.map(|r| r.threshold()),
                    "spend spiked over its baseline; calls are refused"
                ),
                CostEventKind::UnknownCost => tracing::warn!(
                    guard = %self.name,
                    policy = ?self.policy.unknown_cost(),
                    "cost of a call unknown"
                ),
            }
            if !self.listeners.is_empty() {
                let event = CostEvent {
                    name: self.name.clone(),
                    kind,
                    status: *status,
                    at_nanos: now,
                };
                for l in self.listeners.iter() {
                    l.on_event(&event);
                }
            }
        }
    }
}

/// Permission for one call, from [`CostGuard::try_acquire`]. Record the call's cost with
/// [`record_cost`](Self::record_cost), [`record`](Self::record) or
/// [`record_unknown`](Self::record_unknown), or release it with [`cancel`](Self::cancel)
/// when the call did not run. Dropped without any of these, the call may have run (a
/// cancelled future), so its cost counts as unknown.
///
/// ```
/// use fusebox_core::clock::ManualClock;
/// use fusebox_core::guard::{CostGuard, CostPolicy, UnknownCost};
///
/// let policy = CostPolicy::builder(10.0).unknown_cost(UnknownCost::Assume(2.0)).build()?;
/// let guard = CostGuard::builder("llm", policy).clock(ManualClock::new()).build()?;
/// drop(guard.try_acquire()?); // cancelled mid-call: assumed to cost 2.0
/// guard.try_acquire()?.cancel(); // known not to have run: nothing
/// let status = guard.status();
/// assert_eq!((status.spent, status.unknown_costs), (2.0, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a cost permit counts an unknown cost unless its cost is recorded"]
pub struct CostPermit<'a> {
    shared: &'a Shared,
    reservation: Option<Reservation>,
}

/// What a permit holds until its cost is recorded: one option around both, so that the
/// flag's spare values say "settled" and a permit is three words.
struct Reservation {
    ticket: CostTicket,
    warning: bool,
}

/// A [`CostPermit`] that owns a handle to its guard (`'static`), from
/// [`CostGuard::try_acquire_owned`].
///
/// ```
/// use fusebox_core::clock::ManualClock;
/// use fusebox_core::guard::{CostGuard, CostPolicy};
/// let guard = CostGuard::builder("llm", CostPolicy::builder(10.0).build()?)
///     .clock(ManualClock::new())
///     .build()?;
/// let permit = guard.try_acquire_owned()?;
/// assert!(!permit.warning());
/// permit.record_cost(1.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a cost permit counts an unknown cost unless its cost is recorded"]
pub struct OwnedCostPermit {
    shared: Arc<Shared>,
    reservation: Option<Reservation>,
}

macro_rules! permit_methods {
    () => {
        /// Records the call's cost, or an unknown cost for `None`.
        ///
        /// ```
        /// use fusebox_core::clock::ManualClock;
        /// use fusebox_core::guard::{CostGuard, CostPolicy};
        /// let guard = CostGuard::builder("llm", CostPolicy::builder(10.0).build()?)
        ///     .clock(ManualClock::new())
        ///     .build()?;
        /// guard.try_acquire()?.record(Some(1.5));
        /// guard.try_acquire()?.record(None);
        /// assert_eq!(guard.status().unknown_costs, 1);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn record(mut self, cost: Option<f64>) {
            if let Some(reserved) = self.reservation.take() {
                self.shared.settle(reserved.ticket, cost);
            }
        }

        /// Records the call's cost. A negative, NaN or infinite cost is logged and counted
        /// as an unknown cost.
        ///
        /// ```
        /// use fusebox_core::clock::ManualClock;
        /// use fusebox_core::guard::{CostGuard, CostPolicy};
        /// let guard = CostGuard::builder("llm", CostPolicy::builder(10.0).build()?)
        ///     .clock(ManualClock::new())
        ///     .build()?;
        /// guard.try_acquire()?.record_cost(3.0);
        /// guard.try_acquire()?.record_cost(f64::NAN);
        /// let status = guard.status();
        /// assert_eq!((status.spent, status.unknown_costs), (3.0, 1));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn record_cost(self, cost: f64) {
            self.record(Some(cost))
        }

        /// Records that the call ran but its cost cannot be told; it counts as the policy's
        /// [`UnknownCost`](super::UnknownCost) says.
        ///
        /// ```
        /// use fusebox_core::clock::ManualClock;
        /// use fusebox_core::guard::{CostGuard, CostPolicy, UnknownCost};
        /// let policy = CostPolicy::builder(10.0).unknown_cost(UnknownCost::Assume(4.0)).build()?;
        /// let guard = CostGuard::builder("llm", policy).clock(ManualClock::new()).build()?;
        /// guard.try_acquire()?.record_unknown();
        /// assert_eq!(guard.status().spent, 4.0);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn record_unknown(self) {
            self.record(None)
        }

        /// Releases the reservation and counts nothing: the call is known not to have run.
        ///
        /// ```
        /// use fusebox_core::clock::ManualClock;
        /// use fusebox_core::guard::{CostGuard, CostPolicy};
        /// let policy = CostPolicy::builder(10.0).estimated_cost(1.0).build()?;
        /// let guard = CostGuard::builder("llm", policy).clock(ManualClock::new()).build()?;
        /// let permit = guard.try_acquire()?;
        /// assert_eq!(guard.status().reserved, 1.0);
        /// permit.cancel();
        /// assert_eq!(guard.status().reserved, 0.0);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn cancel(mut self) {
            if let Some(reserved) = self.reservation.take() {
                self.shared.cancel(reserved.ticket);
            }
        }

        /// Whether the call was admitted with a warning: spend had reached the warning
        /// ratio of the limit.
        ///
        /// ```
        /// use fusebox_core::clock::ManualClock;
        /// use fusebox_core::guard::{CostGuard, CostPolicy};
        /// let guard = CostGuard::builder("llm", CostPolicy::builder(10.0).build()?)
        ///     .clock(ManualClock::new())
        ///     .build()?;
        /// guard.record_cost(9.5)?;
        /// assert!(guard.try_acquire()?.warning());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn warning(&self) -> bool {
            self.reservation.as_ref().is_some_and(|r| r.warning)
        }
    };
}

impl CostPermit<'_> {
    permit_methods!();
}

impl OwnedCostPermit {
    permit_methods!();
}

impl Drop for CostPermit<'_> {
    fn drop(&mut self) {
        if let Some(reserved) = self.reservation.take() {
            self.shared.settle(reserved.ticket, None);
        }
    }
}

impl Drop for OwnedCostPermit {
    fn drop(&mut self) {
        if let Some(reserved) = self.reservation.take() {
            self.shared.settle(reserved.ticket, None);
        }
    }
}

impl fmt::Debug for CostPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CostPermit")
            .field("guard", &self.shared.name)
            .field("warning", &self.warning())
            .finish()
    }
}

impl fmt::Debug for OwnedCostPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedCostPermit")
            .field("guard", &self.shared.name)
            .field("warning", &self.warning())
            .finish()
    }
}
