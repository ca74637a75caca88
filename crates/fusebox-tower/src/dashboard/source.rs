//! Where a dashboard's readings come from: the [`Source`] trait and what it reads.

use std::future::Future;

use fusebox_core::State;

/// What a source could not read: shown on the page as it is, while the last good
/// readings stay on screen marked stale.
///
/// ```
/// use fusebox_tower::dashboard::SourceError;
/// let e = SourceError::new("store unreachable: connection refused");
/// assert_eq!(e.to_string(), "store unreachable: connection refused");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    message: String,
}

impl SourceError {
    /// An error with this message.
    ///
    /// ```
    /// use fusebox_tower::dashboard::SourceError;
    /// assert_eq!(SourceError::new("timed out").message(), "timed out");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        SourceError {
            message: message.into(),
        }
    }

    /// The message.
    ///
    /// ```
    /// use fusebox_tower::dashboard::SourceError;
    /// assert_eq!(SourceError::new("x").message(), "x");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A fleet breaker's instances, as a fleet store counts them.
///
/// ```
/// use fusebox_tower::dashboard::Instances;
/// let i = Instances { live: 3, open_votes: 1, known: 4 };
/// assert!(i.open_votes <= i.live && i.live <= i.known);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Instances {
    /// Instances whose lease is current.
    pub live: u32,
    /// Live instances whose own breaker is open.
    pub open_votes: u32,
    /// Instances the store still knows, live or recently gone.
    pub known: u32,
}

/// One breaker, as a [`Source`] read it at one moment.
///
/// Counts are cumulative (they only grow while the breaker lives): the dashboard turns
/// the growth between two readings into rates per second. A count the source cannot know
/// stays `None` and shows as "-", never as a reassuring zero.
///
/// ```
/// use fusebox_core::State;
/// use fusebox_tower::dashboard::BreakerReading;
/// let mut r = BreakerReading::new("payments", State::Open);
/// r.calls = Some(120);
/// r.failure_rate = Some(0.5);
/// assert_eq!((r.name.as_str(), r.state), ("payments", State::Open));
/// assert_eq!(r.rejections, None);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BreakerReading {
    /// The breaker's name (untrusted text: the page shows it as text, never as markup).
    pub name: String,
    /// Its state. A fleet forced open shows as [`State::ForcedOpen`], forced closed as
    /// [`State::Disabled`] (every call admitted, nothing trips).
    pub state: State,
    /// Bumped by every transition; a change between readings logs a transition.
    pub generation: u64,
    /// Failure rate over the breaker's window; `None` until it is judged.
    pub failure_rate: Option<f64>,
    /// Slow-call rate over the breaker's window; `None` until it is judged.
    pub slow_rate: Option<f64>,
    /// Counted calls (successes and failures) so far.
    pub calls: Option<u64>,
    /// Failed calls so far.
    pub failures: Option<u64>,
    /// Rejected calls so far.
    pub rejections: Option<u64>,
    /// The fleet's instances, for a fleet breaker.
    pub instances: Option<Instances>,
    /// Why the breaker last changed state, when the source knows.
    pub reason: Option<String>,
}

impl BreakerReading {
    /// A reading with a name and a state, and nothing else known yet.
    ///
    /// ```
    /// use fusebox_core::State;
    /// use fusebox_tower::dashboard::BreakerReading;
    /// let r = BreakerReading::new("db", State::Closed);
    /// assert_eq!((r.generation, r.calls, r.failure_rate), (0, None, None));
    /// ```
    pub fn new(name: impl Into<String>, state: State) -> Self {
        BreakerReading {
            name: name.into(),
            state,
            generation: 0,
            failure_rate: None,
            slow_rate: None,
            calls: None,
            failures: None,
            rejections: None,
            instances: None,
            reason: None,
        }
    }
}

/// What a dashboard shows: every breaker's reading, taken once per interval.
///
/// [`LocalSource`](super::LocalSource) reads breakers of this process; a source over a
/// fleet store reads every breaker the store lists. A read that fails (an unreachable
/// store) shows as an error on the page, and the next interval reads again.
///
/// ```
/// use fusebox_core::State;
/// use fusebox_tower::dashboard::{BreakerReading, Source, SourceError};
///
/// struct Fixed;
/// impl Source for Fixed {
///     async fn read(&self) -> Result<Vec<BreakerReading>, SourceError> {
///         Ok(vec![BreakerReading::new("always-open", State::Open)])
///     }
/// }
/// # let _ = Fixed;
/// ```
pub trait Source: Send + Sync + 'static {
    /// Reads every breaker once.
    fn read(&self) -> impl Future<Output = Result<Vec<BreakerReading>, SourceError>> + Send;
}
