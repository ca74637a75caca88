//! Property tests: no finite input makes a check panic, and every reported number is finite.

use super::*;
use proptest::prelude::*;

/// Any finite f64, including zero, subnormals and extremes of both signs.
fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        proptest::num::f64::POSITIVE
            | proptest::num::f64::NEGATIVE
            | proptest::num::f64::NORMAL
            | proptest::num::f64::SUBNORMAL
            | proptest::num::f64::ZERO,
        // Ordinary spend, so most cases get past validation.
        0.0..1e6f64,
        Just(f64::MAX),
        Just(0.0),
    ]
}

proptest! {
    #[test]
    fn budget_check_never_panics_and_reports_finite_numbers(
        spend in finite(), limit in finite(), ratio in prop_oneof![finite(), 0.0..=1.0f64],
    ) {
        if let Ok(status) = SpendLimitCheck::new(limit).with_warning_ratio(ratio).evaluate(spend) {
            prop_assert!(status.usage_ratio.is_finite() && status.usage_ratio >= 0.0);
            prop_assert!(status.remaining.is_finite() && status.remaining >= 0.0);
            prop_assert_eq!(status.is_breached, spend >= limit);
        }
    }

    #[test]
    fn spike_check_never_panics_and_reports_finite_numbers(
        series in proptest::collection::vec(finite(), 0..12),
        multiplier in prop_oneof![finite(), 1.0..10.0f64],
        min_baseline in finite(),
    ) {
        let check = SpikeCheck::default()
            .with_multiplier(multiplier)
            .with_min_baseline(min_baseline);
        if let Ok(report) = check.evaluate(&series) {
            prop_assert!(report.baseline.is_finite() && report.threshold.is_finite());
            prop_assert!(report.threshold >= report.baseline.max(min_baseline));
            // The mean of the history lies within its range.
            let history = &series[..series.len() - 1];
            let low = history.iter().copied().fold(f64::INFINITY, f64::min);
            let high = history.iter().copied().fold(0.0, f64::max);
            prop_assert!(low <= report.baseline && report.baseline <= high);
        }
    }

    #[test]
    fn ewma_never_panics_and_stays_between_old_baseline_and_new_value(
        seed in finite(),
        values in proptest::collection::vec(finite(), 0..24),
        alpha in prop_oneof![finite(), 0.0..=1.0f64],
        multiplier in finite(),
        unix_seconds in any::<i64>(),
    ) {
        let config = EwmaConfig { alpha, multiplier };
        let hour = HourOfWeek::from_unix_seconds(unix_seconds);
        prop_assert_eq!(hour.is_ok(), unix_seconds >= 0);
        let hour = hour.unwrap_or(HourOfWeek::new(0).unwrap());
        let (Ok(mut plain), Ok(mut seasonal)) =
            (EwmaBaseline::seeded(seed), SeasonalBaseline::seeded(seed))
        else {
            return Ok(());
        };
        let mut keyed = KeyedBaselines::new();
        for value in values {
            let before = plain.value();
            let reading = plain.observe(&config, value);
            prop_assert_eq!(&seasonal.observe(&config, hour, value).ok().map(|r| r.updated_baseline),
                &reading.as_ref().ok().map(|r| r.updated_baseline));
            let _ = keyed.observe(&config, "k", hour, value, seed);
            let Ok(reading) = reading else { continue };
            prop_assert!(reading.threshold.is_finite());
            prop_assert!(reading.updated_baseline.is_finite());
            prop_assert!(reading.ratio.is_none_or(f64::is_finite));
            prop_assert!(reading.updated_baseline >= before.min(value));
            prop_assert!(reading.updated_baseline <= before.max(value));
            prop_assert_eq!(reading.anomaly(()).is_some(), reading.is_anomaly);
        }
    }
}
