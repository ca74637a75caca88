//! Keyed breakers from settings: defaults for every key, overrides for some.

use std::collections::BTreeMap;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use fusebox_core::breaker::{Breaker, BreakerSettings};
use fusebox_core::keyed::{BreakerRegistry, RegistryBuilder};

use super::SettingsError;

/// The settings of a [`BreakerRegistry`]: the breaker settings every key starts from, and
/// overrides per key (a host, a route, a tenant) laid over them field by field.
///
/// ```
/// # #[cfg(feature = "serde")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_policy::settings::RegistrySettings;
///
/// let settings: RegistrySettings = toml::from_str(r#"
///     max_keys = 500
///     idle_timeout = "5m"
///
///     [defaults]
///     consecutive_failures = 5
///     cooldown = "30s"
///
///     [keys."payments.internal"]   # trips sooner; keeps the 30 s cooldown
///     consecutive_failures = 2
///
///     [keys.search]
///     cooldown = "5s"
/// "#)?;
/// let hosts = settings.build::<String>("host")?;
/// let payments = hosts.get_or_create(&"payments.internal".to_string());
/// assert_eq!(payments.config().consecutive_failures(), Some(2));
/// let other = hosts.get_or_create(&"cdn".to_string());
/// assert_eq!(other.config().consecutive_failures(), Some(5));
///
/// // Every key is checked when the registry is built, not when the key first shows up.
/// let bad: RegistrySettings = toml::from_str(r#"
///     [keys."payments.internal"]
///     half_open_trials = 0
/// "#)?;
/// let err = bad.build::<String>("host").unwrap_err();
/// assert_eq!(err.path(), r#"keys."payments.internal".half_open_trials"#);
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "serde"))]
/// # fn main() {}
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct RegistrySettings {
    /// The settings of every key's breaker.
    pub defaults: BreakerSettings,
    /// Overrides per key: each sets only the fields it names, the rest come from `defaults`.
    pub keys: BTreeMap<String, BreakerSettings>,
    /// Most keys held at once (the registry's default when unset).
    pub max_keys: Option<usize>,
    /// How long an unused key is kept (the registry's default when unset).
    #[cfg_attr(
        feature = "serde",
        serde(with = "fusebox_core::duration::serde_human_option")
    )]
    pub idle_timeout: Option<Duration>,
}

impl RegistrySettings {
    /// Checks the defaults and every key's merged settings, then lays these settings over
    /// `builder`: its defaults, its per-key rule (this replaces a
    /// [`per_key`](RegistryBuilder::per_key) rule set in code; a
    /// [`customize`](RegistryBuilder::customize) hook is kept and still runs last) and the
    /// bounds they set.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// use fusebox_core::keyed::BreakerRegistry;
    /// use fusebox_policy::settings::RegistrySettings;
    /// use std::collections::BTreeMap;
    ///
    /// let settings = RegistrySettings {
    ///     defaults: BreakerSettings { consecutive_failures: Some(4), ..Default::default() },
    ///     keys: BTreeMap::from([(
    ///         "beta".to_string(),
    ///         BreakerSettings { consecutive_failures: Some(1), ..Default::default() },
    ///     )]),
    ///     ..Default::default()
    /// };
    /// let tenants = settings.apply(BreakerRegistry::<&str>::builder("tenant"))?.build()?;
    /// assert_eq!(tenants.get_or_create(&"beta").config().consecutive_failures(), Some(1));
    /// assert_eq!(tenants.get_or_create(&"acme").config().consecutive_failures(), Some(4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply<K>(&self, builder: RegistryBuilder<K>) -> Result<RegistryBuilder<K>, SettingsError>
    where
        K: AsRef<str> + Hash + Eq + Clone + Send + Sync + 'static,
    {
        let merged = self.merged()?;
        let merged = Arc::new(merged);
        let mut builder = builder
            .settings(self.defaults.clone())
            .per_key(move |key: &K| merged.get(key.as_ref()).cloned());
        if let Some(max) = self.max_keys {
            builder = builder.max_keys(max);
        }
        if let Some(idle) = self.idle_timeout {
            builder = builder.idle_timeout(idle);
        }
        Ok(builder)
    }

    /// The defaults checked, and every key's settings laid over them and checked.
    fn merged(&self) -> Result<BTreeMap<String, BreakerSettings>, SettingsError> {
        Breaker::builder("defaults")
            .settings(self.defaults.clone())
            .build_config()
            .map_err(|e| SettingsError::from(e).within("defaults"))?;
        let mut merged = BTreeMap::new();
        for (key, overrides) in &self.keys {
            if key.is_empty() {
                return Err(SettingsError::invalid("keys", "a key must not be empty"));
            }
            let settings = overrides.clone().over(self.defaults.clone());
            Breaker::builder("key")
                .settings(settings.clone())
                .build_config()
                .map_err(|e| SettingsError::from(e).within(&quoted(key)).within("keys"))?;
            merged.insert(key.clone(), settings);
        }
        Ok(merged)
    }

    /// Applies these settings to a live registry (see
    /// [`BreakerRegistry::reconfigure`]): new defaults and overrides for the keys to come,
    /// and every breaker it holds reconfigured in place, keeping its state. All or nothing;
    /// errors name `defaults.<field>` or `keys."<key>".<field>`. `max_keys` and
    /// `idle_timeout` are fixed when the registry is built and are not changed.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// use fusebox_policy::settings::RegistrySettings;
    /// use std::collections::BTreeMap;
    ///
    /// let hosts = RegistrySettings::default().build::<String>("host")?;
    /// let beta = hosts.get_or_create(&"beta".to_string());
    /// assert_eq!(beta.config().consecutive_failures(), Some(5)); // the breaker default
    ///
    /// let reloaded = RegistrySettings {
    ///     keys: BTreeMap::from([(
    ///         "beta".to_string(),
    ///         BreakerSettings { consecutive_failures: Some(1), ..Default::default() },
    ///     )]),
    ///     ..Default::default()
    /// };
    /// reloaded.reconfigure(&hosts)?;
    /// assert_eq!(beta.config().consecutive_failures(), Some(1));
    /// # Ok::<(), fusebox_policy::settings::SettingsError>(())
    /// ```
    pub fn reconfigure<K>(
        &self,
        registry: &BreakerRegistry<K>,
    ) -> Result<fusebox_core::keyed::RegistryReconfigured, SettingsError>
    where
        K: AsRef<str> + Hash + Eq + Clone + Send + Sync + std::fmt::Debug + 'static,
    {
        let done = self.reconfigure_or_check(registry, true)?;
        done.ok_or_else(|| SettingsError::invalid("", "the registry was not reconfigured"))
    }

    /// [`reconfigure`](Self::reconfigure), or only its checks when `commit` is false.
    pub(super) fn reconfigure_or_check<K>(
        &self,
        registry: &BreakerRegistry<K>,
        commit: bool,
    ) -> Result<Option<fusebox_core::keyed::RegistryReconfigured>, SettingsError>
    where
        K: AsRef<str> + Hash + Eq + Clone + Send + Sync + std::fmt::Debug + 'static,
    {
        let merged = Arc::new(self.merged()?);
        let per_key = Arc::clone(&merged);
        let overrides = Some(move |key: &K| per_key.get(key.as_ref()).cloned());
        let done = if commit {
            registry
                .reconfigure(self.defaults.clone(), overrides)
                .map(Some)
        } else {
            registry
                .check_reconfigure(self.defaults.clone(), overrides)
                .map(|()| None)
        };
        done.map_err(|error| {
            // A held key's merged settings were checked above; what is left is a field only a
            // build sets, or the defaults.
            let key = merged
                .keys()
                .find(|key| error.to_string().contains(&format!("for key {key:?}")));
            match key {
                Some(key) => SettingsError::from(error)
                    .within(&quoted(key))
                    .within("keys"),
                None => SettingsError::from(error).within("defaults"),
            }
        })
    }

    /// A registry naming its breakers `{prefix}:{key}`, from these settings alone.
    ///
    /// ```
    /// use fusebox_policy::settings::RegistrySettings;
    /// let err = RegistrySettings { max_keys: Some(0), ..Default::default() }
    ///     .build::<String>("route")
    ///     .unwrap_err();
    /// assert_eq!(err.path(), "max_keys");
    /// ```
    pub fn build<K>(&self, prefix: impl Into<String>) -> Result<BreakerRegistry<K>, SettingsError>
    where
        K: AsRef<str> + Hash + Eq + Clone + Send + Sync + std::fmt::Display + 'static,
    {
        Ok(self.apply(BreakerRegistry::builder(prefix))?.build()?)
    }
}

/// A key as one segment of a dotted path: bare when it is a plain word, quoted otherwise,
/// so `keys."api.example.com".cooldown` cannot be misread.
pub(super) fn quoted(key: &str) -> String {
    let bare = key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}
