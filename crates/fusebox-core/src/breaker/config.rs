//! Breaker configuration: the raw settings (serde-friendly), their validation, and the
//! validated [`BreakerConfig`] that the state machine and the concurrent breaker both read.

use super::stats::WindowStats;
use crate::ConfigError;
use crate::error::check;
use std::fmt;
use std::sync::Arc;
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
/// and what [`BreakerBuilder`](super::BreakerBuilder) fills in; validation happens once, when
/// the breaker or config is built. Unset fields take the documented defaults.
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

/// A user-defined trip rule over the window's statistics.
#[derive(Clone)]
pub(crate) struct CustomRule(pub(crate) Arc<dyn Fn(&WindowStats) -> bool + Send + Sync>);

impl fmt::Debug for CustomRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomRule(..)")
    }
}

/// The window over which rates are measured.
///
/// ```
/// use fusebox_core::breaker::{Breaker, WindowKind};
/// let b = Breaker::builder("w").failures_in_last(3, 10).build()?;
/// assert_eq!(b.config().window(), Some(WindowKind::Count { calls: 10 }));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// The last `calls` calls.
    Count {
        /// Window size in calls.
        calls: u32,
    },
    /// Calls of the last `span`, kept in `buckets` buckets.
    Time {
        /// Length of the window.
        span: Duration,
        /// Number of buckets the span is cut into.
        buckets: u32,
    },
}

/// Slow-call rule: calls lasting `threshold` or more are slow; trip at `rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SlowCallRule {
    pub(crate) threshold_nanos: u64,
    pub(crate) rate: f64,
}

/// Every configured trip rule; any one of them trips the breaker.
#[derive(Debug, Clone)]
pub(crate) struct TripRules {
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) failures_in_window: Option<u32>,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) slow: Option<SlowCallRule>,
    pub(crate) min_calls: u32,
    pub(crate) custom: Option<CustomRule>,
}

impl TripRules {
    /// Whether a success can make a rule fire: a rate rule (its rate becomes judgeable, or
    /// successes leave a time window) or a custom rule (it reads whatever it likes).
    #[inline(always)]
    pub(crate) fn judges_successes(&self) -> bool {
        self.failure_rate.is_some() || self.slow.is_some() || self.custom.is_some()
    }
}

/// Close rule of half-open: `successes` of `trials` must succeed.
///
/// ```
/// use fusebox_core::breaker::{Breaker, CloseRule};
/// let b = Breaker::builder("c").half_open_trials(3, 5).build()?;
/// assert_eq!(b.config().close_rule(), CloseRule { successes: 3, trials: 5 });
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseRule {
    /// Successful trials needed to close.
    pub successes: u32,
    /// Trials judged.
    pub trials: u32,
}

/// How long the breaker stays open.
///
/// ```
/// use fusebox_core::breaker::{Breaker, Cooldown};
/// use std::time::Duration;
/// let b = Breaker::builder("c")
///     .cooldown_growing(Duration::from_secs(1), Duration::from_secs(60), 2.0)
///     .build()?;
/// assert!(matches!(b.config().cooldown(), Cooldown::Growing { factor, .. } if factor == 2.0));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cooldown {
    /// The same time after every trip (± jitter).
    Fixed {
        /// Time in OPEN.
        duration: Duration,
        /// Random spread, a fraction within `[0, 1]`.
        jitter: f64,
    },
    /// `initial * factor^(trips - 1)`, capped at `max`, for consecutive trips without a close
    /// in between; back to `initial` once the breaker closes.
    Growing {
        /// First cooldown.
        initial: Duration,
        /// Cap.
        max: Duration,
        /// Growth per consecutive trip.
        factor: f64,
        /// Random spread, a fraction within `[0, 1]`.
        jitter: f64,
    },
}

impl Cooldown {
    /// The cooldown after the `trips`-th trip, drawing the jitter from `rng` only when the
    /// cooldown has any (so a seeded generator advances the same way in every breaker kind).
    ///
    /// ```
    /// use fusebox_core::breaker::Cooldown;
    /// use rand::SeedableRng;
    /// use std::time::Duration;
    /// let fixed = Cooldown::Fixed { duration: Duration::from_secs(2), jitter: 0.0 };
    /// let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    /// assert_eq!(fixed.draw(3, &mut rng), Duration::from_secs(2));
    /// ```
    pub fn draw<R: rand::Rng + ?Sized>(&self, trips: u32, rng: &mut R) -> Duration {
        let jitter = match *self {
            Cooldown::Fixed { jitter, .. } | Cooldown::Growing { jitter, .. } => jitter,
        };
        let unit = if jitter > 0.0 {
            rng.random::<f64>()
        } else {
            0.5
        };
        self.after_trips(trips, unit)
    }

    /// The cooldown after the `trips`-th consecutive trip (1 for the first), given a uniform
    /// random draw `unit` within `[0, 1)` for the jitter. Pure.
    ///
    /// ```
    /// use fusebox_core::breaker::Cooldown;
    /// use std::time::Duration;
    /// let c = Cooldown::Growing {
    ///     initial: Duration::from_secs(1),
    ///     max: Duration::from_secs(5),
    ///     factor: 2.0,
    ///     jitter: 0.0,
    /// };
    /// let secs: Vec<u64> = (1..=5).map(|t| c.after_trips(t, 0.5).as_secs()).collect();
    /// assert_eq!(secs, [1, 2, 4, 5, 5]);
    /// ```
    pub fn after_trips(&self, trips: u32, unit: f64) -> Duration {
        let (base, max, jitter) = match *self {
            Cooldown::Fixed { duration, jitter } => (duration.as_secs_f64(), None, jitter),
            Cooldown::Growing {
                initial,
                max,
                factor,
                jitter,
            } => {
                let exp = i32::try_from(trips.saturating_sub(1)).unwrap_or(i32::MAX);
                let grown = initial.as_secs_f64() * factor.powi(exp);
                let capped = grown.min(max.as_secs_f64());
                (capped, Some(max.as_secs_f64()), jitter)
            }
        };
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let mut secs = base * (1.0 + jitter * (2.0 * unit - 1.0));
        if let Some(max) = max {
            secs = secs.min(max);
        }
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
    }
}

/// A validated breaker configuration: the trip rules, the window, half-open and cooldown.
///
/// Built by [`BreakerBuilder::build_config`](super::BreakerBuilder::build_config) (or as part
/// of [`Breaker`](super::Breaker)); read by the sans-IO [`Machine`](super::Machine), the pure
/// [`decide`](super::decide) function and the concurrent breaker alike.
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// let config = Breaker::builder("db").consecutive_failures(3).build_config()?;
/// assert_eq!(config.consecutive_failures(), Some(3));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BreakerConfig {
    pub(crate) window: Option<WindowKind>,
    pub(crate) rules: TripRules,
    pub(crate) close: CloseRule,
    pub(crate) half_open_concurrency: u32,
    pub(crate) half_open_max_nanos: Option<u64>,
    pub(crate) cooldown: Cooldown,
    pub(crate) outcome_log: u32,
    pub(crate) seed: Option<u64>,
    pub(crate) shadow: bool,
    /// The longest a server's `Retry-After` may hold the breaker open; `None`: hints unused.
    pub(crate) retry_after_max: Option<Duration>,
}

impl BreakerConfig {
    /// The window rates are measured over, if any rule needs one.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, WindowKind};
    /// use std::time::Duration;
    /// let span = Duration::from_secs(60);
    /// let config = Breaker::builder("w").time_window(span, 10).failure_rate(0.5).build_config()?;
    /// assert_eq!(config.window(), Some(WindowKind::Time { span, buckets: 10 }));
    /// // The default rule (consecutive failures) needs no window.
    /// assert_eq!(Breaker::builder("w").build_config()?.window(), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn window(&self) -> Option<WindowKind> {
        self.window
    }
    /// The consecutive-failure threshold, if set.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// // The default rule when no other is set: 5 failures in a row.
    /// assert_eq!(Breaker::builder("a").build_config()?.consecutive_failures(), Some(5));
    /// let windowed = Breaker::builder("b").failures_in_last(3, 10).build_config()?;
    /// assert_eq!(windowed.consecutive_failures(), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn consecutive_failures(&self) -> Option<u32> {
        self.rules.consecutive_failures
    }
    /// The failure count over the window that trips, if set.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let config = Breaker::builder("f").failures_in_last(3, 10).build_config()?;
    /// assert_eq!(config.failures_in_window(), Some(3));
    /// assert_eq!(Breaker::builder("g").build_config()?.failures_in_window(), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn failures_in_window(&self) -> Option<u32> {
        self.rules.failures_in_window
    }
    /// The failure rate that trips, if set.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let config = Breaker::builder("r").failure_rate(0.5).build_config()?;
    /// assert_eq!(config.failure_rate(), Some(0.5));
    /// assert_eq!(Breaker::builder("s").build_config()?.failure_rate(), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn failure_rate(&self) -> Option<f64> {
        self.rules.failure_rate
    }
    /// The slow-call threshold and rate, if set.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use std::time::Duration;
    /// let config = Breaker::builder("s")
    ///     .slow_calls(Duration::from_secs(2), 0.8)
    ///     .build_config()?;
    /// assert_eq!(config.slow_calls(), Some((Duration::from_secs(2), 0.8)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn slow_calls(&self) -> Option<(Duration, f64)> {
        self.rules
            .slow
            .map(|s| (Duration::from_nanos(s.threshold_nanos), s.rate))
    }
    /// Calls needed in the window before a rate is judged.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let set = Breaker::builder("m").count_window(100).failure_rate(0.5).min_calls(20);
    /// assert_eq!(set.build_config()?.min_calls(), 20);
    /// // Unset, a count-based window must be full before a rate is judged.
    /// let unset = Breaker::builder("m").count_window(50).failure_rate(0.5);
    /// assert_eq!(unset.build_config()?.min_calls(), 50);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn min_calls(&self) -> u32 {
        self.rules.min_calls
    }
    /// The half-open close rule.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, CloseRule};
    /// // By default one successful trial closes the breaker.
    /// let config = Breaker::builder("c").build_config()?;
    /// assert_eq!(config.close_rule(), CloseRule { successes: 1, trials: 1 });
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn close_rule(&self) -> CloseRule {
        self.close
    }
    /// Trial calls allowed in flight at once.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// // Unset, every trial may be in flight at once.
    /// let all = Breaker::builder("h").half_open_trials(3, 5).build_config()?;
    /// assert_eq!(all.half_open_concurrency(), 5);
    /// let one = Breaker::builder("h").half_open_trials(3, 5).half_open_concurrency(1);
    /// assert_eq!(one.build_config()?.half_open_concurrency(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn half_open_concurrency(&self) -> u32 {
        self.half_open_concurrency
    }
    /// Trial calls a half-open episode may start in all: the close rule's trials, or the
    /// concurrency when it is larger (then the first results decide, and the trials still
    /// in flight when they have are not counted).
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let race = Breaker::builder("h").half_open_trials(1, 1).half_open_concurrency(3);
    /// assert_eq!(race.build_config()?.trial_starts(), 3);
    /// let paced = Breaker::builder("h").half_open_trials(3, 5).half_open_concurrency(1);
    /// assert_eq!(paced.build_config()?.trial_starts(), 5);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn trial_starts(&self) -> u32 {
        self.close.trials.max(self.half_open_concurrency)
    }
    /// Longest time in half-open, if bounded.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use std::time::Duration;
    /// assert_eq!(Breaker::builder("h").build_config()?.half_open_max_duration(), None);
    /// let bounded = Breaker::builder("h").half_open_max_duration(Duration::from_secs(5));
    /// assert_eq!(bounded.build_config()?.half_open_max_duration(), Some(Duration::from_secs(5)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn half_open_max_duration(&self) -> Option<Duration> {
        self.half_open_max_nanos.map(Duration::from_nanos)
    }
    /// The seed of the cooldown jitter, when one was set for reproducible runs.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// assert_eq!(Breaker::builder("s").seed(7).build_config()?.seed(), Some(7));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// The cooldown policy.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Cooldown};
    /// use std::time::Duration;
    /// // The default: 30 s, without jitter.
    /// let config = Breaker::builder("c").build_config()?;
    /// let fixed = Cooldown::Fixed { duration: Duration::from_secs(30), jitter: 0.0 };
    /// assert_eq!(config.cooldown(), fixed);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn cooldown(&self) -> Cooldown {
        self.cooldown
    }
    /// Whether the breaker runs in shadow mode: it decides and reports as usual, but admits
    /// the calls it would have rejected (see [`BreakerBuilder::shadow`](super::BreakerBuilder::shadow)).
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// assert!(!Breaker::builder("s").build_config()?.shadow());
    /// assert!(Breaker::builder("s").shadow(true).build_config()?.shadow());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn shadow(&self) -> bool {
        self.shadow
    }

    /// The longest a failure's server-given `Retry-After` may hold the breaker open instead
    /// of its cooldown; `None` when hints are not used (see
    /// [`BreakerBuilder::open_for_retry_after`](super::BreakerBuilder::open_for_retry_after)).
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use std::time::Duration;
    /// assert_eq!(Breaker::builder("s").build_config()?.retry_after_max(), None);
    /// let config = Breaker::builder("s").open_for_retry_after(Duration::from_secs(120)).build_config()?;
    /// assert_eq!(config.retry_after_max(), Some(Duration::from_secs(120)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn retry_after_max(&self) -> Option<Duration> {
        self.retry_after_max
    }
    /// Outcomes kept for snapshots.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// assert_eq!(Breaker::builder("o").build_config()?.outcome_log(), 0);
    /// assert_eq!(Breaker::builder("o").outcome_log(16).build_config()?.outcome_log(), 16);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn outcome_log(&self) -> u32 {
        self.outcome_log
    }

    /// Whether a call's duration must be measured (slow-call rule).
    pub(crate) fn measures_duration(&self) -> bool {
        self.rules.slow.is_some()
    }
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
