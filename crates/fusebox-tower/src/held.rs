//! The one future shape of the layers that may hold a call back before sending it (a rate
//! limiter waiting for a permit, a chaos delay): a call sent at once, an answer given at
//! once, or a call held until a wait ends, then sent or answered instead. Each layer's
//! `ResponseFuture` wraps this one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;
use tower_service::Service;

use crate::BoxError;

pin_project! {
    pub(crate) struct Held<S, Req, W>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req, W>,
        // The error of a future polled again after it answered, naming the layer.
        polled_after_completion: &'static str,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req, W>
    where
        S: Service<Req>,
    {
        Sent { #[pin] future: S::Future },
        Answered { answer: Option<Result<S::Response, BoxError>> },
        // The service, ready, and the request wait with the call.
        Holding { #[pin] wait: W, call: Option<(S, Req)> },
    }
}

impl<S: Service<Req>, Req, W> Held<S, Req, W> {
    pub(crate) fn sent(future: S::Future, layer: &'static str) -> Self {
        Held {
            state: State::Sent { future },
            polled_after_completion: layer,
        }
    }

    pub(crate) fn answered(answer: Result<S::Response, BoxError>, layer: &'static str) -> Self {
        Held {
            state: State::Answered {
                answer: Some(answer),
            },
            polled_after_completion: layer,
        }
    }

    /// Waits on `wait`, which ends with the answer: no call is sent.
    pub(crate) fn answered_after(wait: W, layer: &'static str) -> Self {
        Held {
            state: State::Holding { wait, call: None },
            polled_after_completion: layer,
        }
    }

    pub(crate) fn holding(wait: W, service: S, request: Req, layer: &'static str) -> Self {
        Held {
            state: State::Holding {
                wait,
                call: Some((service, request)),
            },
            polled_after_completion: layer,
        }
    }
}

impl<S, Req, W> Future for Held<S, Req, W>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    // What a held call waits on: it ends with `None` to send the call, or with the answer
    // to give instead.
    W: Future<Output = Option<Result<S::Response, BoxError>>>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Sent { future } => return future.poll(cx).map_err(Into::into),
                StateProj::Answered { answer } => {
                    return Poll::Ready(
                        answer
                            .take()
                            .unwrap_or_else(|| Err((*this.polled_after_completion).into())),
                    );
                }
                StateProj::Holding { wait, call } => {
                    if let Some(answer) = ready!(wait.poll(cx)) {
                        return Poll::Ready(answer);
                    }
                    let Some((mut service, request)) = call.take() else {
                        return Poll::Ready(Err((*this.polled_after_completion).into()));
                    };
                    let future = service.call(request);
                    this.state.set(State::Sent { future });
                }
            }
        }
    }
}
