//! The registry: one breaker per key, created on first use, bounded, evicted when idle.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use fusebox_core::ConfigError;
use fusebox_core::breaker::{
    Breaker, BreakerBuilder, BreakerConfig, BreakerListener, BreakerSettings, Snapshot, State,
    Transition,
};
use fusebox_core::clock::{Clock, MonotonicClock};

const DEFAULT_MAX_KEYS: usize = 10_000;
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// A full registry evicts this share of its unprotected entries at once, so a run of new keys
/// pays for one scan per batch instead of one per key.
const LRU_BATCH_DIVISOR: usize = 32;
/// Stands in for an empty name, which a breaker refuses.
const UNNAMED: &str = "keyed-breaker";

type NameFn<K> = dyn Fn(&K) -> String + Send + Sync;
type OverrideFn<K> = dyn Fn(&K) -> Option<BreakerSettings> + Send + Sync;
type CustomizeFn<K> = dyn Fn(&K, BreakerBuilder) -> BreakerBuilder + Send + Sync;

/// One [`Breaker`] per key (host, route, tenant…), created on first use and shared by every
/// clone of the registry.
///
/// See the [module docs](super) for how entries are evicted and what happens when the
/// registry is full.
///
/// ```
/// use fusebox_core::breaker::{BreakerSettings, State};
/// use fusebox_tower::keyed::BreakerRegistry;
///
/// let registry = BreakerRegistry::<String>::builder("upstream")
///     .settings(BreakerSettings { consecutive_failures: Some(1), ..Default::default() })
///     .build()?;
/// let a = registry.get_or_create(&"a.example".to_string());
/// a.record_failure();
/// assert_eq!(a.state(), State::Open);
/// assert_eq!(a.name(), "upstream:a.example");
/// // Another key has its own breaker.
/// assert_eq!(registry.get_or_create(&"b.example".to_string()).state(), State::Closed);
/// assert_eq!(registry.len(), 2);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub struct BreakerRegistry<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for BreakerRegistry<K> {
    fn clone(&self) -> Self {
        BreakerRegistry {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K> fmt::Debug for BreakerRegistry<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerRegistry")
            .field("keys", &read(&self.shared.table).entries.len())
            .field("max_keys", &self.shared.max_keys)
            .field(
                "idle_timeout",
                &Duration::from_nanos(self.shared.idle_nanos),
            )
            .finish_non_exhaustive()
    }
}

/// Counters of a [`BreakerRegistry`], for metrics and health pages. Every field but `keys`
/// only grows.
///
/// ```
/// use fusebox_tower::keyed::BreakerRegistry;
///
/// let registry = BreakerRegistry::<u32>::builder("tenant").build()?;
/// registry.get_or_create(&7);
/// registry.get_or_create(&7);
/// let stats = registry.stats();
/// assert_eq!((stats.keys, stats.created), (1, 1));
/// assert_eq!(stats.served_unstored, 0);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegistryStats {
    /// Keys held now.
    pub keys: usize,
    /// Breakers created and stored.
    pub created: u64,
    /// Entries evicted for being idle longer than the idle timeout.
    pub evicted_idle: u64,
    /// Entries evicted, least recently used first, to make room for a new key.
    pub evicted_lru: u64,
    /// Breakers handed out without being stored, because the registry was full of open
    /// breakers still in use.
    pub served_unstored: u64,
    /// Breakers built from the default settings because a per-key override (or the
    /// customiser) produced invalid settings.
    pub config_fallbacks: u64,
}

/// Builds a [`BreakerRegistry`]; every setting is checked by [`build`](Self::build).
///
/// ```
/// use fusebox_core::breaker::BreakerSettings;
/// use fusebox_tower::keyed::BreakerRegistry;
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
    namer: Box<NameFn<K>>,
    settings: BreakerSettings,
    overrides: Option<Box<OverrideFn<K>>>,
    customize: Option<Box<CustomizeFn<K>>>,
    max_keys: usize,
    idle_timeout: Duration,
    clock: Option<Arc<dyn Clock>>,
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
    fn named_by(namer: Box<NameFn<K>>) -> Self {
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
    /// use fusebox_tower::keyed::BreakerRegistry;
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
    /// [`RegistryStats::config_fallbacks`] counts it.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// use fusebox_tower::keyed::BreakerRegistry;
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
    /// use fusebox_tower::keyed::BreakerRegistry;
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
    /// use fusebox_tower::keyed::BreakerRegistry;
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
    /// use fusebox_tower::keyed::BreakerRegistry;
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
    /// use fusebox_tower::keyed::BreakerRegistry;
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
    /// use fusebox_tower::keyed::BreakerRegistry;
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
                    defaults: self.settings,
                    default_config,
                    overrides: self.overrides,
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

impl<K> BreakerRegistry<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// Starts a registry whose breakers are named `"{prefix}:{key}"`.
    ///
    /// ```
    /// use fusebox_tower::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<String>::builder("host").build()?;
    /// assert_eq!(registry.get_or_create(&"db1".into()).name(), "host:db1");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder(prefix: impl Into<String>) -> RegistryBuilder<K>
    where
        K: fmt::Display,
    {
        let prefix = prefix.into();
        RegistryBuilder::named_by(Box::new(move |key: &K| format!("{prefix}:{key}")))
    }

    /// Starts a registry whose breakers are named by `namer`, for keys that are not
    /// `Display` or names in another shape. An empty name becomes `keyed-breaker`.
    ///
    /// ```
    /// use fusebox_tower::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<(u8, u16)>::builder_named_by(|(shard, port): &(u8, u16)| {
    ///     format!("shard{shard}/{port}")
    /// })
    /// .build()?;
    /// assert_eq!(registry.get_or_create(&(3, 80)).name(), "shard3/80");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder_named_by<F>(namer: F) -> RegistryBuilder<K>
    where
        F: Fn(&K) -> String + Send + Sync + 'static,
    {
        RegistryBuilder::named_by(Box::new(namer))
    }

    /// The breaker of `key`, created from the factory on first use. Marks the key as used
    /// now.
    ///
    /// Existing keys cost a shared read lock, a hash lookup and a clock read. When the
    /// registry is full and holds only open breakers still in use, the breaker returned is
    /// not stored (see the [module docs](super)).
    ///
    /// ```
    /// use fusebox_tower::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<&str>::builder("api").build()?;
    /// let first = registry.get_or_create(&"users");
    /// first.force_open();
    /// // Same key, same breaker.
    /// assert!(registry.get_or_create(&"users").try_acquire().is_err());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn get_or_create(&self, key: &K) -> Breaker {
        let shared = &*self.shared;
        let now = shared.now();
        match shared.lookup(key, now) {
            Lookup::Found(breaker) => breaker,
            Lookup::Missing => shared.insert(key, now),
            Lookup::NoRoom => shared.serve_unstored(shared.factory.build(key, &shared.counters).0),
        }
    }

    /// The breaker of `key` if the registry holds one. Does not create it, nor count as a use.
    ///
    /// ```
    /// use fusebox_tower::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<String>::builder("host").build()?;
    /// assert!(registry.get("a").is_none());
    /// registry.get_or_create(&"a".to_string());
    /// assert_eq!(registry.get("a").map(|b| b.name().to_string()), Some("host:a".into()));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn get<Q>(&self, key: &Q) -> Option<Breaker>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let table = read(&self.shared.table);
        table.entries.get(key).map(|entry| entry.breaker.clone())
    }

    /// Forgets `key` whatever its breaker's state, returning the breaker; its next call
    /// starts a fresh one.
    ///
    /// ```
    /// use fusebox_core::breaker::State;
    /// use fusebox_tower::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<u32>::builder("k").build()?;
    /// registry.get_or_create(&1).force_open();
    /// assert!(registry.remove(&1).is_some());
    /// assert_eq!(registry.get_or_create(&1).state(), State::Closed);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<Breaker>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut table = write(&self.shared.table);
        let removed = table.entries.remove(key)?;
        table.no_room = None;
        Some(removed.breaker)
    }

    /// Number of keys held.
    ///
    /// ```
    /// use fusebox_tower::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<u32>::builder("k").build()?;
    /// registry.get_or_create(&1);
    /// registry.get_or_create(&2);
    /// assert_eq!(registry.len(), 2);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn len(&self) -> usize {
        read(&self.shared.table).entries.len()
    }

    /// Whether no key is held.
    ///
    /// ```
    /// use fusebox_tower::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<u32>::builder("k").build()?;
    /// assert!(registry.is_empty());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        read(&self.shared.table).entries.is_empty()
    }

    /// A snapshot of every held breaker with its key, in no particular order.
    ///
    /// ```
    /// use fusebox_core::breaker::State;
    /// use fusebox_tower::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<&str>::builder("svc").build()?;
    /// registry.get_or_create(&"a");
    /// registry.get_or_create(&"b").force_open();
    /// let mut open: Vec<_> = registry
    ///     .snapshot()
    ///     .into_iter()
    ///     .filter(|(_, snap)| snap.state != State::Closed)
    ///     .map(|(key, _)| key)
    ///     .collect();
    /// assert_eq!(open, ["b"]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn snapshot(&self) -> Vec<(K, Snapshot)> {
        let held: Vec<(K, Breaker)> = {
            let table = read(&self.shared.table);
            table
                .entries
                .iter()
                .map(|(key, entry)| (key.clone(), entry.breaker.clone()))
                .collect()
        };
        // Outside the lock: a snapshot may move a breaker to half-open and run its listeners.
        held.into_iter()
            .map(|(key, breaker)| (key, breaker.snapshot()))
            .collect()
    }

    /// Evicts every entry unused for the idle timeout or longer, whatever its state, and
    /// returns how many went. The registry also does this by itself when a new key arrives
    /// and the last sweep is older than the idle timeout; call it from a timer to free memory
    /// sooner.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_tower::keyed::BreakerRegistry;
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new();
    /// let registry = BreakerRegistry::<u32>::builder("k")
    ///     .idle_timeout(Duration::from_secs(10))
    ///     .clock(clock.clone())
    ///     .build()?;
    /// registry.get_or_create(&1);
    /// clock.advance(Duration::from_secs(5));
    /// registry.get_or_create(&2);
    /// clock.advance(Duration::from_secs(5));
    /// assert_eq!(registry.evict_idle(), 1); // key 1 idle for 10 s, key 2 for 5 s
    /// assert!(registry.get(&2).is_some());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn evict_idle(&self) -> usize {
        let now = self.shared.now();
        let mut table = write(&self.shared.table);
        self.shared.evict_idle_entries(&mut table, now)
    }

    /// The registry's counters.
    ///
    /// ```
    /// use fusebox_tower::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<u32>::builder("k").max_keys(1).build()?;
    /// registry.get_or_create(&1);
    /// registry.get_or_create(&2); // evicts key 1, the least recently used
    /// let stats = registry.stats();
    /// assert_eq!((stats.keys, stats.created, stats.evicted_lru), (1, 2, 1));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn stats(&self) -> RegistryStats {
        let c = &self.shared.counters;
        RegistryStats {
            keys: self.len(),
            created: c.created.load(Ordering::Relaxed),
            evicted_idle: c.evicted_idle.load(Ordering::Relaxed),
            evicted_lru: c.evicted_lru.load(Ordering::Relaxed),
            served_unstored: c.served_unstored.load(Ordering::Relaxed),
            config_fallbacks: c.config_fallbacks.load(Ordering::Relaxed),
        }
    }

    /// The most keys held at once.
    ///
    /// ```
    /// use fusebox_tower::keyed::BreakerRegistry;
    ///
    /// let registry = BreakerRegistry::<u32>::builder("k").build()?;
    /// assert_eq!(registry.max_keys(), 10_000);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_keys(&self) -> usize {
        self.shared.max_keys
    }

    /// How long an entry may go unused before it is evicted.
    ///
    /// ```
    /// use fusebox_tower::keyed::BreakerRegistry;
    /// use std::time::Duration;
    ///
    /// let registry = BreakerRegistry::<u32>::builder("k").build()?;
    /// assert_eq!(registry.idle_timeout(), Duration::from_secs(600));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_nanos(self.shared.idle_nanos)
    }
}

struct Shared<K> {
    table: RwLock<Table<K>>,
    factory: Factory<K>,
    max_keys: usize,
    idle_nanos: u64,
    lru_batch: usize,
    clock: Arc<dyn Clock>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    created: AtomicU64,
    evicted_idle: AtomicU64,
    evicted_lru: AtomicU64,
    served_unstored: AtomicU64,
    config_fallbacks: AtomicU64,
    /// Bumped whenever a breaker leaves the protected states, which may make room.
    releases: Arc<AtomicU64>,
}

struct Table<K> {
    entries: HashMap<K, Entry>,
    last_sweep: u64,
    /// Set when a full registry had nothing it could evict. Until `until` (when the
    /// least recently used entry turns idle), and while no breaker has left the protected
    /// states, new keys skip the write lock and the scan: a spray of new keys against a
    /// registry full of open breakers must not serialise every caller behind that lock.
    no_room: Option<NoRoom>,
}

#[derive(Debug, Clone, Copy)]
struct NoRoom {
    until: u64,
    releases: u64,
}

struct Entry {
    breaker: Breaker,
    protection: Arc<Protection>,
    last_used: AtomicU64,
}

impl Entry {
    /// Records a use without a write lock; a load first, so a key used many times within
    /// one clock tick does not bounce its cache line between cores.
    #[inline]
    fn touch(&self, now: u64) {
        if self.last_used.load(Ordering::Relaxed) < now {
            self.last_used.store(now, Ordering::Relaxed);
        }
    }

    #[inline]
    fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    #[inline]
    fn is_idle(&self, now: u64, idle_nanos: u64) -> bool {
        now.saturating_sub(self.last_used()) >= idle_nanos
    }
}

/// Mirrors whether a breaker is open, half-open or forced open, so eviction can read it under
/// the registry's lock without calling into the breaker (reading a breaker's state may run
/// its listeners, which may call back into the registry). It lags a transition by the moment
/// before the listeners run; the breaker was just called then, so it is not the least
/// recently used entry in that moment.
struct Protection {
    /// `generation << 1 | protected`; `fetch_max` keeps the latest transition even when
    /// listeners on different threads report out of order.
    word: AtomicU64,
    releases: Arc<AtomicU64>,
}

impl Protection {
    fn is_protected(&self) -> bool {
        self.word.load(Ordering::Acquire) & 1 == 1
    }
}

impl BreakerListener for Protection {
    fn on_transition(&self, transition: &Transition) {
        let protected = matches!(
            transition.to,
            State::Open | State::HalfOpen | State::ForcedOpen
        );
        let word = transition.generation.wrapping_shl(1) | u64::from(protected);
        self.word.fetch_max(word, Ordering::AcqRel);
        if !protected {
            self.releases.fetch_add(1, Ordering::Release);
        }
    }
}

enum Lookup {
    Found(Breaker),
    Missing,
    NoRoom,
}

impl<K> Shared<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    #[inline]
    fn now(&self) -> u64 {
        self.clock.now_nanos()
    }

    #[inline]
    fn lookup(&self, key: &K, now: u64) -> Lookup {
        let table = read(&self.table);
        if let Some(entry) = table.entries.get(key) {
            entry.touch(now);
            return Lookup::Found(entry.breaker.clone());
        }
        match table.no_room {
            Some(full)
                if now < full.until
                    && self.counters.releases.load(Ordering::Acquire) == full.releases =>
            {
                Lookup::NoRoom
            }
            _ => Lookup::Missing,
        }
    }

    #[cold]
    fn insert(&self, key: &K, now: u64) -> Breaker {
        // Built before taking the write lock: the factory runs the caller's closures, which
        // must not run under the lock, and readers should not wait for them.
        let (breaker, protection) = self.factory.build(key, &self.counters);
        let mut table = write(&self.table);
        if let Some(entry) = table.entries.get(key) {
            // Another caller created it while this one was building.
            entry.touch(now);
            return entry.breaker.clone();
        }
        if now.saturating_sub(table.last_sweep) >= self.idle_nanos {
            self.evict_idle_entries(&mut table, now);
        }
        if table.entries.len() >= self.max_keys {
            self.make_room(&mut table, now);
        }
        if table.entries.len() >= self.max_keys {
            drop(table);
            return self.serve_unstored(breaker);
        }
        let entry = Entry {
            breaker: breaker.clone(),
            protection,
            last_used: AtomicU64::new(now),
        };
        table.entries.insert(key.clone(), entry);
        self.counters.created.fetch_add(1, Ordering::Relaxed);
        breaker
    }

    fn evict_idle_entries(&self, table: &mut Table<K>, now: u64) -> usize {
        let before = table.entries.len();
        table
            .entries
            .retain(|_, entry| !entry.is_idle(now, self.idle_nanos));
        table.last_sweep = now;
        let evicted = before.saturating_sub(table.entries.len());
        if evicted > 0 {
            table.no_room = None;
            self.counters
                .evicted_idle
                .fetch_add(evicted as u64, Ordering::Relaxed);
            tracing::debug!(evicted, "evicted idle keyed breakers");
        }
        evicted
    }

    /// Frees room in a full table: idle entries first; else the least recently used of the
    /// entries whose breaker is closed or disabled. Open, half-open and forced-open breakers
    /// in use are never evicted, so flooding the registry with new keys cannot reset them.
    fn make_room(&self, table: &mut Table<K>, now: u64) {
        // Read before looking at any entry, so a breaker closing during the scan is noticed
        // by the next caller.
        let releases = self.counters.releases.load(Ordering::Acquire);
        if self.evict_idle_entries(table, now) > 0 {
            return;
        }
        let mut ages: Vec<u64> = table
            .entries
            .values()
            .filter(|entry| !entry.protection.is_protected())
            .map(Entry::last_used)
            .collect();
        if ages.is_empty() {
            let until = table
                .entries
                .values()
                .map(|entry| entry.last_used().saturating_add(self.idle_nanos))
                .min()
                .unwrap_or(now);
            table.no_room = Some(NoRoom { until, releases });
            return;
        }
        let batch = self.lru_batch.min(ages.len());
        let Some(nth) = batch.checked_sub(1) else {
            return;
        };
        let (_, &mut cutoff, _) = ages.select_nth_unstable(nth);
        let mut left = batch;
        table.entries.retain(|_, entry| {
            let evict = left > 0 && !entry.protection.is_protected() && entry.last_used() <= cutoff;
            if evict {
                left -= 1;
            }
            !evict
        });
        let evicted = batch - left;
        self.counters
            .evicted_lru
            .fetch_add(evicted as u64, Ordering::Relaxed);
        tracing::debug!(evicted, "evicted least recently used keyed breakers");
    }

    #[cold]
    fn serve_unstored(&self, breaker: Breaker) -> Breaker {
        let served = self
            .counters
            .served_unstored
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        // Warn at 1, 2, 4, 8…: visible at once, yet quiet under a sustained flood.
        if served.is_power_of_two() {
            tracing::warn!(
                breaker = %breaker.name(),
                max_keys = self.max_keys,
                served_unstored = served,
                "keyed breaker registry is full of open breakers in use; \
                 serving a new key with a breaker that is not kept"
            );
        }
        breaker
    }
}

/// Builds each key's breaker: name, settings (defaults or the key's override), the
/// registry's clock, the caller's customiser, and the protection mirror.
struct Factory<K> {
    namer: Box<NameFn<K>>,
    defaults: BreakerSettings,
    default_config: BreakerConfig,
    overrides: Option<Box<OverrideFn<K>>>,
    customize: Option<Box<CustomizeFn<K>>>,
    clock: Option<Arc<dyn Clock>>,
}

impl<K> Factory<K> {
    fn build(&self, key: &K, counters: &Counters) -> (Breaker, Arc<Protection>) {
        let mut name = (self.namer)(key);
        if name.is_empty() {
            name = UNNAMED.to_owned();
        }
        let protection = Arc::new(Protection {
            word: AtomicU64::new(0),
            releases: Arc::clone(&counters.releases),
        });
        let mut fell_back = false;
        if let Some(settings) = self.overrides.as_ref().and_then(|f| f(key)) {
            match self.assemble(key, &name, settings, &protection, true) {
                Ok(breaker) => return (breaker, protection),
                Err(error) => {
                    fell_back = true;
                    tracing::warn!(
                        breaker = %name,
                        %error,
                        "invalid per-key breaker settings; using the registry defaults"
                    );
                }
            }
        }
        let breaker = match self.assemble(key, &name, self.defaults.clone(), &protection, true) {
            Ok(breaker) => breaker,
            Err(error) => {
                // The defaults were validated when the registry was built: the customiser
                // broke them.
                fell_back = true;
                tracing::warn!(
                    breaker = %name,
                    %error,
                    "breaker customiser produced invalid settings; using the registry defaults \
                     without it"
                );
                self.assemble(key, &name, self.defaults.clone(), &protection, false)
                    // Unreachable in practice (validated settings, non-empty name); still no
                    // panic if it ever fails.
                    .unwrap_or_else(|_| Breaker::from_config(name, self.default_config.clone()))
            }
        };
        if fell_back {
            counters.config_fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        (breaker, protection)
    }

    fn assemble(
        &self,
        key: &K,
        name: &str,
        settings: BreakerSettings,
        protection: &Arc<Protection>,
        customized: bool,
    ) -> Result<Breaker, ConfigError> {
        let mut builder = Breaker::builder(name.to_owned()).settings(settings);
        if let Some(clock) = &self.clock {
            builder = builder.clock(Arc::clone(clock));
        }
        if let (true, Some(customize)) = (customized, &self.customize) {
            builder = customize(key, builder);
        }
        let protection: Arc<dyn BreakerListener> = protection.clone();
        builder.listener(protection).build()
    }
}

// A panic in a key's `Hash` or `Eq` while the lock was held leaves the map itself valid, so
// the registry keeps serving rather than panicking on every later call.
fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
