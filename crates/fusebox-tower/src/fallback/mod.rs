//! Fallback as a tower layer: answer a failed call with a value or another future.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fusebox_tower::BoxError> {
//! use fusebox_tower::fallback::FallbackLayer;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let down = service_fn(|_: ()| async { Err::<&str, _>(std::io::Error::other("down")) });
//! let svc = FallbackLayer::value("cached").layer(down);
//! assert_eq!(svc.oneshot(()).await?, "cached");
//! # Ok(())
//! # }
//! ```

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use fusebox_core::Rejected;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;

/// Produces the answer for a failed call.
pub trait FallbackHandler<Res>: Clone {
    /// The future of the answer.
    type Future: Future<Output = Result<Res, BoxError>>;
    /// The answer for `error`.
    fn fallback(&self, error: BoxError) -> Self::Future;
}

impl<Res, F, Fut> FallbackHandler<Res> for F
where
    F: Fn(BoxError) -> Fut + Clone,
    Fut: Future<Output = Result<Res, BoxError>>,
{
    type Future = Fut;
    fn fallback(&self, error: BoxError) -> Fut {
        self(error)
    }
}

/// A fixed answer, cloned for each failed call.
#[derive(Debug, Clone)]
pub struct Value<Res>(Res);

impl<Res: Clone> FallbackHandler<Res> for Value<Res> {
    type Future = Ready<Result<Res, BoxError>>;
    fn fallback(&self, _: BoxError) -> Self::Future {
        ready(Ok(self.0.clone()))
    }
}

/// Which errors the fallback answers.
pub trait FallbackWhen: Clone {
    /// Whether to answer `error`.
    fn applies(&self, error: &BoxError) -> bool;
}

/// Answers every error.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnyError;

impl FallbackWhen for AnyError {
    fn applies(&self, _: &BoxError) -> bool {
        true
    }
}

/// Answers only a breaker's rejection.
#[derive(Debug, Clone, Copy, Default)]
pub struct OnRejected;

impl FallbackWhen for OnRejected {
    fn applies(&self, error: &BoxError) -> bool {
        error.is::<Rejected>()
    }
}

impl<P: Fn(&BoxError) -> bool + Clone> FallbackWhen for P {
    fn applies(&self, error: &BoxError) -> bool {
        self(error)
    }
}

/// Answers failed calls of the wrapped service with a fallback.
#[derive(Debug, Clone)]
pub struct FallbackLayer<H, W = AnyError> {
    handler: H,
    when: W,
}

impl<Res> FallbackLayer<Value<Res>> {
    /// Answers with a clone of `value`.
    pub fn value(value: Res) -> Self {
        FallbackLayer {
            handler: Value(value),
            when: AnyError,
        }
    }
}

impl<H> FallbackLayer<H> {
    /// Answers with the future `handler` makes from the error.
    ///
    /// ```
    /// use fusebox_tower::fallback::FallbackLayer;
    /// use fusebox_tower::BoxError;
    /// let layer = FallbackLayer::from_fn(|e: BoxError| async move { Ok::<_, BoxError>(e.to_string()) });
    /// # let _ = layer;
    /// ```
    pub fn from_fn(handler: H) -> Self {
        FallbackLayer {
            handler,
            when: AnyError,
        }
    }
}

impl<H, W> FallbackLayer<H, W> {
    /// Answers only the errors `when` picks (a predicate `Fn(&BoxError) -> bool` or
    /// [`OnRejected`]).
    pub fn when<W2: FallbackWhen>(self, when: W2) -> FallbackLayer<H, W2> {
        FallbackLayer {
            handler: self.handler,
            when,
        }
    }

    /// Answers only when a breaker rejected the call.
    pub fn on_rejected(self) -> FallbackLayer<H, OnRejected> {
        self.when(OnRejected)
    }
}

impl<S, H: Clone, W: Clone> Layer<S> for FallbackLayer<H, W> {
    type Service = FallbackService<S, H, W>;
    fn layer(&self, inner: S) -> Self::Service {
        FallbackService {
            inner,
            handler: self.handler.clone(),
            when: self.when.clone(),
        }
    }
}

/// A service whose failed calls are answered by a fallback; see [`FallbackLayer`].
#[derive(Debug, Clone)]
pub struct FallbackService<S, H, W> {
    inner: S,
    handler: H,
    when: W,
}

impl<S, Req, H, W> Service<Req> for FallbackService<S, H, W>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    H: FallbackHandler<S::Response>,
    W: FallbackWhen,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, H, H::Future, W>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        ResponseFuture {
            state: State::Primary {
                future: self.inner.call(req),
                handler: Some(self.handler.clone()),
                when: self.when.clone(),
            },
        }
    }
}

pin_project! {
    /// The future of a [`FallbackService`] call.
    pub struct ResponseFuture<F, H, HF, W> {
        #[pin]
        state: State<F, H, HF, W>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, H, HF, W> {
        Primary { #[pin] future: F, handler: Option<H>, when: W },
        Fallback { #[pin] future: HF },
    }
}

impl<F, H, HF, W> std::fmt::Debug for ResponseFuture<F, H, HF, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, T, E, H, W> Future for ResponseFuture<F, H, H::Future, W>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    H: FallbackHandler<T>,
    W: FallbackWhen,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Primary {
                    future,
                    handler,
                    when,
                } => {
                    let error: BoxError = match std::task::ready!(future.poll(cx)) {
                        Ok(v) => return Poll::Ready(Ok(v)),
                        Err(e) => e.into(),
                    };
                    let handler = match handler.take() {
                        Some(h) if when.applies(&error) => h,
                        _ => return Poll::Ready(Err(error)),
                    };
                    tracing::debug!(error = %error, "falling back");
                    let future = handler.fallback(error);
                    this.state.set(State::Fallback { future });
                }
                StateProj::Fallback { future } => return future.poll(cx),
            }
        }
    }
}
