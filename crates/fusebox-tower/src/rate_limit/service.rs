use std::fmt;
use std::hash::Hash;
use std::task::{Context, Poll};

use fusebox_policy::policy::{KeyedRateLimiter, RateLimitMode, RateLimiter};
use tower_service::Service;

use super::future::ResponseFuture;
use crate::BoxError;

/// A service whose requests each take a permit from a [`RateLimiter`] first; built by
/// [`RateLimitLayer`](super::RateLimitLayer).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_policy::policy::RateLimiter;
/// use fusebox_tower::rate_limit::RateLimit;
/// use tower::{service_fn, ServiceExt};
/// let limiter = RateLimiter::builder("api").per_second(2).build()?;
/// let svc = RateLimit::new(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n) }), limiter);
/// assert_eq!(svc.oneshot(7).await?, 7);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RateLimit<S> {
    inner: S,
    limiter: RateLimiter,
}

impl<S> RateLimit<S> {
    /// Limits `inner` with `limiter`.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// use fusebox_tower::rate_limit::RateLimit;
    /// let svc = RateLimit::new(tower::service_fn(|(): ()| async { Ok::<_, std::io::Error>(()) }), RateLimiter::builder("a").build()?);
    /// # let _ = svc;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(inner: S, limiter: RateLimiter) -> Self {
        RateLimit { inner, limiter }
    }
}

impl<S, Req> Service<Req> for RateLimit<S>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        if self.limiter.take_free_permit() {
            return ResponseFuture::running(self.inner.call(req));
        }
        match self.limiter.mode() {
            // `try_acquire` tells the listeners and computes when to retry.
            RateLimitMode::Reject => match self.limiter.try_acquire() {
                Ok(()) => ResponseFuture::running(self.inner.call(req)),
                Err(limited) => ResponseFuture::refused(limited),
            },
            RateLimitMode::Wait { .. } => ResponseFuture::waiting(
                Box::pin(self.limiter.acquire_owned()),
                take_ready(&mut self.inner),
                req,
            ),
        }
    }
}

/// The ready service keeps the waiting request; a fresh clone takes its place, as tower's
/// own middleware does.
fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

/// A service whose requests each take a permit from their key's quota in a
/// [`KeyedRateLimiter`] first; built by [`KeyedRateLimitLayer`](super::KeyedRateLimitLayer).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_policy::policy::RateLimiter;
/// use fusebox_tower::rate_limit::KeyedRateLimit;
/// use tower::{service_fn, ServiceExt};
/// let limiter = RateLimiter::builder("users").per_second(1).build_keyed::<u32>()?;
/// let svc = KeyedRateLimit::new(
///     service_fn(|user: u32| async move { Ok::<_, std::io::Error>(user) }),
///     limiter,
///     |user: &u32| *user,
/// );
/// assert_eq!(svc.clone().oneshot(1).await?, 1);
/// assert!(svc.clone().oneshot(1).await.is_err());
/// assert_eq!(svc.oneshot(2).await?, 2);
/// # Ok(())
/// # }
/// ```
pub struct KeyedRateLimit<S, K: Hash + Eq + Clone, F> {
    inner: S,
    limiter: KeyedRateLimiter<K>,
    key_of: F,
}

impl<S: Clone, K: Hash + Eq + Clone, F: Clone> Clone for KeyedRateLimit<S, K, F> {
    fn clone(&self) -> Self {
        KeyedRateLimit {
            inner: self.inner.clone(),
            limiter: self.limiter.clone(),
            key_of: self.key_of.clone(),
        }
    }
}

impl<S, K: Hash + Eq + Clone, F> fmt::Debug for KeyedRateLimit<S, K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimit")
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl<S, K: Hash + Eq + Clone, F> KeyedRateLimit<S, K, F> {
    /// Limits `inner` per key, reading each request's key with `key_of`.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// use fusebox_tower::rate_limit::KeyedRateLimit;
    /// let limiter = RateLimiter::builder("t").build_keyed::<u8>()?;
    /// let svc = KeyedRateLimit::new(tower::service_fn(|k: u8| async move { Ok::<_, std::io::Error>(k) }), limiter, |k: &u8| *k);
    /// # let _ = svc;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(inner: S, limiter: KeyedRateLimiter<K>, key_of: F) -> Self {
        KeyedRateLimit {
            inner,
            limiter,
            key_of,
        }
    }
}

impl<S, Req, K, F> Service<Req> for KeyedRateLimit<S, K, F>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    K: Hash + Eq + Clone + fmt::Display + Send + Sync + 'static,
    F: Fn(&Req) -> K,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let key = (self.key_of)(&req);
        if self.limiter.take_free_permit(&key) {
            return ResponseFuture::running(self.inner.call(req));
        }
        match self.limiter.mode() {
            RateLimitMode::Reject => match self.limiter.try_acquire(&key) {
                Ok(()) => ResponseFuture::running(self.inner.call(req)),
                Err(limited) => ResponseFuture::refused(limited),
            },
            RateLimitMode::Wait { .. } => ResponseFuture::waiting(
                Box::pin(self.limiter.acquire_owned(key)),
                take_ready(&mut self.inner),
                req,
            ),
        }
    }
}
