//! What an engine that keeps a breaker in step with other instances (a fleet) needs from
//! it: its own outcome totals, its settled state, and a way to adopt the fleet's decisions
//! and outcomes. None of it is on a caller's path.

use std::borrow::Cow;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::algorithm::judges;
use super::handle::Breaker;
use super::link::{FleetLink, Totals};
use super::shared::Shared;
use super::stats::{State, TransitionReason};
use super::window::Mark;
use super::word::{generation_of, state_of};
use crate::sync::Ordering;

/// A handle on a breaker that does not keep it alive: an engine holds one, so that its
/// task ends once every clone of the breaker is gone.
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// let b = Breaker::builder("db").build()?;
/// let weak = b.downgrade();
/// assert!(weak.upgrade().is_some());
/// drop(b);
/// assert!(weak.upgrade().is_none());
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct WeakBreaker(Weak<Shared>);

impl WeakBreaker {
    /// The breaker, while any clone of it lives.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let b = Breaker::builder("db").build()?;
    /// assert_eq!(b.downgrade().upgrade().unwrap().name(), "db");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn upgrade(&self) -> Option<Breaker> {
        self.0.upgrade().map(|shared| Breaker { shared })
    }
}

/// Hooks for an engine that keeps the breaker in step with other instances.
impl Breaker {
    /// The link to the engine, for a breaker built with
    /// [`build_linked`](super::BreakerBuilder::build_linked).
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// assert!(Breaker::builder("db").build()?.link().is_none());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn link(&self) -> Option<&FleetLink> {
        self.shared.fleet.as_deref()
    }

    /// A handle that does not keep the breaker alive.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let b = Breaker::builder("db").build()?;
    /// assert!(b.downgrade().upgrade().is_some());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn downgrade(&self) -> WeakBreaker {
        WeakBreaker(Arc::downgrade(&self.shared))
    }

    /// Outcome totals of this instance's own calls (zero without a link).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, FleetLink};
    /// let b = Breaker::builder("db").build_linked(FleetLink::new(Box::new(|| {})))?;
    /// b.record_failure();
    /// assert_eq!(b.own_totals().failures, 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn own_totals(&self) -> Totals {
        self.link().map(FleetLink::totals).unwrap_or_default()
    }

    /// The state after any lazy, time-driven transition, with its local generation.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("db").build()?;
    /// b.force_open();
    /// assert_eq!(b.settled_state(), (State::ForcedOpen, 1));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn settled_state(&self) -> (State, u64) {
        let word = self.shared.settle();
        (state_of(word), generation_of(word))
    }

    /// Moves to `to` on the fleet's word; an OPEN state ends after `open_for` instead of a
    /// drawn cooldown. Already in `to`, only the cooldown is realigned. Returns whether the
    /// state changed.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use std::time::Duration;
    /// let b = Breaker::builder("db").build()?;
    /// assert!(b.adopt(State::Open, Some(Duration::from_secs(5)), "opened by the fleet".into()));
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn adopt(&self, to: State, open_for: Option<Duration>, reason: Cow<'static, str>) -> bool {
        let shared = &self.shared;
        for _ in 0..8 {
            let word = shared.state.load(Ordering::Acquire);
            let now = shared.now();
            let until = open_for.map(|d| now.saturating_add(crate::clock::nanos(d)));
            if state_of(word) == to {
                if let (State::Open, Some(until)) = (to, until) {
                    shared.open_until.store(until, Ordering::Release);
                }
                return false;
            }
            let why = TransitionReason::Fleet(reason.clone());
            if shared.transition_until(word, to, why, now, until) {
                return true;
            }
        }
        false
    }

    /// Trials started (in flight or finished) in the local half-open episode `generation`.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("db").build()?;
    /// b.adopt(State::HalfOpen, None, "fleet trials begin".into());
    /// let (_, generation) = b.settled_state();
    /// let _trial = b.try_acquire()?;
    /// assert_eq!(b.trials_started(generation), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn trials_started(&self, generation: u64) -> u32 {
        let tally = self.shared.gate.tally();
        if tally.tag == super::gate::tag_of(generation) {
            tally.in_flight + tally.successes + tally.failures
        } else {
            0
        }
    }

    /// Adds outcomes other instances reported to the window (pooled fleets) and judges it.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("db").failures_in_last(3, 10).build()?;
    /// b.ingest(2, 3, 0); // peers saw 2 successes and 3 failures
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn ingest(&self, successes: u64, failures: u64, slow: u64) {
        let shared = &self.shared;
        let word = shared.state.load(Ordering::Acquire);
        if !matches!(state_of(word), State::Closed | State::Disabled) {
            return; // outcomes say nothing about a state they were not made in
        }
        let now = shared.now();
        // Which of the calls were slow is not reported; count slow successes first.
        let slow_successes = slow.min(successes);
        let slow_failures = (slow - slow_successes).min(failures);
        let tuning = shared.tuning();
        if let Some(w) = &tuning.window {
            let marks = [
                (false, false, successes - slow_successes),
                (false, true, slow_successes),
                (true, false, failures - slow_failures),
                (true, true, slow_failures),
            ];
            // Successes first, then failures: a batch that ends in failures is the
            // pessimistic reading of an order nobody knows.
            for (failure, slow, n) in marks {
                if n > 0 {
                    w.record_many(Mark { failure, slow }, n, now);
                }
            }
        }
        if successes > 0 {
            shared.consecutive.store(0, Ordering::Release);
        }
        let run = if failures > 0 {
            let add = u32::try_from(failures).unwrap_or(u32::MAX);
            shared
                .consecutive
                .fetch_add(add, Ordering::AcqRel)
                .saturating_add(add)
        } else {
            shared.consecutive.load(Ordering::Acquire)
        };
        if failures > 0 {
            shared
                .last_failure
                .store(now.saturating_add(1), Ordering::Relaxed);
        }
        // Other instances' successes may have made a rate judgeable: one judgement per
        // ingest, which is periodic, not per call.
        let may_raise_a_rate = successes > 0 && tuning.flags.judges_successes();
        if judges(state_of(word), failures > 0, slow > 0, may_raise_a_rate) {
            shared.judge(word, run, now);
        }
    }
}

#[cfg(loom)]
impl Breaker {
    /// Test hook for loom models: the number of trial slots in flight.
    pub(crate) fn trials_in_flight(&self) -> u32 {
        self.shared.gate.tally().in_flight
    }
}
