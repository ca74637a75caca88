use std::fmt;

use fusebox_core::ErrIsFailure;
use tower_layer::Layer;

use super::{BreakerRegistry, KeyedCircuitBreaker};

/// Wraps a service in one circuit breaker per key. The key is extracted from each request by
/// `key_of` (an `Fn(&Request) -> K`); every service the layer makes shares the registry.
///
/// The classifier works as for [`BreakerLayer`](crate::BreakerLayer): the default counts
/// every `Err` as a failure.
///
/// ```
/// use fusebox_tower::keyed::{BreakerRegistry, KeyedBreakerLayer};
///
/// struct Request {
///     tenant: u32,
/// }
///
/// let registry = BreakerRegistry::<u32>::builder("tenant").build()?;
/// let layer = KeyedBreakerLayer::new(registry, |req: &Request| req.tenant)
///     .classifier(|r: &Result<(), std::io::Error>| match r {
///         Err(e) if e.kind() == std::io::ErrorKind::NotFound => fusebox_core::Outcome::Ignored,
///         Err(_) => fusebox_core::Outcome::Failure,
///         Ok(_) => fusebox_core::Outcome::Success,
///     });
/// assert!(layer.registry().is_empty());
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct KeyedBreakerLayer<K, F, C = ErrIsFailure> {
    registry: BreakerRegistry<K>,
    key_of: F,
    classifier: C,
}

impl<K, F> KeyedBreakerLayer<K, F> {
    /// A layer keyed by `key_of`, counting every `Err` as a failure.
    ///
    /// ```
    /// use fusebox_tower::keyed::{BreakerRegistry, KeyedBreakerLayer};
    ///
    /// let registry = BreakerRegistry::<String>::builder("host").build()?;
    /// let layer = KeyedBreakerLayer::new(registry, |url: &String| {
    ///     url.split('/').nth(2).unwrap_or_default().to_string()
    /// });
    /// # let _ = layer;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(registry: BreakerRegistry<K>, key_of: F) -> Self {
        KeyedBreakerLayer {
            registry,
            key_of,
            classifier: ErrIsFailure,
        }
    }
}

impl<K, F, C> KeyedBreakerLayer<K, F, C> {
    /// Replaces the classifier. It is cloned into each call's future, so keep it cheap to
    /// clone.
    ///
    /// ```
    /// use fusebox_core::FailureWhen;
    /// use fusebox_tower::keyed::{BreakerRegistry, KeyedBreakerLayer};
    ///
    /// let registry = BreakerRegistry::<u8>::builder("shard").build()?;
    /// let layer = KeyedBreakerLayer::new(registry, |req: &(u8, String)| req.0)
    ///     .classifier(FailureWhen(|e: &&str| *e != "bad request"));
    /// # let _ = layer;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn classifier<C2>(self, classifier: C2) -> KeyedBreakerLayer<K, F, C2> {
        KeyedBreakerLayer {
            registry: self.registry,
            key_of: self.key_of,
            classifier,
        }
    }

    /// The shared registry, for operators: list, inspect, reset or remove keys.
    ///
    /// ```
    /// use fusebox_tower::keyed::{BreakerRegistry, KeyedBreakerLayer};
    ///
    /// let registry = BreakerRegistry::<u8>::builder("shard").build()?;
    /// let layer = KeyedBreakerLayer::new(registry.clone(), |req: &u8| *req);
    /// registry.get_or_create(&1);
    /// assert_eq!(layer.registry().len(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn registry(&self) -> &BreakerRegistry<K> {
        &self.registry
    }
}

impl<K, F, C: fmt::Debug> fmt::Debug for KeyedBreakerLayer<K, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedBreakerLayer")
            .field("registry", &self.registry)
            .field("classifier", &self.classifier)
            .finish_non_exhaustive()
    }
}

impl<S, K, F: Clone, C: Clone> Layer<S> for KeyedBreakerLayer<K, F, C> {
    type Service = KeyedCircuitBreaker<S, K, F, C>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedCircuitBreaker::new(
            inner,
            self.registry.clone(),
            self.key_of.clone(),
            self.classifier.clone(),
        )
    }
}
