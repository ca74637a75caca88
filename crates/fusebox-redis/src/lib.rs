//! # fusebox-redis
//!
//! A Redis [`StateStore`] for fleet-wide fusebox breakers. Calls never touch Redis: each
//! breaker's sync task flushes behind and reads by subscription (see
//! [`fusebox_fleet`]).
//!
//! * One hash per breaker plus one lease key per instance, under a prefix (default
//!   `fusebox:`); every multi-key update is one Lua script, so it is atomic.
//! * Transitions are announced on the channel `{prefix}events`; a background task keeps a
//!   subscription and reconnects with backoff.
//! * Idle breakers expire (default after a day without a flush).
//! * Times come from Redis's clock (`TIME`), so instances with skewed clocks agree.
//! * One server ([`RedisStore::builder`]) or a Redis Cluster
//!   ([`RedisStore::cluster_builder`]): every key a script touches carries the breaker's
//!   name as its hash tag, so each call stays within one slot.
//!
//! ```no_run
//! use fusebox_core::breaker::Breaker;
//! use fusebox_fleet::{Fleet, FleetMode};
//! use fusebox_redis::RedisStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder("redis://127.0.0.1:6379").prefix("checkout:").build()?;
//! let fleet = Fleet::builder(store).build()?;
//! let payments = fleet.breaker(
//!     Breaker::builder("payments").failures_in_last(5, 20),
//!     FleetMode::quorum(2, 0.5)?,
//! )?;
//! # drop(payments);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

mod builder;
mod connection;
mod keys;
mod listen;
mod reply;
mod scripts;
mod store;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[cfg(doc)]
use fusebox_fleet::StateStore;
use fusebox_fleet::{FleetView, Notice, StoreError};
use redis::{RedisError, Value};
use tokio::sync::broadcast;

pub use builder::RedisStoreBuilder;
use builder::Target;
use connection::{Backend, Connection};
use keys::key_part;
use scripts::Scripts;

/// A fleet store on Redis: one server, or a Redis Cluster.
///
/// Cheap to clone; clones share one multiplexed connection and one subscription.
///
/// ```no_run
/// use fusebox_fleet::StateStore;
/// use fusebox_redis::RedisStore;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::new("redis://127.0.0.1:6379")?;
/// store.prepare().await?; // checks the server answers
/// for name in store.breakers().await? {
///     println!("{name}");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    scripts: Scripts,
    prefix: String,
    idle_ttl: Duration,
    response_timeout: Duration,
    notices: Arc<broadcast::Sender<Notice>>,
    listening: std::sync::Once,
    /// On a cluster: this handle's last attempt to write each breaker's name into the
    /// index of names (see [`RedisStore::note_breaker`]).
    registered: Mutex<HashMap<String, Registration>>,
}

/// When a name was last written into a cluster's index of names, and whether it worked.
#[derive(Clone, Copy)]
struct Registration {
    at: Instant,
    written: bool,
}

/// How soon a failed registration of a name is tried again.
const REGISTER_RETRY: Duration = Duration::from_secs(1);

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .field("cluster", &self.is_cluster())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `url` with the default prefix `fusebox:`. Connects lazily: a server that
    /// is down now is not an error until the store is used.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// let store = RedisStore::new("redis://127.0.0.1:6379")?;
    /// assert_eq!(store.prefix(), "fusebox:");
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn new(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::builder(url).build()
    }

    /// Starts building a store on `url` (`redis://[user:password@]host[:port][/db]`).
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// use std::time::Duration;
    /// let store = RedisStore::builder("redis://127.0.0.1:6379")
    ///     .prefix("orders:")
    ///     .idle_ttl(Duration::from_secs(3600))
    ///     .build()?;
    /// assert_eq!(store.prefix(), "orders:");
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(Target::Single(url.into()))
    }

    /// Starts building a store on a Redis Cluster reached through `seed_urls` (any of its
    /// nodes; the rest of the topology is discovered and followed). Each breaker's keys
    /// share one slot, the names `breakers()` lists sit in a key of their own, and notices
    /// are published cluster-wide. The connection is made on first use, so a build only
    /// checks the URLs and settings.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// let store = RedisStore::cluster_builder([
    ///     "redis://127.0.0.1:7001",
    ///     "redis://127.0.0.1:7002",
    ///     "redis://127.0.0.1:7003",
    /// ])
    /// .prefix("orders:")
    /// .build()?;
    /// assert!(store.is_cluster());
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn cluster_builder<I>(seed_urls: I) -> RedisStoreBuilder
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        RedisStoreBuilder::new(Target::Cluster(
            seed_urls.into_iter().map(Into::into).collect(),
        ))
    }

    /// Whether the store is on a Redis Cluster.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// assert!(!RedisStore::new("redis://127.0.0.1")?.is_cluster());
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn is_cluster(&self) -> bool {
        self.inner.backend.is_cluster()
    }

    /// The key prefix.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// assert_eq!(RedisStore::new("redis://127.0.0.1")?.prefix(), "fusebox:");
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The hash that holds breaker `name`. The name sits in braces, so all of a breaker's
    /// keys share one cluster slot, with `%`, `{` and `}` written as `%25`, `%7B` and `%7D`,
    /// so that no name can close the braces early and spell another breaker's key.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// let store = RedisStore::new("redis://127.0.0.1")?;
    /// assert_eq!(store.breaker_key("payments"), "fusebox:{payments}");
    /// assert_eq!(store.breaker_key("a}:lease:y"), "fusebox:{a%7D:lease:y}");
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn breaker_key(&self, name: &str) -> String {
        format!("{}{{{}}}", self.inner.prefix, key_part(name))
    }

    /// The channel transitions are announced on.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// assert_eq!(RedisStore::new("redis://127.0.0.1")?.channel(), "fusebox:events");
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn channel(&self) -> String {
        format!("{}events", self.inner.prefix)
    }

    /// On one server: the set of names, which the scripts keep themselves.
    fn names_key(&self) -> String {
        format!("{}breakers", self.inner.prefix)
    }

    /// On a cluster: the sorted set of names, scored by when a write last proved the
    /// breaker's hash exists (ms on Redis's clock). It lives in a slot of its own, so the
    /// store writes it in a call of its own (see [`RedisStore::note_breaker`]).
    fn seen_key(&self) -> String {
        format!("{}breakers:seen", self.inner.prefix)
    }

    /// The keys a script call on breaker `name` declares, and the prefix of the instance
    /// lease keys the sync script derives from it: the breaker's hash, its leases, open
    /// votes and claims, then, on one server only, the set of names. On a cluster every
    /// one of them, and every lease key, has the hash tag `name` (escaped), so the call
    /// touches one slot.
    fn script_keys(&self, name: &str) -> (Vec<String>, String) {
        // Every key of the breaker derives from its hash's key, written once per call.
        let base = self.breaker_key(name);
        let beside = |suffix: &str| format!("{base}{suffix}");
        let lease_prefix = beside(":lease:");
        let mut keys = vec![beside(":leases"), beside(":open"), beside(":claims")];
        keys.insert(0, base);
        if !self.is_cluster() {
            keys.push(self.names_key());
        }
        (keys, lease_prefix)
    }

    async fn connection(&self) -> Result<Connection, StoreError> {
        self.inner
            .backend
            .connection(self.inner.response_timeout)
            .await
            .map_err(store_error)
    }

    async fn run_script(
        &self,
        script: &redis::Script,
        name: &str,
        args: &[String],
    ) -> Result<Value, StoreError> {
        if name.is_empty() {
            return Err(StoreError::Invalid("empty breaker name".into()));
        }
        let mut con = self.connection().await?;
        let mut invocation = script.prepare_invoke();
        let (keys, lease_prefix) = self.script_keys(name);
        for key in keys {
            invocation.key(key);
        }
        invocation
            .arg(name)
            .arg(lease_prefix)
            .arg(self.channel())
            .arg(millis(self.inner.idle_ttl).max(1));
        for a in args {
            invocation.arg(a);
        }
        match invocation.invoke_async::<Value>(&mut con).await {
            // After an outage the connection manager answers the first command with the
            // refusal it cached while the server was away, and only then reconnects. A
            // refused connection sent nothing, so the script is run once more at once
            // rather than after the caller's backoff.
            Err(e) if e.is_connection_refusal() => invocation
                .invoke_async::<Value>(&mut con)
                .await
                .map_err(store_error),
            result => result.map_err(store_error),
        }
    }

    /// On a cluster, after a script call on `view`'s breaker: writes its name into the
    /// index of names when the call proved its hash exists (`saved`, or a record that has
    /// changed at least once), at most once per [`RedisStore::register_every`] per name and
    /// handle. Each name is then listed from its first write until `idle_ttl` after its
    /// last registration, which comes no later than the hash's own expiry. A failed
    /// registration does not fail this call (the breaker's own data is written); it is
    /// tried again a second later, with one warning until it succeeds.
    async fn note_breaker(&self, view: &FleetView, saved: bool) {
        if !self.is_cluster() || !(saved || view.record.generation > 0) {
            return;
        }
        let name = &view.name;
        let every = self.register_every();
        let previous = self
            .inner
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied();
        if let Some(last) = previous {
            let wait = if last.written { every } else { REGISTER_RETRY };
            if last.at.elapsed() < wait {
                return;
            }
        }
        let written = async {
            let mut con = self.connection().await?;
            self.inner
                .scripts
                .seen_add
                .key(self.seen_key())
                .arg(name)
                .arg(millis(self.inner.idle_ttl).max(1))
                .invoke_async::<Value>(&mut con)
                .await
                .map_err(store_error)
        };
        let result = written.await;
        if let Err(e) = &result {
            if previous.is_none_or(|last| last.written) {
                tracing::warn!(breaker = %name, error = %e, "could not list the breaker's name");
            } else {
                tracing::debug!(breaker = %name, error = %e, "could not list the breaker's name");
            }
        }
        let attempt = Registration {
            at: Instant::now(),
            written: result.is_ok(),
        };
        self.inner
            .registered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone(), attempt);
    }

    /// How often one handle refreshes a breaker's entry in the cluster's index of names:
    /// a quarter of the idle TTL, at most a minute, so a busy fleet writes that one key
    /// rarely while an active breaker never ages out of it.
    fn register_every(&self) -> Duration {
        (self.inner.idle_ttl / 4).min(Duration::from_secs(60))
    }

    fn listen(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime: the periodic sync is the backstop
        };
        let sender = Arc::downgrade(&self.inner.notices);
        let channel = self.channel();
        match &self.inner.backend {
            Backend::Single { client, .. } => {
                runtime.spawn(listen::listen_single(client.clone(), channel, sender));
            }
            Backend::Cluster { seeds, .. } => {
                runtime.spawn(listen::listen_cluster(
                    seeds.clone(),
                    self.inner.response_timeout,
                    channel,
                    sender,
                ));
            }
        }
    }
}

fn store_error(e: RedisError) -> StoreError {
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        // A cluster that is down, resharding or still redirecting when the time was up.
        || e.is_cluster_error()
    {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Protocol(e.to_string())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
