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

use crate::ConfigError;
use crate::error::check;
use rand::Rng;
use rand::rngs::SmallRng;
use std::time::Duration;

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

mod builder;
mod delays;
#[cfg(feature = "serde")]
mod repr;
mod shape;

pub use builder::BackoffBuilder;
pub use delays::{Cursor, Delays};
use shape::at_most;
pub use shape::{Decorrelated, Exponential, Fixed, Shape};

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

#[cfg(test)]
mod tests;
