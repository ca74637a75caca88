use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use fusebox_core::RateLimited;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::BoxError;

/// A call waiting for its permit; boxed, since only calls that wait pay for it.
pub(super) type Waiting = Pin<Box<dyn Future<Output = Result<(), RateLimited>> + Send>>;

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
        state: State<S, Req>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        Refused { limited: Option<RateLimited> },
        Waiting { waiting: Waiting, service: Option<S>, request: Option<Req> },
        Running { #[pin] future: S::Future },
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(super) fn running(future: S::Future) -> Self {
        ResponseFuture {
            state: State::Running { future },
        }
    }

    pub(super) fn refused(limited: RateLimited) -> Self {
        ResponseFuture {
            state: State::Refused {
                limited: Some(limited),
            },
        }
    }

    pub(super) fn waiting(waiting: Waiting, service: S, request: Req) -> Self {
        ResponseFuture {
            state: State::Waiting {
                waiting,
                service: Some(service),
                request: Some(request),
            },
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
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Refused { limited } => {
                    return Poll::Ready(Err(match limited.take() {
                        Some(limited) => Box::new(limited),
                        None => "rate limit future polled after completion".into(),
                    }));
                }
                StateProj::Waiting {
                    waiting,
                    service,
                    request,
                } => {
                    if let Err(limited) = ready!(waiting.as_mut().poll(cx)) {
                        return Poll::Ready(Err(Box::new(limited)));
                    }
                    let (Some(mut service), Some(request)) = (service.take(), request.take())
                    else {
                        return Poll::Ready(
                            Err("rate limit future polled after completion".into()),
                        );
                    };
                    let future = service.call(request);
                    this.state.set(State::Running { future });
                }
                StateProj::Running { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
            }
        }
    }
}
