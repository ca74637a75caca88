use std::pin::Pin;
use std::task::{Context, Poll, ready};

use fusebox_core::Outcome;
use fusebox_core::breaker::OwnedPermit;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Code;

use crate::GrpcClassifier;
use crate::code::header_code;

/// The permit of a call whose status is still to come, with what reads the status.
pub(crate) struct Watch {
    permit: OwnedPermit,
    classifier: GrpcClassifier,
}

impl Watch {
    pub(crate) fn new(permit: OwnedPermit, classifier: GrpcClassifier) -> Self {
        Watch { permit, classifier }
    }

    fn finish(self, code: Code, status: Option<&HeaderMap>) {
        record_code(self.permit, &self.classifier, code, status);
    }

    fn transport_error(self) {
        self.permit.record(self.classifier.transport_outcome());
    }
}

pin_project! {
    /// The body of a response through a [`GrpcBreaker`](super::GrpcBreaker).
    ///
    /// A response that is not Trailers-Only carries its status in the trailers, after every
    /// message: this body holds the breaker's permit until then and records the outcome of
    /// the `grpc-status` it finds there. A body that ends without a `grpc-status` counts as
    /// `UNKNOWN` (as tonic reports it), and an error reading the body (a reset stream, a
    /// dropped connection) as a transport error.
    ///
    /// A body dropped before its trailers — a caller that stopped reading a server stream, a
    /// cancelled call — records nothing: the permit is released unrecorded, its half-open
    /// trial slot freed, so a caller's own cancellations never trip the breaker. A
    /// long-lived stream holds its permit (and, in HALF_OPEN, its trial slot) for as long as
    /// it is read, and a slow-call rule measures it to its end.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner {
            #[pin]
            body: B,
            watch: Option<Watch>,
        },
        Empty,
    }
}

impl<B> ResponseBody<B> {
    /// A body whose status was already recorded from the response head.
    pub(crate) fn settled(body: B) -> Self {
        ResponseBody {
            kind: Kind::Inner { body, watch: None },
        }
    }

    /// A body that records its status from its trailers.
    pub(crate) fn watched(body: B, watch: Watch) -> Self {
        ResponseBody {
            kind: Kind::Inner {
                body,
                watch: Some(watch),
            },
        }
    }

    /// The empty body of a Trailers-Only response made here (a rejection).
    pub(crate) fn empty() -> Self {
        ResponseBody { kind: Kind::Empty }
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.kind {
            Kind::Inner { watch: Some(_), .. } => "awaiting trailers",
            Kind::Inner { watch: None, .. } => "settled",
            Kind::Empty => "empty",
        };
        f.debug_struct("ResponseBody")
            .field("state", &state)
            .finish()
    }
}

/// Records a call's status `code`; a failure carries the delay its status block (headers of
/// a Trailers-Only response, or trailers) asks for, for a breaker that opens for it.
pub(crate) fn record_code(
    permit: OwnedPermit,
    classifier: &GrpcClassifier,
    code: Code,
    status: Option<&HeaderMap>,
) {
    let outcome = classifier.code_outcome(code);
    if outcome == Outcome::Failure {
        let wait = status
            .and_then(tonic::Status::from_header_map)
            .and_then(|status| crate::retry_after_from(&status));
        permit.failure_with_retry_after(wait);
    } else {
        permit.record(outcome);
    }
}

/// The code of a status trailer block; one without `grpc-status` is a stream that ended
/// without a status.
fn trailer_code(trailers: &HeaderMap) -> Code {
    header_code(trailers).unwrap_or(Code::Unknown)
}

impl<B: Body> Body for ResponseBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let KindProj::Inner { body, watch } = self.project().kind.project() else {
            return Poll::Ready(None);
        };
        let frame = ready!(body.poll_frame(cx));
        if let Some(pending) = watch.take() {
            match &frame {
                Some(Ok(frame)) => match frame.trailers_ref() {
                    Some(trailers) => pending.finish(trailer_code(trailers), Some(trailers)),
                    None => *watch = Some(pending),
                },
                Some(Err(_)) => pending.transport_error(),
                None => pending.finish(Code::Unknown, None),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body, .. } => body.is_end_stream(),
            Kind::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body, .. } => body.size_hint(),
            Kind::Empty => SizeHint::with_exact(0),
        }
    }
}
