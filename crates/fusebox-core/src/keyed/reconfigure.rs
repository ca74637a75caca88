//! Reconfiguring a live registry: new defaults and per-key overrides for the keys to come,
//! applied to every breaker it holds by the breakers' own reconfiguration rules.

use std::fmt;
use std::hash::Hash;

use super::builder::UNNAMED;
use super::registry::BreakerRegistry;
use super::shared::KeySettings;
use crate::ConfigError;
use crate::breaker::{Breaker, BreakerSettings, algorithm};

/// What reconfiguring a registry did, from [`BreakerRegistry::reconfigure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryReconfigured {
    /// How many times the registry has been reconfigured, this one included.
    pub revision: usize,
    /// Breakers held by the registry and reconfigured in place.
    pub breakers: usize,
}

impl<K> BreakerRegistry<K>
where
    K: Hash + Eq + Clone + fmt::Debug + Send + Sync + 'static,
{
    /// Replaces the registry's defaults and per-key overrides while it runs. Keys seen from
    /// now on are built from them; every breaker the registry holds is reconfigured in place
    /// with its key's new settings, keeping its state and counts by the rules of
    /// [`Breaker::reconfigure`]. A rule the `customize` closure gave in code is kept; settings
    /// it set are not applied again.
    ///
    /// All or nothing: invalid defaults, or a held key whose new settings are invalid or
    /// change what only a build sets (`outcome_log`, `seed`), refuse the whole change with
    /// the field named (and the key, in the message), and the registry keeps what it had.
    ///
    /// ```
    /// use fusebox_core::breaker::{BreakerSettings, State};
    /// use fusebox_core::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<&str>::builder("upstream")
    ///     .settings(BreakerSettings { consecutive_failures: Some(5), ..Default::default() })
    ///     .build()?;
    /// for _ in 0..3 {
    ///     registry.get_or_create(&"a.example").record_failure();
    /// }
    /// // Stricter for everyone, and stricter still for one host.
    /// let defaults = BreakerSettings { consecutive_failures: Some(4), ..Default::default() };
    /// let done = registry.reconfigure(
    ///     defaults,
    ///     Some(|key: &&str| (*key == "a.example").then(|| BreakerSettings {
    ///         consecutive_failures: Some(3),
    ///         ..Default::default()
    ///     })),
    /// )?;
    /// assert_eq!((done.revision, done.breakers), (1, 1));
    /// assert_eq!(registry.get("a.example").map(|b| b.state()), Some(State::Open)); // 3 kept
    /// assert_eq!(registry.get_or_create(&"b.example").config().consecutive_failures(), Some(4));
    ///
    /// let bad = BreakerSettings { failure_rate: Some(2.0), ..Default::default() };
    /// let err = registry.reconfigure(bad, None::<fn(&&str) -> Option<BreakerSettings>>);
    /// assert_eq!(err.unwrap_err().field(), Some("failure_rate"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn reconfigure<F>(
        &self,
        defaults: BreakerSettings,
        overrides: Option<F>,
    ) -> Result<RegistryReconfigured, ConfigError>
    where
        F: Fn(&K) -> Option<BreakerSettings> + Send + Sync + 'static,
    {
        let settings = self.checked(defaults, overrides)?;
        let revision = self.shared.factory.settings.replace(settings);
        // Held now, after the swap: a key created meanwhile was built from either revision,
        // and is brought to this one here.
        let settings = self.shared.factory.settings.current();
        let mut breakers = 0;
        for (key, breaker) in self.held() {
            let applied = breaker
                .config_for(&settings.of(&key))
                .or_else(|_| breaker.config_for(&settings.defaults))
                .and_then(|config| breaker.reconfigure(config));
            match applied {
                Ok(_) => breakers += 1,
                Err(error) => tracing::warn!(
                    breaker = %breaker.name(),
                    %error,
                    "breaker kept its settings through the registry's reconfiguration"
                ),
            }
        }
        tracing::info!(revision, breakers, "breaker registry reconfigured");
        Ok(RegistryReconfigured { revision, breakers })
    }

    /// Checks what [`reconfigure`](Self::reconfigure) would apply, and applies nothing: for
    /// a caller that must check several changes before making any.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// use fusebox_core::keyed::BreakerRegistry;
    /// let registry = BreakerRegistry::<u32>::builder("k").build()?;
    /// let none = None::<fn(&u32) -> Option<BreakerSettings>>;
    /// let bad = BreakerSettings { cooldown: Some(std::time::Duration::ZERO), ..Default::default() };
    /// assert_eq!(registry.check_reconfigure(bad, none).unwrap_err().field(), Some("cooldown"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn check_reconfigure<F>(
        &self,
        defaults: BreakerSettings,
        overrides: Option<F>,
    ) -> Result<(), ConfigError>
    where
        F: Fn(&K) -> Option<BreakerSettings> + Send + Sync + 'static,
    {
        self.checked(defaults, overrides).map(|_| ())
    }

    /// The new settings, once the defaults and every held key's settings are checked.
    fn checked<F>(
        &self,
        defaults: BreakerSettings,
        overrides: Option<F>,
    ) -> Result<KeySettings<K>, ConfigError>
    where
        F: Fn(&K) -> Option<BreakerSettings> + Send + Sync + 'static,
    {
        let default_config = Breaker::builder(UNNAMED)
            .settings(defaults.clone())
            .build_config()?;
        let overrides = overrides.map(|f| Box::new(f) as Box<super::builder::OverrideFn<K>>);
        let settings = KeySettings {
            defaults,
            default_config,
            overrides,
        };
        for (key, breaker) in self.held() {
            let config = breaker
                .config_for(&settings.of(&key))
                .and_then(|config| algorithm::retune(breaker.config(), &config).map(|_| config));
            if let Err(error) = config {
                return Err(for_key(&key, error));
            }
        }
        Ok(settings)
    }
}

/// `error` for the settings of `key`, the key named in its reason.
fn for_key<K: fmt::Debug>(key: &K, error: ConfigError) -> ConfigError {
    match error.field() {
        Some(field) => ConfigError::invalid(field, format!("for key {key:?}: {error}")),
        None => error,
    }
}
