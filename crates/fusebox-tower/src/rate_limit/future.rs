use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use fusebox_core::RateLimited;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::BoxError;
use crate::held::Held;

/// A call waiting for its permit; boxed, since only calls that wait pay for it.
pub(super) type Waiting = Pin<Box<dyn Future<Output = Result<(), RateLimited>> + Send>>;

const LAYER: &str = "rate limit future polled after completion";

/// The wait for a permit, ending with `None` to send the call or with the refusal.
pub(super) struct Permit<R> {
    waiting: Waiting,
    response: PhantomData<fn() -> R>,
}

impl<R> Future for Permit<R> {
    type Output = Option<Result<R, BoxError>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.waiting.as_mut().poll(cx).map(|permit| {
            permit
                .err()
                .map(|limited| Err(Box::new(limited) as BoxError))
        })
    }
}

pin_project! {
    /// The response of a [`RateLimit`](super::RateLimit) or
    /// [`KeyedRateLimit`](super::KeyedRateLimit): the inner service's, or a boxed
    /// [`RateLimited`] refusal.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_tower::BoxError> {
    /// use fusebox_policy::policy::RateLimiter;
    /// use fusebox_tower::rate_limit::RateLimit;
    /// use tower::{service_fn, Service};
    /// let limiter = RateLimiter::builder("a").build()?;
    /// let mut svc = RateLimit::new(service_fn(|(): ()| async { Ok::<_, std::io::Error>(1) }), limiter);
    /// let future = svc.call(()); // a fusebox_tower::rate_limit::ResponseFuture
    /// assert_eq!(future.await?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        inner: Held<S, Req, Permit<S::Response>>,
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(super) fn running(future: S::Future) -> Self {
        ResponseFuture {
            inner: Held::sent(future, LAYER),
        }
    }

    pub(super) fn refused(limited: RateLimited) -> Self {
        ResponseFuture {
            inner: Held::answered(Err(Box::new(limited)), LAYER),
        }
    }

    pub(super) fn waiting(waiting: Waiting, service: S, request: Req) -> Self {
        let permit = Permit {
            waiting,
            response: PhantomData,
        };
        ResponseFuture {
            inner: Held::holding(permit, service, request, LAYER),
        }
    }
}

impl<S: Service<Req>, Req> std::fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, Req> Future for ResponseFuture<S, Req>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}
