use std::task::{Context, Poll};

use fusebox_core::{Classifier, ErrIsFailure};
use fusebox_policy::policy::ConcurrencyLimit;
use tower_service::Service;

use super::ResponseFuture;
use crate::BoxError;

/// A service behind an adaptive concurrency limit; see
/// [`ConcurrencyLimitLayer`](super::ConcurrencyLimitLayer). The place is taken in `call`
/// and given back, with the call's round trip and outcome, when the response future
/// completes; a dropped future gives it back and teaches the limit nothing.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_core::ErrIsFailure;
/// use fusebox_policy::policy::ConcurrencyLimit;
/// use fusebox_tower::concurrency_limit::ConcurrencyLimitService;
/// use tower::{service_fn, ServiceExt};
/// let limit = ConcurrencyLimit::builder("db").build()?;
/// let svc = ConcurrencyLimitService::new(service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }), limit, ErrIsFailure);
/// assert_eq!(svc.oneshot(4).await?, 4);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ConcurrencyLimitService<S, C = ErrIsFailure> {
    inner: S,
    limit: ConcurrencyLimit,
    classifier: C,
}

impl<S, C> ConcurrencyLimitService<S, C> {
    /// Wraps `inner` behind `limit`, reading results with `classifier`.
    ///
    /// ```
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// use fusebox_tower::concurrency_limit::ConcurrencyLimitService;
    /// let svc = ConcurrencyLimitService::new((), ConcurrencyLimit::builder("db").build()?, ErrIsFailure);
    /// assert_eq!(svc.limit().name(), "db");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(inner: S, limit: ConcurrencyLimit, classifier: C) -> Self {
        Self {
            inner,
            limit,
            classifier,
        }
    }

    /// The shared limit.
    ///
    /// ```
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// use fusebox_tower::concurrency_limit::ConcurrencyLimitService;
    /// let svc = ConcurrencyLimitService::new((), ConcurrencyLimit::builder("db").initial_limit(5).build()?, ErrIsFailure);
    /// assert_eq!(svc.limit().limit(), 5);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn limit(&self) -> &ConcurrencyLimit {
        &self.limit
    }
}

impl<S, C, Req> Service<Req> for ConcurrencyLimitService<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classifier<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // A full limit shows as a refused call, never as unreadiness (see the crate docs).
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.limit.try_acquire_owned() {
            Ok(permit) => {
                ResponseFuture::running(self.inner.call(req), permit, self.classifier.clone())
            }
            Err(refusal) => ResponseFuture::refused(refusal),
        }
    }
}
