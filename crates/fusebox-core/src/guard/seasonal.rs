//! Seasonal baseline: one EWMA per hour of the week.

use super::ewma::{EwmaBaseline, EwmaConfig, EwmaReading};
use super::hour::HourOfWeek;
use crate::ConfigError;

/// One [`EwmaBaseline`] per hour of the week, so each value is judged against the same hour in
/// earlier weeks.
///
/// Every bucket starts from the same cold-start seed; a bucket's first value is judged against
/// that seed. With the `serde` feature it serializes as `buckets`, a list of 168 baselines
/// starting with Monday 00:00.
///
/// ```
/// use fusebox_core::guard::{EwmaConfig, HourOfWeek, SeasonalBaseline};
///
/// let config = EwmaConfig::default();
/// let mut baselines = SeasonalBaseline::seeded(100.0)?;
/// let monday_nine = HourOfWeek::from_weekday_hour(0, 9)?;
/// baselines.observe(&config, monday_nine, 200.0)?;
/// assert_eq!(baselines.bucket(monday_nine).value(), 110.0);
/// assert_eq!(baselines.bucket(HourOfWeek::new(10)?).value(), 100.0);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "SeasonalRepr", into = "SeasonalRepr")
)]
pub struct SeasonalBaseline {
    buckets: Box<[EwmaBaseline; HourOfWeek::COUNT]>,
}

impl SeasonalBaseline {
    /// Every bucket starts at `global_average`, with no values observed.
    ///
    /// # Errors
    /// `global_average` is negative or not finite.
    ///
    /// ```
    /// use fusebox_core::guard::{HourOfWeek, SeasonalBaseline};
    ///
    /// let baselines = SeasonalBaseline::seeded(12.0)?;
    /// assert_eq!(baselines.bucket(HourOfWeek::new(100)?).value(), 12.0);
    /// assert_eq!(
    ///     SeasonalBaseline::seeded(f64::NAN).unwrap_err().field(),
    ///     Some("global_average"),
    /// );
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn seeded(global_average: f64) -> Result<Self, ConfigError> {
        let seed = EwmaBaseline::seeded(global_average)?;
        Ok(SeasonalBaseline {
            buckets: Box::new([seed; HourOfWeek::COUNT]),
        })
    }

    /// The baseline of one hour of the week.
    ///
    /// ```
    /// use fusebox_core::guard::{HourOfWeek, SeasonalBaseline};
    ///
    /// let baselines = SeasonalBaseline::seeded(3.0)?;
    /// assert_eq!(baselines.bucket(HourOfWeek::new(0)?).observations(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn bucket(&self, hour: HourOfWeek) -> &EwmaBaseline {
        // In bounds: an HourOfWeek is always below COUNT, the array's length.
        &self.buckets[usize::from(hour.index())]
    }

    /// Judges `current_spend` against the baseline of `hour` without changing it.
    ///
    /// # Errors
    /// As [`EwmaBaseline::assess`].
    ///
    /// ```
    /// use fusebox_core::guard::{EwmaConfig, HourOfWeek, SeasonalBaseline};
    ///
    /// let baselines = SeasonalBaseline::seeded(10.0)?;
    /// let hour = HourOfWeek::new(5)?;
    /// let reading = baselines.assess(&EwmaConfig::default(), hour, 31.0)?;
    /// assert!(reading.is_anomaly);
    /// assert_eq!(reading.bucket, Some(hour));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn assess(
        &self,
        config: &EwmaConfig,
        hour: HourOfWeek,
        current_spend: f64,
    ) -> Result<EwmaReading, ConfigError> {
        let mut reading = self.bucket(hour).assess(config, current_spend)?;
        reading.bucket = Some(hour);
        Ok(reading)
    }

    /// Judges `current_spend` against the baseline of `hour`, then folds it into that bucket only.
    ///
    /// # Errors
    /// As [`EwmaBaseline::assess`]; on error nothing changes.
    ///
    /// ```
    /// use fusebox_core::guard::{EwmaConfig, HourOfWeek, SeasonalBaseline};
    ///
    /// let mut baselines = SeasonalBaseline::seeded(10.0)?;
    /// let hour = HourOfWeek::from_unix_seconds(1_704_067_200)?; // Monday 2024-01-01 00:00 UTC
    /// let reading = baselines.observe(&EwmaConfig::default(), hour, 20.0)?;
    /// assert_eq!(reading.updated_baseline, 11.0);
    /// assert_eq!(baselines.bucket(hour).observations(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn observe(
        &mut self,
        config: &EwmaConfig,
        hour: HourOfWeek,
        current_spend: f64,
    ) -> Result<EwmaReading, ConfigError> {
        let mut reading = self.buckets[usize::from(hour.index())].observe(config, current_spend)?;
        reading.bucket = Some(hour);
        Ok(reading)
    }
}

/// Serialized form of [`SeasonalBaseline`]; a list, since serde has no arrays of 168.
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
struct SeasonalRepr {
    buckets: Vec<EwmaBaseline>,
}

#[cfg(feature = "serde")]
impl TryFrom<SeasonalRepr> for SeasonalBaseline {
    type Error = ConfigError;

    fn try_from(repr: SeasonalRepr) -> Result<Self, ConfigError> {
        let count = repr.buckets.len();
        let buckets =
            <[EwmaBaseline; HourOfWeek::COUNT]>::try_from(repr.buckets).map_err(|_| {
                ConfigError::invalid(
                    "buckets",
                    format!("must hold {} entries, got {count}", HourOfWeek::COUNT),
                )
            })?;
        Ok(SeasonalBaseline {
            buckets: Box::new(buckets),
        })
    }
}

#[cfg(feature = "serde")]
impl From<SeasonalBaseline> for SeasonalRepr {
    fn from(baseline: SeasonalBaseline) -> Self {
        SeasonalRepr {
            buckets: baseline.buckets.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-01 00:00:00 UTC, a Monday.
    const MONDAY: i64 = 1_704_067_200;
    const HOUR: i64 = 3600;

    fn hour(weekday: u8, hour: u8) -> HourOfWeek {
        HourOfWeek::from_weekday_hour(weekday, hour).unwrap()
    }
    /// Eight weeks of hourly spend: a Monday 9:00 rush of 250, quiet hours of 20.
    fn eight_weeks() -> impl Iterator<Item = (i64, f64)> {
        (0..8 * 168).map(|step| {
            let spend = if step % 168 == 9 { 250.0 } else { 20.0 };
            (MONDAY + step * HOUR, spend)
        })
    }

    #[test]
    fn monday_nine_is_judged_against_earlier_mondays_not_sunday_night() {
        let config = EwmaConfig::default();
        let mut seasonal = SeasonalBaseline::seeded(100.0).unwrap();
        let mut plain = EwmaBaseline::seeded(100.0).unwrap();
        for (seconds, spend) in eight_weeks() {
            let bucket = HourOfWeek::from_unix_seconds(seconds).unwrap();
            assert!(!seasonal.observe(&config, bucket, spend).unwrap().is_anomaly);
            plain.observe(&config, spend).unwrap();
        }
        let ninth_monday = MONDAY + 8 * 168 * HOUR;
        let monday_nine = HourOfWeek::from_unix_seconds(ninth_monday + 9 * HOUR).unwrap();
        let sunday_night = HourOfWeek::from_unix_seconds(ninth_monday - HOUR).unwrap();
        assert_eq!((monday_nine, sunday_night), (hour(0, 9), hour(6, 23)));

        // A busy Monday morning is normal for Monday morning...
        let busy = seasonal.assess(&config, monday_nine, 500.0).unwrap();
        assert!(!busy.is_anomaly, "{busy:?}");
        assert!((busy.baseline - 185.429_918_5).abs() < 1e-9);
        // ...though the same value at Sunday 23:00, or against one flat baseline, alarms.
        assert!(
            seasonal
                .assess(&config, sunday_night, 500.0)
                .unwrap()
                .is_anomaly
        );
        assert!(plain.assess(&config, 500.0).unwrap().is_anomaly);

        // A real Monday spike still alarms, and the event says which hour.
        let spike = seasonal.observe(&config, monday_nine, 2000.0).unwrap();
        let event = spike.anomaly(()).unwrap();
        assert_eq!(event.bucket, Some(monday_nine));
        assert_eq!(event.baseline, busy.baseline);
    }

    #[test]
    fn cold_start_buckets_judge_against_the_global_average() {
        let config = EwmaConfig::default();
        let quiet = [90.0, 120.0, 105.0, 80.0];
        let mut seeded = SeasonalBaseline::seeded(100.0).unwrap();
        let mut from_zero = SeasonalBaseline::seeded(0.0).unwrap();
        for (offset, &spend) in quiet.iter().enumerate() {
            let bucket = HourOfWeek::from_unix_seconds(MONDAY + offset as i64 * HOUR).unwrap();
            let reading = seeded.observe(&config, bucket, spend).unwrap();
            assert_eq!(reading.observations, 0);
            assert!(!reading.is_anomaly);
            assert!(
                from_zero
                    .observe(&config, bucket, spend)
                    .unwrap()
                    .is_anomaly
            );
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn round_trips_through_toml_and_rejects_a_wrong_bucket_count() {
        let config = EwmaConfig::default();
        let mut seasonal = SeasonalBaseline::seeded(50.0).unwrap();
        for (seconds, spend) in eight_weeks().take(200) {
            let at = HourOfWeek::from_unix_seconds(seconds).unwrap();
            seasonal.observe(&config, at, spend).unwrap();
        }
        let text = toml::to_string(&seasonal).unwrap();
        assert_eq!(toml::from_str::<SeasonalBaseline>(&text).unwrap(), seasonal);

        let err = toml::from_str::<SeasonalBaseline>("buckets = []").unwrap_err();
        assert!(
            err.to_string().contains("must hold 168 entries, got 0"),
            "{err}"
        );
    }
}
