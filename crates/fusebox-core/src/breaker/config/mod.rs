//! Breaker configuration: the raw settings (serde-friendly), their validation, and the
//! validated [`BreakerConfig`] that the state machine and the concurrent breaker both read.//!
//! This file holds the validated config and the rules it is made of; the raw settings and
//! their validation are in `settings`, the cooldown and its arithmetic in `cooldown`.

mod cooldown;
mod settings;

pub use cooldown::Cooldown;
pub use settings::BreakerSettings;

use super::stats::WindowStats;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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
