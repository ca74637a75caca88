//! The rejection a breaker answers a refused call with.

use std::fmt;
use std::time::Duration;

use super::Name;
use super::stats::State;

/// A call refused by a breaker, with what a caller needs to back off.
///
/// ```
/// use fusebox_core::breaker::{Breaker, State};
/// use fusebox_core::clock::ManualClock;
/// use std::time::Duration;
///
/// let b = Breaker::builder("search")
///     .consecutive_failures(1)
///     .cooldown(Duration::from_secs(10))
///     .clock(ManualClock::new())
///     .build()?;
/// b.record_failure();
/// let rejected = b.try_acquire().unwrap_err();
/// assert_eq!(rejected.name(), "search");
/// assert_eq!(rejected.state(), State::Open);
/// assert_eq!(rejected.retry_after(), Some(Duration::from_secs(10)));
/// assert_eq!(rejected.to_string(), "circuit breaker `search` is open; retry after 10s");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker `{name}` is {}{}", self.state(), RetryHint(self.retry_after()))]
pub struct Rejected {
    name: Name,
    // The state's code and the wait in nanoseconds, rather than a `State` and an
    // `Option<Duration>`: every field a full word, so a rejection written field by field
    // and then copied as words (into a caller's `Result`, through a pipeline) reads back
    // exactly what was stored, instead of stalling store-to-load forwarding on a one-byte
    // state or a four-byte nanosecond field. The wait is also only divided into a
    // `Duration` when someone asks for it.
    state: u64,
    // Nanoseconds, `NO_HINT` when unknown.
    retry_after: u64,
}

impl Rejected {
    /// The `retry_after` word of a rejection without a hint.
    const NO_HINT: u64 = u64::MAX;

    /// A rejection by the breaker `name` in `state`, admitting calls again after
    /// `retry_after` if known: for tests, and for layers that refuse calls on a breaker's
    /// behalf. A wait is kept to the nanosecond up to `u64::MAX - 1` ns (about 584 years),
    /// and saturates there.
    ///
    /// ```
    /// use fusebox_core::breaker::{Rejected, State};
    /// use std::time::Duration;
    /// let r = Rejected::new("db", State::Open, Some(Duration::from_millis(250)));
    /// assert_eq!(r.name(), "db");
    /// assert_eq!(r.state(), State::Open);
    /// assert_eq!(r.retry_after(), Some(Duration::from_millis(250)));
    /// assert_eq!(Rejected::new("db", State::ForcedOpen, None).retry_after(), None);
    /// ```
    pub fn new(name: impl Into<Name>, state: State, retry_after: Option<Duration>) -> Self {
        // Saturates just below the "no hint" word, so a very long wait stays a wait.
        let retry_after = retry_after.map_or(Self::NO_HINT, |d| {
            u64::try_from(d.as_nanos()).map_or(Self::NO_HINT - 1, |n| n.min(Self::NO_HINT - 1))
        });
        Rejected {
            name: name.into(),
            state: state.code(),
            retry_after,
        }
    }

    /// The breaker that rejected the call.
    ///
    /// ```
    /// use fusebox_core::breaker::{Rejected, State};
    /// let r = Rejected::new("search", State::Open, None);
    /// assert_eq!(r.name(), "search");
    /// assert_eq!(r.name().as_str(), "search");
    /// ```
    #[inline]
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The breaker's state when it rejected the call.
    ///
    /// ```
    /// use fusebox_core::breaker::{Rejected, State};
    /// assert_eq!(Rejected::new("x", State::HalfOpen, None).state(), State::HalfOpen);
    /// ```
    #[inline]
    pub fn state(&self) -> State {
        State::from_code(self.state)
    }

    /// When calls may be admitted again, if known: the rest of an OPEN breaker's cooldown.
    ///
    /// ```
    /// use fusebox_core::breaker::{Rejected, State};
    /// use std::time::Duration;
    /// let r = Rejected::new("x", State::Open, Some(Duration::from_secs(3)));
    /// assert_eq!(r.retry_after(), Some(Duration::from_secs(3)));
    /// ```
    #[inline]
    pub fn retry_after(&self) -> Option<Duration> {
        (self.retry_after != Self::NO_HINT).then(|| Duration::from_nanos(self.retry_after))
    }

    /// A rejection built from the breaker's own words, on its hot path.
    #[inline(always)]
    pub(super) fn from_words(name: Name, state: u64, retry_after_nanos: u64) -> Self {
        Rejected {
            name,
            state,
            retry_after: retry_after_nanos.min(Self::NO_HINT - 1),
        }
    }
}

impl fmt::Debug for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

/// Formats a retry-after hint as `; retry after 10s`, or nothing when there is none.
pub(crate) struct RetryHint(pub(crate) Option<Duration>);

impl fmt::Display for RetryHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            // Whole milliseconds, rounded up: a coarse clock's nanoseconds are noise.
            Some(d) if d >= Duration::from_millis(1) => {
                let ms = d.as_nanos().div_ceil(1_000_000);
                write!(f, "; retry after {:?}", Duration::from_millis(ms as u64))
            }
            Some(d) => write!(f, "; retry after {d:?}"),
            None => Ok(()),
        }
    }
}
