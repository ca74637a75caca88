//! Settings of a [`RedisStore`], checked when it is built.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox_fleet::StoreError;
use redis::IntoConnectionInfo;
use tokio::sync::broadcast;

use crate::connection::Backend;
use crate::scripts::Scripts;
use crate::{Inner, RedisStore};

/// Builds a [`RedisStore`], on one server ([`RedisStore::builder`]) or on a Redis Cluster
/// ([`RedisStore::cluster_builder`]).
///
/// ```
/// use fusebox_redis::RedisStore;
/// let err = RedisStore::builder("not a url").build().unwrap_err();
/// assert!(err.to_string().contains("invalid"), "{err}");
/// ```
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    pub(crate) target: Target,
    pub(crate) prefix: String,
    pub(crate) idle_ttl: Duration,
    pub(crate) response_timeout: Duration,
}

/// One server's URL, or a cluster's seed nodes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Single(String),
    Cluster(Vec<String>),
}

impl RedisStoreBuilder {
    pub(crate) fn new(target: Target) -> RedisStoreBuilder {
        RedisStoreBuilder {
            target,
            prefix: "fusebox:".to_owned(),
            idle_ttl: Duration::from_secs(24 * 3600),
            response_timeout: Duration::from_secs(1),
        }
    }

    /// The key prefix (default `fusebox:`); give each application or environment its own.
    /// On a cluster it must not hold `{` or `}`, which would move the keys' hash tag.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// assert!(RedisStore::builder("redis://127.0.0.1").prefix("").build().is_err());
    /// assert!(RedisStore::cluster_builder(["redis://127.0.0.1:7001"]).prefix("{app}:").build().is_err());
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a breaker's keys live without a flush (default one day).
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// use std::time::Duration;
    /// assert!(RedisStore::builder("redis://127.0.0.1").idle_ttl(Duration::ZERO).build().is_err());
    /// ```
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = ttl;
        self
    }

    /// How long to wait for a connection or a reply before the store counts as
    /// unavailable (default 1 s). On a cluster it bounds a whole request, redirections
    /// included.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// use std::time::Duration;
    /// let store = RedisStore::builder("redis://127.0.0.1")
    ///     .response_timeout(Duration::from_millis(200))
    ///     .build()?;
    /// # drop(store);
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Checks the settings and the URLs; connects lazily.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// assert!(RedisStore::builder("redis://127.0.0.1:6379").build().is_ok());
    /// assert!(RedisStore::builder("http://127.0.0.1").build().is_err());
    /// let no_seeds: [&str; 0] = [];
    /// assert!(RedisStore::cluster_builder(no_seeds).build().is_err());
    /// ```
    pub fn build(self) -> Result<RedisStore, StoreError> {
        if self.prefix.is_empty() {
            return Err(StoreError::Invalid(
                "prefix: must not be empty (keys would collide with other data)".into(),
            ));
        }
        if self.idle_ttl.is_zero() {
            return Err(StoreError::Invalid(
                "idle_ttl: must be longer than zero".into(),
            ));
        }
        if self.response_timeout.is_zero() {
            return Err(StoreError::Invalid(
                "response_timeout: must be longer than zero".into(),
            ));
        }
        let backend = match &self.target {
            Target::Single(url) => {
                Backend::single(redis::Client::open(url.as_str()).map_err(|e| {
                    StoreError::Invalid(format!("invalid Redis URL: {}", url_problem(url, &e)))
                })?)
            }
            Target::Cluster(seeds) => self.cluster_backend(seeds)?,
        };
        let (notices, _) = broadcast::channel(1024);
        Ok(RedisStore {
            inner: Arc::new(Inner {
                backend,
                scripts: Scripts::new(),
                prefix: self.prefix,
                idle_ttl: self.idle_ttl,
                response_timeout: self.response_timeout,
                notices: Arc::new(notices),
                listening: std::sync::Once::new(),
                registered: Mutex::new(HashMap::new()),
            }),
        })
    }

    fn cluster_backend(&self, seeds: &[String]) -> Result<Backend, StoreError> {
        if seeds.is_empty() {
            return Err(StoreError::Invalid(
                "cluster: at least one seed node URL is needed".into(),
            ));
        }
        if self.prefix.contains(['{', '}']) {
            return Err(StoreError::Invalid(
                "prefix: must not hold `{` or `}` on a cluster (the breaker's name in braces \
                 is the hash tag that keeps its keys in one slot)"
                    .into(),
            ));
        }
        let seeds = seeds
            .iter()
            .map(|url| {
                url.as_str().into_connection_info().map_err(|e| {
                    StoreError::Invalid(format!("cluster: invalid seed node URL: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Backend::cluster(seeds, self.response_timeout)
            .map_err(|e| StoreError::Invalid(format!("cluster: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_settings_are_checked() {
        let cluster = |seeds: &[&str]| RedisStore::cluster_builder(seeds.iter().copied());
        let err = cluster(&[]).build().unwrap_err().to_string();
        assert!(err.contains("cluster: at least one seed"), "{err}");
        let err = cluster(&["redis://127.0.0.1:7001", "http://x"])
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("cluster: invalid seed node URL"), "{err}");
        for prefix in ["{app}:", "app}:", "{", "a{b"] {
            let err = cluster(&["redis://127.0.0.1:7001"])
                .prefix(prefix)
                .build()
                .unwrap_err()
                .to_string();
            assert!(err.contains("prefix: must not hold"), "{prefix:?}: {err}");
        }
        let err = cluster(&["redis://127.0.0.1:7001"])
            .idle_ttl(Duration::ZERO)
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("idle_ttl"), "{err}");
        let store = cluster(&["redis://127.0.0.1:7001", "redis://127.0.0.1:7002"])
            .prefix("orders:")
            .build()
            .expect("valid settings");
        assert!(store.is_cluster());
        assert_eq!(store.prefix(), "orders:");
    }

    #[test]
    fn braces_in_a_standalone_prefix_stay_allowed() {
        // A single server has no slots; earlier releases accepted such prefixes.
        let store = RedisStore::builder("redis://127.0.0.1")
            .prefix("{app}:")
            .build()
            .expect("valid settings");
        assert!(!store.is_cluster());
    }
}

/// What is wrong with a Redis URL the client refused, in words: the client's own error
/// ("did not parse - InvalidClientConfig") names no cause. Never echoes the URL, which may
/// hold a password.
fn url_problem(text: &str, refused: &redis::RedisError) -> String {
    const FORM: &str = "expected redis://[user:password@]host[:port][/database]";
    let parsed = match url::Url::parse(text.trim()) {
        Ok(parsed) => parsed,
        Err(e) => return format!("it does not parse as a URL ({e}); {FORM}"),
    };
    let scheme = parsed.scheme();
    if !matches!(
        scheme,
        "redis" | "rediss" | "redis+unix" | "unix" | "valkey" | "valkeys"
    ) {
        return format!("unsupported scheme `{scheme}://`; {FORM}");
    }
    if matches!(scheme, "redis" | "rediss" | "valkey" | "valkeys") {
        if parsed.host_str().is_none_or(str::is_empty) {
            return format!("it names no host; {FORM}");
        }
        let database = parsed.path().trim_start_matches('/');
        if !database.is_empty() && database.parse::<u32>().is_err() {
            return format!("the database `{database}` is not a number; {FORM}");
        }
    }
    format!("{refused}; {FORM}")
}

#[cfg(test)]
mod url_tests {
    use super::*;

    fn problem(text: &str) -> String {
        match RedisStore::builder(text).build() {
            Err(StoreError::Invalid(why)) => why,
            other => panic!("{text:?} was accepted: {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_refused_url_says_what_is_wrong_and_never_shows_a_password() {
        for (text, says) in [
            ("redis://host:port", "invalid port number"),
            ("redis//host", "relative URL without a base"),
            ("http://127.0.0.1", "unsupported scheme `http://`"),
            (
                "redis://:s3cret@host:6379/cache",
                "the database `cache` is not a number",
            ),
        ] {
            let why = problem(text);
            assert!(why.contains(says), "{text}: {why}");
            assert!(why.contains("expected redis://"), "{text}: {why}");
            assert!(
                !why.contains("s3cret") && !why.contains("InvalidClientConfig"),
                "{why}"
            );
        }
    }
}
