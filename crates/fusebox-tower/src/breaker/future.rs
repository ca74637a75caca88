use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use fusebox_core::Classifier;
use fusebox_core::breaker::{OwnedPermit, Rejected};
use pin_project_lite::pin_project;

use crate::BoxError;

pin_project! {
    /// The future of a [`CircuitBreaker`](super::CircuitBreaker) call. Dropped before it
    /// completes (a cancelled request), its permit counts as nothing and frees any
    /// half-open trial slot.
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: State<F, C>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<F, C> {
        Admitted {
            #[pin]
            future: F,
            permit: Option<OwnedPermit>,
            classifier: C,
        },
        Rejected {
            rejected: Option<Rejected>,
        },
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn admitted(future: F, permit: OwnedPermit, classifier: C) -> Self {
        ResponseFuture {
            state: State::Admitted {
                future,
                permit: Some(permit),
                classifier,
            },
        }
    }

    pub(crate) fn rejected(rejected: Rejected) -> Self {
        ResponseFuture {
            state: State::Rejected {
                rejected: Some(rejected),
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
            Proj::Admitted {
                future,
                permit,
                classifier,
            } => {
                let result = ready!(future.poll(cx));
                if let Some(permit) = permit.take() {
                    permit.record_classified(&*classifier, &result);
                }
                Poll::Ready(result.map_err(Into::into))
            }
            Proj::Rejected { rejected } => Poll::Ready(Err(match rejected.take() {
                Some(r) => Box::new(r),
                None => "circuit breaker future polled after completion".into(),
            })),
        }
    }
}
