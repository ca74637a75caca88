//! A whole fusebox [`Pipeline`] as one tower layer.
//!
//! The pipeline's policies run around each call to the inner service, in the order they were
//! written; retries call a fresh clone of the service with a clone of the request. The
//! response future is boxed (the pipeline's future cannot be named); stack the individual
//! layers ([`BreakerLayer`](crate::BreakerLayer), [`RetryLayer`](crate::retry::RetryLayer),
//! …) instead where a call must not allocate.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), fusebox_tower::BoxError> {
//! use fusebox_core::breaker::Breaker;
//! use fusebox_policy::pipeline::Pipeline;
//! use fusebox_policy::policy::Retry;
//! use fusebox_tower::pipeline::PipelineLayer;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let pipeline = Pipeline::builder()
//!     .retry(Retry::builder().max_retries(2).build()?)
//!     .breaker(Breaker::builder("api").build()?)
//!     .build()?;
//! let svc = PipelineLayer::new(pipeline).layer(service_fn(|n: u32| async move {
//!     Ok::<_, std::io::Error>(n + 1)
//! }));
//! assert_eq!(svc.oneshot(1).await?, 2);
//! # Ok(())
//! # }
//! ```

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use fusebox_policy::pipeline::Pipeline;
use tower_layer::Layer;
use tower_service::Service;

use crate::{BoxError, into_box};

/// Runs every call to the wrapped service through a fusebox [`Pipeline`].
#[derive(Debug)]
pub struct PipelineLayer<T> {
    pipeline: Pipeline<T, BoxError>,
}

impl<T> PipelineLayer<T> {
    /// A layer running `pipeline`.
    pub fn new(pipeline: Pipeline<T, BoxError>) -> Self {
        PipelineLayer { pipeline }
    }
}

impl<S, T> Layer<S> for PipelineLayer<T> {
    type Service = PipelineService<S, T>;
    fn layer(&self, inner: S) -> Self::Service {
        PipelineService {
            inner,
            pipeline: self.pipeline.clone(),
        }
    }
}

/// A service whose calls run through a pipeline; see [`PipelineLayer`].
#[derive(Debug)]
pub struct PipelineService<S, T> {
    inner: S,
    pipeline: Pipeline<T, BoxError>,
}

/// The boxed future of a [`PipelineService`] call.
pub type ResponseFuture<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<S, Req> Service<Req> for PipelineService<S, S::Response>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Response: Send + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send,
    Req: Clone + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        let pipeline = self.pipeline.clone();
        Box::pin(async move {
            // Behind a mutex so the future is Send without requiring Sync services or
            // requests (a boxed tower service is rarely Sync).
            let originals = std::sync::Mutex::new((service, req));
            let attempt = || {
                let (mut service, req) = {
                    let guard = originals.lock().unwrap_or_else(|p| p.into_inner());
                    (guard.0.clone(), guard.1.clone())
                };
                async move {
                    poll_fn(|cx| service.poll_ready(cx))
                        .await
                        .map_err(Into::into)?;
                    service.call(req).await.map_err(Into::into)
                }
            };
            pipeline.call(attempt).await.map_err(into_box)
        })
    }
}

// Not derived: a derive would require `T: Clone`, and responses rarely are.
impl<T> Clone for PipelineLayer<T> {
    fn clone(&self) -> Self {
        PipelineLayer {
            pipeline: self.pipeline.clone(),
        }
    }
}

impl<S: Clone, T> Clone for PipelineService<S, T> {
    fn clone(&self) -> Self {
        PipelineService {
            inner: self.inner.clone(),
            pipeline: self.pipeline.clone(),
        }
    }
}
