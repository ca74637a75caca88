//! The validated builder of an [`OutlierDetector`].

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox_core::ConfigError;
use fusebox_core::breaker::Name;
use fusebox_core::clock::{IntoClock, PreciseClock, SharedClock};

use super::algorithm::{Endpoints, RateRule, Rules};
use super::{Inner, Listener, OutlierDetector, OutlierEvent};

/// Builds an [`OutlierDetector`].
///
/// ```
/// use fusebox_policy::policy::OutlierDetector;
/// use std::time::Duration;
/// let detector = OutlierDetector::<String>::builder("replicas")
///     .consecutive_failures(5)
///     .failure_rate(0.5, 20)
///     .base_ejection_time(Duration::from_secs(30))
///     .max_ejection_time(Duration::from_secs(300))
///     .max_ejection_percent(50)
///     .build()?;
/// assert_eq!(detector.name(), "replicas");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use]
pub struct OutlierDetectorBuilder<K> {
    pub(super) name: Name,
    pub(super) consecutive_failures: Option<u32>,
    pub(super) failure_rate: Option<(f64, u32)>,
    pub(super) window: Duration,
    pub(super) base_ejection_time: Duration,
    pub(super) max_ejection_time: Duration,
    pub(super) max_ejection_percent: u32,
    pub(super) clock: Option<SharedClock>,
    pub(super) listeners: Vec<Listener<K>>,
}

impl<K> fmt::Debug for OutlierDetectorBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutlierDetectorBuilder")
            .field("name", &self.name)
            .field("consecutive_failures", &self.consecutive_failures)
            .field("failure_rate", &self.failure_rate)
            .finish_non_exhaustive()
    }
}

impl<K> OutlierDetectorBuilder<K> {
    /// Ejects an endpoint after `n` failures in a row (default 5). Must be at least 1.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let err = OutlierDetector::<u8>::builder("a").consecutive_failures(0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("consecutive_failures"));
    /// ```
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = Some(n);
        self
    }

    /// Ejects only on the failure rate, never on a run of failures.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let err = OutlierDetector::<u8>::builder("a").no_consecutive_failures().build().unwrap_err();
    /// assert_eq!(err.field(), Some("failure_rate"), "one rule is needed");
    /// ```
    pub fn no_consecutive_failures(mut self) -> Self {
        self.consecutive_failures = None;
        self
    }

    /// Also ejects an endpoint whose failures reach `ratio` of its calls over the window
    /// (see [`failure_rate_window`](Self::failure_rate_window)), once it has at least
    /// `min_calls` (default: off). `ratio` must be within (0, 1], `min_calls` at least 1.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let err = OutlierDetector::<u8>::builder("a").failure_rate(f64::NAN, 10).build().unwrap_err();
    /// assert_eq!(err.field(), Some("failure_rate"));
    /// let err = OutlierDetector::<u8>::builder("a").failure_rate(0.5, 0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("min_calls"));
    /// ```
    pub fn failure_rate(mut self, ratio: f64, min_calls: u32) -> Self {
        self.failure_rate = Some((ratio, min_calls));
        self
    }

    /// The window the failure rate is counted over (default 10 s); the counts start over
    /// each time it is this old. Must be longer than zero.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// use std::time::Duration;
    /// let err = OutlierDetector::<u8>::builder("a").failure_rate_window(Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.field(), Some("failure_rate_window"));
    /// ```
    pub fn failure_rate_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How long a first ejection lasts (default 30 s); the `n`-th in a row lasts `n` times
    /// this. The count of ejections falls by one for each such interval an endpoint spends
    /// back in without being ejected. Must be longer than zero.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// use std::time::Duration;
    /// let err = OutlierDetector::<u8>::builder("a").base_ejection_time(Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.field(), Some("base_ejection_time"));
    /// ```
    pub fn base_ejection_time(mut self, time: Duration) -> Self {
        self.base_ejection_time = time;
        self
    }

    /// The longest an ejection lasts (default 300 s). Must not be shorter than the base
    /// ejection time.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// use std::time::Duration;
    /// let err = OutlierDetector::<u8>::builder("a").max_ejection_time(Duration::from_secs(1)).build().unwrap_err();
    /// assert_eq!(err.field(), Some("max_ejection_time"));
    /// ```
    pub fn max_ejection_time(mut self, time: Duration) -> Self {
        self.max_ejection_time = time;
        self
    }

    /// The most endpoints out at once, in percent of the known ones, rounded down but
    /// letting one out as soon as two are known (default 10). A lone endpoint is never
    /// ejected. Must be at most 100; 0 never ejects.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let err = OutlierDetector::<u8>::builder("a").max_ejection_percent(101).build().unwrap_err();
    /// assert_eq!(err.field(), Some("max_ejection_percent"));
    /// ```
    pub fn max_ejection_percent(mut self, percent: u32) -> Self {
        self.max_ejection_percent = percent;
        self
    }

    /// The clock ejections are timed on (default: [`PreciseClock`]).
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_policy::policy::OutlierDetector;
    /// let _ = OutlierDetector::<u8>::builder("a").clock(ManualClock::new()).build()?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clock(mut self, clock: impl IntoClock) -> Self {
        self.clock = Some(clock.into_handle());
        self
    }

    /// Calls `f` with every ejection, return and kept outlier, after the detector's lock is
    /// released.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let _ = OutlierDetector::<u8>::builder("a").on_event(|e| println!("{e:?}")).build()?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_event(mut self, f: impl Fn(&OutlierEvent<'_, K>) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// The detector's name.
    #[cfg(feature = "metrics")]
    pub(crate) fn detector_name(&self) -> Name {
        self.name.clone()
    }

    /// Validates the settings.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// assert_eq!(OutlierDetector::<u8>::builder("a").build()?.known(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<OutlierDetector<K>, ConfigError> {
        use fusebox_core::check;
        let consecutive_failures = match self.consecutive_failures {
            Some(n) => Some(check::nonzero("consecutive_failures", n.into())? as u32),
            None => None,
        };
        let window = check::nonzero_duration("failure_rate_window", self.window)?;
        let window_nanos = nanos("failure_rate_window", window)?;
        let rate = match self.failure_rate {
            Some((ratio, min_calls)) => Some(RateRule {
                ratio: check::unit_open_low("failure_rate", ratio)?,
                min_calls: check::nonzero("min_calls", min_calls.into())? as u32,
                window_nanos,
            }),
            None => None,
        };
        if consecutive_failures.is_none() && rate.is_none() {
            return Err(ConfigError::invalid(
                "failure_rate",
                "is needed when consecutive failures are off",
            ));
        }
        let base = check::nonzero_duration("base_ejection_time", self.base_ejection_time)?;
        if self.max_ejection_time < base {
            return Err(ConfigError::invalid(
                "max_ejection_time",
                "must not be shorter than base_ejection_time",
            ));
        }
        if self.max_ejection_percent > 100 {
            return Err(ConfigError::invalid(
                "max_ejection_percent",
                format!("must be at most 100, got {}", self.max_ejection_percent),
            ));
        }
        let rules = Rules {
            consecutive_failures,
            rate,
            base_nanos: nanos("base_ejection_time", base)?,
            max_nanos: nanos("max_ejection_time", self.max_ejection_time)?,
            max_percent: self.max_ejection_percent,
        };
        Ok(OutlierDetector {
            inner: Arc::new(Inner {
                name: self.name,
                clock: self.clock.unwrap_or_else(|| PreciseClock.into_handle()),
                endpoints: Mutex::new(Endpoints::new(rules)),
                listeners: self.listeners,
            }),
        })
    }
}

fn nanos(field: &'static str, d: Duration) -> Result<u64, ConfigError> {
    u64::try_from(d.as_nanos()).map_err(|_| ConfigError::invalid(field, "is too long"))
}
