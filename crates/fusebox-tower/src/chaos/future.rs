use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use crate::BoxError;
use crate::held::Held;

const LAYER: &str = "chaos future polled after completion";

/// An injected delay, then the injected fault if one was drawn (`None`: send the call).
pub(super) struct Delay<R> {
    // Boxed: only delayed calls pay for the timer.
    sleep: Pin<Box<Sleep>>,
    fault: Option<Result<R, BoxError>>,
}

// Nothing in it is pinned: the timer is boxed and the fault is only moved out.
impl<R> Unpin for Delay<R> {}

impl<R> Future for Delay<R> {
    type Output = Option<Result<R, BoxError>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        ready!(this.sleep.as_mut().poll(cx));
        Poll::Ready(this.fault.take())
    }
}

pin_project! {
    /// The response of a [`ChaosService`](super::ChaosService): the inner service's,
    /// after an injected delay if one was drawn, or the injected fault.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_tower::BoxError> {
    /// use fusebox_policy::policy::Chaos;
    /// use fusebox_tower::chaos::ChaosService;
    /// use tower::{service_fn, Service};
    /// let chaos = Chaos::builder("a").enabled(true).fault(1.0, || Ok(0)).build()?;
    /// let mut svc = ChaosService::new(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n) }), chaos);
    /// assert_eq!(svc.call(5).await?, 0); // a synthetic answer
    /// # Ok(())
    /// # }
    /// ```
    pub struct ResponseFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        inner: Held<S, Req, Delay<S::Response>>,
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(super) fn passing(future: S::Future) -> Self {
        ResponseFuture {
            inner: Held::sent(future, LAYER),
        }
    }

    pub(super) fn answered(answer: Result<S::Response, BoxError>) -> Self {
        ResponseFuture {
            inner: Held::answered(answer, LAYER),
        }
    }

    /// Waits `sleep`, then answers `fault`.
    pub(super) fn delayed_fault(sleep: Sleep, fault: Result<S::Response, BoxError>) -> Self {
        // No call follows a fault: no service is held.
        ResponseFuture {
            inner: Held::answered_after(
                Delay {
                    sleep: Box::pin(sleep),
                    fault: Some(fault),
                },
                LAYER,
            ),
        }
    }

    /// Waits `sleep`, then calls the ready `service` with `request`.
    pub(super) fn delayed_call(sleep: Sleep, service: S, request: Req) -> Self {
        ResponseFuture {
            inner: Held::holding(
                Delay {
                    sleep: Box::pin(sleep),
                    fault: None,
                },
                service,
                request,
                LAYER,
            ),
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
