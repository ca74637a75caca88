//! Keyed baselines: a seasonal baseline per key, such as `(service, model)`.

use super::ewma::{EwmaBaseline, EwmaConfig, EwmaReading};
use super::hour::HourOfWeek;
use super::seasonal::SeasonalBaseline;
use crate::ConfigError;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::collections::btree_map;

/// A [`SeasonalBaseline`] per key, such as `(service, model)`, each seeded on first sight.
///
/// Keys are kept in order (`K: Ord`), so iteration and persisted state are deterministic. With
/// the `serde` feature it serializes as `baselines`, a list of `{ key, baseline }` entries, so
/// keys need not be strings (TOML and JSON map keys must be).
///
/// ```
/// use fusebox_core::guard::{EwmaConfig, HourOfWeek, KeyedBaselines};
///
/// let config = EwmaConfig::default();
/// let mut baselines = KeyedBaselines::new();
/// let hour = HourOfWeek::from_weekday_hour(0, 9)?;
/// let key = ("search", "small-model");
/// // Seeded from the model's global average of 40 on first sight.
/// let reading = baselines.observe(&config, key, hour, 500.0, 40.0)?;
/// let event = reading.anomaly(key).expect("500 is above 3 * 40");
/// assert_eq!(event.bucket, Some(hour));
/// assert_eq!(baselines.len(), 1);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedBaselines<K> {
    baselines: BTreeMap<K, SeasonalBaseline>,
}

impl<K> Default for KeyedBaselines<K> {
    fn default() -> Self {
        KeyedBaselines {
            baselines: BTreeMap::new(),
        }
    }
}

impl<K: Ord> KeyedBaselines<K> {
    /// An empty set.
    ///
    /// ```
    /// use fusebox_core::guard::KeyedBaselines;
    ///
    /// let baselines: KeyedBaselines<String> = KeyedBaselines::new();
    /// assert!(baselines.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// How many keys have a baseline.
    ///
    /// ```
    /// use fusebox_core::guard::{KeyedBaselines, SeasonalBaseline};
    ///
    /// let mut baselines = KeyedBaselines::new();
    /// baselines.insert("a", SeasonalBaseline::seeded(1.0)?);
    /// assert_eq!(baselines.len(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn len(&self) -> usize {
        self.baselines.len()
    }

    /// Whether no key has a baseline yet.
    ///
    /// ```
    /// use fusebox_core::guard::KeyedBaselines;
    ///
    /// assert!(KeyedBaselines::<u32>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.baselines.is_empty()
    }

    /// The baselines of `key`, if it has been seen.
    ///
    /// ```
    /// use fusebox_core::guard::{KeyedBaselines, SeasonalBaseline};
    ///
    /// let mut baselines = KeyedBaselines::new();
    /// baselines.insert(String::from("search"), SeasonalBaseline::seeded(1.0)?);
    /// assert!(baselines.get("search").is_some());
    /// assert!(baselines.get("chat").is_none());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<&SeasonalBaseline>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.baselines.get(key)
    }

    /// Sets the baselines of `key`, for example restored from storage or seeded per hour;
    /// returns the ones replaced.
    ///
    /// ```
    /// use fusebox_core::guard::{KeyedBaselines, SeasonalBaseline};
    ///
    /// let mut baselines = KeyedBaselines::new();
    /// assert!(baselines.insert(1, SeasonalBaseline::seeded(1.0)?).is_none());
    /// assert!(baselines.insert(1, SeasonalBaseline::seeded(2.0)?).is_some());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn insert(&mut self, key: K, baseline: SeasonalBaseline) -> Option<SeasonalBaseline> {
        self.baselines.insert(key, baseline)
    }

    /// Forgets `key`, returning its baselines.
    ///
    /// ```
    /// use fusebox_core::guard::{KeyedBaselines, SeasonalBaseline};
    ///
    /// let mut baselines = KeyedBaselines::new();
    /// baselines.insert(7, SeasonalBaseline::seeded(1.0)?);
    /// assert!(baselines.remove(&7).is_some());
    /// assert!(baselines.is_empty());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn remove<Q>(&mut self, key: &Q) -> Option<SeasonalBaseline>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.baselines.remove(key)
    }

    /// Every key and its baselines, in key order.
    ///
    /// ```
    /// use fusebox_core::guard::{KeyedBaselines, SeasonalBaseline};
    ///
    /// let mut baselines = KeyedBaselines::new();
    /// baselines.insert("b", SeasonalBaseline::seeded(1.0)?);
    /// baselines.insert("a", SeasonalBaseline::seeded(1.0)?);
    /// let keys: Vec<_> = baselines.iter().map(|(key, _)| *key).collect();
    /// assert_eq!(keys, ["a", "b"]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = (&K, &SeasonalBaseline)> {
        self.baselines.iter()
    }

    /// Judges `current_spend` for `key` at `hour`, then folds it in. A key seen for the first
    /// time is seeded from `global_average`, which is otherwise unused but still validated, so
    /// the same call fails the same way whether or not the key is known.
    ///
    /// # Errors
    /// As [`EwmaBaseline::assess`], or `global_average` is negative or not finite. On error
    /// nothing changes and no key is added.
    ///
    /// ```
    /// use fusebox_core::guard::{EwmaConfig, HourOfWeek, KeyedBaselines};
    ///
    /// let config = EwmaConfig::default();
    /// let hour = HourOfWeek::new(0)?;
    /// let mut baselines = KeyedBaselines::new();
    /// baselines.observe(&config, "chat", hour, 120.0, 100.0)?;
    /// // Known now: the later global average does not reseed it.
    /// let reading = baselines.observe(&config, "chat", hour, 120.0, 5.0)?;
    /// assert_eq!(reading.baseline, 102.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn observe(
        &mut self,
        config: &EwmaConfig,
        key: K,
        hour: HourOfWeek,
        current_spend: f64,
        global_average: f64,
    ) -> Result<EwmaReading, ConfigError> {
        // Validate before touching the map, so a bad value never leaves a fresh key behind.
        EwmaBaseline::seeded(global_average)?.assess(config, current_spend)?;
        let baselines = match self.baselines.entry(key) {
            btree_map::Entry::Occupied(entry) => entry.into_mut(),
            btree_map::Entry::Vacant(entry) => {
                entry.insert(SeasonalBaseline::seeded(global_average)?)
            }
        };
        baselines.observe(config, hour, current_spend)
    }
}

#[cfg(feature = "serde")]
mod keyed_serde {
    use super::{KeyedBaselines, SeasonalBaseline};
    use crate::ConfigError;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct EntriesRef<'a, K> {
        baselines: Vec<EntryRef<'a, K>>,
    }

    #[derive(Serialize)]
    struct EntryRef<'a, K> {
        key: &'a K,
        baseline: &'a SeasonalBaseline,
    }

    #[derive(Deserialize)]
    struct Entries<K> {
        baselines: Vec<Entry<K>>,
    }

    #[derive(Deserialize)]
    struct Entry<K> {
        key: K,
        baseline: SeasonalBaseline,
    }

    impl<K: Serialize> Serialize for KeyedBaselines<K> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let baselines = self
                .baselines
                .iter()
                .map(|(key, baseline)| EntryRef { key, baseline })
                .collect();
            EntriesRef { baselines }.serialize(serializer)
        }
    }

    impl<'de, K: Ord + Deserialize<'de>> Deserialize<'de> for KeyedBaselines<K> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            let entries = Entries::<K>::deserialize(deserializer)?;
            let mut baselines = BTreeMap::new();
            for (index, entry) in entries.baselines.into_iter().enumerate() {
                if baselines.insert(entry.key, entry.baseline).is_some() {
                    return Err(D::Error::custom(ConfigError::invalid(
                        "baselines",
                        format!("entry at index {index} repeats an earlier key"),
                    )));
                }
            }
            Ok(KeyedBaselines { baselines })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(weekday: u8, hour: u8) -> HourOfWeek {
        HourOfWeek::from_weekday_hour(weekday, hour).unwrap()
    }

    #[test]
    fn keyed_baselines_are_independent_and_seeded_per_key() {
        let config = EwmaConfig::default();
        let at = hour(2, 14);
        let chat = ("chat".to_string(), "large".to_string());
        let search = ("search".to_string(), "small".to_string());
        let mut baselines = KeyedBaselines::new();

        let reading = baselines
            .observe(&config, chat.clone(), at, 900.0, 1000.0)
            .unwrap();
        assert!(!reading.is_anomaly);
        let reading = baselines
            .observe(&config, search.clone(), at, 900.0, 10.0)
            .unwrap();
        let event = reading.anomaly(search.clone()).unwrap();
        assert_eq!(
            (event.baseline, event.threshold, event.ratio),
            (10.0, 30.0, Some(90.0))
        );
        assert_eq!(event.key, search);

        assert_eq!(baselines.get(&chat).unwrap().bucket(at).value(), 990.0);
        assert_eq!(baselines.get(&search).unwrap().bucket(at).value(), 99.0);
    }

    #[test]
    fn keyed_observe_validates_everything_and_adds_nothing_on_error() {
        let config = EwmaConfig::default();
        let at = hour(0, 0);
        let mut baselines = KeyedBaselines::new();
        let field = |result: Result<EwmaReading, ConfigError>| result.unwrap_err().field();

        assert_eq!(
            field(baselines.observe(&config, "k", at, -1.0, 1.0)),
            Some("current_spend")
        );
        assert_eq!(
            field(baselines.observe(&config, "k", at, 1.0, f64::NAN)),
            Some("global_average")
        );
        assert_eq!(
            field(baselines.observe(&config.with_alpha(0.0), "k", at, 1.0, 1.0)),
            Some("alpha")
        );
        assert!(baselines.is_empty());

        baselines.observe(&config, "k", at, 1.0, 1.0).unwrap();
        let before = baselines.clone();
        assert_eq!(
            field(baselines.observe(&config, "k", at, 1.0, -5.0)),
            Some("global_average")
        );
        assert_eq!(baselines, before);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn round_trips_through_toml_with_tuple_keys() {
        let config = EwmaConfig::default();
        let mut baselines = KeyedBaselines::new();
        for index in 0..200u8 {
            let at = HourOfWeek::new(index % 168).unwrap();
            let spend = f64::from(index);
            let key = ("chat".to_string(), "large".to_string());
            baselines.observe(&config, key, at, spend, 50.0).unwrap();
            let key = ("search".to_string(), "small".to_string());
            baselines
                .observe(&config, key, at, spend / 2.0, 5.0)
                .unwrap();
        }
        let text = toml::to_string(&baselines).unwrap();
        let restored: KeyedBaselines<(String, String)> = toml::from_str(&text).unwrap();
        assert_eq!(restored, baselines);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn a_repeated_key_in_persisted_state_is_rejected() {
        // Accepting it would silently drop one of the two histories.
        let mut one = KeyedBaselines::new();
        one.insert("k".to_string(), SeasonalBaseline::seeded(1.0).unwrap());
        let mut doc = toml::Value::try_from(&one).unwrap();
        let entries = doc["baselines"].as_array_mut().unwrap();
        entries.push(entries[0].clone());
        let err = doc.try_into::<KeyedBaselines<String>>().unwrap_err();
        assert!(err.to_string().contains("repeats an earlier key"), "{err}");
    }
}
