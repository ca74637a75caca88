//! The one future shape of the layers that admit a call or refuse it up front and, once an
//! admitted call completes, tell their policy how it went (breaker, concurrency limit,
//! throttle): each layer's `ResponseFuture` wraps this one.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::BoxError;

/// What a layer does with the result of a call it let through.
pub(crate) trait Settle<T, E> {
    /// The error of a future polled again after it answered, naming the layer.
    const POLLED_AFTER_COMPLETION: &'static str;

    fn settle(self, result: &Result<T, E>);
}

pin_project! {
    /// An admitted call, settled with its policy when it completes (dropped before then, it
    /// settles nothing: a cancellation), or a refusal answered at once.
    pub(crate) struct Settled<F, S, R> {
        #[pin]
        state: State<F, S, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, R> {
        Admitted { #[pin] future: F, settle: Option<S> },
        Refused { refusal: Option<R> },
    }
}

impl<F, S, R> Settled<F, S, R> {
    pub(crate) fn admitted(future: F, settle: S) -> Self {
        Settled {
            state: State::Admitted {
                future,
                settle: Some(settle),
            },
        }
    }

    pub(crate) fn refused(refusal: R) -> Self {
        Settled {
            state: State::Refused {
                refusal: Some(refusal),
            },
        }
    }
}

impl<F, S, R, T, E> Future for Settled<F, S, R>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    S: Settle<T, E>,
    R: std::error::Error + Send + Sync + 'static,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Admitted { future, settle } => {
                let result = ready!(future.poll(cx));
                if let Some(settle) = settle.take() {
                    settle.settle(&result);
                }
                Poll::Ready(result.map_err(Into::into))
            }
            StateProj::Refused { refusal } => Poll::Ready(Err(match refusal.take() {
                Some(refusal) => Box::new(refusal),
                None => S::POLLED_AFTER_COMPLETION.into(),
            })),
        }
    }
}
