//! Why a cost guard refused a call, the events it reports, its listeners, and how a result's cost is extracted.

use std::time::Duration;

use super::policy::CostRejectReason;
use super::status::{CostEventKind, CostStatus};
use crate::breaker::{Name, RetryHint};

/// A call refused by a [`CostGuard`](super::CostGuard), with the numbers behind the refusal.
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

/// One spend event of a [`CostGuard`](super::CostGuard), as given to listeners.
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

/// Receives a [`CostGuard`](super::CostGuard)'s spend events and rejections.
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

pub(super) struct OnEvent<F>(pub(super) F);
impl<F: Fn(&CostEvent) + Send + Sync + 'static> CostListener for OnEvent<F> {
    fn on_event(&self, event: &CostEvent) {
        (self.0)(event)
    }
}

pub(super) struct OnRejection<F>(pub(super) F);
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
