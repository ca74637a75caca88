//! The shapes a backoff can take: fixed, exponential, decorrelated.

use std::time::Duration;

use rand::Rng;

use super::*;
use crate::ConfigError;
use crate::error::check;

/// The shape of a [`BackoffBuilder`] started with [`Backoff::fixed`]: the same delay every time.
///
/// ```
/// use fusebox_core::backoff::{Backoff, BackoffBuilder, Fixed};
/// use std::time::Duration;
///
/// let builder: BackoffBuilder<Fixed> = Backoff::fixed(Duration::from_secs(1));
/// assert_eq!(builder.build()?.max_delay(), Duration::from_secs(1));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fixed {
    pub(super) delay: Duration,
}

/// The shape of a [`BackoffBuilder`] started with [`Backoff::exponential`]: delays that grow by
/// `factor` from `min` up to `max`, with optional [`Jitter`].
///
/// ```
/// use fusebox_core::backoff::{Backoff, BackoffBuilder, Exponential};
/// use std::time::Duration;
///
/// let builder: BackoffBuilder<Exponential> =
///     Backoff::exponential(Duration::from_secs(1), Duration::from_secs(8));
/// assert_eq!(builder.build()?.max_delay(), Duration::from_secs(8));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exponential {
    pub(super) min: Duration,
    pub(super) max: Duration,
    pub(super) factor: f64,
    pub(super) jitter: Jitter,
}

/// The shape of a [`BackoffBuilder`] started with [`Backoff::decorrelated`]: each delay is drawn
/// between `base` and three times the previous one, at most `cap`.
///
/// ```
/// use fusebox_core::backoff::{Backoff, BackoffBuilder, Decorrelated};
/// use std::time::Duration;
///
/// let builder: BackoffBuilder<Decorrelated> =
///     Backoff::decorrelated(Duration::from_millis(10), Duration::from_secs(1));
/// assert_eq!(builder.build()?.max_delay(), Duration::from_secs(1));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decorrelated {
    pub(super) base: Duration,
    pub(super) cap: Duration,
}

pub(super) mod sealed {
    use super::*;

    pub trait Sealed {
        fn validate(
            self,
            max_delays: Option<u32>,
            max_elapsed: Option<Duration>,
        ) -> Result<Backoff, ConfigError>;
    }
}

/// One of the shapes a [`BackoffBuilder`] can build: [`Fixed`], [`Exponential`] or
/// [`Decorrelated`]. Sealed: the set of shapes belongs to this crate.
///
/// ```
/// use fusebox_core::backoff::{Backoff, BackoffBuilder, Shape};
/// use std::time::Duration;
///
/// fn capped<S: Shape>(builder: BackoffBuilder<S>) -> BackoffBuilder<S> {
///     builder.max_elapsed(Duration::from_secs(30))
/// }
/// let backoff = capped(Backoff::fixed(Duration::from_secs(10))).build()?;
/// assert_eq!(backoff.iter().count(), 3);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub trait Shape: sealed::Sealed {}

impl Shape for Fixed {}
impl Shape for Exponential {}
impl Shape for Decorrelated {}

impl sealed::Sealed for Fixed {
    fn validate(
        self,
        max_delays: Option<u32>,
        max_elapsed: Option<Duration>,
    ) -> Result<Backoff, ConfigError> {
        // Any fixed delay is meaningful, zero included: it retries at once.
        Backoff::with_limits(Kind::Fixed(self), max_delays, max_elapsed)
    }
}

impl sealed::Sealed for Exponential {
    fn validate(
        self,
        max_delays: Option<u32>,
        max_elapsed: Option<Duration>,
    ) -> Result<Backoff, ConfigError> {
        // A zero minimum would stay zero whatever the factor: a hot retry loop.
        check::nonzero_duration("min", self.min)?;
        check::nonzero_duration("max", self.max)?;
        if self.min > self.max {
            return Err(ConfigError::conflict(
                "min",
                "max",
                format!("min ({:?}) must not exceed max ({:?})", self.min, self.max),
            ));
        }
        let factor = check::finite("factor", self.factor)?;
        if factor < 1.0 {
            return Err(ConfigError::invalid(
                "factor",
                format!("must be at least 1, got {factor}"),
            ));
        }
        if let Jitter::Proportional(fraction) = self.jitter {
            check::unit("jitter", fraction)?;
        }
        Backoff::with_limits(Kind::Exponential(self), max_delays, max_elapsed)
    }
}

impl sealed::Sealed for Decorrelated {
    fn validate(
        self,
        max_delays: Option<u32>,
        max_elapsed: Option<Duration>,
    ) -> Result<Backoff, ConfigError> {
        // From a zero base every draw is uniform in [0, 0]: a hot retry loop.
        check::nonzero_duration("base", self.base)?;
        check::nonzero_duration("cap", self.cap)?;
        if self.base > self.cap {
            return Err(ConfigError::conflict(
                "base",
                "cap",
                format!(
                    "base ({:?}) must not exceed cap ({:?})",
                    self.base, self.cap
                ),
            ));
        }
        Backoff::with_limits(Kind::Decorrelated(self), max_delays, max_elapsed)
    }
}

impl Exponential {
    /// The un-jittered delay in nanoseconds, already capped at `max`.
    pub(super) fn envelope(&self, attempt: u32) -> f64 {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        // Overflow goes to infinity, which `min` turns back into `max`.
        (nanos_f64(self.min) * self.factor.powi(exponent)).min(nanos_f64(self.max))
    }

    pub(super) fn jittered<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let exp = self.envelope(attempt);
        let nanos = match self.jitter {
            Jitter::None => exp,
            Jitter::Proportional(fraction) => {
                exp * (1.0 - fraction + 2.0 * fraction * rng.random::<f64>())
            }
            Jitter::Full => exp * rng.random::<f64>(),
            Jitter::Equal => exp / 2.0 + exp / 2.0 * rng.random::<f64>(),
        };
        at_most(nanos, self.max)
    }
}

impl Decorrelated {
    pub(super) fn after<R: Rng + ?Sized>(&self, previous: Duration, rng: &mut R) -> Duration {
        let low = nanos_f64(self.base);
        let high = (nanos_f64(previous) * 3.0).max(low);
        at_most(low + (high - low) * rng.random::<f64>(), self.cap)
    }
}

pub(super) fn nanos_f64(duration: Duration) -> f64 {
    duration.as_nanos() as f64
}

/// Converts nanoseconds back to a `Duration`, never above `ceiling` and without any arithmetic
/// that could panic.
pub(super) fn at_most(nanos: f64, ceiling: Duration) -> Duration {
    // No valid configuration produces NaN; should one appear, waiting longest is the safe side.
    if nanos.is_nan() || nanos >= nanos_f64(ceiling) {
        return ceiling;
    }
    if nanos <= 0.0 {
        return Duration::ZERO;
    }
    // `as` saturates, and rounding cannot carry the value past the ceiling because of `min`.
    Duration::from_nanos(nanos.round() as u64).min(ceiling)
}
