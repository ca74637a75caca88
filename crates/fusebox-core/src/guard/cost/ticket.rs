//! What a cost meter answers and takes back: the ticket of an admitted call, the
//! admission, the refusal, and the totals after a call is settled.

use std::time::Duration;

use super::policy::CostRejectReason;
use super::status::{CostEvents, CostStatus};
#[cfg(doc)]
use super::{CostDecision, CostMeter, UnknownCost};

/// The reservation of one admitted call, handed back to [`CostMeter::settle`] or
/// [`CostMeter::cancel`]. Not `Clone`, so a call cannot be settled twice.
///
/// ```
/// use fusebox_core::guard::{CostMeter, CostPolicy};
///
/// let mut meter = CostMeter::new(CostPolicy::builder(10.0).estimated_cost(1.5).build()?);
/// let ticket = meter.admit(0).unwrap().ticket;
/// assert_eq!(ticket.reserved(), 1.5);
/// meter.cancel(ticket);
/// assert_eq!(meter.status(0).reserved, 0.0);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, PartialEq)]
#[must_use = "a ticket holds a reservation until it is settled or cancelled"]
pub struct CostTicket {
    pub(super) reserved: f64,
}

impl CostTicket {
    /// The estimate reserved for the call.
    ///
    /// ```
    /// use fusebox_core::guard::{CostMeter, CostPolicy};
    /// let mut meter = CostMeter::new(CostPolicy::builder(1.0).build()?);
    /// assert_eq!(meter.admit(0).unwrap().ticket.reserved(), 0.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn reserved(&self) -> f64 {
        self.reserved
    }
}

/// An admitted call.
///
/// ```
/// use fusebox_core::guard::{CostMeter, CostPolicy};
///
/// let mut meter = CostMeter::new(CostPolicy::builder(1000.0).build()?);
/// meter.record(0, 920.0)?;
/// let admitted = meter.admit(0).unwrap();
/// assert!(admitted.warning);
/// assert_eq!(admitted.status.budget.usage_ratio, 0.92);
/// meter.settle(0, admitted.ticket, Some(1.0));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub struct Admitted {
    /// The call's reservation; settle it with the real cost.
    pub ticket: CostTicket,
    /// Whether spend had reached the warning ratio.
    pub warning: bool,
    /// The totals the decision was made on (before this call's reservation).
    pub status: CostStatus,
    /// Events raised by this step.
    pub events: CostEvents,
}

/// A refused call.
///
/// ```
/// use fusebox_core::guard::{CostMeter, CostPolicy, CostRejectReason, CostWindow};
/// use std::time::Duration;
///
/// let policy = CostPolicy::builder(10.0).window(CostWindow::CalendarHour).build()?;
/// let mut meter = CostMeter::new(policy);
/// meter.record(0, 10.0)?;
/// let refused = meter.admit(1_000_000_000).unwrap_err(); // one second into the hour
/// assert_eq!(refused.reason, CostRejectReason::BudgetBreached);
/// assert_eq!(refused.retry_after, Some(Duration::from_secs(3599)));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct CostRefusal {
    /// Why.
    pub reason: CostRejectReason,
    /// When a call would be admitted if nothing else were spent meanwhile; `None` when
    /// unknown (the reservations of calls in flight alone are over the limit).
    pub retry_after: Option<Duration>,
    /// The totals the decision was made on.
    pub status: CostStatus,
    /// Events raised by this step.
    pub events: CostEvents,
}

/// What a settled call counted.
///
/// ```
/// use fusebox_core::guard::{CostMeter, CostPolicy, UnknownCost};
///
/// let policy = CostPolicy::builder(10.0).unknown_cost(UnknownCost::Assume(3.0)).build()?;
/// let mut meter = CostMeter::new(policy);
/// let ticket = meter.admit(0).unwrap().ticket;
/// let settled = meter.settle(0, ticket, None);
/// assert!(settled.unknown);
/// assert_eq!(settled.counted, 3.0);
/// assert_eq!(settled.status.spent, 3.0);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Settled {
    /// The cost added to the window.
    pub counted: f64,
    /// Whether the call's cost was unknown (so the [`UnknownCost`] policy applied).
    pub unknown: bool,
    /// The totals after settling.
    pub status: CostStatus,
    /// Events raised by this step.
    pub events: CostEvents,
}
