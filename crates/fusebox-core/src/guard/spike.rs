//! Spike check: is the newest spend point far above the mean of the points before it.

use super::{between, saturate};
use crate::ConfigError;
use crate::error::check;

/// How far above its history the newest point of a series may go before it counts as a spike.
///
/// The threshold is `max(mean of history, min_baseline) * multiplier`. The floor keeps a
/// near-zero history (a new service, a quiet night) from flagging every small cost as a spike.
///
/// ```
/// use fusebox_core::guard::SpikeCheck;
///
/// let check = SpikeCheck::default().with_multiplier(2.0).with_min_baseline(10.0);
/// let report = check.evaluate(&[1.0, 2.0, 15.0])?;
/// assert_eq!(report.threshold, 20.0); // the floor of 10 wins over the mean of 1.5
/// assert!(!report.is_spike);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct SpikeCheck {
    /// Factor over the baseline above which the newest point is a spike; finite and `> 1`.
    pub multiplier: f64,
    /// Lowest baseline the threshold is computed from; finite and `>= 0`.
    pub min_baseline: f64,
}

impl Default for SpikeCheck {
    fn default() -> Self {
        SpikeCheck {
            multiplier: Self::DEFAULT_MULTIPLIER,
            min_baseline: 0.0,
        }
    }
}

impl SpikeCheck {
    /// Multiplier used by [`Default`]: a spike is more than 1.5 times the baseline.
    pub const DEFAULT_MULTIPLIER: f64 = 1.5;

    /// Replaces the multiplier.
    ///
    /// ```
    /// use fusebox_core::guard::SpikeCheck;
    ///
    /// let check = SpikeCheck::default().with_multiplier(3.0);
    /// assert!(!check.evaluate(&[100.0, 250.0])?.is_spike);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Replaces the minimum baseline.
    ///
    /// ```
    /// use fusebox_core::guard::SpikeCheck;
    ///
    /// let check = SpikeCheck::default().with_min_baseline(100.0);
    /// assert!(!check.evaluate(&[0.5, 0.5, 9.0])?.is_spike);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn with_min_baseline(mut self, min_baseline: f64) -> Self {
        self.min_baseline = min_baseline;
        self
    }

    /// Checks the settings: `multiplier` finite and `> 1`, `min_baseline` finite and `>= 0`.
    ///
    /// # Errors
    /// The first invalid field, by name.
    ///
    /// ```
    /// use fusebox_core::guard::SpikeCheck;
    ///
    /// let err = SpikeCheck::default().with_multiplier(1.0).validate().unwrap_err();
    /// assert_eq!(err.field(), Some("multiplier"));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::finite("multiplier", self.multiplier)?;
        if self.multiplier <= 1.0 {
            return Err(ConfigError::invalid(
                "multiplier",
                format!("must be greater than 1, got {}", self.multiplier),
            ));
        }
        check::non_negative("min_baseline", self.min_baseline)?;
        Ok(())
    }

    /// Judges the last point of `series` (oldest first, newest last) against the mean of the
    /// points before it.
    ///
    /// # Errors
    /// The settings are invalid (see [`validate`](Self::validate)), `series` has fewer than two
    /// points, or a point is negative or not finite (the message gives its index).
    ///
    /// ```
    /// use fusebox_core::guard::SpikeCheck;
    ///
    /// let report = SpikeCheck::default().evaluate(&[120.0, 125.0, 118.0, 260.0])?;
    /// assert_eq!(report.latest, 260.0);
    /// assert_eq!(report.baseline, 121.0);
    /// assert_eq!(report.threshold, 181.5);
    /// assert!(report.is_spike);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn evaluate(&self, series: &[f64]) -> Result<SpikeReport, ConfigError> {
        self.validate()?;
        let Some((&latest, history)) = series.split_last().filter(|(_, h)| !h.is_empty()) else {
            return Err(ConfigError::invalid(
                "series",
                format!("must hold at least 2 points, got {}", series.len()),
            ));
        };
        for (index, &point) in series.iter().enumerate() {
            check::non_negative("series", point).map_err(|err| at_index(err, index))?;
        }
        let baseline = mean(history);
        let threshold = saturate(baseline.max(self.min_baseline) * self.multiplier);
        Ok(SpikeReport {
            latest,
            baseline,
            threshold,
            multiplier: self.multiplier,
            min_baseline: self.min_baseline,
            is_spike: latest > threshold,
        })
    }
}

/// Prefixes a point's validation message with its position, since `field` names only the series.
fn at_index(err: ConfigError, index: usize) -> ConfigError {
    match err {
        ConfigError::Invalid { field, reason } => {
            ConfigError::invalid(field, format!("point at index {index} {reason}"))
        }
        other => other,
    }
}

/// Mean of finite, non-negative, non-empty `points`.
fn mean(points: &[f64]) -> f64 {
    // Exact up to 2^53 points, far beyond any slice that fits in memory.
    let count = points.len() as f64;
    let sum: f64 = points.iter().sum();
    let mean = if sum.is_finite() {
        sum / count
    } else {
        // The plain sum overflowed; dividing first keeps partial sums near f64::MAX at worst.
        points.iter().map(|point| point / count).sum()
    };
    let low = points.iter().copied().fold(f64::INFINITY, f64::min);
    let high = points.iter().copied().fold(0.0, f64::max);
    between(mean, low, high)
}

/// The outcome of a [`SpikeCheck`], with the settings it was judged by.
///
/// ```
/// use fusebox_core::guard::SpikeCheck;
///
/// let report = SpikeCheck::default().evaluate(&[100.0, 140.0])?;
/// assert_eq!(report.threshold, 150.0);
/// assert!(!report.is_spike);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SpikeReport {
    /// The newest point, the one judged.
    pub latest: f64,
    /// Mean of every point before the newest.
    pub baseline: f64,
    /// `max(baseline, min_baseline) * multiplier`.
    pub threshold: f64,
    /// The multiplier in force.
    pub multiplier: f64,
    /// The minimum baseline in force.
    pub min_baseline: f64,
    /// `latest > threshold`.
    pub is_spike: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(check: SpikeCheck, series: &[f64]) -> ConfigError {
        check.evaluate(series).unwrap_err()
    }

    #[test]
    fn reference_series_is_a_spike_with_exact_numbers() {
        let report = SpikeCheck::default()
            .evaluate(&[120.0, 125.0, 118.0, 260.0])
            .unwrap();
        assert_eq!(
            report,
            SpikeReport {
                latest: 260.0,
                baseline: 121.0,
                threshold: 181.5,
                multiplier: 1.5,
                min_baseline: 0.0,
                is_spike: true,
            }
        );
    }

    #[test]
    fn a_point_equal_to_the_threshold_is_not_a_spike() {
        let report = SpikeCheck::default().evaluate(&[100.0, 150.0]).unwrap();
        assert_eq!(report.threshold, 150.0);
        assert!(!report.is_spike);
        assert!(
            SpikeCheck::default()
                .evaluate(&[100.0, 150.5])
                .unwrap()
                .is_spike
        );
    }

    #[test]
    fn min_baseline_floors_the_threshold_only_when_above_the_mean() {
        let floored = SpikeCheck::default().with_min_baseline(50.0);
        let report = floored.evaluate(&[2.0, 4.0, 60.0]).unwrap();
        assert_eq!((report.baseline, report.threshold), (3.0, 75.0));
        assert!(!report.is_spike);

        let report = floored.evaluate(&[200.0, 200.0, 310.0]).unwrap();
        assert_eq!(report.threshold, 300.0);
        assert!(report.is_spike);
    }

    #[test]
    fn all_zero_history_makes_any_cost_a_spike_without_a_floor() {
        assert!(
            SpikeCheck::default()
                .evaluate(&[0.0, 0.0, 0.01])
                .unwrap()
                .is_spike
        );
        assert!(
            !SpikeCheck::default()
                .evaluate(&[0.0, 0.0])
                .unwrap()
                .is_spike
        );
    }

    #[test]
    fn fewer_than_two_points_is_rejected() {
        for series in [&[][..], &[5.0][..]] {
            let err = error_of(SpikeCheck::default(), series);
            assert_eq!(err.field(), Some("series"));
            assert!(err.to_string().contains("at least 2 points"), "{err}");
        }
    }

    #[test]
    fn multiplier_must_exceed_one_and_be_finite() {
        for multiplier in [1.0, 0.5, 0.0, -2.0, f64::NAN, f64::INFINITY] {
            let err = error_of(
                SpikeCheck::default().with_multiplier(multiplier),
                &[1.0, 2.0],
            );
            assert_eq!(err.field(), Some("multiplier"), "{multiplier}");
        }
    }

    #[test]
    fn min_baseline_must_be_non_negative_and_finite() {
        for floor in [-1.0, f64::NAN, f64::INFINITY] {
            let err = error_of(SpikeCheck::default().with_min_baseline(floor), &[1.0, 2.0]);
            assert_eq!(err.field(), Some("min_baseline"));
        }
    }

    #[test]
    fn bad_points_are_named_by_index() {
        let err = error_of(SpikeCheck::default(), &[1.0, 2.0, -3.0, 4.0]);
        assert_eq!(err.field(), Some("series"));
        assert_eq!(
            err.to_string(),
            "invalid `series`: point at index 2 must not be negative, got -3"
        );

        let err = error_of(SpikeCheck::default(), &[f64::NAN, 1.0]);
        assert_eq!(
            err.to_string(),
            "invalid `series`: point at index 0 must be a finite number, got NaN"
        );

        // The newest point is validated too.
        let err = error_of(SpikeCheck::default(), &[1.0, f64::INFINITY]);
        assert!(err.to_string().contains("point at index 1 "), "{err}");
    }

    #[test]
    fn huge_values_do_not_overflow_the_mean_or_threshold() {
        let report = SpikeCheck::default()
            .evaluate(&[f64::MAX, f64::MAX, f64::MAX, f64::MAX])
            .unwrap();
        assert_eq!(report.baseline, f64::MAX);
        assert_eq!(report.threshold, f64::MAX);
        assert!(!report.is_spike);
    }

    #[test]
    fn mean_of_equal_points_is_that_point() {
        // A plain sum gives 0.30000000000000004 / 3 = 0.10000000000000002 here.
        let report = SpikeCheck::default()
            .evaluate(&[0.1, 0.1, 0.1, 0.1])
            .unwrap();
        assert_eq!(report.baseline, 0.1);
        let report = SpikeCheck::default()
            .evaluate(&[f64::MAX, 0.0, 1.0])
            .unwrap();
        assert_eq!(report.baseline, f64::MAX / 2.0);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn round_trips_through_toml() {
        let report = SpikeCheck::default()
            .evaluate(&[120.0, 125.0, 118.0, 260.0])
            .unwrap();
        let text = toml::to_string(&report).unwrap();
        assert_eq!(toml::from_str::<SpikeReport>(&text).unwrap(), report);

        let check: SpikeCheck = toml::from_str("min_baseline = 5.0").unwrap();
        assert_eq!(check, SpikeCheck::default().with_min_baseline(5.0));
    }
}
