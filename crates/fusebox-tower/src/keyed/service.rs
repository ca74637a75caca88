use std::fmt;
use std::hash::Hash;
use std::task::{Context, Poll};

use fusebox_core::Classifier;
use tower_service::Service;

use super::BreakerRegistry;
use crate::BoxError;
use crate::breaker::ResponseFuture;

/// A service behind one circuit breaker per key; see
/// [`KeyedBreakerLayer`](super::KeyedBreakerLayer).
///
/// Admission happens in `call`: the key's breaker is looked up (or created), and an open
/// breaker answers with a ready [`Rejected`](fusebox_core::Rejected) error without calling the
/// inner service. `poll_ready` is the inner service's (see the [crate docs](crate#readiness)):
/// readiness cannot depend on a key that is only known once the request arrives.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_core::ErrIsFailure;
/// use fusebox_core::breaker::BreakerSettings;
/// use fusebox_tower::keyed::{BreakerRegistry, KeyedCircuitBreaker};
/// use tower::{service_fn, ServiceExt};
///
/// type Request = (&'static str, bool); // (host, whether the host fails it)
///
/// let registry = BreakerRegistry::<&str>::builder("host")
///     .settings(BreakerSettings { consecutive_failures: Some(1), ..Default::default() })
///     .build()?;
/// let inner = service_fn(|(host, fail): Request| async move {
///     if fail { Err("down") } else { Ok(host.len()) }
/// });
/// let svc = KeyedCircuitBreaker::new(inner, registry, |req: &Request| req.0, ErrIsFailure);
/// assert!(svc.clone().oneshot(("a", true)).await.is_err()); // trips "a"
/// let err = svc.clone().oneshot(("a", false)).await.unwrap_err();
/// assert!(err.is::<fusebox_core::Rejected>());
/// assert_eq!(svc.clone().oneshot(("bb", false)).await?, 2); // "bb" is unaffected
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct KeyedCircuitBreaker<S, K, F, C> {
    inner: S,
    registry: BreakerRegistry<K>,
    key_of: F,
    classifier: C,
}

impl<S, K, F, C> KeyedCircuitBreaker<S, K, F, C> {
    /// Wraps `inner`, keying each request with `key_of`.
    ///
    /// ```
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_tower::keyed::{BreakerRegistry, KeyedCircuitBreaker};
    /// use tower::service_fn;
    ///
    /// let registry = BreakerRegistry::<u32>::builder("user").build()?;
    /// let inner = service_fn(|id: u32| async move { Ok::<_, std::io::Error>(id) });
    /// let svc = KeyedCircuitBreaker::new(inner, registry, |id: &u32| *id % 16, ErrIsFailure);
    /// # let _ = svc;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(inner: S, registry: BreakerRegistry<K>, key_of: F, classifier: C) -> Self {
        KeyedCircuitBreaker {
            inner,
            registry,
            key_of,
            classifier,
        }
    }

    /// The shared registry.
    ///
    /// ```
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_tower::keyed::{BreakerRegistry, KeyedCircuitBreaker};
    /// use tower::service_fn;
    ///
    /// let registry = BreakerRegistry::<u32>::builder("user").build()?;
    /// let inner = service_fn(|id: u32| async move { Ok::<_, std::io::Error>(id) });
    /// let svc = KeyedCircuitBreaker::new(inner, registry, |id: &u32| *id, ErrIsFailure);
    /// assert_eq!(svc.registry().len(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn registry(&self) -> &BreakerRegistry<K> {
        &self.registry
    }

    /// The wrapped service.
    ///
    /// ```
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_tower::keyed::{BreakerRegistry, KeyedCircuitBreaker};
    ///
    /// let registry = BreakerRegistry::<u32>::builder("user").build()?;
    /// let svc = KeyedCircuitBreaker::new("inner", registry, |id: &u32| *id, ErrIsFailure);
    /// assert_eq!(*svc.get_ref(), "inner");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: fmt::Debug, K, F, C: fmt::Debug> fmt::Debug for KeyedCircuitBreaker<S, K, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreaker")
            .field("inner", &self.inner)
            .field("registry", &self.registry)
            .field("classifier", &self.classifier)
            .finish_non_exhaustive()
    }
}

impl<S, K, F, C, Req> Service<Req> for KeyedCircuitBreaker<S, K, F, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    K: Hash + Eq + Clone + Send + Sync + 'static,
    F: Fn(&Req) -> K,
    C: Classifier<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = (self.key_of)(&req);
        let breaker = self.registry.get_or_create(&key);
        match breaker.try_acquire_owned() {
            Ok(permit) => {
                ResponseFuture::admitted(self.inner.call(req), permit, self.classifier.clone())
            }
            Err(rejected) => ResponseFuture::rejected(rejected),
        }
    }
}
