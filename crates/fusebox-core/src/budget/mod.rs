//! Retry budgets: one cap on retries shared by every call through a retry policy, so that a
//! failing dependency sees a bounded trickle of extra load instead of a retry storm.
//!
//! Every first attempt *deposits* `ratio` of a retry and every retry *withdraws* one. On top of
//! the deposits, `min_retries_per_second × window` retries are always available, so a client
//! with little traffic can still retry. Both deposits and withdrawals expire once they are a
//! `window` old. A retry is granted only if, counting it, the live withdrawals stay within
//! `min_retries_per_second × window + ratio × live deposits`; otherwise it is refused.
//!
//! With the defaults (ratio 0.2, 10 retries per second, 10 s window), a dependency failing every
//! call receives at most 1.2 times its normal load, plus 100 retries per window.
//!
//! Time is cut into ten slots per window, and events expire a slot at a time: between 0.9 and
//! 1 window after they happened.
//!
//! # Two layers
//!
//! * [`BudgetLedger`] is the pure model: `&mut self`, time passed in, deterministic.
//! * [`RetryBudget`] is what policies share: `Clone + Send + Sync`, lock-free, same answers as
//!   the ledger when used from one thread. A first attempt costs one atomic add.
//!
//! # Budget and breaker
//!
//! They divide the work: the budget caps the *extra* load retries add while a breaker is still
//! learning that a dependency is sick (its window filling, its rule not yet tripped); the breaker
//! stops the load altogether once it knows. A budget never opens anything, and it keeps a
//! low-traffic client able to retry through a blip the breaker would not notice.
//!
//! ```
//! use fusebox_core::budget::{BudgetConfig, RetryBudget};
//! use std::time::Duration;
//!
//! let config = BudgetConfig::builder()
//!     .ratio(0.1)
//!     .min_retries_per_second(0.5)
//!     .window(Duration::from_secs(10))
//!     .build()?;
//! let budget = RetryBudget::new(config);
//!
//! // 100 first attempts, all failing: 5 retries from the floor, 10 from the ratio.
//! let mut retries = 0;
//! for call in 0..100u64 {
//!     let now_nanos = call * 1_000_000;
//!     budget.deposit(now_nanos);
//!     while budget.try_withdraw(now_nanos) {
//!         retries += 1;
//!     }
//! }
//! assert_eq!(retries, 15);
//! # Ok::<(), fusebox_core::ConfigError>(())
//! ```

use std::time::Duration;

use crate::ConfigError;
use crate::error::check;

mod algorithm;
mod ledger;
mod shared;

pub use ledger::BudgetLedger;
pub use shared::RetryBudget;

/// The validated settings of a retry budget.
///
/// ```
/// use fusebox_core::budget::BudgetConfig;
/// use std::time::Duration;
///
/// let config = BudgetConfig::default();
/// assert_eq!(config.ratio(), 0.2);
/// assert_eq!(config.min_retries_per_second(), 10.0);
/// assert_eq!(config.window(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "repr::BudgetConfigRepr", into = "repr::BudgetConfigRepr")
)]
pub struct BudgetConfig {
    ratio: f64,
    min_retries_per_second: f64,
    window: Duration,
}

impl Default for BudgetConfig {
    /// A ratio of 0.2, 10 retries per second and a 10 s window.
    ///
    /// ```
    /// use fusebox_core::budget::BudgetConfig;
    /// assert_eq!(BudgetConfig::default(), BudgetConfig::builder().build()?);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    fn default() -> Self {
        BudgetConfig {
            ratio: 0.2,
            min_retries_per_second: 10.0,
            window: Duration::from_secs(10),
        }
    }
}

impl BudgetConfig {
    /// A builder starting from the defaults.
    ///
    /// ```
    /// use fusebox_core::budget::BudgetConfig;
    ///
    /// let config = BudgetConfig::builder().ratio(0.5).build()?;
    /// assert_eq!(config.ratio(), 0.5);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder() -> BudgetConfigBuilder {
        BudgetConfigBuilder {
            config: BudgetConfig::default(),
        }
    }

    /// Retries allowed per first attempt: 0.2 allows one retry per five first attempts.
    ///
    /// ```
    /// use fusebox_core::budget::BudgetConfig;
    /// assert_eq!(BudgetConfig::builder().ratio(1.0).build()?.ratio(), 1.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// Retries per second allowed whatever the traffic.
    ///
    /// ```
    /// use fusebox_core::budget::BudgetConfig;
    /// let config = BudgetConfig::builder().min_retries_per_second(0.0).build()?;
    /// assert_eq!(config.min_retries_per_second(), 0.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn min_retries_per_second(&self) -> f64 {
        self.min_retries_per_second
    }

    /// How long deposits and withdrawals count.
    ///
    /// ```
    /// use fusebox_core::budget::BudgetConfig;
    /// use std::time::Duration;
    /// let config = BudgetConfig::builder().window(Duration::from_secs(60)).build()?;
    /// assert_eq!(config.window(), Duration::from_secs(60));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn window(&self) -> Duration {
        self.window
    }
}

/// Builds a [`BudgetConfig`]; [`build`](BudgetConfigBuilder::build) validates every setting.
///
/// ```
/// use fusebox_core::budget::BudgetConfig;
///
/// let err = BudgetConfig::builder().ratio(f64::NAN).build().unwrap_err();
/// assert_eq!(err.field(), Some("ratio"));
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct BudgetConfigBuilder {
    config: BudgetConfig,
}

impl BudgetConfigBuilder {
    /// Retries allowed per first attempt, within `[0, 1000]` (default 0.2). Kept to six decimal
    /// places.
    ///
    /// ```
    /// use fusebox_core::budget::BudgetConfig;
    ///
    /// assert!(BudgetConfig::builder().ratio(0.0).build().is_ok());
    /// assert!(BudgetConfig::builder().ratio(1000.5).build().is_err());
    /// ```
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.config.ratio = ratio;
        self
    }

    /// Retries per second allowed whatever the traffic: finite and not negative (default 10).
    ///
    /// ```
    /// use fusebox_core::budget::BudgetConfig;
    ///
    /// let err = BudgetConfig::builder().min_retries_per_second(-1.0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("min_retries_per_second"));
    /// ```
    pub fn min_retries_per_second(mut self, retries: f64) -> Self {
        self.config.min_retries_per_second = retries;
        self
    }

    /// How long deposits and withdrawals count: longer than zero (default 10 s).
    ///
    /// ```
    /// use fusebox_core::budget::BudgetConfig;
    /// use std::time::Duration;
    ///
    /// let err = BudgetConfig::builder().window(Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.field(), Some("window"));
    /// ```
    pub fn window(mut self, window: Duration) -> Self {
        self.config.window = window;
        self
    }

    /// Validates the settings. The error names the first offending field.
    ///
    /// ```
    /// use fusebox_core::budget::BudgetConfig;
    ///
    /// let config = BudgetConfig::builder().ratio(0.1).min_retries_per_second(1.0).build()?;
    /// assert_eq!((config.ratio(), config.min_retries_per_second()), (0.1, 1.0));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<BudgetConfig, ConfigError> {
        let BudgetConfig {
            ratio,
            min_retries_per_second,
            window,
        } = self.config;
        let ratio = check::non_negative("ratio", ratio)?;
        if ratio > MAX_RATIO {
            return Err(ConfigError::invalid(
                "ratio",
                format!("must be within [0, {MAX_RATIO}], got {ratio}"),
            ));
        }
        check::non_negative("min_retries_per_second", min_retries_per_second)?;
        check::nonzero_duration("window", window)?;
        Ok(self.config)
    }
}

/// Past a thousand retries per call, a budget no longer protects anything.
const MAX_RATIO: f64 = 1000.0;

#[cfg(feature = "serde")]
mod repr {
    //! The serialized form. Deserializing goes through the builder, so a configuration file is
    //! validated exactly like code; missing keys take the defaults.

    use super::BudgetConfig;
    use crate::ConfigError;
    use std::time::Duration;

    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(default)]
    pub(super) struct BudgetConfigRepr {
        ratio: f64,
        min_retries_per_second: f64,
        #[serde(with = "crate::duration::serde_human")]
        window: Duration,
    }

    impl Default for BudgetConfigRepr {
        fn default() -> Self {
            BudgetConfig::default().into()
        }
    }

    impl TryFrom<BudgetConfigRepr> for BudgetConfig {
        type Error = ConfigError;

        fn try_from(repr: BudgetConfigRepr) -> Result<Self, ConfigError> {
            BudgetConfig::builder()
                .ratio(repr.ratio)
                .min_retries_per_second(repr.min_retries_per_second)
                .window(repr.window)
                .build()
        }
    }

    impl From<BudgetConfig> for BudgetConfigRepr {
        fn from(config: BudgetConfig) -> Self {
            BudgetConfigRepr {
                ratio: config.ratio,
                min_retries_per_second: config.min_retries_per_second,
                window: config.window,
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
