//! The raw, serde-friendly settings of a breaker, the limits and defaults they are checked
//! against, and their validation into a [`BreakerConfig`]. Apart from the config itself,
//! which only holds what passed.

use super::{BreakerConfig, CloseRule, Cooldown, CustomRule, SlowCallRule, TripRules, WindowKind};
use crate::ConfigError;
use crate::error::check;
use std::time::Duration;

/// Largest count-based window accepted, so that judging a window stays cheap.
pub(crate) const MAX_WINDOW_CALLS: u32 = 100_000;
/// Largest number of buckets in a time-based window.
pub(crate) const MAX_WINDOW_BUCKETS: u32 = 1_000;
/// Most trial calls a half-open breaker lets run at once.
pub(crate) const MAX_HALF_OPEN_CONCURRENCY: u32 = 10_000;
/// Half-open counters are packed in 16 bits each.
pub(crate) const MAX_TRIALS: u32 = u16::MAX as u32;
/// Largest outcome log kept for snapshots.
pub(crate) const MAX_OUTCOME_LOG: u32 = 65_536;
/// Count window used when a rate or custom rule is set without choosing a window.
pub(crate) const DEFAULT_WINDOW_CALLS: u32 = 100;
/// Minimum calls before a rate is judged over a time-based window, unless set.
pub(crate) const DEFAULT_TIME_WINDOW_MIN_CALLS: u32 = 20;
/// Trip rule used when none is configured.
pub(crate) const DEFAULT_CONSECUTIVE_FAILURES: u32 = 5;
/// Cooldown used when none is configured.
pub(crate) const DEFAULT_COOLDOWN: Duration = Duration::from_secs(30);

/// The raw, unvalidated settings of a breaker, one optional field per knob.
///
/// This is what a TOML file holds (with the `serde` feature, durations as `"30s"`, `"250ms"`)
/// and what [`BreakerBuilder`](crate::breaker::BreakerBuilder) fills in; validation happens
/// once, when the breaker or config is built. Unset fields take the documented defaults.
///
/// ```
/// use fusebox_core::breaker::{Breaker, BreakerSettings};
/// use std::time::Duration;
///
/// let settings = BreakerSettings {
///     failures_in_window: Some(3),
///     window_calls: Some(10),
///     cooldown: Some(Duration::from_secs(5)),
///     ..Default::default()
/// };
/// let breaker = Breaker::builder("payments").settings(settings).build()?;
/// assert_eq!(breaker.name(), "payments");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct BreakerSettings {
    /// Trip after this many failures in a row (a success resets the count).
    pub consecutive_failures: Option<u32>,
    /// Trip when this many of the calls in the count-based window failed ("3 of the last 10":
    /// `failures_in_window = 3`, `window_calls = 10`).
    pub failures_in_window: Option<u32>,
    /// Trip when the failure rate over the window reaches this ratio, within `(0, 1]`.
    pub failure_rate: Option<f64>,
    /// Calls the window must hold before a rate is judged. Default: the window size for a
    /// count-based window, 20 for a time-based one.
    pub min_calls: Option<u32>,
    /// A count-based window over the last N calls.
    pub window_calls: Option<u32>,
    /// A time-based window over this span.
    #[cfg_attr(feature = "serde", serde(with = "crate::duration::serde_human_option"))]
    pub window_span: Option<Duration>,
    /// Number of buckets of a time-based window (default 10).
    pub window_buckets: Option<u32>,
    /// A call lasting at least this long is slow.
    #[cfg_attr(feature = "serde", serde(with = "crate::duration::serde_human_option"))]
    pub slow_call_threshold: Option<Duration>,
    /// Trip when the slow-call rate over the window reaches this ratio, within `(0, 1]`.
    pub slow_call_rate: Option<f64>,
    /// Time in OPEN before trial calls are let through (default 30 s). With
    /// `cooldown_max` or `cooldown_factor` set, this is the first cooldown of a growing series.
    #[cfg_attr(feature = "serde", serde(with = "crate::duration::serde_human_option"))]
    pub cooldown: Option<Duration>,
    /// Cap of a growing cooldown.
    #[cfg_attr(feature = "serde", serde(with = "crate::duration::serde_human_option"))]
    pub cooldown_max: Option<Duration>,
    /// Growth factor per consecutive trip (>= 1; default 2 when `cooldown_max` is set).
    pub cooldown_factor: Option<f64>,
    /// Random spread of each cooldown, a fraction within `[0, 1]`: 0.1 means ±10 %.
    pub cooldown_jitter: Option<f64>,
    /// Successful trials needed to close ("5 of 5": `half_open_successes = 5`).
    pub half_open_successes: Option<u32>,
    /// Trials judged in half-open (the denominator of the close rule).
    pub half_open_trials: Option<u32>,
    /// Trial calls allowed in flight at once (default: all of `half_open_trials`).
    pub half_open_concurrency: Option<u32>,
    /// Longest time in half-open before reopening when the trials have not decided.
    #[cfg_attr(feature = "serde", serde(with = "crate::duration::serde_human_option"))]
    pub half_open_max_duration: Option<Duration>,
    /// Number of recent outcomes kept for snapshots (0, the default, keeps none and costs
    /// nothing per call).
    pub outcome_log: Option<u32>,
    /// Seed for the cooldown jitter, for reproducible runs.
    pub seed: Option<u64>,
    /// Shadow mode: decide, report and count, but never reject (default `false`).
    pub shadow: Option<bool>,
    /// Open for as long as a failure's server-given `Retry-After` asks, up to this long,
    /// instead of the cooldown (off when unset).
    #[cfg_attr(feature = "serde", serde(with = "crate::duration::serde_human_option"))]
    pub retry_after_max: Option<Duration>,
}

impl BreakerSettings {
    /// Validates the settings into a [`BreakerConfig`]; `custom` is an extra rule given in code.
    pub(crate) fn validate(
        &self,
        custom: Option<CustomRule>,
    ) -> Result<BreakerConfig, ConfigError> {
        let s = self;
        // Window.
        if s.window_calls.is_some() && s.window_span.is_some() {
            return Err(ConfigError::conflict(
                "window_calls",
                "window_span",
                "a breaker has one window: count-based or time-based, not both",
            ));
        }
        if s.window_buckets.is_some() && s.window_span.is_none() {
            return Err(ConfigError::invalid(
                "window_buckets",
                "applies to a time-based window only: set window_span too",
            ));
        }
        let mut window = match (s.window_calls, s.window_span) {
            (Some(calls), _) => {
                check::nonzero("window_calls", u64::from(calls))?;
                if calls > MAX_WINDOW_CALLS {
                    return Err(ConfigError::invalid(
                        "window_calls",
                        format!("must be at most {MAX_WINDOW_CALLS}, got {calls}"),
                    ));
                }
                Some(WindowKind::Count { calls })
            }
            (None, Some(span)) => {
                check::nonzero_duration("window_span", span)?;
                let buckets = s.window_buckets.unwrap_or(10);
                check::nonzero("window_buckets", u64::from(buckets))?;
                if buckets > MAX_WINDOW_BUCKETS {
                    return Err(ConfigError::invalid(
                        "window_buckets",
                        format!("must be at most {MAX_WINDOW_BUCKETS}, got {buckets}"),
                    ));
                }
                if crate::clock::nanos(span) / u64::from(buckets) < 1_000_000 {
                    return Err(ConfigError::invalid(
                        "window_buckets",
                        "each bucket must span at least 1 ms: use fewer buckets or a longer span",
                    ));
                }
                Some(WindowKind::Time { span, buckets })
            }
            (None, None) => None,
        };

        // Trip rules.
        if let Some(n) = s.consecutive_failures {
            check::nonzero("consecutive_failures", u64::from(n))?;
        }
        if let Some(rate) = s.failure_rate {
            check::unit_open_low("failure_rate", rate)?;
        }
        let slow = match (s.slow_call_threshold, s.slow_call_rate) {
            (Some(threshold), rate) => {
                check::nonzero_duration("slow_call_threshold", threshold)?;
                let rate = check::unit_open_low("slow_call_rate", rate.unwrap_or(1.0))?;
                Some(SlowCallRule {
                    threshold_nanos: crate::clock::nanos(threshold),
                    rate,
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::invalid(
                    "slow_call_rate",
                    "needs slow_call_threshold: how long is a slow call?",
                ));
            }
            (None, None) => None,
        };
        let windowed = s.failures_in_window.is_some()
            || s.failure_rate.is_some()
            || slow.is_some()
            || custom.is_some();
        if windowed && window.is_none() {
            window = Some(WindowKind::Count {
                calls: DEFAULT_WINDOW_CALLS,
            });
        }
        if let Some(k) = s.failures_in_window {
            check::nonzero("failures_in_window", u64::from(k))?;
            match window {
                Some(WindowKind::Count { calls }) if k > calls => {
                    return Err(ConfigError::invalid(
                        "failures_in_window",
                        format!(
                            "{k} failures can never happen in a window of {calls} calls \
                             (numerator greater than denominator)"
                        ),
                    ));
                }
                _ => {}
            }
        }
        let min_calls = match (s.min_calls, window) {
            (Some(m), Some(WindowKind::Count { calls })) => {
                check::nonzero("min_calls", u64::from(m))?;
                if m > calls {
                    return Err(ConfigError::invalid(
                        "min_calls",
                        format!("a window of {calls} calls never holds {m} calls"),
                    ));
                }
                m
            }
            (Some(m), _) => check::nonzero("min_calls", u64::from(m))? as u32,
            (None, Some(WindowKind::Count { calls })) => calls,
            (None, _) => DEFAULT_TIME_WINDOW_MIN_CALLS,
        };
        let mut consecutive_failures = s.consecutive_failures;
        if consecutive_failures.is_none() && !windowed {
            consecutive_failures = Some(DEFAULT_CONSECUTIVE_FAILURES);
        }

        // Half-open.
        let successes = s.half_open_successes.unwrap_or(1);
        let trials = s.half_open_trials.unwrap_or(successes);
        check::nonzero("half_open_successes", u64::from(successes))?;
        check::nonzero("half_open_trials", u64::from(trials))?;
        if trials > MAX_TRIALS {
            return Err(ConfigError::invalid(
                "half_open_trials",
                format!("must be at most {MAX_TRIALS}, got {trials}"),
            ));
        }
        if successes > trials {
            return Err(ConfigError::invalid(
                "half_open_successes",
                format!(
                    "{successes} successes can never happen in {trials} trials \
                     (numerator greater than denominator)"
                ),
            ));
        }
        let concurrency = s.half_open_concurrency.unwrap_or(trials);
        check::nonzero("half_open_concurrency", u64::from(concurrency))?;
        // Up to 10,000 trials may be in flight at once; beyond that a half-open breaker would
        // let a full load through to a dependency that just failed.
        if concurrency > MAX_HALF_OPEN_CONCURRENCY {
            return Err(ConfigError::invalid(
                "half_open_concurrency",
                format!("must be at most {MAX_HALF_OPEN_CONCURRENCY}, got {concurrency}"),
            ));
        }
        let half_open_max_nanos = match s.half_open_max_duration {
            Some(d) => Some(crate::clock::nanos(check::nonzero_duration(
                "half_open_max_duration",
                d,
            )?)),
            None => None,
        };

        // Cooldown.
        let initial = check::nonzero_duration("cooldown", s.cooldown.unwrap_or(DEFAULT_COOLDOWN))?;
        let jitter = check::unit("cooldown_jitter", s.cooldown_jitter.unwrap_or(0.0))?;
        let cooldown = if s.cooldown_max.is_some() || s.cooldown_factor.is_some() {
            let factor = check::finite("cooldown_factor", s.cooldown_factor.unwrap_or(2.0))?;
            if factor < 1.0 {
                return Err(ConfigError::invalid(
                    "cooldown_factor",
                    format!("must be at least 1 (a cooldown that shrinks), got {factor}"),
                ));
            }
            let max = s.cooldown_max.unwrap_or(initial.saturating_mul(32));
            if max < initial {
                return Err(ConfigError::invalid(
                    "cooldown_max",
                    format!("must be at least cooldown ({initial:?}), got {max:?}"),
                ));
            }
            Cooldown::Growing {
                initial,
                max,
                factor,
                jitter,
            }
        } else {
            Cooldown::Fixed {
                duration: initial,
                jitter,
            }
        };

        let retry_after_max = match s.retry_after_max {
            Some(max) => Some(check::nonzero_duration("retry_after_max", max)?),
            None => None,
        };

        let outcome_log = s.outcome_log.unwrap_or(0);
        if outcome_log > MAX_OUTCOME_LOG {
            return Err(ConfigError::invalid(
                "outcome_log",
                format!("must be at most {MAX_OUTCOME_LOG}, got {outcome_log}"),
            ));
        }

        Ok(BreakerConfig {
            window,
            rules: TripRules {
                consecutive_failures,
                failures_in_window: s.failures_in_window,
                failure_rate: s.failure_rate,
                slow,
                min_calls,
                custom,
            },
            close: CloseRule { successes, trials },
            half_open_concurrency: concurrency,
            half_open_max_nanos,
            cooldown,
            outcome_log,
            seed: s.seed,
            shadow: s.shadow.unwrap_or(false),
            retry_after_max,
        })
    }
}
