//! Retries with backoff, a budget and `Retry-After`, as a reqwest middleware.

use fusebox_core::Error;
use fusebox_policy::policy::{Retry, RetryBuilder};
use http::Extensions;
use reqwest::{Method, Request, Response};
use reqwest_middleware::{Error as MiddlewareError, Middleware, Next, Result};

use crate::classify::{retry_after, should_retry};

/// The result type a reqwest retry policy judges.
pub type RetryResult = std::result::Result<Response, Error<MiddlewareError>>;

/// A retry policy for reqwest: [`should_retry`] decides, and a 429 or 503's `Retry-After`
/// sets the wait (bounded by `max_retry_after`). Add backoff, a retry budget and limits,
/// then `build`.
///
/// ```
/// use fusebox_core::backoff::{Backoff, Jitter};
/// use fusebox_core::budget::{BudgetConfig, RetryBudget};
/// use std::time::Duration;
///
/// let retry = fusebox_reqwest::retry_policy()
///     .max_retries(3)
///     .backoff(
///         Backoff::exponential(Duration::from_millis(50), Duration::from_secs(2))
///             .jitter(Jitter::Full)
///             .build()?,
///     )
///     .max_retry_after(Duration::from_secs(10))
///     .budget(RetryBudget::new(BudgetConfig::default()))
///     .build()?;
/// let middleware = fusebox_reqwest::RetryMiddleware::new(retry);
/// # let _ = middleware;
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn retry_policy() -> RetryBuilder<Response, MiddlewareError> {
    Retry::builder()
        .retry_if(should_retry)
        .retry_after_from(|result: &RetryResult| {
            result
                .as_ref()
                .ok()
                .and_then(|response| retry_after(response, std::time::SystemTime::now()))
        })
}

/// Retries requests by a fusebox [`Retry`]: backoff with jitter, a shared budget against
/// retry storms, `Retry-After` honoured. Only idempotent requests are sent twice (GET, HEAD,
/// OPTIONS, TRACE, PUT, DELETE) unless [`any_method`](Self::any_method) says otherwise, and
/// only requests whose body can be copied (a streamed body is sent once).
///
/// Put it before (outside) a [`BreakerMiddleware`](crate::BreakerMiddleware): each attempt
/// then feeds the breaker, and once it opens the retry stops at its first rejection.
///
/// ```
/// let retry = fusebox_reqwest::retry_policy().max_retries(2).build()?;
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(fusebox_reqwest::RetryMiddleware::new(retry))
///     .build();
/// # let _ = client;
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RetryMiddleware {
    retry: Retry<Response, MiddlewareError>,
    any_method: bool,
}

impl RetryMiddleware {
    /// Retries by `retry` (see [`retry_policy`] for one that knows HTTP).
    ///
    /// ```
    /// let retry = fusebox_reqwest::retry_policy().build()?;
    /// let m = fusebox_reqwest::RetryMiddleware::new(retry);
    /// # let _ = m;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(retry: Retry<Response, MiddlewareError>) -> Self {
        RetryMiddleware {
            retry,
            any_method: false,
        }
    }

    /// Retries every method, POST and PATCH included: for APIs that deduplicate requests
    /// (an idempotency key header, say).
    ///
    /// ```
    /// let retry = fusebox_reqwest::retry_policy().build()?;
    /// let m = fusebox_reqwest::RetryMiddleware::new(retry).any_method();
    /// # let _ = m;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn any_method(mut self) -> Self {
        self.any_method = true;
        self
    }

    fn may_resend(&self, method: &Method) -> bool {
        self.any_method || is_idempotent(method)
    }
}

/// Methods that a server must treat the same when sent twice (RFC 9110, 9.2.2).
pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

#[async_trait::async_trait]
impl Middleware for RetryMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        if !self.may_resend(req.method()) {
            return next.run(req, extensions).await;
        }
        let mut attempts = self.retry.attempts();
        let mut pending = req;
        loop {
            // The copy for the attempt after this one; none for a streamed body.
            let spare = pending.try_clone();
            let result = next
                .clone()
                .run(pending, extensions)
                .await
                .map_err(Error::Inner);
            let Some(spare) = spare else {
                return result.map_err(into_middleware_error);
            };
            match attempts.next_delay(&result) {
                Some(delay) => {
                    drop(result);
                    tokio::time::sleep(delay).await;
                    pending = spare;
                }
                None => return result.map_err(into_middleware_error),
            }
        }
    }
}

/// A fusebox error back in reqwest-middleware's type: the request's own error as it was,
/// a fusebox refusal (rejection, timeout, full bulkhead, spend) as a middleware error that
/// [`refusal`](crate::refusal) reads.
pub(crate) fn into_middleware_error(error: Error<MiddlewareError>) -> MiddlewareError {
    match error {
        Error::Inner(e) => e,
        Error::Rejected(r) => MiddlewareError::middleware(r),
        Error::Timeout(t) => MiddlewareError::middleware(t),
        Error::BulkheadFull(b) => MiddlewareError::middleware(b),
        Error::CostRejected(c) => MiddlewareError::middleware(*c),
        Error::RateLimited(r) => MiddlewareError::middleware(r),
        Error::LimitExceeded(l) => MiddlewareError::middleware(l),
        Error::Throttled(t) => MiddlewareError::middleware(t),
        Error::Ejected(e) => MiddlewareError::middleware(e),
    }
}
