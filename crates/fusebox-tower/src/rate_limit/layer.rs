use std::fmt;
use std::hash::Hash;

use fusebox_policy::policy::{KeyedRateLimiter, RateLimiter};
use tower_layer::Layer;

use super::service::{KeyedRateLimit, RateLimit};

/// Wraps a service in a [`RateLimit`]: every request takes a permit from one shared quota.
///
/// ```
/// use fusebox_policy::policy::RateLimiter;
/// use fusebox_tower::rate_limit::RateLimitLayer;
/// let layer = RateLimitLayer::new(RateLimiter::builder("api").per_second(100).build()?);
/// # let _ = layer;
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RateLimitLayer {
    limiter: RateLimiter,
}

impl RateLimitLayer {
    /// A layer whose services share `limiter` (and its clones' quota).
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// use fusebox_tower::rate_limit::RateLimitLayer;
    /// let limiter = RateLimiter::builder("api").build()?;
    /// let _layer = RateLimitLayer::new(limiter.clone());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(limiter: RateLimiter) -> Self {
        RateLimitLayer { limiter }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, self.limiter.clone())
    }
}

/// Wraps a service in a [`KeyedRateLimit`]: each request takes a permit from the quota of
/// the key `key_of` reads from it (a tenant header, a host, a user id).
///
/// ```
/// use fusebox_policy::policy::RateLimiter;
/// use fusebox_tower::rate_limit::KeyedRateLimitLayer;
/// let limiter = RateLimiter::builder("tenants").per_second(10).build_keyed::<String>()?;
/// // Requests here are (tenant, body) pairs.
/// let layer = KeyedRateLimitLayer::new(limiter, |req: &(String, Vec<u8>)| req.0.clone());
/// # let _ = layer;
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub struct KeyedRateLimitLayer<K: Hash + Eq + Clone, F> {
    limiter: KeyedRateLimiter<K>,
    key_of: F,
}

impl<K: Hash + Eq + Clone, F: Clone> Clone for KeyedRateLimitLayer<K, F> {
    fn clone(&self) -> Self {
        KeyedRateLimitLayer {
            limiter: self.limiter.clone(),
            key_of: self.key_of.clone(),
        }
    }
}

impl<K: Hash + Eq + Clone, F> fmt::Debug for KeyedRateLimitLayer<K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimitLayer")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone, F> KeyedRateLimitLayer<K, F> {
    /// A layer that limits each key `key_of` extracts from a request separately.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// use fusebox_tower::rate_limit::KeyedRateLimitLayer;
    /// let limiter = RateLimiter::builder("hosts").build_keyed::<&'static str>()?;
    /// let _layer = KeyedRateLimitLayer::new(limiter, |host: &&'static str| *host);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(limiter: KeyedRateLimiter<K>, key_of: F) -> Self {
        KeyedRateLimitLayer { limiter, key_of }
    }
}

impl<S, K: Hash + Eq + Clone, F: Clone> Layer<S> for KeyedRateLimitLayer<K, F> {
    type Service = KeyedRateLimit<S, K, F>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedRateLimit::new(inner, self.limiter.clone(), self.key_of.clone())
    }
}
