use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use fusebox_core::breaker::{OwnedPermit, Rejected};
use http::Response;
use pin_project_lite::pin_project;

use super::ResponseBody;
use super::body::Watch;
use crate::GrpcClassifier;
use crate::code::{header_code, http_status_code};
use crate::rejection_status;

pin_project! {
    /// The future of a [`GrpcBreaker`](super::GrpcBreaker) call: the response head, its
    /// body wrapped in a [`ResponseBody`] that carries the breaker's permit until the
    /// trailers arrive. Dropped before the head arrives (a cancelled call), its permit
    /// counts as nothing and frees any half-open trial slot.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<F> {
        Admitted {
            #[pin]
            future: F,
            permit: Option<OwnedPermit>,
            classifier: GrpcClassifier,
        },
        Rejected {
            rejected: Option<Rejected>,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn admitted(future: F, permit: OwnedPermit, classifier: GrpcClassifier) -> Self {
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

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            Proj::Admitted {
                future,
                permit,
                classifier,
            } => {
                let result = ready!(future.poll(cx));
                let Some(permit) = permit.take() else {
                    // Polled again after completing: nothing left to record.
                    return Poll::Ready(result.map(|r| r.map(ResponseBody::settled)));
                };
                Poll::Ready(match result {
                    Ok(response) => Ok(settle_or_watch(response, permit, *classifier)),
                    Err(error) => {
                        permit.record(classifier.transport_outcome());
                        Err(error)
                    }
                })
            }
            Proj::Rejected { rejected } => {
                let status = match rejected.take() {
                    Some(rejected) => rejection_status(&rejected),
                    None => {
                        tonic::Status::internal("circuit breaker future polled after completion")
                    }
                };
                Poll::Ready(Ok(status.into_http::<()>().map(|()| ResponseBody::empty())))
            }
        }
    }
}

/// A response whose head already holds its status (Trailers-Only, or a non-gRPC HTTP error
/// from a proxy) is recorded now; any other waits for its trailers.
fn settle_or_watch<B>(
    response: Response<B>,
    permit: OwnedPermit,
    classifier: GrpcClassifier,
) -> Response<ResponseBody<B>> {
    let code = header_code(response.headers()).or_else(|| {
        (response.status() != http::StatusCode::OK).then(|| http_status_code(response.status()))
    });
    match code {
        Some(code) => {
            super::body::record_code(permit, &classifier, code, Some(response.headers()));
            response.map(ResponseBody::settled)
        }
        None => response.map(|body| ResponseBody::watched(body, Watch::new(permit, classifier))),
    }
}
