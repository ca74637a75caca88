//! What every clone of a registry shares: the entries, their eviction and the counters.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::builder::{CustomizeFn, NameFn, OverrideFn, UNNAMED};
use super::registry::{Counters, NoRoom, Shared, Table};
use crate::ConfigError;
use crate::breaker::{Breaker, BreakerConfig, BreakerListener, BreakerSettings, State, Transition};
use crate::clock::Clock;
use crate::revisions::Revisions;

pub(super) struct Entry {
    pub(super) breaker: Breaker,
    pub(super) protection: Arc<Protection>,
    pub(super) last_used: AtomicU64,
}

impl Entry {
    /// Records a use without a write lock; a load first, so a key used many times within
    /// one clock tick does not bounce its cache line between cores.
    #[inline]
    pub(super) fn touch(&self, now: u64) {
        if self.last_used.load(Ordering::Relaxed) < now {
            self.last_used.store(now, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(super) fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    #[inline]
    pub(super) fn is_idle(&self, now: u64, idle_nanos: u64) -> bool {
        now.saturating_sub(self.last_used()) >= idle_nanos
    }
}

/// Mirrors whether a breaker is open, half-open or forced open, so eviction can read it under
/// the registry's lock without calling into the breaker (reading a breaker's state may run
/// its listeners, which may call back into the registry). It lags a transition by the moment
/// before the listeners run; the breaker was just called then, so it is not the least
/// recently used entry in that moment.
pub(super) struct Protection {
    /// `generation << 1 | protected`; `fetch_max` keeps the latest transition even when
    /// listeners on different threads report out of order.
    pub(super) word: AtomicU64,
    pub(super) releases: Arc<AtomicU64>,
}

impl Protection {
    pub(super) fn is_protected(&self) -> bool {
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

pub(super) enum Lookup {
    Found(Breaker),
    Missing,
    NoRoom,
}

impl<K> Shared<K>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
{
    #[inline]
    pub(super) fn now(&self) -> u64 {
        self.clock.now_nanos()
    }

    #[inline]
    pub(super) fn lookup(&self, key: &K, now: u64) -> Lookup {
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
    pub(super) fn insert(&self, key: &K, now: u64) -> Breaker {
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

    pub(super) fn evict_idle_entries(&self, table: &mut Table<K>, now: u64) -> usize {
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
    pub(super) fn make_room(&self, table: &mut Table<K>, now: u64) {
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
    pub(super) fn serve_unstored(&self, breaker: Breaker) -> Breaker {
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
pub(super) struct Factory<K> {
    pub(super) namer: Box<NameFn<K>>,
    /// The defaults and per-key overrides, replaced by a reconfiguration.
    pub(super) settings: Revisions<KeySettings<K>>,
    pub(super) customize: Option<Box<CustomizeFn<K>>>,
    pub(super) clock: Option<Arc<dyn Clock>>,
}

/// What each key's breaker is built from: the defaults, validated, and the overrides.
pub(super) struct KeySettings<K> {
    pub(super) defaults: BreakerSettings,
    pub(super) default_config: BreakerConfig,
    pub(super) overrides: Option<Box<OverrideFn<K>>>,
}

impl<K> KeySettings<K> {
    /// The settings of `key`: its override, or the defaults.
    pub(super) fn of(&self, key: &K) -> BreakerSettings {
        self.overrides
            .as_ref()
            .and_then(|f| f(key))
            .unwrap_or_else(|| self.defaults.clone())
    }
}

impl<K> Factory<K> {
    pub(super) fn build(&self, key: &K, counters: &Counters) -> (Breaker, Arc<Protection>) {
        let mut name = (self.namer)(key);
        if name.is_empty() {
            name = UNNAMED.to_owned();
        }
        let protection = Arc::new(Protection {
            word: AtomicU64::new(0),
            releases: Arc::clone(&counters.releases),
        });
        let mut fell_back = false;
        let settings = self.settings.current();
        if let Some(overridden) = settings.overrides.as_ref().and_then(|f| f(key)) {
            match self.assemble(key, &name, overridden, &protection, true) {
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
        let breaker = match self.assemble(key, &name, settings.defaults.clone(), &protection, true)
        {
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
                self.assemble(key, &name, settings.defaults.clone(), &protection, false)
                    // Unreachable in practice (validated settings, non-empty name); still no
                    // panic if it ever fails.
                    .unwrap_or_else(|_| Breaker::from_config(name, settings.default_config.clone()))
            }
        };
        if fell_back {
            counters.config_fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        (breaker, protection)
    }

    pub(super) fn assemble(
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
pub(super) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

pub(super) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}
