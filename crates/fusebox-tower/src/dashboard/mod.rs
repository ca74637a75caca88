//! A live web dashboard of breakers: one page, a JSON snapshot and a stream of updates.
//!
//! [`Dashboard::router`] gives an axum [`Router`](axum::Router) serving:
//!
//! * `/`: the page (HTML with its CSS and script inline; it loads nothing from elsewhere),
//!   showing every breaker's state, failure and slow-call rates, calls and rejections per
//!   second, the fleet's instances when the source knows them, a sparkline of recent calls
//!   per second and failure rate, and the log of transitions;
//! * `/api/snapshot`: the same as one JSON document;
//! * `/api/events`: server-sent events, one `frame` event (that JSON document) per
//!   sampling interval.
//!
//! A background task reads the [`Source`] once per interval; the page follows the stream and
//! reconnects by itself. A read that fails (an unreachable store) or takes longer than the
//! read timeout shows as an error banner over the last good readings, and the next interval
//! reads again. The task stops when every clone of the router is dropped.
//!
//! Rates per second are the growth of cumulative counts between two samples, so they need
//! two samples and a source that counts (see [`LocalSource::build`]). The log records a
//! transition when a breaker's generation or state differs from the previous sample;
//! several transitions within one interval show as one entry with its number of steps.
//!
//! ```no_run
//! use fusebox_core::Breaker;
//! use fusebox_tower::dashboard::{Dashboard, LocalSource};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let source = Arc::new(LocalSource::new());
//! let payments = source.build(Breaker::builder("payments").consecutive_failures(5))?;
//! let router = Dashboard::builder()
//!     .interval(Duration::from_millis(500))
//!     .title("checkout service")
//!     .build(source.clone())?
//!     .router()?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9090").await?;
//! axum::serve(listener, router).await?;
//! # drop(payments);
//! # Ok(())
//! # }
//! ```

mod local;
mod sampler;
mod server;
mod source;

use std::sync::Arc;
use std::time::Duration;

pub use local::LocalSource;
pub use source::{BreakerReading, Instances, Source, SourceError};

/// The shortest sampling interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);
/// The longest sampling interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// The most points a breaker's sparkline keeps.
pub const MAX_HISTORY: usize = 600;
/// The most entries the transitions log keeps.
pub const MAX_TRANSITIONS: usize = 1_000;
/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// A setting the dashboard builder refused, naming the field.
///
/// ```
/// use fusebox_tower::dashboard::{Dashboard, DashboardError, LocalSource};
/// use std::time::Duration;
/// let err = Dashboard::builder().interval(Duration::ZERO).build(LocalSource::new()).unwrap_err();
/// assert!(matches!(err, DashboardError::Interval { .. }));
/// assert!(err.to_string().starts_with("interval"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// `interval` out of range.
    #[error("interval must be from {min:?} to {max:?}, got {value:?}", min = MIN_INTERVAL, max = MAX_INTERVAL)]
    Interval {
        /// The refused value.
        value: Duration,
    },
    /// `read_timeout` out of range.
    #[error("read_timeout must be from 1ms to {max:?}, got {value:?}", max = MAX_INTERVAL)]
    ReadTimeout {
        /// The refused value.
        value: Duration,
    },
    /// `history` out of range.
    #[error("history must be from 2 to {max} points, got {value}", max = MAX_HISTORY)]
    History {
        /// The refused value.
        value: usize,
    },
    /// `transitions` out of range.
    #[error("transitions must be from 1 to {max} entries, got {value}", max = MAX_TRANSITIONS)]
    Transitions {
        /// The refused value.
        value: usize,
    },
    /// `title` too long.
    #[error("title must be at most {max} characters, got {value}", max = MAX_TITLE_CHARS)]
    Title {
        /// Its length in characters.
        value: usize,
    },
    /// [`Dashboard::router`] was called outside a tokio runtime, where its sampling task
    /// cannot start.
    #[error("the dashboard's sampling task needs a tokio runtime: call router() inside one")]
    NoRuntime,
}

/// Settings of a [`Dashboard`], checked by [`build`](Self::build).
///
/// ```
/// use fusebox_tower::dashboard::{Dashboard, LocalSource};
/// use std::time::Duration;
/// let dashboard = Dashboard::builder()
///     .interval(Duration::from_millis(250))
///     .history(120)
///     .transitions(50)
///     .read_timeout(Duration::from_secs(2))
///     .title("orders")
///     .build(LocalSource::new())?;
/// assert_eq!(dashboard.interval(), Duration::from_millis(250));
/// # Ok::<(), fusebox_tower::dashboard::DashboardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DashboardBuilder {
    interval: Duration,
    read_timeout: Duration,
    history: usize,
    transitions: usize,
    title: String,
}

impl Default for DashboardBuilder {
    fn default() -> Self {
        DashboardBuilder {
            interval: Duration::from_secs(1),
            read_timeout: Duration::from_secs(5),
            history: 60,
            transitions: 100,
            title: String::new(),
        }
    }
}

impl DashboardBuilder {
    /// How often the source is read and the page updated (50ms to 60s; default 1s).
    ///
    /// ```
    /// use fusebox_tower::dashboard::{Dashboard, LocalSource};
    /// use std::time::Duration;
    /// assert!(Dashboard::builder().interval(Duration::from_secs(61)).build(LocalSource::new()).is_err());
    /// ```
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// How long one read may take before it counts as failed (1ms to 60s; default 5s).
    ///
    /// ```
    /// use fusebox_tower::dashboard::{Dashboard, LocalSource};
    /// use std::time::Duration;
    /// assert!(Dashboard::builder().read_timeout(Duration::ZERO).build(LocalSource::new()).is_err());
    /// ```
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// How many recent samples each sparkline shows (2 to 600; default 60).
    ///
    /// ```
    /// use fusebox_tower::dashboard::{Dashboard, LocalSource};
    /// assert!(Dashboard::builder().history(1).build(LocalSource::new()).is_err());
    /// ```
    pub fn history(mut self, points: usize) -> Self {
        self.history = points;
        self
    }

    /// How many recent transitions the log keeps (1 to 1000; default 100).
    ///
    /// ```
    /// use fusebox_tower::dashboard::{Dashboard, LocalSource};
    /// assert!(Dashboard::builder().transitions(0).build(LocalSource::new()).is_err());
    /// ```
    pub fn transitions(mut self, entries: usize) -> Self {
        self.transitions = entries;
        self
    }

    /// A line shown in the page's header (at most 200 characters, shown as text).
    ///
    /// ```
    /// use fusebox_tower::dashboard::{Dashboard, LocalSource};
    /// assert!(Dashboard::builder().title("x".repeat(201)).build(LocalSource::new()).is_err());
    /// ```
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Checks the settings and makes the dashboard over `source`.
    ///
    /// ```
    /// use fusebox_tower::dashboard::{Dashboard, DashboardError, LocalSource};
    /// let err = Dashboard::builder().history(0).build(LocalSource::new()).unwrap_err();
    /// assert_eq!(err, DashboardError::History { value: 0 });
    /// ```
    pub fn build<S: Source>(self, source: S) -> Result<Dashboard<S>, DashboardError> {
        if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&self.interval) {
            return Err(DashboardError::Interval {
                value: self.interval,
            });
        }
        if !(Duration::from_millis(1)..=MAX_INTERVAL).contains(&self.read_timeout) {
            return Err(DashboardError::ReadTimeout {
                value: self.read_timeout,
            });
        }
        if !(2..=MAX_HISTORY).contains(&self.history) {
            return Err(DashboardError::History {
                value: self.history,
            });
        }
        if !(1..=MAX_TRANSITIONS).contains(&self.transitions) {
            return Err(DashboardError::Transitions {
                value: self.transitions,
            });
        }
        let title_chars = self.title.chars().count();
        if title_chars > MAX_TITLE_CHARS {
            return Err(DashboardError::Title { value: title_chars });
        }
        Ok(Dashboard {
            source: Arc::new(source),
            settings: self,
        })
    }
}

/// A live dashboard over a [`Source`]; [`router`](Self::router) serves it.
///
/// ```
/// use fusebox_tower::dashboard::{Dashboard, LocalSource};
/// let dashboard = Dashboard::builder().build(LocalSource::new())?;
/// assert_eq!(dashboard.interval(), std::time::Duration::from_secs(1));
/// # Ok::<(), fusebox_tower::dashboard::DashboardError>(())
/// ```
#[derive(Debug)]
pub struct Dashboard<S> {
    source: Arc<S>,
    settings: DashboardBuilder,
}

impl Dashboard<()> {
    /// Settings, with defaults: one sample a second, 60 points per sparkline, 100
    /// transitions, a 5s read timeout.
    ///
    /// ```
    /// use fusebox_tower::dashboard::{Dashboard, LocalSource};
    /// assert!(Dashboard::builder().build(LocalSource::new()).is_ok());
    /// ```
    pub fn builder() -> DashboardBuilder {
        DashboardBuilder::default()
    }
}

impl<S: Source> Dashboard<S> {
    /// The sampling interval.
    ///
    /// ```
    /// use fusebox_tower::dashboard::{Dashboard, LocalSource};
    /// let d = Dashboard::builder().build(LocalSource::new())?;
    /// assert_eq!(d.interval().as_secs(), 1);
    /// # Ok::<(), fusebox_tower::dashboard::DashboardError>(())
    /// ```
    pub fn interval(&self) -> Duration {
        self.settings.interval
    }

    /// The source.
    ///
    /// ```
    /// use fusebox_tower::dashboard::{Dashboard, LocalSource};
    /// let d = Dashboard::builder().build(LocalSource::new())?;
    /// assert!(d.source().is_empty());
    /// # Ok::<(), fusebox_tower::dashboard::DashboardError>(())
    /// ```
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Starts the sampling task on the current tokio runtime and returns the router
    /// serving the page, `/api/snapshot` and `/api/events`. The task stops when every
    /// clone of the router is dropped. Nest it under a path to serve it beside an
    /// application's routes: the page finds its endpoints relative to its own address.
    ///
    /// ```
    /// use fusebox_tower::dashboard::{Dashboard, DashboardError, LocalSource};
    /// // Outside a runtime there is nothing to run the sampling task on.
    /// let d = Dashboard::builder().build(LocalSource::new())?;
    /// assert_eq!(d.router().unwrap_err(), DashboardError::NoRuntime);
    /// # Ok::<(), DashboardError>(())
    /// ```
    pub fn router(&self) -> Result<axum::Router, DashboardError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| DashboardError::NoRuntime)?;
        Ok(server::router(
            &runtime,
            self.source.clone(),
            self.settings.clone(),
        ))
    }
}
