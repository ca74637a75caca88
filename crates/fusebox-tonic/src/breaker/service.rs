use std::task::{Context, Poll};

use fusebox_core::breaker::Breaker;
use http::{Request, Response};
use tower_service::Service;

use super::{ResponseBody, ResponseFuture};
use crate::GrpcClassifier;

/// A gRPC service behind a circuit breaker; see [`GrpcBreakerLayer`](super::GrpcBreakerLayer).
///
/// Admission happens in `call`: an open breaker answers with a ready `UNAVAILABLE`
/// response and the inner service is not called. `poll_ready` is the inner service's, so a
/// `Channel`'s buffer and a balancer keep working while the breaker is open.
///
/// The error type is the inner service's: a rejection is a gRPC response, not an error,
/// and a transport error passes through unchanged (and counts as the classifier says).
#[derive(Debug, Clone)]
pub struct GrpcBreaker<S> {
    inner: S,
    breaker: Breaker,
    classifier: GrpcClassifier,
}

impl<S> GrpcBreaker<S> {
    /// Wraps `inner`.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_tonic::{GrpcBreaker, GrpcClassifier};
    /// use tower::service_fn;
    ///
    /// let inner = service_fn(|_: http::Request<()>| async {
    ///     Ok::<_, std::io::Error>(http::Response::new(String::new()))
    /// });
    /// let svc = GrpcBreaker::new(inner, Breaker::builder("api").build()?, GrpcClassifier::new());
    /// assert_eq!(svc.breaker().name(), "api");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(inner: S, breaker: Breaker, classifier: GrpcClassifier) -> Self {
        GrpcBreaker {
            inner,
            breaker,
            classifier,
        }
    }

    /// The shared breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GrpcBreaker<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self.breaker.try_acquire_owned() {
            Ok(permit) => {
                ResponseFuture::admitted(self.inner.call(request), permit, self.classifier)
            }
            Err(rejected) => ResponseFuture::rejected(rejected),
        }
    }
}
