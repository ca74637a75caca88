//! How long a breaker stays open: fixed or growing with consecutive trips, with jitter.
//! The arithmetic is pure, so every breaker kind draws the same cooldowns from one seed.

use std::time::Duration;

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
