//! Backoff sequences: how long to wait before each retry.
//!
//! A [`Backoff`] is a validated description, cheap to clone and share. Its delays come from a
//! [`Delays`] iterator that takes any randomness from a seeded generator, so the same seed always
//! gives the same sequence.
//!
//! | built with | delay before retry `n` (from 1) |
//! |---|---|
//! | [`Backoff::fixed`] | `delay` |
//! | [`Backoff::exponential`] | `min * factor^(n-1)`, at most `max`, then [`Jitter`] |
//! | [`Backoff::decorrelated`] | uniform in `[base, 3 * previous delay]`, at most `cap` |
//!
//! Every kind can also end after [`max_delays`](BackoffBuilder::max_delays) delays, or before
//! the sum of its delays would exceed [`max_elapsed`](BackoffBuilder::max_elapsed).
//!
//! ```
//! use fusebox_core::backoff::{Backoff, Jitter};
//! use std::time::Duration;
//!
//! let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(10))
//!     .factor(2.0)
//!     .jitter(Jitter::Proportional(0.1))
//!     .max_delays(5)
//!     .build()?;
//!
//! let delays: Vec<Duration> = backoff.seeded(42).collect();
//! assert_eq!(delays.len(), 5);
//! assert_eq!(delays, backoff.seeded(42).collect::<Vec<_>>());
//! assert!(delays.iter().all(|d| *d <= Duration::from_secs(10)));
//! # Ok::<(), fusebox_core::ConfigError>(())
//! ```

use std::iter::FusedIterator;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::Rng;

use crate::ConfigError;
use crate::error::check;

/// Randomness mixed into exponential delays, so that clients which failed together do not all
/// come back together.
///
/// Below, `exp` is the delay before jitter: `min * factor^(n-1)`, at most `max`. Whatever the
/// jitter, a delay never exceeds `max`.
///
/// ```
/// use fusebox_core::backoff::{Backoff, Jitter};
/// use std::time::Duration;
///
/// let backoff = Backoff::exponential(Duration::from_secs(2), Duration::from_secs(2))
///     .jitter(Jitter::Equal)
///     .build()?;
/// let delay = backoff.seeded(7).next().unwrap();
/// assert!(delay >= Duration::from_secs(1) && delay <= Duration::from_secs(2));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Jitter {
    /// Exactly `exp`.
    #[default]
    None,
    /// `exp` times a random factor in `[1 - fraction, 1 + fraction]`; the fraction must be
    /// within `[0, 1]`.
    Proportional(f64),
    /// Uniform in `[0, exp]`: the widest spread and the lowest average load.
    Full,
    /// `exp / 2` plus uniform in `[0, exp / 2]`: spread out, yet never shorter than half.
    Equal,
}

/// A validated backoff: which delays to wait between retries and when to give up.
///
/// Build one with [`Backoff::fixed`], [`Backoff::exponential`] or [`Backoff::decorrelated`].
/// Cloning copies a few words; producing its delays allocates nothing.
///
/// ```
/// use fusebox_core::backoff::Backoff;
/// use std::time::Duration;
///
/// let backoff = Backoff::fixed(Duration::from_millis(100)).max_delays(3).build()?;
/// assert_eq!(backoff.iter().count(), 3);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "repr::BackoffRepr", into = "repr::BackoffRepr")
)]
pub struct Backoff {
    kind: Kind,
    limits: Limits,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Fixed(Fixed),
    Exponential(Exponential),
    Decorrelated(Decorrelated),
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Limits {
    max_delays: Option<u32>,
    max_elapsed: Option<Duration>,
}

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
    delay: Duration,
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
    min: Duration,
    max: Duration,
    factor: f64,
    jitter: Jitter,
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
    base: Duration,
    cap: Duration,
}

mod sealed {
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

/// Builds a [`Backoff`]; [`build`](BackoffBuilder::build) validates every setting.
///
/// `S` is the chosen [`Shape`]: settings that only make sense for one shape, such as
/// [`factor`](BackoffBuilder::factor), exist only on that shape's builder.
///
/// ```
/// use fusebox_core::backoff::Backoff;
/// use std::time::Duration;
///
/// let err = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(10))
///     .factor(0.5)
///     .build()
///     .unwrap_err();
/// assert_eq!(err.field(), Some("factor"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct BackoffBuilder<S> {
    shape: S,
    limits: Limits,
}

impl<S> BackoffBuilder<S> {
    /// Ends the sequence after `count` delays, that is after `count` retries. Must be at least 1.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::fixed(Duration::ZERO).max_delays(4).build()?;
    /// assert_eq!(backoff.iter().count(), 4);
    /// assert!(Backoff::fixed(Duration::ZERO).max_delays(0).build().is_err());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_delays(mut self, count: u32) -> Self {
        self.limits.max_delays = Some(count);
        self
    }

    /// Ends the sequence before the sum of its delays would exceed `total`. Must not be zero.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::fixed(Duration::from_secs(2))
    ///     .max_elapsed(Duration::from_secs(7))
    ///     .build()?;
    /// // 2 + 2 + 2 = 6 fits in 7 s; one more would make 8.
    /// assert_eq!(backoff.iter().count(), 3);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_elapsed(mut self, total: Duration) -> Self {
        self.limits.max_elapsed = Some(total);
        self
    }
}

impl<S: Shape> BackoffBuilder<S> {
    /// Validates the settings. The error names the first offending field.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let err = Backoff::exponential(Duration::from_secs(5), Duration::from_secs(1))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), Some("min"));
    /// assert!(err.to_string().contains("max"));
    /// ```
    pub fn build(self) -> Result<Backoff, ConfigError> {
        sealed::Sealed::validate(self.shape, self.limits.max_delays, self.limits.max_elapsed)
    }
}

impl BackoffBuilder<Exponential> {
    /// How much each delay grows over the previous one: finite and at least 1 (default 2).
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60))
    ///     .factor(3.0)
    ///     .build()?;
    /// assert_eq!(backoff.base_delay(3), Some(Duration::from_secs(9)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn factor(mut self, factor: f64) -> Self {
        self.shape.factor = factor;
        self
    }

    /// The randomness mixed into each delay (default [`Jitter::None`]).
    ///
    /// ```
    /// use fusebox_core::backoff::{Backoff, Jitter};
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(1))
    ///     .jitter(Jitter::Full)
    ///     .build()?;
    /// assert!(backoff.seeded(1).take(100).all(|d| d <= Duration::from_secs(1)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.shape.jitter = jitter;
        self
    }
}

impl Backoff {
    /// Waits `delay` before every retry. Zero is allowed: retry at once.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::fixed(Duration::from_millis(50)).build()?;
    /// assert!(backoff.iter().take(10).all(|d| d == Duration::from_millis(50)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn fixed(delay: Duration) -> BackoffBuilder<Fixed> {
        BackoffBuilder {
            shape: Fixed { delay },
            limits: Limits::default(),
        }
    }

    /// Waits `min`, then `min * factor`, `min * factor²`… never more than `max`. Both must be
    /// longer than zero and `min <= max`. The factor defaults to 2 and jitter to none.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(5)).build()?;
    /// let secs: Vec<u64> = backoff.iter().take(5).map(|d| d.as_secs()).collect();
    /// assert_eq!(secs, [1, 2, 4, 5, 5]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn exponential(min: Duration, max: Duration) -> BackoffBuilder<Exponential> {
        BackoffBuilder {
            shape: Exponential {
                min,
                max,
                factor: 2.0,
                jitter: Jitter::None,
            },
            limits: Limits::default(),
        }
    }

    /// Decorrelated jitter: the first delay is drawn from `[base, 3 * base]`, each next one from
    /// `[base, 3 * previous]`, and none exceeds `cap`. Delays wander instead of marching in
    /// step, which spreads out clients that failed together. Both must be longer than zero and
    /// `base <= cap`.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let (base, cap) = (Duration::from_millis(100), Duration::from_secs(2));
    /// let backoff = Backoff::decorrelated(base, cap).build()?;
    /// assert!(backoff.seeded(3).take(1000).all(|d| d >= base && d <= cap));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn decorrelated(base: Duration, cap: Duration) -> BackoffBuilder<Decorrelated> {
        BackoffBuilder {
            shape: Decorrelated { base, cap },
            limits: Limits::default(),
        }
    }

    fn with_limits(
        kind: Kind,
        max_delays: Option<u32>,
        max_elapsed: Option<Duration>,
    ) -> Result<Backoff, ConfigError> {
        if let Some(count) = max_delays {
            check::nonzero("max_delays", u64::from(count))?;
        }
        if let Some(total) = max_elapsed {
            check::nonzero_duration("max_elapsed", total)?;
        }
        Ok(Backoff {
            kind,
            limits: Limits {
                max_delays,
                max_elapsed,
            },
        })
    }

    /// The delays, with jitter seeded from the operating system.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::fixed(Duration::from_secs(1)).max_delays(2).build()?;
    /// assert_eq!(backoff.iter().collect::<Vec<_>>(), [Duration::from_secs(1); 2]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn iter(&self) -> Delays<SmallRng> {
        self.with_rng(crate::rng::small_rng(None))
    }

    /// The delays, with jitter drawn from a generator seeded with `seed`: the same seed gives
    /// the same delays (for a given version of this crate and platform).
    ///
    /// ```
    /// use fusebox_core::backoff::{Backoff, Jitter};
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(10), Duration::from_secs(1))
    ///     .jitter(Jitter::Full)
    ///     .build()?;
    /// let first: Vec<_> = backoff.seeded(9).take(20).collect();
    /// assert_eq!(first, backoff.seeded(9).take(20).collect::<Vec<_>>());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn seeded(&self, seed: u64) -> Delays<SmallRng> {
        self.with_rng(crate::rng::small_rng(Some(seed)))
    }

    /// The delays, with jitter drawn from `rng`. Pass `&mut rng` to keep using a generator
    /// afterwards.
    ///
    /// ```
    /// use fusebox_core::backoff::{Backoff, Jitter};
    /// use rand::{SeedableRng, rngs::StdRng};
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(4))
    ///     .jitter(Jitter::Equal)
    ///     .build()?;
    /// let mut rng = StdRng::seed_from_u64(5);
    /// let delay = backoff.with_rng(&mut rng).next().unwrap();
    /// assert!(delay >= Duration::from_millis(500) && delay <= Duration::from_secs(1));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn with_rng<R: Rng>(&self, rng: R) -> Delays<R> {
        self.clone().into_delays(rng)
    }

    fn into_delays<R>(self, rng: R) -> Delays<R> {
        Delays {
            rng,
            cursor: self.cursor(),
            backoff: self,
        }
    }

    /// Where a sequence of this backoff's delays starts: the state [`Delays`] keeps beside
    /// its backoff, for a caller that keeps the backoff elsewhere (a retry policy, which
    /// would otherwise copy it into every retried call).
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use rand::SeedableRng;
    /// use std::time::Duration;
    /// let backoff = Backoff::fixed(Duration::from_millis(5)).max_delays(2).build()?;
    /// let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
    /// let mut cursor = backoff.cursor();
    /// assert_eq!(backoff.step(&mut cursor, &mut rng), Some(Duration::from_millis(5)));
    /// assert_eq!(backoff.step(&mut cursor, &mut rng), Some(Duration::from_millis(5)));
    /// assert_eq!(backoff.step(&mut cursor, &mut rng), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn cursor(&self) -> Cursor {
        Cursor {
            delays_given: 0,
            elapsed: Duration::ZERO,
            previous: match self.kind {
                Kind::Decorrelated(shape) => shape.base,
                _ => Duration::ZERO,
            },
            finished: false,
        }
    }

    /// The next delay of the sequence at `cursor`, which it advances: the step of
    /// [`Delays`]' iterator. See [`cursor`](Self::cursor).
    pub fn step<R: Rng>(&self, cursor: &mut Cursor, rng: &mut R) -> Option<Duration> {
        if cursor.finished {
            return None;
        }
        let attempt = cursor.delays_given.saturating_add(1);
        let delay = match self.kind {
            Kind::Decorrelated(shape) if self.allows_attempt(attempt) => {
                Some(shape.after(cursor.previous, rng))
            }
            _ => self.delay(attempt, rng),
        };
        let Some(delay) = delay else {
            cursor.finished = true;
            return None;
        };
        let elapsed = match self.limits.max_elapsed {
            Some(limit) => match cursor.elapsed.checked_add(delay) {
                Some(total) if total <= limit => total,
                _ => {
                    cursor.finished = true;
                    return None;
                }
            },
            None => cursor.elapsed.saturating_add(delay),
        };
        cursor.delays_given = attempt;
        cursor.elapsed = elapsed;
        cursor.previous = delay;
        Some(delay)
    }

    /// The delay before retry `attempt` (counted from 1), computed directly rather than by
    /// iterating. Draws one number from `rng` for jittered shapes.
    ///
    /// `None` for attempt 0, beyond [`max_delays`](BackoffBuilder::max_delays), and for
    /// [`Backoff::decorrelated`], whose delays depend on the previous one. The
    /// [`max_elapsed`](BackoffBuilder::max_elapsed) limit depends on the delays actually drawn,
    /// so only [`Delays`] applies it.
    ///
    /// ```
    /// use fusebox_core::backoff::{Backoff, Jitter};
    /// use rand::{SeedableRng, rngs::SmallRng};
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(30))
    ///     .jitter(Jitter::Proportional(0.5))
    ///     .build()?;
    /// let mut rng = SmallRng::seed_from_u64(1);
    /// let fourth = backoff.delay(4, &mut rng).unwrap();
    /// assert!(fourth >= Duration::from_secs(4) && fourth <= Duration::from_secs(12));
    /// assert_eq!(backoff.delay(0, &mut rng), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn delay<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Option<Duration> {
        if !self.allows_attempt(attempt) {
            return None;
        }
        match self.kind {
            Kind::Fixed(shape) => Some(shape.delay),
            Kind::Exponential(shape) => Some(shape.jittered(attempt, rng)),
            Kind::Decorrelated(_) => None,
        }
    }

    /// The delay before retry `attempt` without jitter: for an exponential backoff, the centre of
    /// a proportional jitter and the upper bound of a full or equal one. `None` in the same cases
    /// as [`Backoff::delay`].
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1))
    ///     .build()?;
    /// assert_eq!(backoff.base_delay(1), Some(Duration::from_millis(100)));
    /// assert_eq!(backoff.base_delay(4), Some(Duration::from_millis(800)));
    /// assert_eq!(backoff.base_delay(5), Some(Duration::from_secs(1)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn base_delay(&self, attempt: u32) -> Option<Duration> {
        if !self.allows_attempt(attempt) {
            return None;
        }
        match self.kind {
            Kind::Fixed(shape) => Some(shape.delay),
            Kind::Exponential(shape) => Some(at_most(shape.envelope(attempt), shape.max)),
            Kind::Decorrelated(_) => None,
        }
    }

    /// The longest single delay this backoff can produce: the fixed delay, `max` or `cap`.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::decorrelated(Duration::from_secs(1), Duration::from_secs(20)).build()?;
    /// assert_eq!(backoff.max_delay(), Duration::from_secs(20));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_delay(&self) -> Duration {
        match self.kind {
            Kind::Fixed(shape) => shape.delay,
            Kind::Exponential(shape) => shape.max,
            Kind::Decorrelated(shape) => shape.cap,
        }
    }

    /// The most delays (retries) this backoff gives, if limited.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::fixed(Duration::from_secs(1)).max_delays(3).build()?;
    /// assert_eq!(backoff.max_delays(), Some(3));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_delays(&self) -> Option<u32> {
        self.limits.max_delays
    }

    /// The cap on the sum of all delays, if any.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::fixed(Duration::from_secs(1)).build()?;
    /// assert_eq!(backoff.max_elapsed(), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_elapsed(&self) -> Option<Duration> {
        self.limits.max_elapsed
    }

    fn allows_attempt(&self, attempt: u32) -> bool {
        attempt >= 1 && self.limits.max_delays.is_none_or(|max| attempt <= max)
    }
}

impl Exponential {
    /// The un-jittered delay in nanoseconds, already capped at `max`.
    fn envelope(&self, attempt: u32) -> f64 {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        // Overflow goes to infinity, which `min` turns back into `max`.
        (nanos_f64(self.min) * self.factor.powi(exponent)).min(nanos_f64(self.max))
    }

    fn jittered<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
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
    fn after<R: Rng + ?Sized>(&self, previous: Duration, rng: &mut R) -> Duration {
        let low = nanos_f64(self.base);
        let high = (nanos_f64(previous) * 3.0).max(low);
        at_most(low + (high - low) * rng.random::<f64>(), self.cap)
    }
}

fn nanos_f64(duration: Duration) -> f64 {
    duration.as_nanos() as f64
}

/// Converts nanoseconds back to a `Duration`, never above `ceiling` and without any arithmetic
/// that could panic.
fn at_most(nanos: f64, ceiling: Duration) -> Duration {
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

/// The delays of a [`Backoff`], one per retry. Ends after `max_delays` delays or before the sum
/// would exceed `max_elapsed`; without either it never ends.
///
/// ```
/// use fusebox_core::backoff::Backoff;
/// use std::time::Duration;
///
/// let backoff = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60))
///     .max_elapsed(Duration::from_secs(10))
///     .build()?;
/// let mut delays = backoff.seeded(0);
/// assert_eq!(delays.next(), Some(Duration::from_secs(1)));
/// assert_eq!(delays.next(), Some(Duration::from_secs(2)));
/// assert_eq!(delays.next(), Some(Duration::from_secs(4)));
/// assert_eq!(delays.next(), None); // 1 + 2 + 4 + 8 would exceed 10 s
/// assert_eq!(delays.elapsed(), Duration::from_secs(7));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Delays<R = SmallRng> {
    backoff: Backoff,
    rng: R,
    cursor: Cursor,
}

/// How far a sequence of delays has gone (see [`Backoff::cursor`]).
///
/// ```
/// use fusebox_core::backoff::Backoff;
/// use std::time::Duration;
/// let cursor = Backoff::fixed(Duration::from_millis(5)).build()?.cursor();
/// # let _ = cursor;
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Cursor {
    delays_given: u32,
    elapsed: Duration,
    /// The last delay handed out; for decorrelated jitter it starts at `base`.
    previous: Duration,
    finished: bool,
}

impl<R> Delays<R> {
    /// The sum of the delays handed out so far.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let mut delays = Backoff::fixed(Duration::from_secs(3)).build()?.seeded(0);
    /// delays.next();
    /// delays.next();
    /// assert_eq!(delays.elapsed(), Duration::from_secs(6));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn elapsed(&self) -> Duration {
        self.cursor.elapsed
    }
}

impl<R: Rng> Iterator for Delays<R> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.backoff.step(&mut self.cursor, &mut self.rng)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.cursor.finished {
            return (0, Some(0));
        }
        let left = self.backoff.limits.max_delays.map(|max| {
            usize::try_from(max.saturating_sub(self.cursor.delays_given)).unwrap_or(usize::MAX)
        });
        (0, left)
    }
}

impl<R: Rng> FusedIterator for Delays<R> {}

impl IntoIterator for Backoff {
    type Item = Duration;
    type IntoIter = Delays<SmallRng>;

    /// The delays, seeded from the operating system, like [`Backoff::iter`].
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::fixed(Duration::from_secs(1)).max_delays(2).build()?;
    /// let mut total = Duration::ZERO;
    /// for delay in backoff {
    ///     total += delay;
    /// }
    /// assert_eq!(total, Duration::from_secs(2));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    fn into_iter(self) -> Delays<SmallRng> {
        self.into_delays(crate::rng::small_rng(None))
    }
}

impl IntoIterator for &Backoff {
    type Item = Duration;
    type IntoIter = Delays<SmallRng>;

    /// The delays, seeded from the operating system, like [`Backoff::iter`].
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use std::time::Duration;
    ///
    /// let backoff = Backoff::fixed(Duration::from_secs(1)).max_delays(2).build()?;
    /// assert_eq!((&backoff).into_iter().count(), 2);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    fn into_iter(self) -> Delays<SmallRng> {
        self.iter()
    }
}

#[cfg(feature = "serde")]
mod repr {
    //! The serialized form: a tagged shape plus limits. Deserializing goes through the builders,
    //! so a configuration file is validated exactly like code.

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
            delay: Duration,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            max_delays: Option<u32>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            max_elapsed: Option<Duration>,
        },
        Exponential {
            min: Duration,
            max: Duration,
            #[serde(default = "default_factor")]
            factor: f64,
            #[serde(default)]
            jitter: Jitter,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            max_delays: Option<u32>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            max_elapsed: Option<Duration>,
        },
        Decorrelated {
            base: Duration,
            cap: Duration,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            max_delays: Option<u32>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
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
}

#[cfg(test)]
mod tests;
