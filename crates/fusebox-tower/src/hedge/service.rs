use std::task::{Context, Poll};

use fusebox_policy::policy::Hedge;
use tower_service::Service;

use super::future::ResponseFuture;
use crate::BoxError;
use crate::retry::RetryRequest;

/// A service whose idempotent requests are hedged; built by [`HedgeLayer`](super::HedgeLayer).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_policy::policy::Hedge;
/// use fusebox_tower::hedge::HedgeService;
/// use fusebox_tower::retry::CloneRequests;
/// use tower::{service_fn, ServiceExt};
/// let echo = service_fn(|n: u8| async move { Ok::<_, std::io::Error>(n) });
/// let svc = HedgeService::new(echo, Hedge::builder("echo").build()?, CloneRequests);
/// assert_eq!(svc.oneshot(4).await?, 4);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct HedgeService<S, P> {
    inner: S,
    hedge: Hedge,
    requests: P,
}

impl<S, P> HedgeService<S, P> {
    /// Hedges the requests to `inner` that `requests` can copy.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// use fusebox_tower::hedge::HedgeService;
    /// use fusebox_tower::retry::CloneRequests;
    /// let echo = tower::service_fn(|n: u8| async move { Ok::<_, std::io::Error>(n) });
    /// let _svc = HedgeService::new(echo, Hedge::builder("echo").build()?, CloneRequests);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(inner: S, hedge: Hedge, requests: P) -> Self {
        HedgeService {
            inner,
            hedge,
            requests,
        }
    }
}

impl<S, P, Req> Service<Req> for HedgeService<S, P>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    P: RetryRequest<Req> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.requests.clone_for_retry(&req) {
            // The ready service takes the first attempt; a clone, readied when a hedge is
            // due, takes the others.
            Some(copy) => {
                let spare = self.inner.clone();
                let first_watch = self.hedge.begin_call();
                ResponseFuture::hedged(
                    self.inner.call(req),
                    first_watch,
                    self.hedge.clone(),
                    spare,
                    copy,
                    self.requests.clone(),
                )
            }
            None => ResponseFuture::unhedged(self.inner.call(req)),
        }
    }
}
