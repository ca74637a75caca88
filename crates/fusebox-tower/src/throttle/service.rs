use std::task::{Context, Poll};

use fusebox_core::Classifier;
use fusebox_policy::policy::Throttle;
use tower_service::Service;

use super::future::ResponseFuture;
use crate::BoxError;

/// A service whose requests pass a [`Throttle`] first; built by
/// [`ThrottleLayer`](super::ThrottleLayer).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_core::ErrIsFailure;
/// use fusebox_policy::policy::Throttle;
/// use fusebox_tower::throttle::ThrottleService;
/// use tower::{service_fn, ServiceExt};
/// let throttle = Throttle::builder("db").build()?;
/// let svc = ThrottleService::new(service_fn(|n: u8| async move { Ok::<_, std::io::Error>(n) }), throttle, ErrIsFailure);
/// assert_eq!(svc.oneshot(4).await?, 4);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ThrottleService<S, C> {
    inner: S,
    throttle: Throttle,
    classifier: C,
}

impl<S, C> ThrottleService<S, C> {
    /// Throttles `inner` with `throttle`, `classifier` reading its responses.
    ///
    /// ```
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_policy::policy::Throttle;
    /// use fusebox_tower::throttle::ThrottleService;
    /// let svc = ThrottleService::new(tower::service_fn(|(): ()| async { Ok::<_, std::io::Error>(()) }), Throttle::builder("a").build()?, ErrIsFailure);
    /// # let _ = svc;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(inner: S, throttle: Throttle, classifier: C) -> Self {
        ThrottleService {
            inner,
            throttle,
            classifier,
        }
    }
}

impl<S, C, Req> Service<Req> for ThrottleService<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Classifier<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.throttle.admit() {
            Ok(()) => ResponseFuture::sent(
                self.inner.call(req),
                self.throttle.clone(),
                self.classifier.clone(),
            ),
            Err(throttled) => ResponseFuture::dropped(throttled),
        }
    }
}
