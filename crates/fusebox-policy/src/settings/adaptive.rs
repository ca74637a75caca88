//! The load-adaptive policies as data: a rate limiter, adaptive throttling and an adaptive
//! concurrency limit, loaded like the other settings and validated by their builders.

use std::time::Duration;

use fusebox_core::breaker::Name;

use super::SettingsError;
use crate::policy::{
    Aimd, ConcurrencyLimit, ConcurrencyLimitBuilder, Gradient2, RateLimiter, RateLimiterBuilder,
    Throttle, ThrottleBuilder, Vegas,
};

/// A rate limiter: `permits` every `per` (one second by default), up to `burst` at once;
/// with `max_wait`, calls wait that long at most for a permit instead of being refused.
///
/// ```
/// use fusebox_policy::settings::RateLimitSettings;
/// use std::time::Duration;
/// let settings = RateLimitSettings { permits: Some(50), burst: Some(10), ..Default::default() };
/// let limiter = settings.build("search")?;
/// assert_eq!((limiter.burst(), limiter.interval()), (10, Duration::from_millis(20)));
/// let zero = RateLimitSettings { permits: Some(0), ..Default::default() };
/// assert_eq!(zero.build("search").unwrap_err().path(), "permits");
/// # Ok::<(), fusebox_policy::settings::SettingsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RateLimitSettings {
    /// Permits per `per`.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub permits: Option<u64>,
    /// The period `permits` are spread over (default 1 s).
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub per: Option<Duration>,
    /// Permits that may be taken at once (default: one).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub burst: Option<u64>,
    /// Wait this long at most for a permit rather than refusing at once.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub max_wait: Option<Duration>,
}

impl RateLimitSettings {
    /// Lays the settings over `builder` (what they leave unset keeps the builder's value).
    pub fn apply(&self, builder: RateLimiterBuilder) -> Result<RateLimiterBuilder, SettingsError> {
        let mut builder = builder;
        if self.permits.is_some() || self.per.is_some() {
            let permits = self
                .permits
                .ok_or_else(|| SettingsError::invalid("permits", "required with `per`"))?;
            if permits == 0 {
                return Err(SettingsError::invalid(
                    "permits",
                    "must be at least 1, got 0",
                ));
            }
            builder = builder.quota(permits, self.per.unwrap_or(Duration::from_secs(1)));
        }
        if let Some(burst) = self.burst {
            builder = builder.burst(burst);
        }
        if let Some(max_wait) = self.max_wait {
            builder = builder.max_wait(max_wait);
        }
        Ok(builder)
    }

    /// A rate limiter named `name` from these settings alone.
    pub fn build(&self, name: impl Into<Name>) -> Result<RateLimiter, SettingsError> {
        Ok(self.apply(RateLimiter::builder(name))?.build()?)
    }
}

/// Adaptive client-side throttling: the multiplier `k` (default 2) and the rolling
/// `window` (default 4 s) in `buckets` (default 8).
///
/// ```
/// use fusebox_policy::settings::ThrottleSettings;
/// use std::time::Duration;
/// let settings = ThrottleSettings { k: Some(1.5), window: Some(Duration::from_secs(10)), ..Default::default() };
/// assert_eq!(settings.build("quotes")?.name(), "quotes");
/// let bad = ThrottleSettings { k: Some(f64::NAN), ..Default::default() };
/// assert_eq!(bad.build("quotes").unwrap_err().path(), "k");
/// # Ok::<(), fusebox_policy::settings::SettingsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct ThrottleSettings {
    /// How many requests per acceptance pass before calls are dropped (at least 1).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub k: Option<f64>,
    /// The rolling window's span.
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub window: Option<Duration>,
    /// The window's buckets.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub buckets: Option<u32>,
    /// Seed of the drop decisions, for reproducible runs.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub seed: Option<u64>,
}

impl ThrottleSettings {
    /// Lays the settings over `builder` (what they leave unset keeps the builder's value).
    pub fn apply(&self, builder: ThrottleBuilder) -> ThrottleBuilder {
        let mut builder = builder;
        if let Some(k) = self.k {
            builder = builder.k(k);
        }
        if self.window.is_some() || self.buckets.is_some() {
            let (window, buckets) = builder.window_and_buckets();
            builder = builder.window(
                self.window.unwrap_or(window),
                self.buckets.unwrap_or(buckets),
            );
        }
        if let Some(seed) = self.seed {
            builder = builder.seed(seed);
        }
        builder
    }

    /// A throttle named `name` from these settings alone.
    pub fn build(&self, name: impl Into<Name>) -> Result<Throttle, SettingsError> {
        Ok(self.apply(Throttle::builder(name)).build()?)
    }
}

/// Which algorithm moves an adaptive concurrency limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum LimitAlgorithmKind {
    /// Additive increase, multiplicative decrease on failures ([`Aimd`]).
    Aimd,
    /// Queue estimated from the round trip against the idle one ([`Vegas`]).
    Vegas,
    /// Short against long round-trip averages ([`Gradient2`]).
    Gradient2,
}

/// An adaptive concurrency limit: its `algorithm` (default AIMD), bounds and starting
/// limit, and the `window` (at least `min_samples` calls) it moves once per.
///
/// ```
/// use fusebox_policy::settings::{ConcurrencyLimitSettings, LimitAlgorithmKind};
/// let settings = ConcurrencyLimitSettings {
///     algorithm: Some(LimitAlgorithmKind::Vegas),
///     initial_limit: Some(16),
///     ..Default::default()
/// };
/// assert_eq!(settings.build("db")?.limit(), 16);
/// let bad = ConcurrencyLimitSettings { min_limit: Some(0), ..Default::default() };
/// assert_eq!(bad.build("db").unwrap_err().path(), "min_limit");
/// # Ok::<(), fusebox_policy::settings::SettingsError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct ConcurrencyLimitSettings {
    /// The algorithm (default `aimd`).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub algorithm: Option<LimitAlgorithmKind>,
    /// Lowest limit.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub min_limit: Option<u32>,
    /// Highest limit.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub max_limit: Option<u32>,
    /// Limit at start.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub initial_limit: Option<u32>,
    /// How often the limit may move (default 250 ms).
    #[cfg_attr(
        feature = "serde",
        serde(
            skip_serializing_if = "Option::is_none",
            with = "fusebox_core::duration::serde_human_option"
        )
    )]
    pub window: Option<Duration>,
    /// Calls a window needs before the limit moves (default 10).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub min_samples: Option<u32>,
}

impl ConcurrencyLimitSettings {
    /// Lays the settings over `builder` (what they leave unset keeps the builder's value).
    pub fn apply(&self, builder: ConcurrencyLimitBuilder) -> ConcurrencyLimitBuilder {
        let mut builder = builder;
        match self.algorithm {
            Some(LimitAlgorithmKind::Aimd) => builder = builder.algorithm(Aimd::new()),
            Some(LimitAlgorithmKind::Vegas) => builder = builder.algorithm(Vegas::new()),
            Some(LimitAlgorithmKind::Gradient2) => builder = builder.algorithm(Gradient2::new()),
            None => {}
        }
        if let Some(n) = self.min_limit {
            builder = builder.min_limit(n);
        }
        if let Some(n) = self.max_limit {
            builder = builder.max_limit(n);
        }
        if let Some(n) = self.initial_limit {
            builder = builder.initial_limit(n);
        }
        if self.window.is_some() || self.min_samples.is_some() {
            let (window, min_samples) = builder.window_and_min_samples();
            builder = builder.window(
                self.window.unwrap_or(window),
                self.min_samples.unwrap_or(min_samples),
            );
        }
        builder
    }

    /// A concurrency limit named `name` from these settings alone.
    pub fn build(&self, name: impl Into<Name>) -> Result<ConcurrencyLimit, SettingsError> {
        Ok(self.apply(ConcurrencyLimit::builder(name)).build()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_setting_changes_only_its_half_of_the_window() {
        let builder = Throttle::builder("t").window(Duration::from_secs(10), 5);
        let buckets_only = ThrottleSettings {
            buckets: Some(20),
            ..Default::default()
        };
        assert_eq!(
            buckets_only.apply(builder).window_and_buckets(),
            (Duration::from_secs(10), 20)
        );
        let builder = Throttle::builder("t").window(Duration::from_secs(10), 5);
        let window_only = ThrottleSettings {
            window: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        assert_eq!(
            window_only.apply(builder).window_and_buckets(),
            (Duration::from_secs(2), 5)
        );
    }

    #[test]
    fn a_limit_setting_changes_only_its_half_of_the_window() {
        let builder = ConcurrencyLimit::builder("l").window(Duration::from_secs(1), 40);
        let samples_only = ConcurrencyLimitSettings {
            min_samples: Some(3),
            ..Default::default()
        };
        assert_eq!(
            samples_only.apply(builder).window_and_min_samples(),
            (Duration::from_secs(1), 3)
        );
        let builder = ConcurrencyLimit::builder("l").window(Duration::from_secs(1), 40);
        let window_only = ConcurrencyLimitSettings {
            window: Some(Duration::from_millis(100)),
            ..Default::default()
        };
        assert_eq!(
            window_only.apply(builder).window_and_min_samples(),
            (Duration::from_millis(100), 40)
        );
    }
}
