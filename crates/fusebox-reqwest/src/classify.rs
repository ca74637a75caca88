//! What a reqwest response or error means to a circuit breaker, and whether to retry it.

use std::time::{Duration, SystemTime};

use fusebox_core::{Classifier, Error, Outcome};
use fusebox_policy::policy::RetryDecision;
use fusebox_tower::http::{HttpClassifier, is_retryable_status, retry_after_at};
use reqwest::{Response, StatusCode};
use reqwest_middleware::Error as MiddlewareError;

use crate::refusal;

/// Classifies reqwest results for a breaker, with the same status table as fusebox-tower's
/// [`HttpClassifier`]: 5xx, 429 and 408 fail, other statuses succeed.
///
/// Errors: a connection refused, a timeout, a request or body that broke off fail (the
/// host did not answer); a request that could not be built, a redirect loop, a body that
/// did not decode, and errors of other middleware (including fusebox's own refusals) are
/// ignored: they say nothing about the host's health. Give a classifier of your own with
/// [`from_http`](Self::from_http) to change either.
///
/// ```
/// use fusebox_core::Outcome;
/// use fusebox_reqwest::ReqwestClassifier;
/// use reqwest::StatusCode;
///
/// let classifier = ReqwestClassifier::new();
/// assert_eq!(classifier.status_outcome(StatusCode::SERVICE_UNAVAILABLE), Outcome::Failure);
/// assert_eq!(classifier.status_outcome(StatusCode::NOT_FOUND), Outcome::Success);
/// ```
#[derive(Clone)]
pub struct ReqwestClassifier {
    http: HttpClassifier<MiddlewareError>,
}

impl std::fmt::Debug for ReqwestClassifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReqwestClassifier").finish_non_exhaustive()
    }
}

impl Default for ReqwestClassifier {
    fn default() -> Self {
        ReqwestClassifier::new()
    }
}

impl ReqwestClassifier {
    /// The default classification (see the type's docs).
    ///
    /// ```
    /// let classifier = fusebox_reqwest::ReqwestClassifier::new();
    /// # let _ = classifier;
    /// ```
    pub fn new() -> Self {
        let http = HttpClassifier::builder()
            .classify_error(error_outcome)
            .build()
            // The default table with an error rule has nothing to validate.
            .unwrap_or_else(|_| HttpClassifier::new());
        ReqwestClassifier { http }
    }

    /// A classification built with fusebox-tower's builder: statuses, ranges, a predicate,
    /// and an error rule (see [`error_outcome`] for the default one).
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_reqwest::{ReqwestClassifier, error_outcome};
    /// use fusebox_tower::http::HttpClassifier;
    /// use reqwest::StatusCode;
    ///
    /// // A 404 from this API means a missing route: the deployment is broken.
    /// let http = HttpClassifier::builder()
    ///     .status(StatusCode::NOT_FOUND, Outcome::Failure)
    ///     .classify_error(error_outcome)
    ///     .build()?;
    /// let classifier = ReqwestClassifier::from_http(http);
    /// assert_eq!(classifier.status_outcome(StatusCode::NOT_FOUND), Outcome::Failure);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn from_http(http: HttpClassifier<MiddlewareError>) -> Self {
        ReqwestClassifier { http }
    }

    /// The outcome of a response with `status`.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use reqwest::StatusCode;
    /// let classifier = fusebox_reqwest::ReqwestClassifier::new();
    /// assert_eq!(classifier.status_outcome(StatusCode::TOO_MANY_REQUESTS), Outcome::Failure);
    /// ```
    pub fn status_outcome(&self, status: StatusCode) -> Outcome {
        self.http.status_outcome(status)
    }
}

impl ReqwestClassifier {
    /// This classification for a breaker inside a fusebox `Pipeline` or `Stack`
    /// (`breaker_with`), which sees the policies' errors too: a timeout of a policy further
    /// in fails (the host was too slow), a refusal further in is ignored.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_reqwest::ReqwestClassifier;
    ///
    /// let breaker = Breaker::builder("search-api").build()?;
    /// let pipeline = Pipeline::<reqwest::Response, reqwest_middleware::Error>::builder()
    ///     .breaker_with(breaker, ReqwestClassifier::new().in_pipeline())
    ///     .build()?;
    /// # let _ = pipeline;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn in_pipeline(
        self,
    ) -> impl Fn(&Result<Response, Error<MiddlewareError>>) -> Outcome + Clone + Send + Sync + 'static
    {
        move |result| match result {
            Ok(response) => self.http.status_outcome(response.status()),
            Err(Error::Inner(e)) => self.http.error_outcome(e),
            Err(Error::Timeout(_)) => Outcome::Failure,
            Err(_) => Outcome::Ignored,
        }
    }
}

impl Classifier<Response, MiddlewareError> for ReqwestClassifier {
    fn classify(&self, result: &Result<Response, MiddlewareError>) -> Outcome {
        match result {
            Ok(response) => self.http.status_outcome(response.status()),
            Err(e) => self.http.error_outcome(e),
        }
    }

    /// A 429 or 503 response's `Retry-After` (see [`retry_after`]).
    fn retry_after(&self, result: &Result<Response, MiddlewareError>) -> Option<Duration> {
        result
            .as_ref()
            .ok()
            .and_then(|response| retry_after(response, SystemTime::now()))
    }
}

/// The default meaning of an error: `Failure` when the host did not answer (connect,
/// timeout, request or body errors), `Ignored` for the caller's or another middleware's
/// errors.
///
/// ```
/// use fusebox_core::Outcome;
/// use fusebox_reqwest::error_outcome;
///
/// let refused = reqwest_middleware::Error::middleware(std::io::Error::other("no token"));
/// assert_eq!(error_outcome(&refused), Outcome::Ignored);
/// ```
pub fn error_outcome(error: &MiddlewareError) -> Outcome {
    match error {
        MiddlewareError::Reqwest(e) if e.is_builder() || e.is_redirect() || e.is_decode() => {
            Outcome::Ignored
        }
        MiddlewareError::Reqwest(_) => Outcome::Failure,
        MiddlewareError::Middleware(_) => Outcome::Ignored,
    }
}

/// Whether to retry a result: 5xx (but 501 and 505), 429 and 408 responses, connection
/// errors and timeouts; never a fusebox refusal (an open breaker, a full bulkhead), a
/// request that could not be built, or another middleware's error. A 429 or 503 with a
/// `Retry-After` asks for [`RetryDecision::RetryAfter`].
///
/// ```
/// use fusebox_core::Error;
/// use fusebox_policy::policy::RetryDecision;
/// use fusebox_reqwest::should_retry;
///
/// let refused = reqwest_middleware::Error::middleware(std::io::Error::other("no token"));
/// assert_eq!(should_retry(&Err(Error::Inner(refused))), RetryDecision::Stop);
/// ```
pub fn should_retry(result: &Result<Response, Error<MiddlewareError>>) -> RetryDecision {
    match result {
        Ok(response) if is_retryable_status(response.status()) => {
            match retry_after(response, SystemTime::now()) {
                Some(wait) => RetryDecision::RetryAfter(wait),
                None => RetryDecision::Retry,
            }
        }
        Ok(_) => RetryDecision::Stop,
        Err(Error::Inner(MiddlewareError::Reqwest(e)))
            if e.is_connect() || e.is_timeout() || e.is_request() =>
        {
            RetryDecision::Retry
        }
        Err(Error::Inner(e)) if refusal(e).is_some() => RetryDecision::Stop,
        Err(Error::Timeout(_)) => RetryDecision::Retry,
        Err(_) => RetryDecision::Stop,
    }
}

/// How long a 429 or 503 response asks to wait, read at `now` from its `Retry-After`
/// (delta-seconds or an HTTP date; a date in the past is zero, an unreadable value none,
/// a value too large to hold saturates: bound it with the retry's `max_retry_after`).
///
/// ```
/// use fusebox_reqwest::retry_after;
/// use std::time::SystemTime;
///
/// let response: reqwest::Response = http::Response::builder()
///     .status(429)
///     .header("retry-after", "7")
///     .body("slow down")?
///     .into();
/// assert_eq!(retry_after(&response, SystemTime::now()), Some(std::time::Duration::from_secs(7)));
/// # Ok::<(), http::Error>(())
/// ```
pub fn retry_after(response: &Response, now: SystemTime) -> Option<Duration> {
    let value = response.headers().get(http::header::RETRY_AFTER)?;
    // The parsing lives with the HTTP layers; it reads the status and this one header.
    let mut probe = http::Response::new(());
    *probe.status_mut() = response.status();
    probe
        .headers_mut()
        .insert(http::header::RETRY_AFTER, value.clone());
    retry_after_at(&probe, now)
}
