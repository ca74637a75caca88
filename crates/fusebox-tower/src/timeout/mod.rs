//! Timeout as a tower layer, failing with fusebox's typed [`TimedOut`].
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! use fusebox_tower::timeout::TimeoutLayer;
//! use std::time::Duration;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let slow = service_fn(|_: ()| async {
//!     tokio::time::sleep(Duration::from_secs(5)).await;
//!     Ok::<_, std::io::Error>(())
//! });
//! let svc = TimeoutLayer::new(Duration::from_millis(100)).unwrap().layer(slow);
//! let err = svc.oneshot(()).await.unwrap_err();
//! assert!(err.is::<fusebox_core::TimedOut>());
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use fusebox_core::{ConfigError, TimedOut};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;

/// Fails a call that takes longer than a fixed time.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    after: Duration,
}

impl TimeoutLayer {
    /// A timeout of `after`; zero is refused.
    pub fn new(after: Duration) -> Result<Self, ConfigError> {
        fusebox_policy::policy::Timeout::new(after).map(|t| TimeoutLayer {
            after: t.duration(),
        })
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = TimeoutService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TimeoutService {
            inner,
            after: self.after,
        }
    }
}

/// A service whose calls time out; see [`TimeoutLayer`].
#[derive(Debug, Clone)]
pub struct TimeoutService<S> {
    inner: S,
    after: Duration,
}

impl<S, Req> Service<Req> for TimeoutService<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        ResponseFuture {
            future: self.inner.call(req),
            sleep: tokio::time::sleep(self.after),
            after: self.after,
        }
    }
}

pin_project! {
    /// The future of a [`TimeoutService`] call.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        #[pin]
        sleep: Sleep,
        after: Duration,
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.future.poll(cx) {
            return Poll::Ready(result.map_err(Into::into));
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Box::new(TimedOut { after: *this.after }))),
            Poll::Pending => Poll::Pending,
        }
    }
}
