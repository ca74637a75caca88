//! The builder of a [`ConcurrencyLimit`] and the validation of its bounds.

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox_core::breaker::Name;
use fusebox_core::{ConfigError, LimitExceeded};

use super::{AdaptiveLimit, ConcurrencyLimit, Inner, LimitAlgorithm, Listeners};

/// Builds a [`ConcurrencyLimit`].
///
/// ```
/// use fusebox_policy::policy::{ConcurrencyLimit, Gradient2};
/// use std::time::Duration;
/// let limit = ConcurrencyLimit::builder("api")
///     .algorithm(Gradient2::new())
///     .min_limit(4)
///     .max_limit(400)
///     .initial_limit(40)
///     .window(Duration::from_millis(500), 20)
///     .build()?;
/// assert_eq!(limit.limit(), 40);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct ConcurrencyLimitBuilder {
    pub(super) name: Name,
    pub(super) algorithm: LimitAlgorithm,
    pub(super) min: u32,
    pub(super) max: u32,
    pub(super) initial: u32,
    pub(super) window: Duration,
    pub(super) min_samples: u32,
    pub(super) listeners: Listeners,
}

impl ConcurrencyLimitBuilder {
    /// The algorithm (default [`Aimd`](super::Aimd)).
    ///
    /// ```
    /// use fusebox_policy::policy::{ConcurrencyLimit, Vegas};
    /// assert!(ConcurrencyLimit::builder("a").algorithm(Vegas::new()).build().is_ok());
    /// ```
    pub fn algorithm(mut self, algorithm: impl Into<LimitAlgorithm>) -> Self {
        self.algorithm = algorithm.into();
        self
    }
    /// The lowest limit (default 1).
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let err = ConcurrencyLimit::builder("a").min_limit(0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("min_limit"));
    /// ```
    pub fn min_limit(mut self, n: u32) -> Self {
        self.min = n;
        self
    }
    /// The highest limit (default 1000).
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let err = ConcurrencyLimit::builder("a").min_limit(10).max_limit(5).build().unwrap_err();
    /// assert_eq!(err.field(), Some("max_limit"));
    /// ```
    pub fn max_limit(mut self, n: u32) -> Self {
        self.max = n;
        self
    }
    /// The limit before any call is measured (default 20).
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let err = ConcurrencyLimit::builder("a").max_limit(10).initial_limit(11).build().unwrap_err();
    /// assert_eq!(err.field(), Some("initial_limit"));
    /// ```
    pub fn initial_limit(mut self, n: u32) -> Self {
        self.initial = n;
        self
    }
    /// How often the limit may move: once per `window` with at least `min_samples` calls
    /// (default 250 ms and 10 calls).
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// use std::time::Duration;
    /// let err = ConcurrencyLimit::builder("a").window(Duration::ZERO, 1).build().unwrap_err();
    /// assert_eq!(err.field(), Some("window"));
    /// ```
    pub fn window(mut self, window: Duration, min_samples: u32) -> Self {
        self.window = window;
        self.min_samples = min_samples;
        self
    }

    /// The window and minimum samples set so far, for settings that change only one of
    /// them.
    pub(crate) fn window_and_min_samples(&self) -> (Duration, u32) {
        (self.window, self.min_samples)
    }
    /// Calls `f` with the name and the new limit whenever the limit moves.
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let _ = ConcurrencyLimit::builder("a").on_limit_change(|name, limit| println!("{name}: {limit}"));
    /// ```
    pub fn on_limit_change<F>(mut self, f: F) -> Self
    where
        F: Fn(&Name, u32) + Send + Sync + 'static,
    {
        self.listeners.on_limit_change.push(Arc::new(f));
        self
    }
    /// Calls `f` on every refused call.
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let _ = ConcurrencyLimit::builder("a").on_refused(|refusal| println!("{refusal}"));
    /// ```
    pub fn on_refused<F>(mut self, f: F) -> Self
    where
        F: Fn(&LimitExceeded) + Send + Sync + 'static,
    {
        self.listeners.on_refused.push(Arc::new(f));
        self
    }
    /// Validates and builds the limit. Must be called inside a tokio runtime only when the
    /// limit is used; building needs none.
    ///
    /// ```
    /// use fusebox_policy::policy::{Aimd, ConcurrencyLimit};
    /// let err = ConcurrencyLimit::builder("a").algorithm(Aimd::new().backoff_ratio(f64::NAN)).build().unwrap_err();
    /// assert_eq!(err.field(), Some("backoff_ratio"));
    /// ```
    pub fn build(self) -> Result<ConcurrencyLimit, ConfigError> {
        if self.min == 0 {
            return Err(ConfigError::invalid(
                "min_limit",
                "must be at least 1, got 0",
            ));
        }
        if self.max < self.min {
            return Err(ConfigError::invalid(
                "max_limit",
                "must be at least min_limit",
            ));
        }
        if self.initial < self.min || self.initial > self.max {
            return Err(ConfigError::invalid(
                "initial_limit",
                "must be between min_limit and max_limit",
            ));
        }
        if self.window.is_zero() {
            return Err(ConfigError::invalid("window", "must be longer than zero"));
        }
        if let Some((field, why)) = self.algorithm.invalid_field() {
            return Err(ConfigError::invalid(field, why));
        }
        let state = AdaptiveLimit::new(
            self.algorithm,
            self.min,
            self.max,
            self.initial,
            self.window,
            self.min_samples,
        );
        Ok(ConcurrencyLimit {
            inner: Arc::new(Inner {
                name: self.name,
                limit: AtomicU32::new(self.initial),
                in_flight: AtomicU32::new(0),
                state: Mutex::new(state),
                origin: tokio::time::Instant::now(),
                listeners: self.listeners,
            }),
        })
    }
}
