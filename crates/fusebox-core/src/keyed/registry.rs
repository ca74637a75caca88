//! The registry: one breaker per key, created on first use, bounded, evicted when idle.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::builder::RegistryBuilder;
use super::shared::{Entry, Factory, Lookup, read, write};
use crate::breaker::{Breaker, Snapshot};
use crate::clock::Clock;

/// One [`Breaker`] per key (host, route, tenant…), created on first use and shared by every
/// clone of the registry.
///
/// See the [module docs](super) for how entries are evicted and what happens when the
/// registry is full.
///
/// ```
/// use fusebox_core::breaker::{BreakerSettings, State};
/// use fusebox_core::keyed::BreakerRegistry;
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
    pub(super) shared: Arc<Shared<K>>,
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
/// use fusebox_core::keyed::BreakerRegistry;
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

impl<K> BreakerRegistry<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    /// Starts a registry whose breakers are named `"{prefix}:{key}"`.
    ///
    /// ```
    /// use fusebox_core::keyed::BreakerRegistry;
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
    /// use fusebox_core::keyed::BreakerRegistry;
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
    /// use fusebox_core::keyed::BreakerRegistry;
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
    /// use fusebox_core::keyed::BreakerRegistry;
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
    /// use fusebox_core::keyed::BreakerRegistry;
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
    /// use fusebox_core::keyed::BreakerRegistry;
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
    /// use fusebox_core::keyed::BreakerRegistry;
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
    /// use fusebox_core::keyed::BreakerRegistry;
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
        // Outside the lock: a snapshot may move a breaker to half-open and run its listeners.
        self.held()
            .into_iter()
            .map(|(key, breaker)| (key, breaker.snapshot()))
            .collect()
    }

    /// The keys held and their breakers, copied out of the lock.
    pub(super) fn held(&self) -> Vec<(K, Breaker)> {
        let table = read(&self.shared.table);
        table
            .entries
            .iter()
            .map(|(key, entry)| (key.clone(), entry.breaker.clone()))
            .collect()
    }

    /// Evicts every entry unused for the idle timeout or longer, whatever its state, and
    /// returns how many went. The registry also does this by itself when a new key arrives
    /// and the last sweep is older than the idle timeout; call it from a timer to free memory
    /// sooner.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::keyed::BreakerRegistry;
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
    /// use fusebox_core::keyed::BreakerRegistry;
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
    /// use fusebox_core::keyed::BreakerRegistry;
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
    /// use fusebox_core::keyed::BreakerRegistry;
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

pub(super) struct Shared<K> {
    pub(super) table: RwLock<Table<K>>,
    pub(super) factory: Factory<K>,
    pub(super) max_keys: usize,
    pub(super) idle_nanos: u64,
    pub(super) lru_batch: usize,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) counters: Counters,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) created: AtomicU64,
    pub(super) evicted_idle: AtomicU64,
    pub(super) evicted_lru: AtomicU64,
    pub(super) served_unstored: AtomicU64,
    pub(super) config_fallbacks: AtomicU64,
    /// Bumped whenever a breaker leaves the protected states, which may make room.
    pub(super) releases: Arc<AtomicU64>,
}

pub(super) struct Table<K> {
    pub(super) entries: HashMap<K, Entry>,
    pub(super) last_sweep: u64,
    /// Set when a full registry had nothing it could evict. Until `until` (when the
    /// least recently used entry turns idle), and while no breaker has left the protected
    /// states, new keys skip the write lock and the scan: a spray of new keys against a
    /// registry full of open breakers must not serialise every caller behind that lock.
    pub(super) no_room: Option<NoRoom>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct NoRoom {
    pub(super) until: u64,
    pub(super) releases: u64,
}
