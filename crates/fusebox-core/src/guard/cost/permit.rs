//! Cost permits: one admitted call each, settled with its cost or released.

use std::fmt;
use std::sync::Arc;

use super::shell::Shared;
use super::ticket::CostTicket;

/// Permission for one call, from [`CostGuard::try_acquire`](super::CostGuard::try_acquire). Record the call's cost with
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
    pub(super) shared: &'a Shared,
    pub(super) reservation: Option<Reservation>,
}

/// What a permit holds until its cost is recorded: one option around both, so that the
/// flag's spare values say "settled" and a permit is three words.
pub(super) struct Reservation {
    pub(super) ticket: CostTicket,
    pub(super) warning: bool,
}

/// A [`CostPermit`] that owns a handle to its guard (`'static`), from
/// [`CostGuard::try_acquire_owned`](super::CostGuard::try_acquire_owned).
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
    pub(super) shared: Arc<Shared>,
    pub(super) reservation: Option<Reservation>,
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
