//! The operator's transitions on a [`Machine`]: force open, disable, reset and trip, each
//! allowed only from the states the algorithm's `Manual` says.

use super::Machine;
use crate::breaker::algorithm::Manual;

impl Machine {
    /// Opens by hand until [`reset`](Self::reset).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine, State};
    /// let mut m = Machine::new("m", Breaker::builder("f").build_config()?);
    /// assert!(m.force_open(0));
    /// assert!(!m.force_open(1)); // already forced open
    /// assert_eq!(m.state(u64::MAX), State::ForcedOpen); // no cooldown ends it
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn force_open(&mut self, now: u64) -> bool {
        self.manual(Manual::ForceOpen, now)
    }

    /// Always admits, still measures, never trips.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine, State};
    /// use fusebox_core::Outcome;
    /// let mut m = Machine::new("m", Breaker::builder("d").consecutive_failures(1).build_config()?);
    /// assert!(m.disable(0));
    /// let ticket = m.acquire(1).unwrap();
    /// m.record(ticket, Outcome::Failure, 1);
    /// assert_eq!((m.state(2), m.consecutive_failures()), (State::Disabled, 1));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn disable(&mut self, now: u64) -> bool {
        self.manual(Manual::Disable, now)
    }

    /// Back to CLOSED with counters cleared.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine, State};
    /// let mut m = Machine::new("m", Breaker::builder("r").build_config()?);
    /// m.trip("drill", 0);
    /// assert!(m.reset(1));
    /// assert_eq!(m.state(1), State::Closed);
    /// assert!(!m.reset(2)); // already closed: counters cleared, no change
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn reset(&mut self, now: u64) -> bool {
        self.manual(Manual::Reset, now)
    }

    /// Opens on an external signal; recovers like after any trip.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine, State, TransitionReason, TripReason};
    /// let mut m = Machine::new("m", Breaker::builder("t").build_config()?);
    /// assert!(m.trip("health check failed", 0));
    /// assert!(!m.trip("again", 1)); // already open
    /// let change = m.take_transitions().next().unwrap();
    /// let external = TripReason::External { reason: "health check failed".into() };
    /// assert_eq!((change.to, change.reason), (State::Open, TransitionReason::Tripped(external)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn trip(&mut self, reason: &'static str, now: u64) -> bool {
        self.manual(Manual::Trip(reason.into()), now)
    }

    fn manual(&mut self, manual: Manual, now: u64) -> bool {
        if !manual.allowed_from(self.state) {
            return false;
        }
        if !manual.changes_state(self.state) {
            // A reset of a closed machine: counters cleared, no change to report.
            self.clear_counts();
            return false;
        }
        let to = manual.target();
        self.move_to(to, manual.reason(), now);
        true
    }
}
