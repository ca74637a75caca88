//! Settings: retries, backoffs, budgets, bulkheads, whole pipelines and keyed breakers
//! ([`RegistrySettings`]: defaults and overrides per key) described as data, for TOML or any
//! serde format (feature `serde`) and for environment overrides.
//!
//! A settings struct holds raw values, one `Option` per knob; nothing is checked until it is
//! built, and building goes through the same builders as code, so a file is validated exactly
//! like code. Errors name the full path of the field (`retry.backoff.max`), environment
//! errors the variable too. Durations are written in one human form everywhere, `"250ms"`,
//! `"5s"`, `"1m 30s"` (see [`fusebox_core::duration`]).
//!
//! # What settings do to builders: they merge
//!
//! Settings are laid *over* what code chose: a field set in the settings wins, a field left
//! unset keeps the builder's value ([`RetrySettings::apply`], [`BulkheadSettings::apply`],
//! [`BreakerBuilder::merge_settings`](fusebox_core::breaker::BreakerBuilder::merge_settings)).
//! So code gives the defaults and the code-only parts (classification, listeners, a
//! fallback), and a file or the environment tunes the numbers. The one exception is older:
//! [`BreakerBuilder::settings`](fusebox_core::breaker::BreakerBuilder::settings) replaces the
//! builder's settings whole.
//!
//! # A pipeline from settings
//!
//! [`PipelineSettings`] describes the levels of a pipeline, always in the order of the
//! [usual stack](crate::pipeline#order): `timeout` (the whole call), `retry`, `breaker`,
//! `attempt_timeout` (each attempt), `bulkhead`. A level is in the pipeline when its key is
//! present. A fallback is code, added outside with [`PipelineFromSettings::outer`].
//!
//! ```
//! # #[cfg(feature = "serde")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use fusebox_policy::settings::PipelineSettings;
//!
//! let settings: PipelineSettings = toml::from_str(r#"
//!     timeout = "5s"
//!     attempt_timeout = "800ms"
//!
//!     [retry]
//!     max_retries = 2
//!     backoff = { kind = "exponential", min = "100ms", max = "2s", jitter = "full" }
//!     budget = { ratio = 0.2, window = "10s" }
//!
//!     [breaker]
//!     failures_in_window = 5
//!     window_calls = 20
//!     cooldown = "10s"
//!
//!     [bulkhead]
//!     max_concurrent = 32
//! "#)?;
//! let pipeline = settings.build::<String, std::io::Error>("payments")?;
//! assert_eq!(pipeline.depth(), 5);
//!
//! // Errors name the path of the field.
//! let bad: PipelineSettings = toml::from_str(r#"
//!     [retry]
//!     backoff = { kind = "exponential", min = "2s", max = "0s" }
//! "#)?;
//! let err = bad.build::<String, std::io::Error>("payments").unwrap_err();
//! assert_eq!(err.path(), "retry.backoff.max");
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "serde"))]
//! # fn main() {}
//! ```
//!
//! # Environment overrides
//!
//! [`PipelineSettings::apply_env`] reads `FUSEBOX_<NAME>__<PATH>` variables, the path's keys
//! joined by `__`: for a pipeline named `payments`, `FUSEBOX_PAYMENTS__RETRY__MAX_RETRIES=5`
//! sets `retry.max_retries`, `FUSEBOX_PAYMENTS__BREAKER__COOLDOWN=30s` sets
//! `breaker.cooldown`. The name is upper-cased, other characters than letters and digits
//! become `_` (`payments-api` reads `FUSEBOX_PAYMENTS_API__...`). A variable under the
//! prefix that names no setting, or whose value does not parse, is an error naming the
//! variable: a typo never passes silently.

mod adaptive;
mod build;
mod env;
mod pipeline;
mod registry;
#[cfg(feature = "reload")]
mod reload;

use std::time::Duration;

use fusebox_core::ConfigError;
use fusebox_core::backoff::Jitter;
use fusebox_core::breaker::BreakerSettings;

pub use adaptive::{
    ConcurrencyLimitSettings, LimitAlgorithmKind, RateLimitSettings, ThrottleSettings,
};
pub use pipeline::PipelineFromSettings;
pub use registry::RegistrySettings;
#[cfg(feature = "reload")]
pub use reload::{ReloadError, ReloadReport, Reloader, Watching};

/// The settings of a whole pipeline; see the [module docs](self).
///
/// ```
/// use fusebox_policy::settings::{PipelineSettings, RetrySettings};
/// use std::time::Duration;
///
/// let settings = PipelineSettings {
///     timeout: Some(Duration::from_secs(2)),
///     retry: Some(RetrySettings { max_retries: Some(1), ..Default::default() }),
///     ..Default::default()
/// };
/// let pipeline = settings.build::<u32, std::io::Error>("search")?;
/// assert_eq!(pipeline.depth(), 2);
/// # Ok::<(), fusebox_policy::settings::SettingsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct PipelineSettings {
    /// Bound on the whole call, retries and their delays included (the outermost level).
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub timeout: Option<Duration>,
    /// The retry, outside the breaker: every attempt counts in the breaker's window.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub retry: Option<RetrySettings>,
    /// The circuit breaker, named after the pipeline.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub breaker: Option<BreakerSettings>,
    /// Bound on each attempt, inside the retry and the breaker.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub attempt_timeout: Option<Duration>,
    /// The bulkhead, innermost: a slot is held only while the dependency is called.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub bulkhead: Option<BulkheadSettings>,
    /// A rate limiter on calls (outside the retry: a retried call takes one permit); it
    /// refuses at once (`max_wait` is refused here).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub rate_limit: Option<RateLimitSettings>,
    /// Adaptive throttling of attempts (inside the retry and the breaker).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub throttle: Option<ThrottleSettings>,
    /// An adaptive concurrency limit on attempts (inside the attempt timeout, outside the
    /// bulkhead).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub concurrency_limit: Option<ConcurrencyLimitSettings>,
}

/// The settings of a [`Retry`](crate::policy::Retry); unset fields keep the builder's values
/// (3 retries, exponential backoff from 100 ms to 10 s with full jitter, no budget, server
/// hints honoured up to 60 s when asked for).
///
/// ```
/// use fusebox_policy::settings::RetrySettings;
/// let settings = RetrySettings { max_retries: Some(5), ..Default::default() };
/// let retry = settings.build::<(), std::io::Error>("search")?;
/// assert_eq!((retry.name().as_str(), retry.max_retries()), ("search", 5));
/// # Ok::<(), fusebox_policy::settings::SettingsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RetrySettings {
    /// Retries after the first attempt; `0` disables retrying.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub max_retries: Option<u32>,
    /// Stop retrying when the next delay would take the call past this.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub max_elapsed: Option<Duration>,
    /// Longest server-given delay (`Retry-After`) honoured.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub max_retry_after: Option<Duration>,
    /// The delays between attempts.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub backoff: Option<BackoffSettings>,
    /// A retry budget of its own for this retry.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub budget: Option<BudgetSettings>,
    /// Seed of the jitter, for reproducible delays.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub seed: Option<u64>,
}

/// Which delays a backoff draws; see [`Backoff`](fusebox_core::backoff::Backoff).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum BackoffKind {
    /// `delay` before every retry.
    Fixed,
    /// From `min`, times `factor` per retry, at most `max`, with `jitter`.
    Exponential,
    /// Uniform in `[base, 3 * previous]`, at most `cap`.
    Decorrelated,
}

/// The settings of a backoff: `kind` and the fields of that kind, plus optional limits.
///
/// | kind | fields |
/// |---|---|
/// | `fixed` | `delay` |
/// | `exponential` | `min`, `max`, `factor` (default 2), `jitter` (default none) |
/// | `decorrelated` | `base`, `cap` |
///
/// Any kind takes `max_delays` and `max_elapsed`. A field of another kind is refused rather
/// than ignored.
///
/// ```
/// use fusebox_policy::settings::{BackoffKind, BackoffSettings};
/// use std::time::Duration;
/// let settings = BackoffSettings {
///     kind: Some(BackoffKind::Fixed),
///     delay: Some(Duration::from_millis(50)),
///     ..Default::default()
/// };
/// let backoff = settings.build()?;
/// assert_eq!(backoff.iter().next(), Some(Duration::from_millis(50)));
///
/// let stray = BackoffSettings { cap: Some(Duration::from_secs(1)), ..settings };
/// assert_eq!(stray.build().unwrap_err().path(), "cap");
/// # Ok::<(), fusebox_policy::settings::SettingsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct BackoffSettings {
    /// `fixed`, `exponential` or `decorrelated`; required.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub kind: Option<BackoffKind>,
    /// A fixed backoff's delay.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub delay: Option<Duration>,
    /// An exponential backoff's first delay.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub min: Option<Duration>,
    /// An exponential backoff's largest delay.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub max: Option<Duration>,
    /// An exponential backoff's growth per retry.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub factor: Option<f64>,
    /// An exponential backoff's jitter: `"none"`, `"full"`, `"equal"` or
    /// `{ proportional = 0.1 }`.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub jitter: Option<Jitter>,
    /// A decorrelated backoff's smallest delay.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub base: Option<Duration>,
    /// A decorrelated backoff's largest delay.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub cap: Option<Duration>,
    /// End after this many delays.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub max_delays: Option<u32>,
    /// End before the sum of the delays would pass this.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub max_elapsed: Option<Duration>,
}

/// The settings of a retry budget; unset fields take the defaults of
/// [`BudgetConfig`](fusebox_core::budget::BudgetConfig) (a ratio of 0.2, 10 retries per
/// second, a 10 s window).
///
/// ```
/// use fusebox_policy::settings::BudgetSettings;
/// let config = BudgetSettings { ratio: Some(0.1), ..Default::default() }.build()?;
/// assert_eq!((config.ratio(), config.min_retries_per_second()), (0.1, 10.0));
/// # Ok::<(), fusebox_policy::settings::SettingsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct BudgetSettings {
    /// Retries allowed per first attempt.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub ratio: Option<f64>,
    /// Retries allowed per second whatever the traffic.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub min_retries_per_second: Option<f64>,
    /// How long a first attempt's allowance lasts.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub window: Option<Duration>,
}

/// The settings of a [`Bulkhead`](crate::policy::Bulkhead); unset fields keep the
/// builder's values.
///
/// ```
/// use fusebox_policy::settings::BulkheadSettings;
/// let bulkhead = BulkheadSettings { max_concurrent: Some(8), ..Default::default() }.build("db")?;
/// assert_eq!(bulkhead.name(), "db");
/// # Ok::<(), fusebox_policy::settings::SettingsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct BulkheadSettings {
    /// Calls in flight at once.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub max_concurrent: Option<u32>,
    /// Calls waiting for a slot; beyond them, calls are refused at once.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub max_queued: Option<u32>,
    /// Longest wait for a slot.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub max_wait: Option<Duration>,
}

/// Settings that could not be applied or built, naming the path of the field
/// (`retry.backoff.max`) and, for an environment override, the variable.
///
/// ```
/// use fusebox_policy::settings::{PipelineSettings, SettingsError};
/// let mut settings = PipelineSettings::default();
/// let err = settings
///     .apply_vars("payments", [("FUSEBOX_PAYMENTS__RETRY__MAX_RETRIES", "five")])
///     .unwrap_err();
/// assert_eq!(err.path(), "retry.max_retries");
/// assert!(matches!(&err, SettingsError::Env { variable, .. }
///     if variable == "FUSEBOX_PAYMENTS__RETRY__MAX_RETRIES"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A value is out of its range, missing, or does not apply.
    #[error("invalid `{path}`: {reason}")]
    Invalid {
        /// The field's path, its keys joined by dots.
        path: String,
        /// What was expected and what was given.
        reason: String,
    },
    /// Two settings cannot be used together.
    #[error("conflicting settings `{path}` and `{other}`: {reason}")]
    Conflict {
        /// The first field's path.
        path: String,
        /// The second field's path.
        other: String,
        /// Why they conflict.
        reason: String,
    },
    /// An environment variable names no setting, or its value does not parse.
    #[error("environment variable `{variable}` (setting `{path}`): {reason}")]
    Env {
        /// The variable, as spelt in the environment.
        variable: String,
        /// The setting it addresses, its keys joined by dots.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

impl SettingsError {
    /// The path of the field at fault (the first one for a conflict).
    ///
    /// ```
    /// use fusebox_policy::settings::BulkheadSettings;
    /// let err = BulkheadSettings { max_concurrent: Some(0), ..Default::default() }
    ///     .build("db")
    ///     .unwrap_err();
    /// assert_eq!(err.path(), "max_concurrent");
    /// assert_eq!(err.to_string(), "invalid `max_concurrent`: must be at least 1, got 0");
    /// ```
    pub fn path(&self) -> &str {
        match self {
            SettingsError::Invalid { path, .. }
            | SettingsError::Conflict { path, .. }
            | SettingsError::Env { path, .. } => path,
        }
    }

    /// The same error for the settings one level up, under `key`.
    pub(crate) fn within(self, key: &str) -> Self {
        let nest = |path: String| {
            if path.is_empty() {
                key.to_owned()
            } else {
                format!("{key}.{path}")
            }
        };
        match self {
            SettingsError::Invalid { path, reason } => SettingsError::Invalid {
                path: nest(path),
                reason,
            },
            SettingsError::Conflict {
                path,
                other,
                reason,
            } => SettingsError::Conflict {
                path: nest(path),
                other: nest(other),
                reason,
            },
            env @ SettingsError::Env { .. } => env,
        }
    }

    pub(crate) fn invalid(path: &str, reason: impl Into<String>) -> Self {
        SettingsError::Invalid {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<ConfigError> for SettingsError {
    fn from(error: ConfigError) -> Self {
        match error {
            ConfigError::Invalid { field, reason } => SettingsError::Invalid {
                path: field.to_owned(),
                reason: reason.into_owned(),
            },
            ConfigError::Conflict {
                first,
                second,
                reason,
            } => SettingsError::Conflict {
                path: first.to_owned(),
                other: second.to_owned(),
                reason: reason.into_owned(),
            },
            other => SettingsError::Invalid {
                path: other.field().unwrap_or_default().to_owned(),
                reason: other.to_string(),
            },
        }
    }
}
