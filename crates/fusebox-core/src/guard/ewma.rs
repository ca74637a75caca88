//! EWMA baseline: an exponentially weighted moving average of spend, and the anomaly rule on it.

use super::hour::HourOfWeek;
use super::{between, saturate};
use crate::ConfigError;
use crate::error::check;

/// Settings of an EWMA baseline: how fast it follows spend, and how far above it is anomalous.
///
/// Kept apart from the baseline state so that persisted state stays valid when the settings
/// change; every update takes the settings as an argument.
///
/// ```
/// use fusebox_core::guard::EwmaConfig;
///
/// let config = EwmaConfig::default();
/// assert_eq!((config.alpha, config.multiplier), (0.1, 3.0));
/// assert!(config.with_alpha(0.0).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default)
)]
pub struct EwmaConfig {
    /// Weight of the newest value, within `(0, 1]`: `new = (1 - alpha) * previous + alpha * current`.
    pub alpha: f64,
    /// A value is anomalous when it exceeds `multiplier * baseline`; finite and `> 0`.
    ///
    /// Values of 1 or less flag ordinary spend, so in practice it is well above 1.
    pub multiplier: f64,
}

impl Default for EwmaConfig {
    fn default() -> Self {
        EwmaConfig {
            alpha: Self::DEFAULT_ALPHA,
            multiplier: Self::DEFAULT_MULTIPLIER,
        }
    }
}

impl EwmaConfig {
    /// Alpha used by [`Default`]: each value moves the baseline a tenth of the way.
    pub const DEFAULT_ALPHA: f64 = 0.1;
    /// Multiplier used by [`Default`]: anomalous above three times the baseline.
    pub const DEFAULT_MULTIPLIER: f64 = 3.0;

    /// Replaces alpha.
    ///
    /// ```
    /// use fusebox_core::guard::EwmaConfig;
    ///
    /// assert_eq!(EwmaConfig::default().with_alpha(0.5).alpha, 0.5);
    /// ```
    #[must_use]
    pub fn with_alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Replaces the anomaly multiplier.
    ///
    /// ```
    /// use fusebox_core::guard::EwmaConfig;
    ///
    /// assert_eq!(EwmaConfig::default().with_multiplier(5.0).multiplier, 5.0);
    /// ```
    #[must_use]
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Checks the settings: `alpha` within `(0, 1]`, `multiplier` finite and `> 0`.
    ///
    /// # Errors
    /// The first invalid field, by name.
    ///
    /// ```
    /// use fusebox_core::guard::EwmaConfig;
    ///
    /// let err = EwmaConfig::default().with_multiplier(f64::NAN).validate().unwrap_err();
    /// assert_eq!(err.field(), Some("multiplier"));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        check::unit_open_low("alpha", self.alpha)?;
        check::positive("multiplier", self.multiplier)?;
        Ok(())
    }
}

/// The running EWMA of one spend series, and how many values it has absorbed.
///
/// There is no zero-valued constructor on purpose: a baseline starting at zero flags the first
/// real values as anomalies. Seed it with a known average instead (for example the model's
/// average across all hours), which the first values then refine.
///
/// Anomalies are judged against the baseline *before* the current value is folded in, the usual
/// rule for detection: otherwise a spike would raise its own bar and partly hide itself.
///
/// With the `serde` feature the state serializes as `value` and `observations`, so callers can
/// persist it between runs; deserializing rejects a negative or non-finite `value`.
///
/// ```
/// use fusebox_core::guard::{EwmaBaseline, EwmaConfig};
///
/// let config = EwmaConfig::default();
/// let mut baseline = EwmaBaseline::seeded(100.0)?;
/// assert!(!baseline.observe(&config, 200.0)?.is_anomaly);
/// assert_eq!(baseline.value(), 110.0);
/// assert!(baseline.observe(&config, 400.0)?.is_anomaly); // above 3 * 110
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(try_from = "BaselineRepr", into = "BaselineRepr")
)]
pub struct EwmaBaseline {
    value: f64,
    observations: u64,
}

impl EwmaBaseline {
    /// A baseline starting at `global_average`, with no values observed yet.
    ///
    /// # Errors
    /// `global_average` is negative or not finite.
    ///
    /// ```
    /// use fusebox_core::guard::EwmaBaseline;
    ///
    /// let baseline = EwmaBaseline::seeded(42.0)?;
    /// assert_eq!((baseline.value(), baseline.observations()), (42.0, 0));
    /// assert!(EwmaBaseline::seeded(-1.0).is_err());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn seeded(global_average: f64) -> Result<Self, ConfigError> {
        check::non_negative("global_average", global_average)?;
        Ok(EwmaBaseline {
            value: global_average,
            observations: 0,
        })
    }

    /// The current baseline.
    ///
    /// ```
    /// use fusebox_core::guard::EwmaBaseline;
    ///
    /// assert_eq!(EwmaBaseline::seeded(7.5)?.value(), 7.5);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn value(&self) -> f64 {
        self.value
    }

    /// How many values have been folded in since seeding (saturating).
    ///
    /// ```
    /// use fusebox_core::guard::{EwmaBaseline, EwmaConfig};
    ///
    /// let mut baseline = EwmaBaseline::seeded(1.0)?;
    /// baseline.observe(&EwmaConfig::default(), 1.0)?;
    /// assert_eq!(baseline.observations(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn observations(&self) -> u64 {
        self.observations
    }

    /// Judges `current_spend` against this baseline without changing it: a dry run of
    /// [`observe`](Self::observe).
    ///
    /// # Errors
    /// The settings are invalid (see [`EwmaConfig::validate`]), or `current_spend` is negative
    /// or not finite.
    ///
    /// ```
    /// use fusebox_core::guard::{EwmaBaseline, EwmaConfig};
    ///
    /// let baseline = EwmaBaseline::seeded(100.0)?;
    /// let reading = baseline.assess(&EwmaConfig::default(), 350.0)?;
    /// assert!(reading.is_anomaly);
    /// assert_eq!(reading.updated_baseline, 125.0);
    /// assert_eq!(baseline.value(), 100.0); // untouched
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn assess(
        &self,
        config: &EwmaConfig,
        current_spend: f64,
    ) -> Result<EwmaReading, ConfigError> {
        config.validate()?;
        check::non_negative("current_spend", current_spend)?;
        let baseline = self.value;
        let threshold = saturate(config.multiplier * baseline);
        let updated_baseline = between(
            (1.0 - config.alpha) * baseline + config.alpha * current_spend,
            baseline.min(current_spend),
            baseline.max(current_spend),
        );
        Ok(EwmaReading {
            bucket: None,
            current_spend,
            baseline,
            observations: self.observations,
            threshold,
            ratio: (baseline > 0.0).then(|| saturate(current_spend / baseline)),
            updated_baseline,
            is_anomaly: current_spend > threshold,
        })
    }

    /// Judges `current_spend` against this baseline, then folds it in.
    ///
    /// # Errors
    /// As [`assess`](Self::assess); on error the baseline is left unchanged.
    ///
    /// ```
    /// use fusebox_core::guard::{EwmaBaseline, EwmaConfig};
    ///
    /// let mut baseline = EwmaBaseline::seeded(100.0)?;
    /// let config = EwmaConfig::default();
    /// baseline.observe(&config, 200.0)?;
    /// baseline.observe(&config, 200.0)?;
    /// assert_eq!(baseline.value(), 119.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn observe(
        &mut self,
        config: &EwmaConfig,
        current_spend: f64,
    ) -> Result<EwmaReading, ConfigError> {
        let reading = self.assess(config, current_spend)?;
        self.value = reading.updated_baseline;
        self.observations = self.observations.saturating_add(1);
        Ok(reading)
    }
}

/// Serialized form of [`EwmaBaseline`], validated on the way in.
#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
struct BaselineRepr {
    value: f64,
    observations: u64,
}

#[cfg(feature = "serde")]
impl TryFrom<BaselineRepr> for EwmaBaseline {
    type Error = ConfigError;

    fn try_from(repr: BaselineRepr) -> Result<Self, ConfigError> {
        check::non_negative("value", repr.value)?;
        Ok(EwmaBaseline {
            value: repr.value,
            observations: repr.observations,
        })
    }
}

#[cfg(feature = "serde")]
impl From<EwmaBaseline> for BaselineRepr {
    fn from(baseline: EwmaBaseline) -> Self {
        BaselineRepr {
            value: baseline.value,
            observations: baseline.observations,
        }
    }
}

/// One value judged against an EWMA baseline: the full record for an audit log.
///
/// ```
/// use fusebox_core::guard::{EwmaBaseline, EwmaConfig};
///
/// let reading = EwmaBaseline::seeded(50.0)?.assess(&EwmaConfig::default(), 100.0)?;
/// assert_eq!(reading.threshold, 150.0);
/// assert_eq!(reading.ratio, Some(2.0));
/// assert!(!reading.is_anomaly);
/// assert!(reading.anomaly(()).is_none());
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct EwmaReading {
    /// The hour-of-week bucket the value fell in, for seasonal baselines.
    pub bucket: Option<HourOfWeek>,
    /// The value judged.
    pub current_spend: f64,
    /// The baseline it was judged against, before folding it in.
    pub baseline: f64,
    /// How many values that baseline had absorbed; 0 means it was still the cold-start seed.
    pub observations: u64,
    /// `multiplier * baseline`.
    pub threshold: f64,
    /// `current_spend / baseline`; `None` when the baseline is zero.
    pub ratio: Option<f64>,
    /// The baseline after folding the value in.
    pub updated_baseline: f64,
    /// `current_spend > threshold`.
    pub is_anomaly: bool,
}

impl EwmaReading {
    /// The alert event for this reading, tagged with `key`, or `None` when it is not an anomaly.
    ///
    /// ```
    /// use fusebox_core::guard::{EwmaBaseline, EwmaConfig};
    ///
    /// let reading = EwmaBaseline::seeded(10.0)?.assess(&EwmaConfig::default(), 45.0)?;
    /// let event = reading.anomaly(("billing", "gpt-large")).unwrap();
    /// assert_eq!(event.key, ("billing", "gpt-large"));
    /// assert_eq!((event.baseline, event.threshold, event.ratio), (10.0, 30.0, Some(4.5)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn anomaly<K>(&self, key: K) -> Option<SpendAnomaly<K>> {
        self.is_anomaly.then_some(SpendAnomaly {
            key,
            bucket: self.bucket,
            current_spend: self.current_spend,
            baseline: self.baseline,
            threshold: self.threshold,
            ratio: self.ratio,
        })
    }
}

/// An alert-ready record of spend far above its baseline.
///
/// `K` identifies the series, for example `(service, model)`; use `()` when there is only one.
///
/// ```
/// use fusebox_core::guard::{EwmaBaseline, EwmaConfig, SpendAnomaly};
///
/// let reading = EwmaBaseline::seeded(0.0)?.assess(&EwmaConfig::default(), 1.0)?;
/// let event: SpendAnomaly<&str> = reading.anomaly("search").unwrap();
/// assert_eq!(event.ratio, None); // nothing to divide by: the baseline is zero
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SpendAnomaly<K = ()> {
    /// Which series the value belongs to.
    pub key: K,
    /// The hour-of-week bucket, for seasonal baselines.
    pub bucket: Option<HourOfWeek>,
    /// The anomalous value.
    pub current_spend: f64,
    /// The baseline it was judged against.
    pub baseline: f64,
    /// The threshold it exceeded.
    pub threshold: f64,
    /// `current_spend / baseline`; `None` when the baseline is zero.
    pub ratio: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observe_all(seed: f64, config: &EwmaConfig, values: &[f64]) -> Vec<EwmaReading> {
        let mut baseline = EwmaBaseline::seeded(seed).unwrap();
        values
            .iter()
            .map(|&value| baseline.observe(config, value).unwrap())
            .collect()
    }

    #[test]
    fn alpha_one_tenth_from_100_moves_to_110_then_119() {
        let readings = observe_all(100.0, &EwmaConfig::default(), &[200.0, 200.0, 200.0]);
        assert_eq!(readings[0].updated_baseline, 110.0);
        assert_eq!(readings[1].updated_baseline, 119.0);
        // 0.9 * 119 + 20 = 127.1, which binary floating point can only approximate.
        assert!((readings[2].updated_baseline - 127.1).abs() < 1e-12);
        // Each value is judged against the baseline from before it.
        let before: Vec<f64> = readings.iter().map(|r| r.baseline).collect();
        assert_eq!(before, [100.0, 110.0, 119.0]);
        assert_eq!(readings[2].observations, 2);
    }

    #[test]
    fn alpha_one_replaces_the_baseline_with_each_value() {
        let config = EwmaConfig::default().with_alpha(1.0);
        let readings = observe_all(5.0, &config, &[8.0, 2.0]);
        assert_eq!(readings[0].updated_baseline, 8.0);
        assert_eq!(readings[1].updated_baseline, 2.0);
    }

    #[test]
    fn half_alpha_sequence() {
        let config = EwmaConfig::default().with_alpha(0.5);
        let readings = observe_all(0.0, &config, &[8.0, 4.0, 0.0]);
        let baselines: Vec<f64> = readings.iter().map(|r| r.updated_baseline).collect();
        assert_eq!(baselines, [4.0, 4.0, 2.0]);
    }

    #[test]
    fn anomaly_is_judged_before_folding_in() {
        // Folded in first, 350 would lift the baseline to 125 and the bar to 375, hiding itself;
        // judged before, it clears the bar of 300.
        let config = EwmaConfig::default();
        let reading = EwmaBaseline::seeded(100.0)
            .unwrap()
            .assess(&config, 350.0)
            .unwrap();
        assert_eq!(reading.threshold, 300.0);
        assert!(reading.is_anomaly);
        assert_eq!(reading.updated_baseline, 125.0);
    }

    #[test]
    fn exactly_the_threshold_is_not_an_anomaly() {
        let baseline = EwmaBaseline::seeded(100.0).unwrap();
        let config = EwmaConfig::default();
        assert!(!baseline.assess(&config, 300.0).unwrap().is_anomaly);
        assert!(baseline.assess(&config, 300.01).unwrap().is_anomaly);
    }

    #[test]
    fn anomaly_event_carries_the_reading() {
        let reading = EwmaBaseline::seeded(100.0)
            .unwrap()
            .assess(&EwmaConfig::default(), 450.0)
            .unwrap();
        assert_eq!(
            reading.anomaly("svc"),
            Some(SpendAnomaly {
                key: "svc",
                bucket: None,
                current_spend: 450.0,
                baseline: 100.0,
                threshold: 300.0,
                ratio: Some(4.5),
            })
        );
    }

    #[test]
    fn cold_start_from_global_average_does_not_alarm_but_zero_seed_does() {
        let first_hours = [95.0, 130.0, 88.0, 110.0];
        let config = EwmaConfig::default();

        let seeded = observe_all(100.0, &config, &first_hours);
        assert!(seeded.iter().all(|r| !r.is_anomaly));

        let from_zero = observe_all(0.0, &config, &first_hours);
        assert!(from_zero[0].is_anomaly);
        assert_eq!(from_zero[0].ratio, None);
        // Still climbing out of zero: 130 > 3 * 9.5.
        assert!(from_zero[1].is_anomaly);
    }

    #[test]
    fn assess_leaves_state_alone_and_failed_observe_too() {
        let config = EwmaConfig::default();
        let mut baseline = EwmaBaseline::seeded(100.0).unwrap();
        let before = baseline;
        baseline.assess(&config, 500.0).unwrap();
        assert_eq!(baseline, before);
        assert!(baseline.observe(&config, -1.0).is_err());
        assert!(baseline.observe(&config.with_alpha(2.0), 1.0).is_err());
        assert_eq!(baseline, before);
    }

    #[test]
    fn every_invalid_input_names_its_field() {
        let baseline = EwmaBaseline::seeded(1.0).unwrap();
        let field = |config: EwmaConfig, spend: f64| {
            baseline
                .assess(&config, spend)
                .unwrap_err()
                .field()
                .unwrap()
        };
        for alpha in [0.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
            assert_eq!(field(EwmaConfig::default().with_alpha(alpha), 1.0), "alpha");
        }
        for multiplier in [0.0, -3.0, f64::NAN, f64::INFINITY] {
            let config = EwmaConfig::default().with_multiplier(multiplier);
            assert_eq!(field(config, 1.0), "multiplier");
        }
        for spend in [-1.0, f64::NAN, f64::NEG_INFINITY, f64::INFINITY] {
            assert_eq!(field(EwmaConfig::default(), spend), "current_spend");
        }
        for seed in [-1.0, f64::NAN, f64::INFINITY] {
            let err = EwmaBaseline::seeded(seed).unwrap_err();
            assert_eq!(err.field(), Some("global_average"));
        }
    }

    #[test]
    fn huge_values_saturate() {
        let reading = EwmaBaseline::seeded(f64::MAX)
            .unwrap()
            .assess(&EwmaConfig::default(), f64::MAX)
            .unwrap();
        assert_eq!(reading.threshold, f64::MAX);
        assert_eq!(reading.updated_baseline, f64::MAX);

        let reading = EwmaBaseline::seeded(f64::MIN_POSITIVE)
            .unwrap()
            .assess(&EwmaConfig::default(), f64::MAX)
            .unwrap();
        assert_eq!(reading.ratio, Some(f64::MAX));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn state_and_events_round_trip_through_toml() {
        let mut baseline = EwmaBaseline::seeded(100.0).unwrap();
        baseline.observe(&EwmaConfig::default(), 200.0).unwrap();
        let text = toml::to_string(&baseline).unwrap();
        assert_eq!(text, "value = 110.0\nobservations = 1\n");
        assert_eq!(toml::from_str::<EwmaBaseline>(&text).unwrap(), baseline);

        let reading = baseline.assess(&EwmaConfig::default(), 900.0).unwrap();
        let text = toml::to_string(&reading).unwrap();
        assert_eq!(toml::from_str::<EwmaReading>(&text).unwrap(), reading);

        let event = reading.anomaly(String::from("svc")).unwrap();
        let text = toml::to_string(&event).unwrap();
        assert_eq!(
            toml::from_str::<SpendAnomaly<String>>(&text).unwrap(),
            event
        );

        let config: EwmaConfig = toml::from_str("alpha = 0.2").unwrap();
        assert_eq!(config, EwmaConfig::default().with_alpha(0.2));
    }

    #[cfg(feature = "serde")]
    #[test]
    fn invalid_persisted_state_is_rejected() {
        for text in [
            "value = -1.0\nobservations = 0",
            "value = nan\nobservations = 0",
            "value = inf\nobservations = 0",
        ] {
            let err = toml::from_str::<EwmaBaseline>(text).unwrap_err();
            assert!(err.to_string().contains("invalid `value`"), "{err}");
        }
    }
}
