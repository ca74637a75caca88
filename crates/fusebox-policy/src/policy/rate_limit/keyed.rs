//! The rate limiter with a quota of its own for each key, and the upkeep of its keys.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;

use fusebox_core::breaker::Name;
use fusebox_core::{Error, RateLimited};

use super::{LimiterClock, RateLimitMode, Settings};

type KeyedGcra<K> =
    governor::RateLimiter<K, HashMapStateStore<K>, LimiterClock, NoOpMiddleware<Nanos>>;

pub(super) struct KeyedInner<K: Hash + Eq + Clone> {
    pub(super) settings: Settings,
    pub(super) gcra: KeyedGcra<K>,
}

/// A rate limiter with a quota of its own for each key: one tenant, host or user using up
/// its permits leaves the others theirs. Refusals name the key, as `limiter/key`. Clones
/// share the quotas.
///
/// Keys are remembered until [`forget_idle`](Self::forget_idle) drops those whose quota is
/// full again; call it now and then where keys come from outside.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_policy::policy::RateLimiter;
/// let limiter = RateLimiter::builder("tenants").per_second(1).build_keyed::<&str>()?;
/// assert!(limiter.call(&"acme", || async { Ok::<_, ()>(()) }).await.is_ok());
/// let refused = limiter.call(&"acme", || async { Ok::<_, ()>(()) }).await.unwrap_err();
/// assert_eq!(refused.stopped_by(), Some("rate_limit"));
/// assert!(limiter.call(&"initech", || async { Ok::<_, ()>(()) }).await.is_ok());
/// # Ok(())
/// # }
/// ```
pub struct KeyedRateLimiter<K: Hash + Eq + Clone> {
    pub(super) inner: Arc<KeyedInner<K>>,
}

impl<K: Hash + Eq + Clone> Clone for KeyedRateLimiter<K> {
    fn clone(&self) -> Self {
        KeyedRateLimiter {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: Hash + Eq + Clone> fmt::Debug for KeyedRateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("settings", &self.inner.settings)
            .field("keys", &self.inner.gcra.len())
            .finish()
    }
}

impl<K: Hash + Eq + Clone + fmt::Display> KeyedRateLimiter<K> {
    /// The limiter's name.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// assert_eq!(RateLimiter::builder("t").build_keyed::<u32>()?.name(), "t");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &str {
        self.inner.settings.name.as_ref()
    }

    /// What a call that finds no permit for its key does.
    ///
    /// ```
    /// use fusebox_policy::policy::{RateLimitMode, RateLimiter};
    /// assert_eq!(RateLimiter::builder("t").build_keyed::<u8>()?.mode(), RateLimitMode::Reject);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn mode(&self) -> RateLimitMode {
        self.inner.settings.mode
    }

    fn refusal_name(&self, key: &K) -> Name {
        Name::from(format!("{}/{key}", self.inner.settings.name))
    }

    /// Takes a permit for `key` if one is free now; refuses otherwise.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("t").per_second(1).build_keyed::<u32>()?;
    /// assert!(limiter.try_acquire(&7).is_ok());
    /// assert_eq!(limiter.try_acquire(&7).unwrap_err().name, "t/7");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn try_acquire(&self, key: &K) -> Result<(), RateLimited> {
        let inner = &*self.inner;
        match inner.gcra.check_key(key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let limited = RateLimited {
                    name: self.refusal_name(key),
                    retry_after: not_until.wait_time_from(inner.settings.clock.now()),
                };
                for listener in &inner.settings.listeners.on_limited {
                    listener(&limited);
                }
                Err(limited)
            }
        }
    }

    /// Takes a permit for `key` as the mode says: at once, or after a bounded wait.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::{TokioClock, policy::RateLimiter};
    /// use std::time::Duration;
    /// let limiter = RateLimiter::builder("t")
    ///     .per_second(2)
    ///     .burst(1)
    ///     .max_wait(Duration::from_secs(1))
    ///     .clock(TokioClock::new())
    ///     .build_keyed::<u8>()?;
    /// limiter.acquire(&1).await.unwrap();
    /// limiter.acquire(&1).await.unwrap(); // waits half a second
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire(&self, key: &K) -> Result<(), RateLimited> {
        let inner = &*self.inner;
        inner
            .settings
            .admit(|| inner.gcra.check_key(key), || self.refusal_name(key))
            .await
    }

    /// Takes a permit for `key` if one is free now and tells nobody when none is: for a
    /// caller that goes on to [`acquire`](Self::acquire).
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("t").per_second(1).build_keyed::<u8>()?;
    /// assert!(limiter.take_free_permit(&1));
    /// assert!(!limiter.take_free_permit(&1));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[inline]
    pub fn take_free_permit(&self, key: &K) -> bool {
        self.inner.gcra.check_key(key).is_ok()
    }

    /// Like [`acquire`](Self::acquire), owning the key and a handle to the limiter: the
    /// future is `'static`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("t").per_second(1).build_keyed::<u8>()?;
    /// tokio::spawn(limiter.acquire_owned(3)).await??;
    /// assert!(tokio::spawn(limiter.acquire_owned(3)).await?.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire_owned(
        &self,
        key: K,
    ) -> impl Future<Output = Result<(), RateLimited>> + Send + 'static
    where
        K: Send + Sync + 'static,
    {
        let this = self.clone();
        async move { this.acquire(&key).await }
    }

    /// Runs `op` once `key` has a permit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("t").per_second(1).build_keyed::<u8>()?;
    /// assert_eq!(limiter.call(&1, || async { Ok::<_, ()>(5) }).await.unwrap(), 5);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, key: &K, op: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if self.inner.gcra.check_key(key).is_err() {
            Box::pin(self.acquire(key))
                .await
                .map_err(Error::RateLimited)?;
        }
        op().await.map_err(Error::Inner)
    }

    /// Forgets the keys whose quota is full again, so keys seen once do not stay forever.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_policy::policy::RateLimiter;
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let limiter = RateLimiter::builder("t").per_second(1).clock(clock.clone()).build_keyed::<u8>()?;
    /// let _ = limiter.try_acquire(&1);
    /// assert_eq!(limiter.keys(), 1);
    /// clock.advance(Duration::from_secs(2));
    /// limiter.forget_idle();
    /// assert_eq!(limiter.keys(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn forget_idle(&self) {
        self.inner.gcra.retain_recent();
    }

    /// How many keys the limiter remembers.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("t").build_keyed::<u8>()?;
    /// assert_eq!(limiter.keys(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn keys(&self) -> usize {
        self.inner.gcra.len()
    }
}
