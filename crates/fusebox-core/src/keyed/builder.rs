//! The registry's builder: naming, settings and overrides per key, bounds.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::ConfigError;
use crate::breaker::{Breaker, BreakerBuilder, BreakerSettings};
use crate::clock::{Clock, MonotonicClock};

pub(super) const DEFAULT_MAX_KEYS: usize = 10_000;
pub(super) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// A full registry evicts this share of its unprotected entries at once, so a run of new keys
/// pays for one scan per batch instead of one per key.
pub(super) const LRU_BATCH_DIVISOR: usize = 32;
/// Stands in for an empty name, which a breaker refuses.
pub(super) const UNNAMED: &str = "keyed-breaker";

pub(super) type NameFn<K> = dyn Fn(&K) -> String + Send + Sync;
pub(super) type OverrideFn<K> = dyn Fn(&K) -> Option<BreakerSettings> + Send + Sync;
pub(super) type CustomizeFn<K> = dyn Fn(&K, BreakerBuilder) -> BreakerBuilder + Send + Sync;

use super::registry::{BreakerRegistry, Counters, Shared, Table};
use super::shared::{Factory, KeySettings};
use crate::revisions::Revisions;

/// Builds a [`BreakerRegistry`]; every setting is checked by [`build`](Self::build).
///
/// ```
/// use fusebox_core::breaker::BreakerSettings;
/// use fusebox_core::keyed::BreakerRegistry;
/// use std::time::Duration;
///
/// let registry = BreakerRegistry::<String>::builder("route")
///     .settings(BreakerSettings { consecutive_failures: Some(5), ..Default::default() })
///     .per_key(|route: &String| {
///         // Payments trip sooner than everything else.
///         route.starts_with("/pay").then(|| BreakerSettings {
///             consecutive_failures: Some(2),
///             ..Default::default()
///         })
///     })
///     .max_keys(1_000)
///     .idle_timeout(Duration::from_secs(300))
///     .build()?;
/// let pay = registry.get_or_create(&"/pay/card".to_string());
/// assert_eq!(pay.config().consecutive_failures(), Some(2));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use]
pub struct RegistryBuilder<K> {
    pub(super) namer: Box<NameFn<K>>,
    pub(super) settings: BreakerSettings,
    pub(super) overrides: Option<Box<OverrideFn<K>>>,
    pub(super) customize: Option<Box<CustomizeFn<K>>>,
    pub(super) max_keys: usize,
    pub(super) idle_timeout: Duration,
    pub(super) clock: Option<Arc<dyn Clock>>,
}

impl<K> fmt::Debug for RegistryBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("settings", &self.settings)
            .field("per_key", &self.overrides.is_some())
            .field("customize", &self.customize.is_some())
            .field("max_keys", &self.max_keys)
            .field("idle_timeout", &self.idle_timeout)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

impl<K> RegistryBuilder<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    pub(super) fn named_by(namer: Box<NameFn<K>>) -> Self {
        RegistryBuilder {
            namer,
            settings: BreakerSettings::default(),
            overrides: None,
            customize: None,
            max_keys: DEFAULT_MAX_KEYS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            clock: None,
        }
    }

    /// The settings of every breaker without an override (default: the breaker defaults).
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// use fusebox_core::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<u8>::builder("k")
    ///     .settings(BreakerSettings { consecutive_failures: Some(9), ..Default::default() })
    ///     .build()?;
    /// assert_eq!(registry.get_or_create(&1).config().consecutive_failures(), Some(9));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn settings(mut self, settings: BreakerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Settings for particular keys: `Some` replaces the defaults for that key, `None` keeps
    /// them. Asked once, when the key's breaker is created.
    ///
    /// Invalid settings from here do not panic or fail the call: the key gets a breaker with
    /// the default settings, a `tracing` warning names the key's breaker and the setting, and
    /// [`RegistryStats::config_fallbacks`](super::RegistryStats::config_fallbacks) counts it.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// use fusebox_core::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<&str>::builder("tenant")
    ///     .per_key(|tenant: &&str| match *tenant {
    ///         "beta" => Some(BreakerSettings { consecutive_failures: Some(1), ..Default::default() }),
    ///         // Zero is invalid: this tenant falls back to the defaults.
    ///         "typo" => Some(BreakerSettings { consecutive_failures: Some(0), ..Default::default() }),
    ///         _ => None,
    ///     })
    ///     .build()?;
    /// assert_eq!(registry.get_or_create(&"beta").config().consecutive_failures(), Some(1));
    /// assert_eq!(registry.get_or_create(&"typo").config().consecutive_failures(), Some(5));
    /// assert_eq!(registry.stats().config_fallbacks, 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn per_key<F>(mut self, overrides: F) -> Self
    where
        F: Fn(&K) -> Option<BreakerSettings> + Send + Sync + 'static,
    {
        self.overrides = Some(Box::new(overrides));
        self
    }

    /// Adjusts each breaker's builder before it is built: add listeners, a clock, a custom
    /// trip rule. It receives the builder with the key's name, settings and the registry's
    /// clock (if one was set) already applied.
    ///
    /// ```
    /// use fusebox_core::keyed::BreakerRegistry;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let trips = Arc::new(AtomicUsize::new(0));
    /// let seen = trips.clone();
    /// let registry = BreakerRegistry::<u16>::builder("port")
    ///     .customize(move |_port: &u16, builder| {
    ///         let seen = seen.clone();
    ///         builder.consecutive_failures(1).on_transition(move |_| {
    ///             seen.fetch_add(1, Ordering::Relaxed);
    ///         })
    ///     })
    ///     .build()?;
    /// registry.get_or_create(&443).record_failure();
    /// assert_eq!(trips.load(Ordering::Relaxed), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn customize<F>(mut self, customize: F) -> Self
    where
        F: Fn(&K, BreakerBuilder) -> BreakerBuilder + Send + Sync + 'static,
    {
        self.customize = Some(Box::new(customize));
        self
    }

    /// Most keys held at once (default 10 000). See the [module docs](super) for what
    /// happens when it is reached.
    ///
    /// ```
    /// use fusebox_core::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<u32>::builder("k").max_keys(2).build()?;
    /// for key in 0..10 {
    ///     registry.get_or_create(&key);
    /// }
    /// assert_eq!(registry.len(), 2);
    /// assert!(BreakerRegistry::<u32>::builder("k").max_keys(0).build().is_err());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys;
        self
    }

    /// How long an entry may go unused before it is evicted (default 10 minutes), whatever
    /// its breaker's state.
    ///
    /// ```
    /// use fusebox_core::keyed::BreakerRegistry;
    /// use std::time::Duration;
    ///
    /// let registry = BreakerRegistry::<u32>::builder("k")
    ///     .idle_timeout(Duration::from_secs(60))
    ///     .build()?;
    /// assert_eq!(registry.idle_timeout(), Duration::from_secs(60));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn idle_timeout(mut self, idle_timeout: Duration) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// The clock that measures idleness (default: the cheap monotonic clock). It is also
    /// given to every breaker the registry builds, so cooldowns and idleness follow the same
    /// time; the [customiser](Self::customize) may replace it per breaker.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::keyed::BreakerRegistry;
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let registry = BreakerRegistry::<u32>::builder("k")
    ///     .idle_timeout(Duration::from_secs(60))
    ///     .clock(clock.clone())
    ///     .build()?;
    /// registry.get_or_create(&1);
    /// clock.advance(Duration::from_secs(60));
    /// assert_eq!(registry.evict_idle(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clock<C: Clock>(mut self, clock: C) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Checks every setting (the default breaker settings, `max_keys`, `idle_timeout`) and
    /// builds the registry.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// use fusebox_core::keyed::BreakerRegistry;
    ///
    /// let bad = BreakerSettings { half_open_trials: Some(0), ..Default::default() };
    /// let err = BreakerRegistry::<u32>::builder("k").settings(bad).build().unwrap_err();
    /// assert_eq!(err.field(), Some("half_open_trials"));
    /// ```
    pub fn build(self) -> Result<BreakerRegistry<K>, ConfigError> {
        if self.max_keys == 0 {
            return Err(ConfigError::invalid("max_keys", "must be at least 1"));
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "idle_timeout",
                "must be greater than zero",
            ));
        }
        let default_config = Breaker::builder(UNNAMED)
            .settings(self.settings.clone())
            .build_config()?;
        let clock_for_breakers = self.clock.clone();
        let clock = self.clock.unwrap_or_else(|| Arc::new(MonotonicClock));
        let now = clock.now_nanos();
        Ok(BreakerRegistry {
            shared: Arc::new(Shared {
                table: RwLock::new(Table {
                    entries: HashMap::new(),
                    last_sweep: now,
                    no_room: None,
                }),
                factory: Factory {
                    namer: self.namer,
                    settings: Revisions::new(KeySettings {
                        defaults: self.settings,
                        default_config,
                        overrides: self.overrides,
                    }),
                    customize: self.customize,
                    clock: clock_for_breakers,
                },
                max_keys: self.max_keys,
                idle_nanos: u64::try_from(self.idle_timeout.as_nanos()).unwrap_or(u64::MAX),
                lru_batch: (self.max_keys / LRU_BATCH_DIVISOR).max(1),
                clock,
                counters: Counters::default(),
            }),
        })
    }
}
