//! The breaker's state machine, written once: pure functions over a view of the state and
//! the time. Nothing here reads a clock, takes a lock or allocates.
//!
//! ```text
//!            trip rule                 cooldown over
//!  CLOSED ─────────────────▶ OPEN ─────────────────────▶ HALF_OPEN
//!    ▲                        ▲                             │
//!    │                        │ close rule unreachable,     │
//!    │                        └─ half-open too long ────────┤
//!    └───────────────────────── close rule met ─────────────┘
//!
//!  by hand: force_open ▶ FORCED_OPEN   disable ▶ DISABLED   reset ▶ CLOSED   trip ▶ OPEN
//! ```
//!
//! Every breaker interprets these functions and none repeats them: the sans-IO
//! [`Machine`](super::Machine) over plain fields, the concurrent [`Breaker`](super::Breaker)
//! on its slow path (its lock-free CLOSED and OPEN fast paths only read),
//! [`decide`](super::decide) over a caller's counters, and the fleet engine.
//!
//! * [`due`]: what time alone does (OPEN → HALF_OPEN, HALF_OPEN → OPEN).
//! * [`judges`] and [`evaluate_trip`]: whether an outcome in CLOSED trips the breaker.
//! * [`trial_admissible`], [`trial_counts`] and [`after_trial`]: the half-open trials.
//! * [`enter`]: what entering a state does to the counters (cooldown drawn, trials reset,
//!   counts cleared).
//! * [`Manual`]: the operator's transitions and the states each may leave.
//! * [`retune`] and [`after_retune`]: what a reconfiguration keeps and judges at once.

use crate::ConfigError;
use crate::outcome::Outcome;
use std::borrow::Cow;
use std::time::Duration;

use super::config::{BreakerConfig, CloseRule};
use super::stats::{State, TransitionReason, TripReason, WindowStats};

/// A state change a rule asks for: where to, and why.
pub type Move = (State, TransitionReason);

/// The transition time alone makes due at `now`, if any: an OPEN breaker whose cooldown
/// (ending at `open_until`) is over moves to HALF_OPEN; a HALF_OPEN one that began at
/// `half_open_since` and outlived its maximum duration reopens.
///
/// ```
/// use fusebox_core::breaker::{algorithm, Breaker, State};
/// let config = Breaker::builder("db").build_config()?;
/// assert_eq!(algorithm::due(&config, State::Open, 100, 0, 99), None);
/// let (to, _) = algorithm::due(&config, State::Open, 100, 0, 100).unwrap();
/// assert_eq!(to, State::HalfOpen);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[inline]
pub fn due(
    config: &BreakerConfig,
    state: State,
    open_until: u64,
    half_open_since: u64,
    now: u64,
) -> Option<Move> {
    match state {
        State::Open if now >= open_until => {
            Some((State::HalfOpen, TransitionReason::CooldownElapsed))
        }
        State::HalfOpen => match config.half_open_max_nanos {
            Some(max) if now.saturating_sub(half_open_since) >= max => {
                Some((State::Open, TransitionReason::HalfOpenTimedOut))
            }
            _ => None,
        },
        _ => None,
    }
}

/// How long a refused caller should wait: the rest of an OPEN cooldown; unknown for the
/// other refusing states (a forced state, a full half-open).
///
/// ```
/// use fusebox_core::breaker::{algorithm, State};
/// use std::time::Duration;
/// assert_eq!(algorithm::retry_after(State::Open, 150, 100), Some(Duration::from_nanos(50)));
/// assert_eq!(algorithm::retry_after(State::ForcedOpen, 150, 100), None);
/// ```
#[inline]
pub fn retry_after(state: State, open_until: u64, now: u64) -> Option<Duration> {
    (state == State::Open).then(|| Duration::from_nanos(open_until.saturating_sub(now)))
}

/// Whether a recorded outcome asks for the trip rules to be judged: only in CLOSED; always
/// for a failure or a slow call; for a fast success only when it `may_raise_a_rate` (see
/// [`success_may_raise_a_rate`]): a success never raises a count, but it can make a rate
/// judgeable, or stay while older calls leave a time window.
///
/// ```
/// use fusebox_core::breaker::{algorithm, State};
/// assert!(algorithm::judges(State::Closed, true, false, false));
/// assert!(!algorithm::judges(State::Closed, false, false, false)); // a fast success
/// assert!(algorithm::judges(State::Closed, false, false, true)); // ...that reaches the minimum
/// assert!(!algorithm::judges(State::Disabled, true, false, false));
/// ```
#[inline(always)]
pub fn judges(state: State, failure: bool, slow: bool, may_raise_a_rate: bool) -> bool {
    (failure || slow || may_raise_a_rate) && state == State::Closed
}

/// Whether a fast success may have raised a failure or slow-call rate to its threshold, so
/// that the rules must be judged after it. Only under a rate rule (or a custom rule), and
/// only when `below_minimum` (the window held fewer than `min_calls` calls when last judged:
/// this call may be the one that makes the rate judgeable) or when the call opened a
/// `new_bucket` of a time window (older calls, successes among them, may have left it).
/// Otherwise a success only adds to the calls, which lowers both rates.
///
/// ```
/// use fusebox_core::breaker::{algorithm, Breaker};
/// let rate = Breaker::builder("db").count_window(4).failure_rate(0.5).min_calls(4).build_config()?;
/// assert!(algorithm::success_may_raise_a_rate(&rate, true, false));
/// assert!(!algorithm::success_may_raise_a_rate(&rate, false, false));
/// let run = Breaker::builder("db").consecutive_failures(3).build_config()?;
/// assert!(!algorithm::success_may_raise_a_rate(&run, true, true)); // no rate to raise
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[inline(always)]
pub fn success_may_raise_a_rate(
    config: &BreakerConfig,
    below_minimum: bool,
    new_bucket: bool,
) -> bool {
    (below_minimum || new_bucket) && config.rules.judges_successes()
}

/// Whether `stats` is below the minimum number of calls before a rate is judged: while it
/// is, every success is judged, since any may be the one that reaches it.
///
/// ```
/// use fusebox_core::breaker::{algorithm, Breaker, WindowStats};
/// let config = Breaker::builder("db").count_window(10).failure_rate(0.5).min_calls(4).build_config()?;
/// let three = WindowStats { calls: 3, ..Default::default() };
/// assert!(algorithm::below_minimum(&config, &three));
/// assert!(!algorithm::below_minimum(&config, &WindowStats { calls: 4, ..three }));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[inline]
pub fn below_minimum(config: &BreakerConfig, stats: &WindowStats) -> bool {
    stats.calls < u64::from(config.rules.min_calls.max(1))
}

/// Judges the trip rules, in a fixed order, against the current counters.
///
/// ```
/// use fusebox_core::breaker::{algorithm, Breaker, TripReason, WindowStats};
/// let config = Breaker::builder("db").consecutive_failures(3).build_config()?;
/// let stats = WindowStats::default();
/// assert_eq!(algorithm::evaluate_trip(&config, 2, &stats), None);
/// assert!(matches!(
///     algorithm::evaluate_trip(&config, 3, &stats),
///     Some(TripReason::ConsecutiveFailures { failures: 3, threshold: 3 })
/// ));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn evaluate_trip(
    config: &BreakerConfig,
    consecutive_failures: u32,
    stats: &WindowStats,
) -> Option<TripReason> {
    let rules = &config.rules;
    if let Some(threshold) = rules.consecutive_failures
        && consecutive_failures >= threshold
    {
        return Some(TripReason::ConsecutiveFailures {
            failures: consecutive_failures,
            threshold,
        });
    }
    if let Some(threshold) = rules.failures_in_window
        && stats.failures >= u64::from(threshold)
    {
        return Some(TripReason::FailureCount {
            failures: stats.failures,
            calls: stats.calls,
            threshold,
        });
    }
    let judged = stats.calls >= u64::from(rules.min_calls) && stats.calls > 0;
    if let Some(threshold) = rules.failure_rate {
        let rate = stats.failure_rate();
        if judged && rate >= threshold {
            return Some(TripReason::FailureRate {
                rate,
                threshold,
                calls: stats.calls,
            });
        }
    }
    if let Some(slow) = rules.slow {
        let rate = stats.slow_rate();
        if judged && rate >= slow.rate {
            return Some(TripReason::SlowCallRate {
                rate,
                threshold: slow.rate,
                calls: stats.calls,
            });
        }
    }
    if let Some(custom) = &rules.custom
        && (custom.0)(stats)
    {
        return Some(TripReason::Custom { stats: *stats });
    }
    None
}

/// The trip as a move to OPEN, if the rules fire.
///
/// ```
/// use fusebox_core::breaker::{algorithm, Breaker, State, WindowStats};
/// let config = Breaker::builder("db").consecutive_failures(1).build_config()?;
/// let (to, _) = algorithm::trip(&config, 1, &WindowStats::default()).unwrap();
/// assert_eq!(to, State::Open);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[inline]
pub fn trip(
    config: &BreakerConfig,
    consecutive_failures: u32,
    stats: &WindowStats,
) -> Option<Move> {
    evaluate_trip(config, consecutive_failures, stats)
        .map(|reason| (State::Open, TransitionReason::Tripped(reason)))
}

/// Whether a call took long enough to count as slow under the slow-call rule.
///
/// ```
/// use fusebox_core::breaker::{algorithm, Breaker};
/// use std::time::Duration;
/// let config = Breaker::builder("db").slow_calls(Duration::from_nanos(100), 0.5).build_config()?;
/// assert!(!algorithm::is_slow(&config, 0, 99));
/// assert!(algorithm::is_slow(&config, 0, 100));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[inline]
pub fn is_slow(config: &BreakerConfig, started: u64, now: u64) -> bool {
    is_slow_after(config, now.saturating_sub(started))
}

/// Whether a call that took `elapsed` nanoseconds counts as slow under the slow-call rule.
///
/// ```
/// use fusebox_core::breaker::{algorithm, Breaker};
/// use std::time::Duration;
/// let config = Breaker::builder("db").slow_calls(Duration::from_nanos(100), 0.5).build_config()?;
/// assert!(algorithm::is_slow_after(&config, 100));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[inline]
pub fn is_slow_after(config: &BreakerConfig, elapsed: u64) -> bool {
    match config.rules.slow {
        Some(rule) => elapsed >= rule.threshold_nanos,
        None => false,
    }
}

/// Whether another trial may start, with `in_flight` trials running and `finished` judged,
/// at most `concurrency` at once and `trials` in the episode.
///
/// ```
/// use fusebox_core::breaker::algorithm;
/// assert!(algorithm::trial_admissible(1, 3, 0, 2)); // the third trial
/// assert!(!algorithm::trial_admissible(1, 3, 1, 0)); // one already in flight
/// ```
#[inline]
pub fn trial_admissible(concurrency: u32, trials: u32, in_flight: u32, finished: u32) -> bool {
    in_flight < concurrency && in_flight.saturating_add(finished) < trials
}

/// How a trial's outcome counts: `None` when ignored, else whether it succeeded. A slow
/// success counts as failed: the dependency is not healthy yet.
///
/// ```
/// use fusebox_core::breaker::algorithm;
/// use fusebox_core::Outcome;
/// assert_eq!(algorithm::trial_counts(Outcome::Success, false), Some(true));
/// assert_eq!(algorithm::trial_counts(Outcome::Success, true), Some(false)); // slow
/// assert_eq!(algorithm::trial_counts(Outcome::Ignored, false), None);
/// ```
#[inline]
pub fn trial_counts(outcome: Outcome, slow: bool) -> Option<bool> {
    match outcome {
        Outcome::Ignored => None,
        Outcome::Success => Some(!slow),
        Outcome::Failure => Some(false),
    }
}

/// What the half-open trials say so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialVerdict {
    /// Not decided yet.
    Pending,
    /// The close rule is met.
    Close,
    /// The close rule can no longer be met.
    Reopen,
}

/// Judges finished trials against the close rule ("`successes` of `trials`").
///
/// ```
/// use fusebox_core::breaker::algorithm::{trial_verdict, TrialVerdict};
/// use fusebox_core::breaker::CloseRule;
/// let five_of_five = CloseRule { successes: 5, trials: 5 };
/// assert_eq!(trial_verdict(five_of_five, 4, 0), TrialVerdict::Pending);
/// assert_eq!(trial_verdict(five_of_five, 3, 1), TrialVerdict::Reopen);
/// ```
pub fn trial_verdict(rule: CloseRule, successes: u32, failures: u32) -> TrialVerdict {
    if successes >= rule.successes {
        TrialVerdict::Close
    } else if failures > rule.trials - rule.successes {
        TrialVerdict::Reopen
    } else {
        TrialVerdict::Pending
    }
}

/// The move the finished trials call for: CLOSED when the close rule is met, OPEN when it
/// can no longer be, none while pending.
///
/// ```
/// use fusebox_core::breaker::{algorithm, CloseRule, State};
/// let three_of_five = CloseRule { successes: 3, trials: 5 };
/// assert_eq!(algorithm::after_trial(three_of_five, 2, 2), None);
/// assert_eq!(algorithm::after_trial(three_of_five, 3, 2).unwrap().0, State::Closed);
/// assert_eq!(algorithm::after_trial(three_of_five, 2, 3).unwrap().0, State::Open);
/// ```
pub fn after_trial(rule: CloseRule, successes: u32, failures: u32) -> Option<Move> {
    match trial_verdict(rule, successes, failures) {
        TrialVerdict::Pending => None,
        TrialVerdict::Close => Some((
            State::Closed,
            TransitionReason::TrialsPassed {
                successes,
                trials: rule.trials,
            },
        )),
        TrialVerdict::Reopen => Some((
            State::Open,
            TransitionReason::TrialsFailed {
                failures,
                trials: rule.trials,
            },
        )),
    }
}

/// What entering a state does to the counters the breaker keeps beside its state; see
/// [`enter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Trips since the last close, after this move (it feeds a growing cooldown).
    pub consecutive_trips: u32,
    /// OPEN: when the cooldown ends.
    pub open_until: Option<u64>,
    /// HALF_OPEN: the episode begins now, with no trial started.
    pub half_open_since: Option<u64>,
    /// CLOSED: the window, the run of failures and the trips are cleared.
    pub clears_counts: bool,
}

/// Entering `to` at `now` after `consecutive_trips` trips since the last close. An OPEN
/// state's cooldown ends at `open_until` when given (adopted from a fleet), else after
/// `cooldown(trips)`, the cooldown the new trip count earns (drawn with jitter by the caller,
/// which owns the random source).
///
/// ```
/// use fusebox_core::breaker::{algorithm, State};
/// use std::time::Duration;
/// let entry = algorithm::enter(State::Open, 0, 1_000, None, |_| Duration::from_nanos(500));
/// assert_eq!((entry.consecutive_trips, entry.open_until), (1, Some(1_500)));
/// assert!(algorithm::enter(State::Closed, 4, 0, None, |_| Duration::ZERO).clears_counts);
/// ```
pub fn enter(
    to: State,
    consecutive_trips: u32,
    now: u64,
    open_until: Option<u64>,
    cooldown: impl FnOnce(u32) -> Duration,
) -> Entry {
    let mut entry = Entry {
        consecutive_trips,
        open_until: None,
        half_open_since: None,
        clears_counts: false,
    };
    match to {
        State::Open => {
            let trips = consecutive_trips.saturating_add(1);
            entry.consecutive_trips = trips;
            entry.open_until = Some(
                open_until
                    .unwrap_or_else(|| now.saturating_add(crate::clock::nanos(cooldown(trips)))),
            );
        }
        State::HalfOpen => entry.half_open_since = Some(now),
        State::Closed => {
            entry.consecutive_trips = 0;
            entry.clears_counts = true;
        }
        State::ForcedOpen | State::Disabled => {}
    }
    entry
}

/// The deadline a failure's server-given delay sets, `wait` from `now` cut to `max`: the
/// breaker keeps the latest of these and opens until it (see [`hinted_open_until`]).
///
/// ```
/// use fusebox_core::breaker::algorithm::retry_hint_until;
/// use std::time::Duration;
/// let max = Duration::from_secs(60);
/// assert_eq!(retry_hint_until(1_000, Duration::from_nanos(500), max), 1_500);
/// assert_eq!(retry_hint_until(0, Duration::MAX, max), 60_000_000_000);
/// assert_eq!(retry_hint_until(u64::MAX - 1, max, max), u64::MAX); // saturates
/// ```
pub fn retry_hint_until(now: u64, wait: Duration, max: Duration) -> u64 {
    now.saturating_add(crate::clock::nanos(wait.min(max)))
}

/// The end of an OPEN state entered at `now` that a server's delay sets, instead of the
/// cooldown: the noted deadline `hint_until` while it lies ahead (0: none noted).
///
/// ```
/// use fusebox_core::breaker::algorithm::{enter, hinted_open_until};
/// use fusebox_core::breaker::State;
/// use std::time::Duration;
/// assert_eq!(hinted_open_until(5_000, 1_000), Some(5_000));
/// assert_eq!(hinted_open_until(5_000, 5_000), None); // spent: the cooldown applies
/// assert_eq!(hinted_open_until(0, 1_000), None);
/// // What the shells hand to `enter`:
/// let entry = enter(State::Open, 0, 1_000, hinted_open_until(5_000, 1_000), |_| Duration::from_nanos(10));
/// assert_eq!(entry.open_until, Some(5_000));
/// ```
pub fn hinted_open_until(hint_until: u64, now: u64) -> Option<u64> {
    (hint_until > now).then_some(hint_until)
}

/// What reconfiguring a live breaker does to its outcome window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowChange {
    /// The same window (kind and size): its counts are kept.
    Kept,
    /// A new window of another kind or size, started empty.
    Replaced,
    /// A window where there was none (a rate rule was added), started empty.
    Started,
    /// The window is no longer needed (only a consecutive rule is left): dropped.
    Dropped,
    /// No window before or after.
    None,
}

/// What reconfiguring a live breaker from `old` to `new` keeps, or why it cannot.
///
/// The rules, shared by [`Breaker::reconfigure`](super::Breaker::reconfigure) and
/// [`Machine::reconfigure`](super::Machine::reconfigure):
/// * kept: the state and its generation, the consecutive-failure count, the trip count a
///   growing cooldown follows, the trials of a half-open episode, an OPEN state's drawn end;
/// * the window is kept when its kind and size stay; otherwise a new one starts empty (see
///   [`WindowChange`]), and `min_calls` keeps a near-empty window from being judged;
/// * the new rules are judged at once ([`after_retune`]): a lowered threshold that the kept
///   counts already reach trips the breaker; a close rule the finished trials now meet
///   closes it;
/// * refused, naming the field: `outcome_log` (its buffers are allocated once, at build) and
///   `seed` (the random source is seeded once).
///
/// ```
/// use fusebox_core::breaker::algorithm::{retune, WindowChange};
/// use fusebox_core::breaker::Breaker;
/// let old = Breaker::builder("db").failures_in_last(5, 20).build_config()?;
/// let same_window = Breaker::builder("db").failures_in_last(3, 20).build_config()?;
/// assert_eq!(retune(&old, &same_window)?, WindowChange::Kept);
/// let bigger = Breaker::builder("db").failures_in_last(5, 50).build_config()?;
/// assert_eq!(retune(&old, &bigger)?, WindowChange::Replaced);
/// let logged = Breaker::builder("db").failures_in_last(5, 20).outcome_log(16).build_config()?;
/// assert_eq!(retune(&old, &logged).unwrap_err().field(), Some("outcome_log"));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn retune(old: &BreakerConfig, new: &BreakerConfig) -> Result<WindowChange, ConfigError> {
    if old.outcome_log != new.outcome_log {
        return Err(ConfigError::invalid(
            "outcome_log",
            format!(
                "fixed when the breaker was built ({} entries, asked {}): build a new \
                 breaker to change it",
                old.outcome_log, new.outcome_log
            ),
        ));
    }
    if old.seed != new.seed {
        return Err(ConfigError::invalid(
            "seed",
            "fixed when the breaker was built (its random source is seeded once): build a \
             new breaker to change it",
        ));
    }
    Ok(match (old.window, new.window) {
        (Some(a), Some(b)) if a == b => WindowChange::Kept,
        (Some(_), Some(_)) => WindowChange::Replaced,
        (None, Some(_)) => WindowChange::Started,
        (Some(_), None) => WindowChange::Dropped,
        (None, None) => WindowChange::None,
    })
}

/// The move a reconfigured breaker's new rules call for at once, judged on the counts it
/// kept: in CLOSED, the trip rules over the `consecutive` failures and the window's `stats`;
/// in HALF_OPEN, the close rule over the finished trials (`trial_successes`,
/// `trial_failures`). Time-driven moves are left to [`due`], as ever.
///
/// ```
/// use fusebox_core::breaker::algorithm::after_retune;
/// use fusebox_core::breaker::{Breaker, State, WindowStats};
/// let lowered = Breaker::builder("db").consecutive_failures(3).build_config()?;
/// let stats = WindowStats::default();
/// // Four failures in a row were fine under a threshold of five; not under three.
/// assert_eq!(after_retune(&lowered, State::Closed, 4, &stats, 0, 0).unwrap().0, State::Open);
/// assert_eq!(after_retune(&lowered, State::Closed, 2, &stats, 0, 0), None);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn after_retune(
    config: &BreakerConfig,
    state: State,
    consecutive: u32,
    stats: &WindowStats,
    trial_successes: u32,
    trial_failures: u32,
) -> Option<Move> {
    match state {
        State::Closed => trip(config, consecutive, stats),
        State::HalfOpen if trial_successes + trial_failures > 0 => {
            after_trial(config.close, trial_successes, trial_failures)
        }
        _ => None,
    }
}

/// A transition made by hand (an operator, a health check, an overload signal), with no
/// failure recorded.
///
/// ```
/// use fusebox_core::breaker::algorithm::Manual;
/// use fusebox_core::breaker::State;
/// assert!(Manual::Trip("drill".into()).allowed_from(State::Closed));
/// assert!(!Manual::Trip("drill".into()).allowed_from(State::ForcedOpen));
/// assert!(!Manual::Reset.changes_state(State::Closed)); // clears counters only
/// assert_eq!(Manual::ForceOpen.target(), State::ForcedOpen);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Manual {
    /// Open until reset; no cooldown ends it.
    ForceOpen,
    /// Admit everything, measure, never trip.
    Disable,
    /// Back to CLOSED with counters cleared.
    Reset,
    /// Open on an external signal and recover like after any trip.
    Trip(Cow<'static, str>),
}

impl Manual {
    /// The state it leads to.
    pub fn target(&self) -> State {
        match self {
            Manual::ForceOpen => State::ForcedOpen,
            Manual::Disable => State::Disabled,
            Manual::Reset => State::Closed,
            Manual::Trip(_) => State::Open,
        }
    }

    /// Whether it applies from `from`. A reset of a CLOSED breaker applies but changes no
    /// state: it only clears the counters (see [`Manual::changes_state`]).
    pub fn allowed_from(&self, from: State) -> bool {
        match self {
            Manual::ForceOpen => from != State::ForcedOpen,
            Manual::Disable => from != State::Disabled,
            Manual::Reset => true,
            Manual::Trip(_) => matches!(from, State::Closed | State::HalfOpen | State::Disabled),
        }
    }

    /// Whether applying it from `from` is a state change to report.
    pub fn changes_state(&self, from: State) -> bool {
        self.allowed_from(from) && from != self.target()
    }

    /// The reason reported with the change.
    pub fn reason(self) -> TransitionReason {
        match self {
            Manual::ForceOpen => TransitionReason::ForcedOpen,
            Manual::Disable => TransitionReason::Disabled,
            Manual::Reset => TransitionReason::Reset,
            Manual::Trip(reason) => TransitionReason::Tripped(TripReason::External { reason }),
        }
    }
}

#[cfg(test)]
mod tests;
