//! The pure rules every breaker implementation shares: when to trip, when half-open closes
//! or reopens, and the public [`decide`] function for callers who keep their own counters.

use std::time::Duration;

use super::config::{BreakerConfig, CloseRule, TripRules};
use super::stats::{State, TransitionReason, TripReason, WindowStats};

/// Judges the trip rules, in a fixed order, against the current counters. Pure.
pub(crate) fn evaluate_trip(
    rules: &TripRules,
    consecutive_failures: u32,
    stats: &WindowStats,
) -> Option<TripReason> {
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

/// What the half-open trials say so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrialVerdict {
    /// Not decided yet.
    Pending,
    /// The close rule is met.
    Close,
    /// The close rule can no longer be met.
    Reopen,
}

/// Judges finished trials against the close rule ("`successes` of `trials`"). Pure.
pub(crate) fn trial_verdict(rule: CloseRule, successes: u32, failures: u32) -> TrialVerdict {
    if successes >= rule.successes {
        TrialVerdict::Close
    } else if failures > rule.trials - rule.successes {
        TrialVerdict::Reopen
    } else {
        TrialVerdict::Pending
    }
}

impl TrialVerdict {
    pub(crate) fn transition(
        self,
        rule: CloseRule,
        successes: u32,
        failures: u32,
    ) -> Option<(State, TransitionReason)> {
        match self {
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
}

/// Whether another trial may start.
pub(crate) fn trial_admissible(config: &BreakerConfig, in_flight: u32, finished: u32) -> bool {
    in_flight < config.half_open_concurrency
        && in_flight.saturating_add(finished) < config.close.trials
}

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
    let reject = |state, retry_after, transition| Decision {
        state,
        allow: false,
        trial: false,
        retry_after,
        transition,
    };
    match c.state {
        State::Disabled => Decision {
            state: State::Disabled,
            allow: true,
            trial: false,
            retry_after: None,
            transition: None,
        },
        State::ForcedOpen => reject(State::ForcedOpen, None, None),
        State::Closed => match evaluate_trip(&config.rules, c.consecutive_failures, &c.window) {
            Some(reason) => {
                let cooldown = config
                    .cooldown
                    .after_trips(c.consecutive_trips.saturating_add(1), 0.5);
                reject(
                    State::Open,
                    Some(cooldown),
                    Some((State::Open, TransitionReason::Tripped(reason))),
                )
            }
            None => Decision {
                state: State::Closed,
                allow: true,
                trial: false,
                retry_after: None,
                transition: None,
            },
        },
        State::Open => {
            if now_nanos < c.open_until_nanos {
                let left = Duration::from_nanos(c.open_until_nanos - now_nanos);
                return reject(State::Open, Some(left), None);
            }
            Decision {
                state: State::HalfOpen,
                allow: true,
                trial: true,
                retry_after: None,
                transition: Some((State::HalfOpen, TransitionReason::CooldownElapsed)),
            }
        }
        State::HalfOpen => {
            let verdict = trial_verdict(config.close, c.trial_successes, c.trial_failures);
            if let Some(t) = verdict.transition(config.close, c.trial_successes, c.trial_failures) {
                let allow = t.0 == State::Closed;
                let retry_after = (!allow).then(|| {
                    config
                        .cooldown
                        .after_trips(c.consecutive_trips.saturating_add(1), 0.5)
                });
                return Decision {
                    state: t.0,
                    allow,
                    trial: false,
                    retry_after,
                    transition: Some(t),
                };
            }
            if let Some(max) = config.half_open_max_nanos
                && now_nanos.saturating_sub(c.half_open_since_nanos) >= max
            {
                let cooldown = config
                    .cooldown
                    .after_trips(c.consecutive_trips.saturating_add(1), 0.5);
                return reject(
                    State::Open,
                    Some(cooldown),
                    Some((State::Open, TransitionReason::HalfOpenTimedOut)),
                );
            }
            let finished = c.trial_successes.saturating_add(c.trial_failures);
            if trial_admissible(config, c.trials_in_flight, finished) {
                Decision {
                    state: State::HalfOpen,
                    allow: true,
                    trial: true,
                    retry_after: None,
                    transition: None,
                }
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

    fn rule(successes: u32, trials: u32) -> CloseRule {
        CloseRule { successes, trials }
    }

    #[test]
    fn close_rule_fractions() {
        // 5 of 5: one failure makes it unreachable.
        assert_eq!(trial_verdict(rule(5, 5), 4, 0), TrialVerdict::Pending);
        assert_eq!(trial_verdict(rule(5, 5), 5, 0), TrialVerdict::Close);
        assert_eq!(trial_verdict(rule(5, 5), 3, 1), TrialVerdict::Reopen);
        // 3 of 5: two failures are tolerated, the third reopens.
        assert_eq!(trial_verdict(rule(3, 5), 1, 2), TrialVerdict::Pending);
        assert_eq!(trial_verdict(rule(3, 5), 3, 2), TrialVerdict::Close);
        assert_eq!(trial_verdict(rule(3, 5), 2, 3), TrialVerdict::Reopen);
    }

    #[test]
    fn trip_rules_in_order() {
        let cfg = Breaker::builder("t")
            .failures_in_last(3, 10)
            .failure_rate(0.9)
            .build_config()
            .unwrap();
        let s = WindowStats {
            calls: 4,
            failures: 3,
            slow_calls: 0,
        };
        assert!(matches!(
            evaluate_trip(&cfg.rules, 0, &s),
            Some(TripReason::FailureCount { failures: 3, .. })
        ));
        let s = WindowStats {
            calls: 10,
            failures: 2,
            slow_calls: 0,
        };
        assert_eq!(evaluate_trip(&cfg.rules, 0, &s), None);
    }

    #[test]
    fn rate_needs_min_calls() {
        let cfg = Breaker::builder("t")
            .time_window(Duration::from_secs(10), 10)
            .failure_rate(0.5)
            .min_calls(4)
            .build_config()
            .unwrap();
        let few = WindowStats {
            calls: 3,
            failures: 3,
            slow_calls: 0,
        };
        assert_eq!(evaluate_trip(&cfg.rules, 3, &few), None);
        let enough = WindowStats {
            calls: 4,
            failures: 2,
            slow_calls: 0,
        };
        assert!(matches!(
            evaluate_trip(&cfg.rules, 0, &enough),
            Some(TripReason::FailureRate { .. })
        ));
    }

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
