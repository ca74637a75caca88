//! Backoffs in configuration files: a tagged shape plus limits, durations in the human form
//! of [`crate::duration`] (the `{ secs, nanos }` tables of earlier files are read too).
//! Deserializing goes through the builders, so a configuration file is validated exactly
//! like code.

use super::{Backoff, BackoffBuilder, Decorrelated, Exponential, Fixed, Jitter, Kind, Limits};
use crate::ConfigError;
use std::time::Duration;

fn default_factor() -> f64 {
    2.0
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum BackoffRepr {
    Fixed {
        #[serde(with = "crate::duration::serde_human")]
        delay: Duration,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_delays: Option<u32>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::duration::serde_human_option"
        )]
        max_elapsed: Option<Duration>,
    },
    Exponential {
        #[serde(with = "crate::duration::serde_human")]
        min: Duration,
        #[serde(with = "crate::duration::serde_human")]
        max: Duration,
        #[serde(default = "default_factor")]
        factor: f64,
        #[serde(default)]
        jitter: Jitter,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_delays: Option<u32>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::duration::serde_human_option"
        )]
        max_elapsed: Option<Duration>,
    },
    Decorrelated {
        #[serde(with = "crate::duration::serde_human")]
        base: Duration,
        #[serde(with = "crate::duration::serde_human")]
        cap: Duration,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_delays: Option<u32>,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::duration::serde_human_option"
        )]
        max_elapsed: Option<Duration>,
    },
}

fn limit<S>(
    mut builder: BackoffBuilder<S>,
    max_delays: Option<u32>,
    max_elapsed: Option<Duration>,
) -> BackoffBuilder<S> {
    if let Some(count) = max_delays {
        builder = builder.max_delays(count);
    }
    if let Some(total) = max_elapsed {
        builder = builder.max_elapsed(total);
    }
    builder
}

impl TryFrom<BackoffRepr> for Backoff {
    type Error = ConfigError;

    fn try_from(repr: BackoffRepr) -> Result<Self, ConfigError> {
        match repr {
            BackoffRepr::Fixed {
                delay,
                max_delays,
                max_elapsed,
            } => limit(Backoff::fixed(delay), max_delays, max_elapsed).build(),
            BackoffRepr::Exponential {
                min,
                max,
                factor,
                jitter,
                max_delays,
                max_elapsed,
            } => limit(
                Backoff::exponential(min, max).factor(factor).jitter(jitter),
                max_delays,
                max_elapsed,
            )
            .build(),
            BackoffRepr::Decorrelated {
                base,
                cap,
                max_delays,
                max_elapsed,
            } => limit(Backoff::decorrelated(base, cap), max_delays, max_elapsed).build(),
        }
    }
}

impl From<Backoff> for BackoffRepr {
    fn from(backoff: Backoff) -> Self {
        let Limits {
            max_delays,
            max_elapsed,
        } = backoff.limits;
        match backoff.kind {
            Kind::Fixed(Fixed { delay }) => BackoffRepr::Fixed {
                delay,
                max_delays,
                max_elapsed,
            },
            Kind::Exponential(Exponential {
                min,
                max,
                factor,
                jitter,
            }) => BackoffRepr::Exponential {
                min,
                max,
                factor,
                jitter,
                max_delays,
                max_elapsed,
            },
            Kind::Decorrelated(Decorrelated { base, cap }) => BackoffRepr::Decorrelated {
                base,
                cap,
                max_delays,
                max_elapsed,
            },
        }
    }
}
