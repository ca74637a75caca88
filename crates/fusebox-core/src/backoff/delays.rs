//! The delays of a backoff: the iterator and the cursor a caller can keep instead.

use std::iter::FusedIterator;
use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;

use super::*;

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
    pub(super) backoff: Backoff,
    pub(super) rng: R,
    pub(super) cursor: Cursor,
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
    pub(super) delays_given: u32,
    pub(super) elapsed: Duration,
    /// The last delay handed out; for decorrelated jitter it starts at `base`.
    pub(super) previous: Duration,
    pub(super) finished: bool,
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
