use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use fusebox_core::{Classifier, LimitExceeded};
use fusebox_policy::policy::OwnedLimitPermit;
use pin_project_lite::pin_project;

use crate::BoxError;

pin_project! {
    /// The future of a [`ConcurrencyLimitService`](super::ConcurrencyLimitService) call:
    /// the inner call holding its place, or the refusal.
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C> {
        Running { #[pin] future: F, permit: Option<OwnedLimitPermit>, classifier: C },
        Refused { refusal: Option<LimitExceeded> },
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(super) fn running(future: F, permit: OwnedLimitPermit, classifier: C) -> Self {
        Self {
            state: State::Running {
                future,
                permit: Some(permit),
                classifier,
            },
        }
    }

    pub(super) fn refused(refusal: LimitExceeded) -> Self {
        Self {
            state: State::Refused {
                refusal: Some(refusal),
            },
        }
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classifier<T, E>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Running {
                future,
                permit,
                classifier,
            } => {
                let result = ready!(future.poll(cx));
                if let Some(permit) = permit.take() {
                    permit.settle(classifier.classify(&result));
                }
                Poll::Ready(result.map_err(Into::into))
            }
            StateProj::Refused { refusal } => Poll::Ready(Err(match refusal.take() {
                Some(refusal) => Box::new(refusal),
                None => "concurrency limit future polled after completion".into(),
            })),
        }
    }
}
