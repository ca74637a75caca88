//! The sans-IO breaker: a plain, single-threaded state machine. Time comes in as an argument,
//! randomness from a seeded generator; nothing is read from the outside world.
//!
//! Use it to run a breaker inside an actor, a simulation, or any place that owns its state;
//! [`Breaker`](super::Breaker) is the same rules behind atomics for concurrent callers.
//!
//! Reconfiguration (`reconfigure`) and the operator's transitions (`manual`) have files of
//! their own.

mod manual;
mod reconfigure;

use crate::outcome::Outcome;
use rand::rngs::SmallRng;

use super::Name;
use super::algorithm::{
    Move, after_trial, below_minimum, due, enter, hinted_open_until, is_slow_after, judges,
    retry_after, retry_hint_until, success_may_raise_a_rate, trial_admissible, trial_counts, trip,
};
use super::config::BreakerConfig;
use super::rejected::Rejected;
use super::stats::{State, Transition, TransitionReason, WindowStats};
use super::window::{Mark, SeqWindow};

/// Admission of one call by a [`Machine`]; hand it back with the outcome.
///
/// ```
/// use fusebox_core::breaker::{Breaker, Machine};
/// use fusebox_core::Outcome;
/// let mut m = Machine::new("m", Breaker::builder("t").build_config()?);
/// let ticket = m.acquire(0).expect("a closed machine admits calls");
/// assert!(!ticket.is_trial());
/// m.record(ticket, Outcome::Failure, 1_000);
/// assert_eq!(m.consecutive_failures(), 1);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    generation: u64,
    trial: bool,
    started: u64,
}

impl Ticket {
    /// Whether the call is a half-open trial.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine};
    /// use fusebox_core::Outcome;
    /// use std::time::Duration;
    /// let config = Breaker::builder("t").consecutive_failures(1).cooldown(Duration::from_secs(1));
    /// let mut m = Machine::new("m", config.build_config()?);
    /// let first = m.acquire(0).unwrap();
    /// assert!(!first.is_trial());
    /// m.record(first, Outcome::Failure, 0);
    /// assert!(m.acquire(1_000_000_000).unwrap().is_trial()); // cooldown over: half-open
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn is_trial(&self) -> bool {
        self.trial
    }
}

/// The sans-IO circuit breaker.
///
/// ```
/// use fusebox_core::breaker::{Breaker, Machine, State};
/// use fusebox_core::Outcome;
///
/// let config = Breaker::builder("m").failures_in_last(2, 4).build_config()?;
/// let mut m = Machine::new("m", config);
/// let ms = 1_000_000u64;
///
/// for t in 0..2 {
///     let ticket = m.acquire(t * ms).unwrap();
///     m.record(ticket, Outcome::Failure, t * ms);
/// }
/// assert_eq!(m.state(2 * ms), State::Open);
/// let changes: Vec<_> = m.take_transitions().collect();
/// assert_eq!((changes[0].from, changes[0].to), (State::Closed, State::Open));
/// assert!(m.acquire(3 * ms).is_err());
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Machine {
    name: Name,
    config: BreakerConfig,
    state: State,
    generation: u64,
    consecutive_failures: u32,
    window: SeqWindow,
    /// The window held fewer than `min_calls` calls when last judged, or was cleared since.
    below_minimum: bool,
    open_until: u64,
    half_open_since: u64,
    trials_in_flight: u32,
    trial_successes: u32,
    trial_failures: u32,
    consecutive_trips: u32,
    last_failure: Option<u64>,
    /// The latest deadline a failure's server-given delay set (0: none).
    retry_hint_until: u64,
    /// How many times the machine was reconfigured.
    revision: usize,
    rng: SmallRng,
    transitions: Vec<Transition>,
}

impl Machine {
    /// A closed machine with this configuration.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine, State};
    /// let mut m = Machine::new("m", Breaker::builder("n").build_config()?);
    /// assert_eq!(m.state(0), State::Closed);
    /// assert_eq!(m.generation(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(name: impl Into<Name>, config: BreakerConfig) -> Self {
        let rng = crate::rng::small_rng(config.seed);
        Machine {
            name: name.into(),
            window: SeqWindow::new(config.window),
            below_minimum: true,
            config,
            state: State::Closed,
            generation: 0,
            consecutive_failures: 0,
            open_until: 0,
            half_open_since: 0,
            trials_in_flight: 0,
            trial_successes: 0,
            trial_failures: 0,
            consecutive_trips: 0,
            last_failure: None,
            retry_hint_until: 0,
            revision: 0,
            rng,
            transitions: Vec::new(),
        }
    }

    /// The configuration.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine};
    /// let m = Machine::new("m", Breaker::builder("c").consecutive_failures(3).build_config()?);
    /// assert_eq!(m.config().consecutive_failures(), Some(3));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The state at `now`, after the time-driven transitions.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine, State};
    /// use std::time::Duration;
    /// let config = Breaker::builder("s").cooldown(Duration::from_secs(5)).build_config()?;
    /// let mut m = Machine::new("m", config);
    /// let sec = 1_000_000_000;
    /// m.trip("overload", 0);
    /// assert_eq!(m.state(4 * sec), State::Open);
    /// assert_eq!(m.state(5 * sec), State::HalfOpen); // the cooldown is over
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn state(&mut self, now: u64) -> State {
        self.settle(now);
        self.state
    }

    /// How many transitions happened.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine};
    /// let mut m = Machine::new("m", Breaker::builder("g").build_config()?);
    /// m.force_open(0);
    /// m.reset(1);
    /// assert_eq!(m.generation(), 2);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Current run of failures.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine};
    /// use fusebox_core::Outcome;
    /// let mut m = Machine::new("m", Breaker::builder("c").build_config()?);
    /// for outcome in [Outcome::Failure, Outcome::Success, Outcome::Failure, Outcome::Failure] {
    ///     let ticket = m.acquire(0).unwrap();
    ///     m.record(ticket, outcome, 0);
    /// }
    /// assert_eq!(m.consecutive_failures(), 2); // the success reset the run
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Window statistics at `now`.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine, WindowStats};
    /// use fusebox_core::Outcome;
    /// let mut m = Machine::new("m", Breaker::builder("w").failures_in_last(3, 10).build_config()?);
    /// for outcome in [Outcome::Success, Outcome::Failure, Outcome::Ignored] {
    ///     let ticket = m.acquire(0).unwrap();
    ///     m.record(ticket, outcome, 0);
    /// }
    /// assert_eq!(m.window_stats(0), WindowStats { calls: 2, failures: 1, slow_calls: 0 });
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn window_stats(&mut self, now: u64) -> WindowStats {
        self.window.stats(now)
    }

    /// Trials in flight while half-open.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine};
    /// use std::time::Duration;
    /// let config = Breaker::builder("t").cooldown(Duration::from_secs(1)).half_open_trials(2, 2);
    /// let mut m = Machine::new("m", config.build_config()?);
    /// m.trip("probe", 0);
    /// let trial = m.acquire(1_000_000_000).unwrap();
    /// assert_eq!(m.trials_in_flight(), 1);
    /// m.cancel(trial);
    /// assert_eq!(m.trials_in_flight(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn trials_in_flight(&self) -> u32 {
        self.trials_in_flight
    }

    /// Time of the last failure, if any.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine};
    /// use fusebox_core::Outcome;
    /// let mut m = Machine::new("m", Breaker::builder("l").build_config()?);
    /// assert_eq!(m.last_failure(), None);
    /// let ticket = m.acquire(5).unwrap();
    /// m.record(ticket, Outcome::Failure, 7);
    /// assert_eq!(m.last_failure(), Some(7));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn last_failure(&self) -> Option<u64> {
        self.last_failure
    }

    /// The state changes made since the last call, oldest first.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine, State, TransitionReason};
    /// let mut m = Machine::new("m", Breaker::builder("t").build_config()?);
    /// m.force_open(0);
    /// m.reset(1);
    /// let states: Vec<State> = m.take_transitions().map(|c| c.to).collect();
    /// assert_eq!(states, [State::ForcedOpen, State::Closed]);
    /// assert_eq!(m.take_transitions().count(), 0); // drained
    ///
    /// // Each transition says why, with the machine's name and the generation after it.
    /// let mut m = Machine::new("c", Breaker::builder("c").build_config()?);
    /// m.force_open(0);
    /// let change = m.take_transitions().next().expect("one change");
    /// assert_eq!((change.from, change.to), (State::Closed, State::ForcedOpen));
    /// assert_eq!(change.reason, TransitionReason::ForcedOpen);
    /// assert_eq!(change.generation, 1);
    /// assert_eq!(change.name, "c");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn take_transitions(&mut self) -> impl Iterator<Item = Transition> + '_ {
        self.transitions.drain(..)
    }

    /// Asks to make one call at `now`.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine, State};
    /// use std::time::Duration;
    /// let mut m = Machine::new("m", Breaker::builder("a").build_config()?);
    /// assert!(m.acquire(0).is_ok());
    /// m.force_open(0);
    /// let refused = m.acquire(1).unwrap_err();
    /// assert_eq!((refused.state(), refused.retry_after()), (State::ForcedOpen, None));
    ///
    /// // An open machine says how long until its cooldown ends.
    /// let config = Breaker::builder("r").consecutive_failures(1).cooldown(Duration::from_secs(10));
    /// let mut m = Machine::new("r", config.build_config()?);
    /// m.trip("maintenance", 0);
    /// let refused = m.acquire(4_000_000_000).unwrap_err();
    /// assert_eq!(refused.state(), State::Open);
    /// assert_eq!(refused.retry_after(), Some(Duration::from_secs(6)));
    /// assert_eq!(refused.to_string(), "circuit breaker `r` is open; retry after 6s");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn acquire(&mut self, now: u64) -> Result<Ticket, Rejected> {
        for _ in 0..8 {
            let admitted = |trial| Ticket {
                generation: self.generation,
                trial,
                started: now,
            };
            match self.state {
                State::Closed | State::Disabled => return Ok(admitted(false)),
                State::HalfOpen => {
                    let finished = self.trial_successes + self.trial_failures;
                    let config = &self.config;
                    if trial_admissible(
                        config.half_open_concurrency,
                        config.trial_starts(),
                        self.trials_in_flight,
                        finished,
                    ) {
                        let ticket = admitted(true);
                        self.trials_in_flight += 1;
                        return Ok(ticket);
                    }
                }
                State::Open | State::ForcedOpen => {}
            }
            // Refused as things stand: unless time has moved the state on.
            match self.due(now) {
                Some((to, reason)) => self.move_to(to, reason, now),
                None => {
                    let wait = retry_after(self.state, self.open_until, now);
                    return Err(Rejected::new(self.name.clone(), self.state, wait));
                }
            }
        }
        Err(Rejected::new(self.name.clone(), self.state, None))
    }

    /// Records the outcome of an admitted call at `now`.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine, State};
    /// use fusebox_core::Outcome;
    /// let mut m = Machine::new("m", Breaker::builder("r").consecutive_failures(2).build_config()?);
    /// for outcome in [Outcome::Failure, Outcome::Ignored, Outcome::Failure] {
    ///     let ticket = m.acquire(0).unwrap();
    ///     m.record(ticket, outcome, 0);
    /// }
    /// assert_eq!(m.state(0), State::Open); // the ignored call did not break the run
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn record(&mut self, ticket: Ticket, outcome: Outcome, now: u64) {
        self.record_timed(ticket, outcome, now, None);
    }

    /// Records a failure at `now` for which the server asked callers to wait
    /// `retry_after`: with [`open_for_retry_after`](super::BreakerBuilder::open_for_retry_after)
    /// set, a trip opens until then (up to the maximum) instead of for the cooldown, as
    /// [`Permit::failure_with_retry_after`](super::Permit::failure_with_retry_after) does.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine, State};
    /// use std::time::Duration;
    /// let config = Breaker::builder("r")
    ///     .consecutive_failures(1)
    ///     .cooldown(Duration::from_secs(30))
    ///     .open_for_retry_after(Duration::from_secs(60))
    ///     .build_config()?;
    /// let mut m = Machine::new("m", config);
    /// let ticket = m.acquire(0).unwrap();
    /// m.record_failure_with_retry_after(ticket, Some(Duration::from_secs(600)), 0);
    /// let secs = 1_000_000_000;
    /// assert_eq!(m.state(59 * secs), State::Open); // the hint, cut to the 60 s maximum
    /// assert_eq!(m.state(60 * secs), State::HalfOpen);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn record_failure_with_retry_after(
        &mut self,
        ticket: Ticket,
        retry_after: Option<std::time::Duration>,
        now: u64,
    ) {
        if let (Some(wait), Some(max)) = (retry_after, self.config.retry_after_max) {
            self.retry_hint_until = self.retry_hint_until.max(retry_hint_until(now, wait, max));
        }
        self.record(ticket, Outcome::Failure, now);
    }

    /// Records an outcome; `elapsed` (ns) when the caller timed the call itself.
    fn record_timed(&mut self, ticket: Ticket, outcome: Outcome, now: u64, elapsed: Option<u64>) {
        let took = elapsed.unwrap_or_else(|| now.saturating_sub(ticket.started));
        if ticket.trial {
            return self.record_trial(ticket, outcome, now, took);
        }
        if outcome == Outcome::Ignored || ticket.generation != self.generation {
            return;
        }
        let failure = outcome == Outcome::Failure;
        let slow = is_slow_after(&self.config, took);
        let new_bucket = self.window.record(Mark { failure, slow }, now);
        if failure {
            self.last_failure = Some(now);
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        } else {
            self.consecutive_failures = 0;
        }
        let may_raise_a_rate = !failure
            && !slow
            && success_may_raise_a_rate(&self.config, self.below_minimum, new_bucket);
        if judges(self.state, failure, slow, may_raise_a_rate) {
            let stats = self.window.stats(now);
            self.below_minimum = below_minimum(&self.config, &stats);
            if let Some((to, reason)) = trip(&self.config, self.consecutive_failures, &stats) {
                self.move_to(to, reason, now);
            }
        }
    }

    /// Records the outcome of a call whose duration the caller measured: it is slow or not
    /// by `elapsed`, not by the time since the ticket was taken.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine, State};
    /// use fusebox_core::Outcome;
    /// use std::time::Duration;
    /// let config = Breaker::builder("m")
    ///     .count_window(1)
    ///     .min_calls(1)
    ///     .slow_calls(Duration::from_millis(100), 1.0)
    ///     .build_config()?;
    /// let mut m = Machine::new("m", config);
    /// let ticket = m.acquire(0).unwrap();
    /// m.record_measured(ticket, Outcome::Success, Duration::from_millis(150), 1);
    /// assert_eq!(m.state(1), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn record_measured(
        &mut self,
        ticket: Ticket,
        outcome: Outcome,
        elapsed: std::time::Duration,
        now: u64,
    ) {
        self.record_timed(ticket, outcome, now, Some(crate::clock::nanos(elapsed)));
    }

    /// Gives back a ticket whose call was cancelled: it counts as nothing.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine};
    /// use std::time::Duration;
    /// let config = Breaker::builder("c").cooldown(Duration::from_secs(1)).build_config()?;
    /// let mut m = Machine::new("m", config);
    /// m.trip("probe", 0);
    /// let trial = m.acquire(1_000_000_000).unwrap();
    /// assert!(m.acquire(1_000_000_000).is_err()); // the only trial slot is taken
    /// m.cancel(trial);
    /// assert!(m.acquire(1_000_000_000).is_ok());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn cancel(&mut self, ticket: Ticket) {
        if ticket.trial
            && ticket.generation == self.generation
            && self.state == State::HalfOpen
            && self.trials_in_flight > 0
        {
            self.trials_in_flight -= 1;
        }
    }

    fn record_trial(&mut self, ticket: Ticket, outcome: Outcome, now: u64, took: u64) {
        if ticket.generation != self.generation
            || self.state != State::HalfOpen
            || self.trials_in_flight == 0
        {
            return;
        }
        if outcome == Outcome::Failure {
            self.last_failure = Some(now);
        }
        let slow = outcome != Outcome::Ignored && is_slow_after(&self.config, took);
        self.trials_in_flight -= 1;
        match trial_counts(outcome, slow) {
            None => return,
            Some(true) => self.trial_successes += 1,
            Some(false) => self.trial_failures += 1,
        }
        let (s, f) = (self.trial_successes, self.trial_failures);
        if let Some((to, reason)) = after_trial(self.config.close, s, f) {
            self.move_to(to, reason, now);
        }
    }

    fn due(&self, now: u64) -> Option<Move> {
        due(
            &self.config,
            self.state,
            self.open_until,
            self.half_open_since,
            now,
        )
    }

    fn settle(&mut self, now: u64) {
        for _ in 0..4 {
            match self.due(now) {
                Some((to, reason)) => self.move_to(to, reason, now),
                None => return,
            }
        }
    }

    fn clear_counts(&mut self) {
        self.window.reset();
        self.below_minimum = true;
        self.consecutive_failures = 0;
        self.consecutive_trips = 0;
        self.retry_hint_until = 0;
    }

    fn move_to(&mut self, to: State, reason: TransitionReason, now: u64) {
        let (config, rng) = (&self.config, &mut self.rng);
        let hinted = hinted_open_until(self.retry_hint_until, now);
        let entry = enter(to, self.consecutive_trips, now, hinted, |trips| {
            config.cooldown.draw(trips, rng)
        });
        self.consecutive_trips = entry.consecutive_trips;
        if let Some(until) = entry.open_until {
            self.open_until = until;
        }
        if let Some(since) = entry.half_open_since {
            self.trials_in_flight = 0;
            self.trial_successes = 0;
            self.trial_failures = 0;
            self.half_open_since = since;
        }
        if entry.clears_counts {
            self.clear_counts();
        }
        let from = self.state;
        self.state = to;
        self.generation += 1;
        let stats = self.window.stats(now);
        self.transitions.push(Transition {
            name: self.name.clone(),
            from,
            to,
            reason,
            generation: self.generation,
            at_nanos: now,
            stats,
        });
    }
}
