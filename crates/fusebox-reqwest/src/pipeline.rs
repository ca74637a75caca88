//! Any fusebox pipeline (retry, breaker, timeout, bulkhead, fallback, cost guard) around
//! the rest of a reqwest middleware chain.

use std::sync::Mutex;

use fusebox_policy::pipeline::Pipeline;
use http::Extensions;
use reqwest::{Request, Response};
use reqwest_middleware::{Error as MiddlewareError, Middleware, Next, Result};

use crate::retry::into_middleware_error;

/// Runs every request through a fusebox [`Pipeline`]: the pipeline's policies wrap the
/// rest of the chain and the request itself, in the pipeline's order. Build it with the
/// reqwest types and the reqwest classifiers:
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// use fusebox_policy::pipeline::Pipeline;
/// use fusebox_reqwest::{PipelineMiddleware, ReqwestClassifier, retry_policy};
/// use std::time::Duration;
///
/// let pipeline = Pipeline::builder()
///     .retry(retry_policy().max_retries(2).build()?)
///     .breaker_with(
///         Breaker::builder("search-api").consecutive_failures(5).build()?,
///         ReqwestClassifier::new().in_pipeline(),
///     )
///     .timeout(Duration::from_secs(2))
///     .build()?;
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(PipelineMiddleware::new(pipeline))
///     .build();
/// # let _ = client;
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
///
/// Every attempt sends a copy of the request and of its extensions; a request whose body
/// cannot be copied (a stream) is sent once, and a second attempt of it ends with an error
/// the pipeline does not retry. Each attempt's extensions are its own, so what an inner
/// middleware puts there is not seen by the caller. Refusals come back as middleware
/// errors: see [`refusal`](crate::refusal).
#[derive(Clone, Debug)]
pub struct PipelineMiddleware {
    pipeline: Pipeline<Response, MiddlewareError>,
}

impl PipelineMiddleware {
    /// Runs requests through `pipeline`.
    ///
    /// ```
    /// use fusebox_policy::pipeline::Pipeline;
    /// let m = fusebox_reqwest::PipelineMiddleware::new(Pipeline::builder().build()?);
    /// # let _ = m;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(pipeline: Pipeline<Response, MiddlewareError>) -> Self {
        PipelineMiddleware { pipeline }
    }
}

/// Sent twice when the body could not be copied.
#[derive(Debug, thiserror::Error)]
#[error("the request's body is a stream and was already sent: it cannot be sent again")]
pub struct BodyNotReplayable;

#[async_trait::async_trait]
impl Middleware for PipelineMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        // A copyable request is copied for each attempt; a stream is handed out once.
        let template = req.try_clone();
        let once = Mutex::new(template.is_none().then_some(req));
        let shared_extensions = extensions.clone();
        let attempt = || {
            let request = match &template {
                Some(template) => template.try_clone(),
                None => once.lock().ok().and_then(|mut slot| slot.take()),
            };
            let next = next.clone();
            let mut extensions = shared_extensions.clone();
            async move {
                match request {
                    Some(request) => next.run(request, &mut extensions).await,
                    None => Err(MiddlewareError::middleware(BodyNotReplayable)),
                }
            }
        };
        self.pipeline
            .call(attempt)
            .await
            .map_err(into_middleware_error)
    }
}
