//! The backoff's builder: shape-specific settings, validated at `build`.

use std::time::Duration;

use super::*;
use crate::ConfigError;

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
    pub(super) shape: S,
    pub(super) limits: Limits,
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
        super::shape::sealed::Sealed::validate(
            self.shape,
            self.limits.max_delays,
            self.limits.max_elapsed,
        )
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
