use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use fusebox_policy::policy::RetryAttempts;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use super::RetryRequest;
use crate::{BoxError, classify_error, into_box};

pin_project! {
    /// The future of a [`RetryService`](super::RetryService) call: attempts, waits and
    /// readiness checks in one state machine. Dropping it stops retrying.
    pub struct ResponseFuture<S, Req, P>
    where
        S: Service<Req>,
        S::Response: 'static,
    {
        service: S,
        request: Option<Req>,
        requests: P,
        attempts: RetryAttempts<'static, S::Response, BoxError>,
        #[pin]
        state: State<S::Future>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F },
        Waiting { #[pin] sleep: Sleep },
        Readying,
    }
}

impl<S: Service<Req>, Req, P> ResponseFuture<S, Req, P>
where
    S::Response: 'static,
{
    pub(crate) fn new(
        future: S::Future,
        service: S,
        request: Option<Req>,
        requests: P,
        attempts: RetryAttempts<'static, S::Response, BoxError>,
    ) -> Self {
        ResponseFuture {
            service,
            request,
            requests,
            attempts,
            state: State::Calling { future },
        }
    }
}

impl<S: Service<Req>, Req, P> std::fmt::Debug for ResponseFuture<S, Req, P>
where
    S::Response: 'static,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl<S, Req, P> Future for ResponseFuture<S, Req, P>
where
    S: Service<Req>,
    S::Response: 'static,
    S::Error: Into<BoxError>,
    P: RetryRequest<Req>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx)).map_err(|e| classify_error(e.into()));
                    if this.request.is_none() {
                        return Poll::Ready(result.map_err(into_box));
                    }
                    match this.attempts.next_delay(&result) {
                        None => return Poll::Ready(result.map_err(into_box)),
                        Some(delay) if delay.is_zero() => this.state.set(State::Readying),
                        Some(delay) => this.state.set(State::Waiting {
                            sleep: tokio::time::sleep(delay),
                        }),
                    }
                }
                StateProj::Waiting { sleep } => {
                    ready!(sleep.poll(cx));
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    if let Err(e) = ready!(this.service.poll_ready(cx)) {
                        return Poll::Ready(Err(e.into()));
                    }
                    let Some(request) = this.request.take() else {
                        return Poll::Ready(Err("retry future polled after completion".into()));
                    };
                    *this.request = this.requests.clone_for_retry(&request);
                    let future = this.service.call(request);
                    this.state.set(State::Calling { future });
                }
            }
        }
    }
}
