use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use fusebox_core::ConfigError;
use fusebox_core::breaker::Name;
use fusebox_core::budget::RetryBudget;
use fusebox_core::clock::{IntoClock, SharedClock};

use super::{
    Counters, DelaySource, EventListener, Hedge, HedgeEvent, HedgeInner, LatencyHistogram,
};

/// The most hedges a call may start: past a few, extra copies add load and little speed.
const MAX_HEDGED_ATTEMPTS: u32 = 10;

/// Builds a [`Hedge`].
///
/// The delay is either fixed ([`delay`](Self::delay)) or a percentile of recent attempt
/// latencies ([`percentile_delay`](Self::percentile_delay), the default at p95). A zero
/// delay is allowed: every hedge starts with the first attempt, a race of copies, which only
/// makes sense with a budget.
///
/// ```
/// use fusebox_policy::policy::Hedge;
/// use std::time::Duration;
/// let hedge = Hedge::builder("search")
///     .max_hedged_attempts(2)
///     .percentile_delay(0.9)
///     .min_samples(50)
///     .fallback_delay(Duration::from_millis(40))
///     .latency_window(Duration::from_secs(30))
///     .build()?;
/// assert_eq!(hedge.delay(), Duration::from_millis(40)); // no latencies yet
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use]
pub struct HedgeBuilder {
    name: Name,
    max_hedged_attempts: u32,
    fixed_delay: Option<Duration>,
    quantile: f64,
    min_samples: u64,
    fallback: Duration,
    window: Duration,
    budget: Option<RetryBudget>,
    clock: Option<SharedClock>,
    listeners: Vec<EventListener>,
}

impl fmt::Debug for HedgeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeBuilder")
            .field("name", &self.name)
            .field("max_hedged_attempts", &self.max_hedged_attempts)
            .field("fixed_delay", &self.fixed_delay)
            .field("quantile", &self.quantile)
            .finish_non_exhaustive()
    }
}

impl HedgeBuilder {
    pub(super) fn new(name: Name) -> Self {
        HedgeBuilder {
            name,
            max_hedged_attempts: 1,
            fixed_delay: None,
            quantile: 0.95,
            min_samples: 20,
            fallback: Duration::from_millis(100),
            window: Duration::from_secs(10),
            budget: None,
            clock: None,
            listeners: Vec::new(),
        }
    }

    /// The most extra attempts per call (default 1), from 1 to 10.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// let err = Hedge::builder("a").max_hedged_attempts(0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("max_hedged_attempts"));
    /// assert!(Hedge::builder("a").max_hedged_attempts(11).build().is_err());
    /// ```
    pub fn max_hedged_attempts(mut self, max: u32) -> Self {
        self.max_hedged_attempts = max;
        self
    }

    /// A fixed delay before each hedge, in place of the percentile delay. Zero starts every
    /// hedge with the first attempt.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// use std::time::Duration;
    /// let hedge = Hedge::builder("a").delay(Duration::ZERO).build()?;
    /// assert_eq!(hedge.delay(), Duration::ZERO);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn delay(mut self, delay: Duration) -> Self {
        self.fixed_delay = Some(delay);
        self
    }

    /// Waits, before each hedge, the `quantile` of recent attempt latencies (default 0.95,
    /// strictly between 0 and 1). Replaces a fixed [`delay`](Self::delay).
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// for bad in [0.0, 1.0, f64::NAN, -0.5] {
    ///     let err = Hedge::builder("a").percentile_delay(bad).build().unwrap_err();
    ///     assert_eq!(err.field(), Some("percentile"));
    /// }
    /// ```
    pub fn percentile_delay(mut self, quantile: f64) -> Self {
        self.fixed_delay = None;
        self.quantile = quantile;
        self
    }

    /// How many latencies the window must hold before the percentile is used (default 20,
    /// at least 1).
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// assert_eq!(Hedge::builder("a").min_samples(0).build().unwrap_err().field(), Some("min_samples"));
    /// ```
    pub fn min_samples(mut self, min_samples: u64) -> Self {
        self.min_samples = min_samples;
        self
    }

    /// The delay until the window holds enough latencies (default 100 ms).
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// use std::time::Duration;
    /// let hedge = Hedge::builder("a").fallback_delay(Duration::from_millis(15)).build()?;
    /// assert_eq!(hedge.delay(), Duration::from_millis(15));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn fallback_delay(mut self, delay: Duration) -> Self {
        self.fallback = delay;
        self
    }

    /// How far back the percentile looks (default 10 s): between half this and all of it.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// use std::time::Duration;
    /// let err = Hedge::builder("a").latency_window(Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.field(), Some("latency_window"));
    /// ```
    pub fn latency_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Makes hedges draw on `budget`, the one a [`Retry`](crate::policy::Retry) may share:
    /// each call deposits, each hedge withdraws, and a hedge the budget refuses is not sent,
    /// so a slow dependency is not sent twice its load. A retry policy around the same calls
    /// sharing the budget deposits for each call too, so each call counts twice: give the
    /// hedge its own budget to keep the ratio exact.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, RetryBudget};
    /// use fusebox_policy::policy::Hedge;
    /// let budget = RetryBudget::new(BudgetConfig::builder().ratio(0.1).build()?);
    /// let hedge = Hedge::builder("a").budget(budget).build()?;
    /// assert_eq!(hedge.budget().map(|b| b.config().ratio()), Some(0.1));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The clock for the budget and the latency window (default: the monotonic clock).
    /// Latencies themselves are measured on tokio's clock, like the hedge's timers.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_policy::policy::Hedge;
    /// let _ = Hedge::builder("a").clock(ManualClock::new()).build()?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clock(mut self, clock: impl IntoClock) -> Self {
        self.clock = Some(clock.into_handle());
        self
    }

    /// Calls `f` with every [`HedgeEvent`].
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// let _ = Hedge::builder("a").on_event(|name, event| println!("{name}: {}", event.as_str())).build()?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_event(mut self, f: impl Fn(&Name, HedgeEvent) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// Validates the settings.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// assert_eq!(Hedge::builder("a").build()?.name(), "a");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<Hedge, ConfigError> {
        if !(1..=MAX_HEDGED_ATTEMPTS).contains(&self.max_hedged_attempts) {
            return Err(ConfigError::invalid(
                "max_hedged_attempts",
                format!("must be from 1 to {MAX_HEDGED_ATTEMPTS}"),
            ));
        }
        let window = fusebox_core::check::nonzero_duration("latency_window", self.window)?;
        let delay = match self.fixed_delay {
            Some(delay) => DelaySource::Fixed(delay),
            None => {
                let quantile = fusebox_core::check::finite("percentile", self.quantile)?;
                if !(quantile > 0.0 && quantile < 1.0) {
                    return Err(ConfigError::invalid(
                        "percentile",
                        "must be strictly between 0 and 1",
                    ));
                }
                let min_samples = fusebox_core::check::nonzero("min_samples", self.min_samples)?;
                DelaySource::Percentile {
                    quantile,
                    min_samples,
                    fallback: self.fallback,
                }
            }
        };
        let initial = match delay {
            DelaySource::Fixed(delay) => delay,
            DelaySource::Percentile { fallback, .. } => fallback,
        };
        let window_nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        Ok(Hedge {
            inner: Arc::new(HedgeInner {
                name: self.name,
                max_hedged_attempts: self.max_hedged_attempts,
                latencies: matches!(delay, DelaySource::Percentile { .. })
                    .then(|| LatencyHistogram::new(window)),
                delay,
                cached_delay_nanos: AtomicU64::new(
                    u64::try_from(initial.as_nanos()).unwrap_or(u64::MAX),
                ),
                refresh_at_nanos: AtomicU64::new(0),
                refresh_every_nanos: (window_nanos / 32).max(1),
                budget: self.budget,
                clock: self.clock.unwrap_or_default(),
                listeners: self.listeners,
                counters: Counters::default(),
            }),
        })
    }
}
