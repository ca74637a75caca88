//! Budget check: how much of a spending limit is used.

use super::saturate;
use crate::ConfigError;
use crate::error::check;

/// A spending limit and the share of it at which to warn.
///
/// Plain settings with public fields; [`evaluate`](Self::evaluate) validates them on every call,
/// so a value loaded from a config file is checked the same way as one built in code.
///
/// ```
/// use fusebox_core::guard::SpendLimitCheck;
///
/// let check = SpendLimitCheck::new(1000.0).with_warning_ratio(0.8);
/// assert_eq!(check.limit, 1000.0);
/// assert_eq!(check.warning_ratio, 0.8);
/// assert!(check.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SpendLimitCheck {
    /// The spending limit; must be finite and greater than zero.
    pub limit: f64,
    /// Usage ratio at or above which the budget is in warning; within `(0, 1]`.
    #[cfg_attr(feature = "serde", serde(default = "default_warning_ratio"))]
    pub warning_ratio: f64,
}

#[cfg(feature = "serde")]
fn default_warning_ratio() -> f64 {
    SpendLimitCheck::DEFAULT_WARNING_RATIO
}

impl SpendLimitCheck {
    /// Warning ratio used by [`new`](Self::new): warn once 90% of the limit is spent.
    pub const DEFAULT_WARNING_RATIO: f64 = 0.9;

    /// A check against `limit` with the default warning ratio. Validated when evaluated.
    ///
    /// ```
    /// use fusebox_core::guard::SpendLimitCheck;
    ///
    /// let check = SpendLimitCheck::new(50.0);
    /// assert_eq!(check.warning_ratio, SpendLimitCheck::DEFAULT_WARNING_RATIO);
    /// ```
    pub fn new(limit: f64) -> Self {
        SpendLimitCheck {
            limit,
            warning_ratio: Self::DEFAULT_WARNING_RATIO,
        }
    }

    /// Replaces the warning ratio.
    ///
    /// ```
    /// use fusebox_core::guard::SpendLimitCheck;
    ///
    /// let status = SpendLimitCheck::new(100.0).with_warning_ratio(0.5).evaluate(60.0)?;
    /// assert!(status.is_warning);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn with_warning_ratio(mut self, warning_ratio: f64) -> Self {
        self.warning_ratio = warning_ratio;
        self
    }

    /// Checks the settings: `limit` finite and `> 0`, `warning_ratio` within `(0, 1]`.
    ///
    /// # Errors
    /// The first invalid field, by name.
    ///
    /// ```
    /// use fusebox_core::guard::SpendLimitCheck;
    ///
    /// let err = SpendLimitCheck::new(0.0).validate().unwrap_err();
    /// assert_eq!(err.field(), Some("limit"));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::positive("limit", self.limit)?;
        check::unit_open_low("warning_ratio", self.warning_ratio)?;
        Ok(())
    }

    /// Judges `current_spend` against the limit.
    ///
    /// A breached budget is also in warning, since its usage ratio is at least 1.
    ///
    /// # Errors
    /// The settings are invalid (see [`validate`](Self::validate)), or `current_spend` is
    /// negative or not finite.
    ///
    /// ```
    /// use fusebox_core::guard::SpendLimitCheck;
    ///
    /// let status = SpendLimitCheck::new(1000.0).evaluate(920.0)?;
    /// assert_eq!(status.usage_ratio, 0.92);
    /// assert_eq!(status.remaining, 80.0);
    /// assert!(status.is_warning);
    /// assert!(!status.is_breached);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn evaluate(&self, current_spend: f64) -> Result<SpendLimitStatus, ConfigError> {
        self.validate()?;
        check::non_negative("current_spend", current_spend)?;
        let usage_ratio = saturate(current_spend / self.limit);
        Ok(SpendLimitStatus {
            current_spend,
            limit: self.limit,
            warning_ratio: self.warning_ratio,
            usage_ratio,
            remaining: (self.limit - current_spend).max(0.0),
            is_warning: usage_ratio >= self.warning_ratio,
            is_breached: current_spend >= self.limit,
        })
    }
}

/// The outcome of a [`SpendLimitCheck`], with the inputs it was judged on.
///
/// ```
/// use fusebox_core::guard::SpendLimitCheck;
///
/// let status = SpendLimitCheck::new(1000.0).evaluate(1200.0)?;
/// assert!(status.is_breached && status.is_warning);
/// assert_eq!(status.remaining, 0.0);
/// assert_eq!(status.usage_ratio, 1.2);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SpendLimitStatus {
    /// The spend that was judged.
    pub current_spend: f64,
    /// The limit it was judged against.
    pub limit: f64,
    /// The warning ratio in force.
    pub warning_ratio: f64,
    /// `current_spend / limit`; above 1 once the limit is exceeded.
    pub usage_ratio: f64,
    /// What is left before the limit, never below zero.
    pub remaining: f64,
    /// `usage_ratio >= warning_ratio`.
    pub is_warning: bool,
    /// `current_spend >= limit`.
    pub is_breached: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<SpendLimitStatus, ConfigError>) -> &'static str {
        result.unwrap_err().field().unwrap()
    }

    #[test]
    fn nine_hundred_twenty_of_a_thousand_warns_without_breaching() {
        let status = SpendLimitCheck::new(1000.0).evaluate(920.0).unwrap();
        assert_eq!(
            status,
            SpendLimitStatus {
                current_spend: 920.0,
                limit: 1000.0,
                warning_ratio: 0.9,
                usage_ratio: 0.92,
                remaining: 80.0,
                is_warning: true,
                is_breached: false,
            }
        );
    }

    #[test]
    fn warning_starts_exactly_at_the_ratio() {
        let check = SpendLimitCheck::new(1000.0);
        assert!(check.evaluate(900.0).unwrap().is_warning);
        assert!(!check.evaluate(899.0).unwrap().is_warning);
    }

    #[test]
    fn breach_starts_exactly_at_the_limit() {
        let check = SpendLimitCheck::new(1000.0);
        let at_limit = check.evaluate(1000.0).unwrap();
        assert!(at_limit.is_breached && at_limit.is_warning);
        assert_eq!(at_limit.remaining, 0.0);
        assert!(!check.evaluate(999.99).unwrap().is_breached);
    }

    #[test]
    fn zero_spend_is_quiet() {
        let status = SpendLimitCheck::new(10.0).evaluate(0.0).unwrap();
        assert_eq!(status.usage_ratio, 0.0);
        assert_eq!(status.remaining, 10.0);
        assert!(!status.is_warning && !status.is_breached);
    }

    #[test]
    fn warning_ratio_of_one_warns_only_at_the_limit() {
        let check = SpendLimitCheck::new(100.0).with_warning_ratio(1.0);
        assert!(!check.evaluate(99.0).unwrap().is_warning);
        assert!(check.evaluate(100.0).unwrap().is_warning);
    }

    #[test]
    fn limit_must_be_positive_and_finite() {
        for limit in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(field_of(SpendLimitCheck::new(limit).evaluate(1.0)), "limit");
        }
    }

    #[test]
    fn warning_ratio_must_be_within_zero_exclusive_and_one() {
        for ratio in [0.0, -0.1, 1.01, f64::NAN, f64::INFINITY] {
            let result = SpendLimitCheck::new(100.0)
                .with_warning_ratio(ratio)
                .evaluate(1.0);
            assert_eq!(field_of(result), "warning_ratio");
        }
    }

    #[test]
    fn current_spend_must_be_non_negative_and_finite() {
        for spend in [-0.01, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                field_of(SpendLimitCheck::new(100.0).evaluate(spend)),
                "current_spend"
            );
        }
    }

    #[test]
    fn error_message_reads_like_other_validators() {
        let err = SpendLimitCheck::new(100.0).evaluate(-5.0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `current_spend`: must not be negative, got -5"
        );
    }

    #[test]
    fn huge_spend_on_tiny_limit_saturates_instead_of_overflowing() {
        let status = SpendLimitCheck::new(f64::MIN_POSITIVE)
            .evaluate(f64::MAX)
            .unwrap();
        assert_eq!(status.usage_ratio, f64::MAX);
        assert!(status.is_breached);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn round_trips_through_toml() {
        let status = SpendLimitCheck::new(1000.0).evaluate(920.0).unwrap();
        let text = toml::to_string(&status).unwrap();
        assert_eq!(toml::from_str::<SpendLimitStatus>(&text).unwrap(), status);

        let check: SpendLimitCheck = toml::from_str("limit = 250.0").unwrap();
        assert_eq!(check, SpendLimitCheck::new(250.0));
        let text = toml::to_string(&check).unwrap();
        assert_eq!(toml::from_str::<SpendLimitCheck>(&text).unwrap(), check);
    }
}
