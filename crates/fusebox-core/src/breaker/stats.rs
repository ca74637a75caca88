//! What a breaker knows: its state, window statistics, why it moved, and snapshots.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// The state of a breaker.
///
/// ```
/// use fusebox_core::breaker::State;
/// assert_eq!(State::HalfOpen.to_string(), "half_open");
/// assert!(State::Closed.admits_calls());
/// assert!(!State::ForcedOpen.admits_calls());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum State {
    /// Calls flow; outcomes are measured against the trip rules.
    Closed,
    /// Calls are rejected until the cooldown has elapsed.
    Open,
    /// A limited number of trial calls probe the dependency.
    HalfOpen,
    /// Opened by hand (isolated); stays open until reset.
    ForcedOpen,
    /// Switched off by hand: always admits, still measures, never trips.
    Disabled,
}

impl State {
    /// Whether calls are admitted without limit in this state.
    ///
    /// ```
    /// use fusebox_core::breaker::State;
    /// assert!(State::Closed.admits_calls() && State::Disabled.admits_calls());
    /// // Half-open admits a limited number of trials only.
    /// assert!(!State::HalfOpen.admits_calls());
    /// assert!(!State::Open.admits_calls());
    /// ```
    pub fn admits_calls(self) -> bool {
        matches!(self, State::Closed | State::Disabled)
    }

    /// Stable lower-case name, as used in events, metrics and configs.
    ///
    /// ```
    /// use fusebox_core::breaker::State;
    /// assert_eq!(State::ForcedOpen.as_str(), "forced_open");
    /// assert_eq!(State::Open.as_str(), State::Open.to_string());
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::ForcedOpen => "forced_open",
            State::Disabled => "disabled",
        }
    }

    pub(crate) fn code(self) -> u64 {
        match self {
            State::Closed => 0,
            State::Open => 1,
            State::HalfOpen => 2,
            State::ForcedOpen => 3,
            State::Disabled => 4,
        }
    }

    pub(crate) fn from_code(code: u64) -> State {
        match code {
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            4 => State::Disabled,
            _ => State::Closed,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts over the breaker's window (count-based or time-based).
///
/// ```
/// use fusebox_core::breaker::WindowStats;
/// let s = WindowStats { calls: 10, failures: 3, slow_calls: 1 };
/// assert_eq!(s.failure_rate(), 0.3);
/// assert_eq!(s.slow_rate(), 0.1);
/// assert_eq!(WindowStats::default().failure_rate(), 0.0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct WindowStats {
    /// Counted calls (successes and failures; ignored outcomes are not counted).
    pub calls: u64,
    /// Failed calls.
    pub failures: u64,
    /// Slow calls, failed or not.
    pub slow_calls: u64,
}

impl WindowStats {
    /// Failures over calls, 0 when empty.
    ///
    /// ```
    /// use fusebox_core::breaker::WindowStats;
    /// let s = WindowStats { calls: 8, failures: 2, slow_calls: 0 };
    /// assert_eq!(s.failure_rate(), 0.25);
    /// assert_eq!(WindowStats::default().failure_rate(), 0.0); // empty, not NaN
    /// ```
    pub fn failure_rate(&self) -> f64 {
        ratio(self.failures, self.calls)
    }

    /// Slow calls over calls, 0 when empty.
    ///
    /// ```
    /// use fusebox_core::breaker::WindowStats;
    /// let s = WindowStats { calls: 4, failures: 0, slow_calls: 3 };
    /// assert_eq!(s.slow_rate(), 0.75);
    /// assert_eq!(WindowStats::default().slow_rate(), 0.0); // empty, not NaN
    /// ```
    pub fn slow_rate(&self) -> f64 {
        ratio(self.slow_calls, self.calls)
    }
}

fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

/// Which trip rule opened the breaker, with the numbers that made it trip.
///
/// ```
/// use fusebox_core::breaker::TripReason;
/// let r = TripReason::FailureCount { failures: 3, calls: 10, threshold: 3 };
/// assert_eq!(r.to_string(), "3 of the last 10 calls failed (threshold 3)");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum TripReason {
    /// `failures` failures in a row reached the threshold.
    ConsecutiveFailures {
        /// Failures in a row.
        failures: u32,
        /// Configured threshold.
        threshold: u32,
    },
    /// The window held `failures` failures among `calls` calls.
    FailureCount {
        /// Failures in the window.
        failures: u64,
        /// Calls in the window.
        calls: u64,
        /// Configured threshold.
        threshold: u32,
    },
    /// The failure rate over the window reached the threshold.
    FailureRate {
        /// Measured rate.
        rate: f64,
        /// Configured threshold.
        threshold: f64,
        /// Calls in the window.
        calls: u64,
    },
    /// The slow-call rate over the window reached the threshold.
    SlowCallRate {
        /// Measured rate.
        rate: f64,
        /// Configured threshold.
        threshold: f64,
        /// Calls in the window.
        calls: u64,
    },
    /// The custom rule returned `true` for these statistics.
    Custom {
        /// The window when the rule fired.
        stats: WindowStats,
    },
    /// Opened by an external trigger (an operator, a health check, an overload signal).
    External {
        /// What the trigger said.
        reason: Cow<'static, str>,
    },
}

impl fmt::Display for TripReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TripReason::ConsecutiveFailures {
                failures,
                threshold,
            } => write!(f, "{failures} consecutive failures (threshold {threshold})"),
            TripReason::FailureCount {
                failures,
                calls,
                threshold,
            } => write!(
                f,
                "{failures} of the last {calls} calls failed (threshold {threshold})"
            ),
            TripReason::FailureRate {
                rate,
                threshold,
                calls,
            } => write!(
                f,
                "failure rate {:.1}% over {calls} calls (threshold {:.1}%)",
                rate * 100.0,
                threshold * 100.0
            ),
            TripReason::SlowCallRate {
                rate,
                threshold,
                calls,
            } => write!(
                f,
                "slow-call rate {:.1}% over {calls} calls (threshold {:.1}%)",
                rate * 100.0,
                threshold * 100.0
            ),
            TripReason::Custom { stats } => write!(
                f,
                "custom rule fired ({} failures, {} slow of {} calls)",
                stats.failures, stats.slow_calls, stats.calls
            ),
            TripReason::External { reason } => write!(f, "external trigger: {reason}"),
        }
    }
}

/// Why a breaker changed state.
///
/// ```
/// use fusebox_core::breaker::TransitionReason;
/// let r = TransitionReason::TrialsPassed { successes: 5, trials: 5 };
/// assert_eq!(r.to_string(), "5 of 5 trial calls succeeded");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum TransitionReason {
    /// A trip rule fired (CLOSED -> OPEN) or an external trigger opened it.
    Tripped(TripReason),
    /// The cooldown elapsed (OPEN -> HALF_OPEN).
    CooldownElapsed,
    /// Enough trial calls succeeded (HALF_OPEN -> CLOSED).
    TrialsPassed {
        /// Successful trials.
        successes: u32,
        /// Trials judged by the close rule.
        trials: u32,
    },
    /// A trial failure made the close rule unreachable (HALF_OPEN -> OPEN).
    TrialsFailed {
        /// Failed trials.
        failures: u32,
        /// Trials judged by the close rule.
        trials: u32,
    },
    /// Half-open lasted longer than its maximum without a verdict (HALF_OPEN -> OPEN).
    HalfOpenTimedOut,
    /// Opened by hand.
    ForcedOpen,
    /// Disabled by hand.
    Disabled,
    /// Reset by hand (to CLOSED, counters cleared).
    Reset,
    /// Adopted from the fleet the breaker belongs to (another instance's trip, a fleet-wide
    /// trial verdict, an operator's forced state, or a store outage under fail-closed).
    Fleet(Cow<'static, str>),
}

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionReason::Tripped(r) => write!(f, "tripped: {r}"),
            TransitionReason::CooldownElapsed => f.write_str("cooldown elapsed"),
            TransitionReason::TrialsPassed { successes, trials } => {
                write!(f, "{successes} of {trials} trial calls succeeded")
            }
            TransitionReason::TrialsFailed { failures, trials } => write!(
                f,
                "{failures} of {trials} trial calls failed, the close rule cannot be met"
            ),
            TransitionReason::HalfOpenTimedOut => {
                f.write_str("half-open lasted too long without a verdict")
            }
            TransitionReason::ForcedOpen => f.write_str("forced open"),
            TransitionReason::Disabled => f.write_str("disabled"),
            TransitionReason::Reset => f.write_str("reset"),
            TransitionReason::Fleet(why) => write!(f, "fleet: {why}"),
        }
    }
}

/// One state change, as given to listeners and logged by `tracing`.
///
/// ```
/// use fusebox_core::breaker::{Breaker, State};
/// use fusebox_core::clock::ManualClock;
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let breaker = Breaker::builder("api")
///     .consecutive_failures(1)
///     .clock(ManualClock::new())
///     .on_transition(move |t| log.lock().unwrap().push((t.from, t.to)))
///     .build()?;
/// breaker.record_failure();
/// assert_eq!(*seen.lock().unwrap(), vec![(State::Closed, State::Open)]);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Transition {
    /// The breaker's name.
    pub name: super::Name,
    /// State before.
    pub from: State,
    /// State after.
    pub to: State,
    /// Why.
    pub reason: TransitionReason,
    /// Generation after the change: strictly increasing, orders transitions seen by
    /// listeners on different threads.
    pub generation: u64,
    /// Clock time of the change, in nanoseconds since the breaker clock's origin.
    pub at_nanos: u64,
    /// Window statistics when the change happened.
    pub stats: WindowStats,
}

/// One recorded outcome, as given to listeners that ask for outcomes
/// ([`BreakerListener::wants_outcomes`](super::BreakerListener::wants_outcomes)).
///
/// ```
/// use fusebox_core::breaker::{Breaker, BreakerListener, OutcomeEvent};
/// use fusebox_core::Outcome;
/// # use std::sync::{Arc, Mutex};
/// struct Outcomes(Mutex<Vec<Outcome>>);
/// impl BreakerListener for Outcomes {
///     fn wants_outcomes(&self) -> bool {
///         true
///     }
///     fn on_outcome(&self, event: &OutcomeEvent) {
///         self.0.lock().unwrap().push(event.outcome);
///     }
/// }
/// let seen = Arc::new(Outcomes(Mutex::new(Vec::new())));
/// let b = Breaker::builder("db").listener(seen.clone()).build()?;
/// b.try_acquire()?.success();
/// b.try_acquire()?.ignore();
/// assert_eq!(*seen.0.lock().unwrap(), [Outcome::Success, Outcome::Ignored]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutcomeEvent {
    /// The breaker's name.
    pub name: super::Name,
    /// What the classifier said.
    pub outcome: crate::Outcome,
    /// Whether the call reached the slow-call threshold (always false without a slow-call
    /// rule).
    pub slow: bool,
    /// Whether the call was a half-open trial.
    pub trial: bool,
    /// From admission to the recorded outcome; zero for an outcome recorded without a permit.
    pub duration: std::time::Duration,
}

/// The kind of one logged outcome.
///
/// ```
/// use fusebox_core::breaker::LoggedOutcome;
/// assert!(LoggedOutcome::SlowFailure.is_failure());
/// assert!(LoggedOutcome::SlowSuccess.is_slow());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum LoggedOutcome {
    /// A success.
    Success,
    /// A failure.
    Failure,
    /// A success that was slow.
    SlowSuccess,
    /// A failure that was slow.
    SlowFailure,
}

impl LoggedOutcome {
    /// Failed (slow or not).
    ///
    /// ```
    /// use fusebox_core::breaker::LoggedOutcome;
    /// assert!(LoggedOutcome::Failure.is_failure());
    /// assert!(LoggedOutcome::SlowFailure.is_failure());
    /// assert!(!LoggedOutcome::SlowSuccess.is_failure());
    /// ```
    pub fn is_failure(self) -> bool {
        matches!(self, LoggedOutcome::Failure | LoggedOutcome::SlowFailure)
    }
    /// Slow (failed or not).
    ///
    /// ```
    /// use fusebox_core::breaker::LoggedOutcome;
    /// assert!(LoggedOutcome::SlowFailure.is_slow());
    /// assert!(!LoggedOutcome::Success.is_slow());
    /// assert!(!LoggedOutcome::Failure.is_slow());
    /// ```
    pub fn is_slow(self) -> bool {
        matches!(
            self,
            LoggedOutcome::SlowSuccess | LoggedOutcome::SlowFailure
        )
    }
    pub(crate) fn code(self) -> u64 {
        match self {
            LoggedOutcome::Success => 1,
            LoggedOutcome::Failure => 2,
            LoggedOutcome::SlowSuccess => 3,
            LoggedOutcome::SlowFailure => 4,
        }
    }
    pub(crate) fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => LoggedOutcome::Success,
            2 => LoggedOutcome::Failure,
            3 => LoggedOutcome::SlowSuccess,
            4 => LoggedOutcome::SlowFailure,
            _ => return None,
        })
    }
}

/// One entry of the recent-outcome log.
///
/// ```
/// use fusebox_core::breaker::{Breaker, LoggedOutcome};
/// use fusebox_core::clock::ManualClock;
/// use std::time::Duration;
/// let clock = ManualClock::new();
/// let b = Breaker::builder("log").outcome_log(8).clock(clock.clone()).build()?;
/// b.record_failure();
/// clock.advance(Duration::from_secs(2));
/// let entry = b.snapshot().recent[0];
/// assert_eq!((entry.outcome, entry.age), (LoggedOutcome::Failure, Duration::from_secs(2)));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct OutcomeEntry {
    /// What happened.
    pub outcome: LoggedOutcome,
    /// How long ago, when the snapshot was taken.
    pub age: Duration,
}

/// A point-in-time view of a breaker, for dashboards, health checks and tests.
///
/// ```
/// use fusebox_core::breaker::{Breaker, State};
/// let b = Breaker::builder("cache").failures_in_last(3, 10).build()?;
/// b.record_success();
/// b.record_failure();
/// let s = b.snapshot();
/// assert_eq!(s.state, State::Closed);
/// assert_eq!((s.window.calls, s.window.failures), (2, 1));
/// assert_eq!(s.failure_rate, None); // 2 calls: below the default minimum, not judged yet
/// assert_eq!(s.consecutive_failures, 1);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Snapshot {
    /// The breaker's name.
    pub name: super::Name,
    /// Current state (with the lazy OPEN -> HALF_OPEN move applied).
    pub state: State,
    /// Generation: how many transitions happened.
    pub generation: u64,
    /// Window statistics.
    pub window: WindowStats,
    /// Failure rate over the window; `None` until it is judged: while the window holds
    /// fewer than `min_calls` calls (an empty window included, and a breaker with no
    /// window).
    pub failure_rate: Option<f64>,
    /// Slow-call rate over the window; `None` until it is judged, as `failure_rate`.
    pub slow_rate: Option<f64>,
    /// Current run of failures.
    pub consecutive_failures: u32,
    /// Time since the last failure, if any.
    pub since_last_failure: Option<Duration>,
    /// Time left in OPEN, if open.
    pub remaining_cooldown: Option<Duration>,
    /// Trips since the breaker last closed (drives a growing cooldown).
    pub consecutive_trips: u32,
    /// Trial calls in flight, when half-open.
    pub trials_in_flight: u32,
    /// Successful trials so far, when half-open.
    pub trial_successes: u32,
    /// Failed trials so far, when half-open.
    pub trial_failures: u32,
    /// Recent outcomes of admitted calls, oldest first (empty unless an outcome log is
    /// configured). Rejections are kept apart, so a flood of them while OPEN cannot push out
    /// the outcomes that opened the breaker.
    pub recent: Vec<OutcomeEntry>,
    /// How long ago the most recent rejections were, oldest first: as many as the outcome
    /// log keeps (empty unless one is configured).
    pub recent_rejections: Vec<Duration>,
    /// Calls a breaker in [shadow mode](super::BreakerBuilder::shadow) would have rejected
    /// and let through, since it was built (always 0 when it enforces).
    pub shadow_rejections: u64,
}
