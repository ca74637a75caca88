use std::task::{Context, Poll};

use fusebox_policy::policy::Retry;
use tower_service::Service;

use super::{ResponseFuture, RetryRequest};
use crate::BoxError;

/// A service whose calls are retried; see [`RetryLayer`](super::RetryLayer).
#[derive(Debug)]
pub struct RetryService<S, T, P> {
    inner: S,
    policy: Retry<T, BoxError>,
    requests: P,
}

impl<S, T, P> RetryService<S, T, P> {
    /// Wraps `inner`.
    pub fn new(inner: S, policy: Retry<T, BoxError>, requests: P) -> Self {
        RetryService {
            inner,
            policy,
            requests,
        }
    }
}

impl<S, Req, P> Service<Req> for RetryService<S, S::Response, P>
where
    S: Service<Req> + Clone,
    S::Response: 'static,
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
        let copy = self.requests.clone_for_retry(&req);
        // The ready service takes this call; a fresh clone waits for the next one.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let future = ready.call(req);
        ResponseFuture::new(
            future,
            ready,
            copy,
            self.requests.clone(),
            self.policy.clone().into_attempts(),
        )
    }
}

// Not derived: a derive would require `T: Clone`, and responses rarely are.
impl<S: Clone, T, P: Clone> Clone for RetryService<S, T, P> {
    fn clone(&self) -> Self {
        RetryService {
            inner: self.inner.clone(),
            policy: self.policy.clone(),
            requests: self.requests.clone(),
        }
    }
}
