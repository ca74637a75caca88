//! [`decide`]: the whole breaker as one pure function, for callers who keep their own
//! counters (an actor, a database row, an audit log that wants typed decisions). It
//! interprets the rules in [`algorithm`](super::algorithm) and adds none of its own.

use super::algorithm::{after_trial, due, retry_after, trial_admissible, trip};
use super::config::BreakerConfig;
use super::stats::{State, TransitionReason, WindowStats};
use std::time::Duration;

/// The counters a caller keeps for [`decide`].
///
/// ```
/// use fusebox_core::breaker::{Counters, State};
/// let c = Counters { consecutive_failures: 2, ..Counters::default() };
/// assert_eq!(c.state, State::Closed);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counters {
    /// The state the caller last stored.
    pub state: State,
    /// Current run of failures.
    pub consecutive_failures: u32,
    /// Window statistics (ignored when no window rule is configured).
    pub window: WindowStats,
    /// When OPEN ends, in the caller's clock nanoseconds.
    pub open_until_nanos: u64,
    /// When HALF_OPEN began, in the caller's clock nanoseconds.
    pub half_open_since_nanos: u64,
    /// Trials in flight.
    pub trials_in_flight: u32,
    /// Successful trials.
    pub trial_successes: u32,
    /// Failed trials.
    pub trial_failures: u32,
    /// Trips since the last close (for a growing cooldown).
    pub consecutive_trips: u32,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            state: State::Closed,
            consecutive_failures: 0,
            window: WindowStats::default(),
            open_until_nanos: 0,
            half_open_since_nanos: 0,
            trials_in_flight: 0,
            trial_successes: 0,
            trial_failures: 0,
            consecutive_trips: 0,
        }
    }
}

/// The answer of [`decide`].
///
/// ```
/// use fusebox_core::breaker::{decide, Breaker, Counters, State};
/// let config = Breaker::builder("d").build_config()?;
/// // An open breaker whose cooldown ended at t = 100 ns admits one trial call.
/// let open = Counters { state: State::Open, open_until_nanos: 100, ..Default::default() };
/// let d = decide(&config, &open, 100);
/// assert!(d.allow && d.trial);
/// assert_eq!(d.transition.map(|(to, _)| to), Some(State::HalfOpen));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Decision {
    /// The state the counters put the breaker in, now.
    pub state: State,
    /// Whether a call may go ahead.
    pub allow: bool,
    /// Whether that call is a half-open trial.
    pub trial: bool,
    /// How long until calls may be admitted again, when rejected and known.
    pub retry_after: Option<Duration>,
    /// The state change the caller should store, with its reason.
    pub transition: Option<(State, TransitionReason)>,
}

/// The pure decision function: given a config, the caller's counters and the time, says
/// whether a call may go ahead and which transition to store. No side effect, no clock, no
/// randomness (a jittered cooldown is reported at its middle value).
///
/// This is the whole breaker for callers who keep their own state (an actor, a database
/// row, an audit log that wants typed decisions).
///
/// ```
/// use fusebox_core::breaker::{decide, Breaker, Counters, State};
/// use std::time::Duration;
///
/// let config = Breaker::builder("audit")
///     .consecutive_failures(3)
///     .cooldown(Duration::from_secs(10))
///     .build_config()?;
///
/// // Two failures in a row: still closed.
/// let d = decide(&config, &Counters { consecutive_failures: 2, ..Default::default() }, 0);
/// assert!(d.allow && d.state == State::Closed);
///
/// // Three: the breaker opens and asks the caller to come back in 10 s.
/// let d = decide(&config, &Counters { consecutive_failures: 3, ..Default::default() }, 0);
/// assert!(!d.allow);
/// assert_eq!(d.state, State::Open);
/// assert_eq!(d.retry_after, Some(Duration::from_secs(10)));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn decide(config: &BreakerConfig, counters: &Counters, now_nanos: u64) -> Decision {
    let c = counters;
    let allow = |state, trial, transition| Decision {
        state,
        allow: true,
        trial,
        retry_after: None,
        transition,
    };
    let reject = |state, retry_after, transition| Decision {
        state,
        allow: false,
        trial: false,
        retry_after,
        transition,
    };
    // A jittered cooldown is reported at its middle value: no randomness here.
    let cooldown = || {
        config
            .cooldown
            .after_trips(c.consecutive_trips.saturating_add(1), 0.5)
    };
    let open = |t: (State, TransitionReason)| reject(State::Open, Some(cooldown()), Some(t));
    match c.state {
        State::Disabled => allow(State::Disabled, false, None),
        State::ForcedOpen => reject(State::ForcedOpen, None, None),
        State::Closed => match trip(config, c.consecutive_failures, &c.window) {
            Some(t) => open(t),
            None => allow(State::Closed, false, None),
        },
        State::Open => match due(config, State::Open, c.open_until_nanos, 0, now_nanos) {
            Some(t) => allow(State::HalfOpen, true, Some(t)),
            None => reject(
                State::Open,
                retry_after(State::Open, c.open_until_nanos, now_nanos),
                None,
            ),
        },
        State::HalfOpen => {
            if let Some(t) = after_trial(config.close, c.trial_successes, c.trial_failures) {
                return if t.0 == State::Closed {
                    allow(State::Closed, false, Some(t))
                } else {
                    open(t)
                };
            }
            if let Some(t) = due(
                config,
                State::HalfOpen,
                0,
                c.half_open_since_nanos,
                now_nanos,
            ) {
                return open(t);
            }
            let finished = c.trial_successes.saturating_add(c.trial_failures);
            if trial_admissible(
                config.half_open_concurrency,
                config.trial_starts(),
                c.trials_in_flight,
                finished,
            ) {
                allow(State::HalfOpen, true, None)
            } else {
                reject(State::HalfOpen, None, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::Breaker;

    #[test]
    fn seed_parity_decision() {
        // The pure decision function of the spend-safeguard package: threshold 3.
        let cfg = Breaker::builder("p")
            .consecutive_failures(3)
            .build_config()
            .unwrap();
        let d = decide(
            &cfg,
            &Counters {
                consecutive_failures: 3,
                ..Default::default()
            },
            0,
        );
        assert!(!d.allow);
        assert_eq!(d.state, State::Open);
        // An open breaker whose cooldown still runs reports the time left.
        let d = decide(
            &cfg,
            &Counters {
                state: State::Open,
                open_until_nanos: 5_000,
                ..Default::default()
            },
            2_000,
        );
        assert!(!d.allow);
        assert_eq!(d.retry_after, Some(Duration::from_nanos(3_000)));
        let d = decide(
            &cfg,
            &Counters {
                state: State::Open,
                open_until_nanos: 5_000,
                ..Default::default()
            },
            5_000,
        );
        assert!(d.allow && d.trial);
    }
}
