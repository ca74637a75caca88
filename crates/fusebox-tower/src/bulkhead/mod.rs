//! A bulkhead as a tower layer: at most N calls in flight, an optional bounded wait queue,
//! and a typed [`BulkheadFull`] error beyond that.
//!
//! A free slot is taken without allocating; a call that has to wait in the queue allocates
//! its waiting future once.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fusebox_tower::BoxError> {
//! use fusebox_policy::policy::Bulkhead;
//! use fusebox_tower::bulkhead::BulkheadLayer;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let bulkhead = Bulkhead::builder("db").max_concurrent(1).build()?;
//! let held = bulkhead.try_enter().expect("free slot");
//! let svc = BulkheadLayer::new(bulkhead.clone()).layer(service_fn(|_: ()| async { Ok::<_, std::io::Error>(1) }));
//! let err = svc.clone().oneshot(()).await.unwrap_err();
//! assert!(err.is::<fusebox_core::BulkheadFull>());
//! drop(held);
//! assert_eq!(svc.oneshot(()).await?, 1);
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use fusebox_core::BulkheadFull;
use fusebox_policy::policy::{Bulkhead, OwnedBulkheadSlot};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;

/// Limits the calls in flight through every service it makes (they share one bulkhead).
#[derive(Debug, Clone)]
pub struct BulkheadLayer {
    bulkhead: Bulkhead,
}

impl BulkheadLayer {
    /// A layer sharing `bulkhead`.
    pub fn new(bulkhead: Bulkhead) -> Self {
        BulkheadLayer { bulkhead }
    }
}

impl<S> Layer<S> for BulkheadLayer {
    type Service = BulkheadService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BulkheadService {
            inner,
            bulkhead: self.bulkhead.clone(),
        }
    }
}

/// A service behind a bulkhead; see [`BulkheadLayer`]. The slot is taken in `call` and held
/// until the response future completes or is dropped.
#[derive(Debug, Clone)]
pub struct BulkheadService<S> {
    inner: S,
    bulkhead: Bulkhead,
}

type Waiting = Pin<Box<dyn Future<Output = Result<OwnedBulkheadSlot, BulkheadFull>> + Send>>;

impl<S, Req> Service<Req> for BulkheadService<S>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let state = match self.bulkhead.try_enter_owned() {
            Some(slot) => State::Running {
                future: self.inner.call(req),
                _slot: slot,
            },
            None => {
                // Waiting: the ready service keeps this request until a slot frees up.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                State::Queued {
                    waiting: Box::pin(self.bulkhead.enter_owned()),
                    service: Some(ready),
                    request: Some(req),
                }
            }
        };
        ResponseFuture { state }
    }
}

pin_project! {
    /// The future of a [`BulkheadService`] call.
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
        Queued { waiting: Waiting, service: Option<S>, request: Option<Req> },
        Running { #[pin] future: S::Future, _slot: OwnedBulkheadSlot },
    }
}

impl<S: Service<Req>, Req> std::fmt::Debug for ResponseFuture<S, Req> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

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
                StateProj::Queued {
                    waiting,
                    service,
                    request,
                } => {
                    let slot = match ready!(waiting.as_mut().poll(cx)) {
                        Ok(slot) => slot,
                        Err(full) => return Poll::Ready(Err(Box::new(full))),
                    };
                    let (Some(mut service), Some(request)) = (service.take(), request.take())
                    else {
                        return Poll::Ready(Err("bulkhead future polled after completion".into()));
                    };
                    let future = service.call(request);
                    this.state.set(State::Running {
                        future,
                        _slot: slot,
                    });
                }
                StateProj::Running { future, .. } => {
                    return future.poll(cx).map_err(Into::into);
                }
            }
        }
    }
}
