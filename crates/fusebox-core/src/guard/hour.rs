//! Hour-of-week buckets in UTC, for baselines that follow the working week.

use crate::ConfigError;
use std::fmt;

const HOURS_PER_DAY: u8 = 24;
const DAYS_PER_WEEK: u8 = 7;
const SECONDS_PER_HOUR: u64 = 3600;
/// 1970-01-01, the Unix epoch, was a Thursday: three days after a Monday.
const EPOCH_HOUR_OF_WEEK: u64 = 3 * HOURS_PER_DAY as u64;
const WEEKDAY_NAMES: [&str; DAYS_PER_WEEK as usize] =
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// An hour of the week in UTC, from 0 (Monday 00:00) to 167 (Sunday 23:00).
///
/// Spend follows the working week, so Monday 9:00 is best compared with earlier Mondays at
/// 9:00 rather than with Sunday night.
///
/// ```
/// use fusebox_core::guard::HourOfWeek;
///
/// let monday_nine = HourOfWeek::from_weekday_hour(0, 9)?;
/// assert_eq!(monday_nine.index(), 9);
/// assert_eq!(monday_nine.to_string(), "Mon 09:00");
/// // 2024-01-01 09:30 UTC was a Monday.
/// assert_eq!(HourOfWeek::from_unix_seconds(1_704_101_400)?, monday_nine);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "u8", into = "u8")
)]
pub struct HourOfWeek(u8);

impl HourOfWeek {
    /// Number of hours in a week, and of buckets in a [`SeasonalBaseline`](super::SeasonalBaseline).
    pub const COUNT: usize = HOURS_PER_DAY as usize * DAYS_PER_WEEK as usize;

    /// The bucket with this index, 0 (Monday 00:00) to 167 (Sunday 23:00).
    ///
    /// # Errors
    /// `index` is 168 or more (field `hour_of_week`).
    ///
    /// ```
    /// use fusebox_core::guard::HourOfWeek;
    ///
    /// assert_eq!(HourOfWeek::new(167)?.to_string(), "Sun 23:00");
    /// assert!(HourOfWeek::new(168).is_err());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(index: u8) -> Result<Self, ConfigError> {
        if usize::from(index) < Self::COUNT {
            Ok(HourOfWeek(index))
        } else {
            Err(ConfigError::invalid(
                "hour_of_week",
                format!("must be within [0, {}], got {index}", Self::COUNT - 1),
            ))
        }
    }

    /// The bucket for `hour` (0 to 23) on `weekday` (0 = Monday to 6 = Sunday).
    ///
    /// # Errors
    /// `weekday` is 7 or more, or `hour` is 24 or more; the error names that field.
    ///
    /// ```
    /// use fusebox_core::guard::HourOfWeek;
    ///
    /// assert_eq!(HourOfWeek::from_weekday_hour(6, 23)?.index(), 167);
    /// assert_eq!(HourOfWeek::from_weekday_hour(0, 24).unwrap_err().field(), Some("hour"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn from_weekday_hour(weekday: u8, hour: u8) -> Result<Self, ConfigError> {
        if weekday >= DAYS_PER_WEEK {
            return Err(ConfigError::invalid(
                "weekday",
                format!(
                    "must be within [0, {}] (0 is Monday), got {weekday}",
                    DAYS_PER_WEEK - 1
                ),
            ));
        }
        if hour >= HOURS_PER_DAY {
            return Err(ConfigError::invalid(
                "hour",
                format!("must be within [0, {}], got {hour}", HOURS_PER_DAY - 1),
            ));
        }
        Ok(HourOfWeek(weekday * HOURS_PER_DAY + hour))
    }

    /// The bucket a Unix timestamp (seconds since 1970-01-01 00:00 UTC) falls in, in UTC.
    ///
    /// # Errors
    /// `unix_seconds` is negative (field `unix_seconds`): spend records do not predate 1970, so
    /// a negative stamp points at a unit or sign mistake upstream rather than at a real hour.
    ///
    /// ```
    /// use fusebox_core::guard::HourOfWeek;
    ///
    /// assert_eq!(HourOfWeek::from_unix_seconds(0)?.to_string(), "Thu 00:00");
    /// assert!(HourOfWeek::from_unix_seconds(-1).is_err());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn from_unix_seconds(unix_seconds: i64) -> Result<Self, ConfigError> {
        let seconds = u64::try_from(unix_seconds).map_err(|_| {
            ConfigError::invalid(
                "unix_seconds",
                format!("must not be negative, got {unix_seconds}"),
            )
        })?;
        let index = (seconds / SECONDS_PER_HOUR + EPOCH_HOUR_OF_WEEK) % Self::COUNT as u64;
        // Below COUNT (168), so it fits in a u8.
        Ok(HourOfWeek(index as u8))
    }

    /// The bucket index, 0 to 167.
    ///
    /// ```
    /// use fusebox_core::guard::HourOfWeek;
    ///
    /// assert_eq!(HourOfWeek::from_weekday_hour(1, 0)?.index(), 24);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn index(self) -> u8 {
        self.0
    }

    /// The day, 0 (Monday) to 6 (Sunday).
    ///
    /// ```
    /// use fusebox_core::guard::HourOfWeek;
    ///
    /// assert_eq!(HourOfWeek::new(30)?.weekday(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn weekday(self) -> u8 {
        self.0 / HOURS_PER_DAY
    }

    /// The hour of the day, 0 to 23.
    ///
    /// ```
    /// use fusebox_core::guard::HourOfWeek;
    ///
    /// assert_eq!(HourOfWeek::new(30)?.hour(), 6);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn hour(self) -> u8 {
        self.0 % HOURS_PER_DAY
    }
}

impl TryFrom<u8> for HourOfWeek {
    type Error = ConfigError;

    fn try_from(index: u8) -> Result<Self, ConfigError> {
        HourOfWeek::new(index)
    }
}

impl From<HourOfWeek> for u8 {
    fn from(hour: HourOfWeek) -> u8 {
        hour.0
    }
}

impl fmt::Display for HourOfWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = WEEKDAY_NAMES
            .get(usize::from(self.weekday()))
            .copied()
            .unwrap_or("???");
        write!(f, "{day} {:02}:00", self.hour())
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

    #[test]
    fn unix_seconds_map_to_utc_hour_of_week() {
        let at = |seconds: i64| HourOfWeek::from_unix_seconds(seconds).unwrap();
        assert_eq!(at(0), hour(3, 0)); // the epoch was a Thursday
        assert_eq!(at(MONDAY), hour(0, 0));
        assert_eq!(at(MONDAY).index(), 0);
        assert_eq!(at(MONDAY + 9 * HOUR + 59 * 60 + 59), hour(0, 9));
        assert_eq!(at(MONDAY - 1), hour(6, 23));
        assert_eq!(at(MONDAY - 1).index(), 167);
        assert_eq!(at(MONDAY + 7 * 24 * HOUR), hour(0, 0));
        assert_eq!(at(i64::MAX).index(), ((i64::MAX / HOUR + 72) % 168) as u8);
    }

    #[test]
    fn weekday_and_hour_round_trip_through_the_index() {
        for index in 0..168u8 {
            let bucket = HourOfWeek::new(index).unwrap();
            assert_eq!(hour(bucket.weekday(), bucket.hour()), bucket);
        }
    }

    #[test]
    fn displays_day_and_hour() {
        assert_eq!(hour(0, 9).to_string(), "Mon 09:00");
        assert_eq!(hour(6, 23).to_string(), "Sun 23:00");
        assert_eq!(hour(4, 17).to_string(), "Fri 17:00");
    }

    #[test]
    fn invalid_hours_name_their_field() {
        assert_eq!(
            HourOfWeek::new(168).unwrap_err().field(),
            Some("hour_of_week")
        );
        assert_eq!(
            HourOfWeek::new(u8::MAX).unwrap_err().field(),
            Some("hour_of_week")
        );
        let err = HourOfWeek::from_weekday_hour(7, 0).unwrap_err();
        assert_eq!(err.field(), Some("weekday"));
        let err = HourOfWeek::from_weekday_hour(0, 24).unwrap_err();
        assert_eq!(err.field(), Some("hour"));
        let err = HourOfWeek::from_unix_seconds(-1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `unix_seconds`: must not be negative, got -1"
        );
    }

    #[cfg(feature = "serde")]
    #[test]
    fn serializes_as_its_index_and_rejects_out_of_range() {
        use std::collections::BTreeMap;

        let bucket = BTreeMap::from([("bucket", hour(0, 9))]);
        assert_eq!(toml::to_string(&bucket).unwrap(), "bucket = 9\n");
        let err = toml::from_str::<BTreeMap<String, HourOfWeek>>("bucket = 168").unwrap_err();
        assert!(err.to_string().contains("invalid `hour_of_week`"), "{err}");
    }
}
