//! The concurrent cost guard, what users hold: the state every clone shares, and the
//! admission and settlement of calls.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::builder::CostGuardBuilder;
use super::event::{CostEvent, CostExtractor, CostListener, CostRejected};
use super::meter::CostMeter;
use super::permit::{CostPermit, OwnedCostPermit, Reservation};
use super::policy::CostPolicy;
use super::status::{CostEventKind, CostEvents, CostStatus};
use super::ticket::CostTicket;
use crate::ConfigError;
use crate::breaker::Name;
use crate::clock::ClockHandle;
use crate::error::Error;
use crate::sync::{Mutex, MutexGuard};

pub(super) struct Shared {
    pub(super) meter: Mutex<CostMeter>,
    pub(super) policy: CostPolicy,
    pub(super) name: Name,
    pub(super) clock: ClockHandle,
    pub(super) listeners: Box<[Arc<dyn CostListener>]>,
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
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for CostGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CostGuard")
            .field("name", &self.shared.name)
            .field("policy", &self.shared.policy)
            .finish()
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
    pub(super) fn acquire(&self) -> Result<(CostTicket, bool), CostRejected> {
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

    pub(super) fn settle(&self, ticket: CostTicket, cost: Option<f64>) {
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

    pub(super) fn cancel(&self, ticket: CostTicket) {
        lock(&self.meter).cancel(ticket);
    }

    pub(super) fn dispatch(&self, events: CostEvents, status: &CostStatus, now: u64) {
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
