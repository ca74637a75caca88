use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use crate::BoxError;

/// What a delayed call does once its delay is over.
pub(super) enum AfterDelay<S, Req, R> {
    /// Answer the injected fault.
    Fault(Result<R, BoxError>),
    /// Call the service, which was ready, with the request.
    Call(S, Req),
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
        state: State<S, Req>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        Passing { #[pin] future: S::Future },
        // Boxed: only delayed calls pay for the timer.
        Delayed { sleep: Pin<Box<Sleep>>, after: Option<AfterDelay<S, Req, S::Response>> },
        Answered { answer: Option<Result<S::Response, BoxError>> },
    }
}

impl<S: Service<Req>, Req> ResponseFuture<S, Req> {
    pub(super) fn passing(future: S::Future) -> Self {
        ResponseFuture {
            state: State::Passing { future },
        }
    }

    pub(super) fn delayed(sleep: Sleep, after: AfterDelay<S, Req, S::Response>) -> Self {
        ResponseFuture {
            state: State::Delayed {
                sleep: Box::pin(sleep),
                after: Some(after),
            },
        }
    }

    pub(super) fn answered(answer: Result<S::Response, BoxError>) -> Self {
        ResponseFuture {
            state: State::Answered {
                answer: Some(answer),
            },
        }
    }
}

impl<S: Service<Req>, Req> std::fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

const POLLED_AFTER_COMPLETION: &str = "chaos future polled after completion";

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
                StateProj::Passing { future } => return future.poll(cx).map_err(Into::into),
                StateProj::Answered { answer } => {
                    return Poll::Ready(
                        answer
                            .take()
                            .unwrap_or_else(|| Err(POLLED_AFTER_COMPLETION.into())),
                    );
                }
                StateProj::Delayed { sleep, after } => {
                    ready!(sleep.as_mut().poll(cx));
                    match after.take() {
                        Some(AfterDelay::Call(mut service, request)) => {
                            let future = service.call(request);
                            this.state.set(State::Passing { future });
                        }
                        Some(AfterDelay::Fault(answer)) => return Poll::Ready(answer),
                        None => return Poll::Ready(Err(POLLED_AFTER_COMPLETION.into())),
                    }
                }
            }
        }
    }
}
