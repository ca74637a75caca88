//! Which HTTP results to retry, and how long a server asked the client to wait.

use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

use fusebox_core::{Error, TimedOut, is_refusal};
use fusebox_policy::policy::{Retry, RetryBuilder, RetryDecision};
use http::header::RETRY_AFTER;
use http::{HeaderValue, Response, StatusCode};

use crate::BoxError;

/// How deep [`should_retry`] looks into an error's sources; real chains are a few links
/// long, and a bound keeps a pathological `source()` implementation from looping forever.
const MAX_SOURCE_DEPTH: usize = 32;

/// A retry builder set up for HTTP: [`should_retry`] decides, and [`retry_after_hint`]
/// makes a 429 or 503 wait at least as long as its `Retry-After` asks (a longer wait than
/// the builder's `max_retry_after`, 60 s unless changed, returns the response instead).
///
/// Only the classification is set; backoff, `max_retries`, budget and the rest keep the
/// builder's defaults. To classify differently, start from `Retry::builder()` and call
/// `retry_if` *before* `retry_after_from`: a later `retry_if` replaces both.
///
/// Pair it with [`IdempotentRequests`](super::IdempotentRequests) so a POST is not sent
/// twice.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_tower::http::{self, IdempotentRequests};
/// use fusebox_tower::retry::RetryLayer;
/// use ::http::{Request, Response, StatusCode};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// let calls = Arc::new(AtomicU32::new(0));
/// let counter = calls.clone();
/// let upstream = service_fn(move |_: Request<()>| {
///     let status = match counter.fetch_add(1, Ordering::Relaxed) {
///         0 => StatusCode::BAD_GATEWAY,
///         _ => StatusCode::OK,
///     };
///     let mut response = Response::new(());
///     *response.status_mut() = status;
///     async move { Ok::<_, std::io::Error>(response) }
/// });
/// let policy = http::retry_policy::<()>().max_retries(2).build()?;
/// let svc = RetryLayer::new(policy).requests(IdempotentRequests::new()).layer(upstream);
///
/// let response = svc.oneshot(Request::get("/health").body(())?).await?;
/// assert_eq!(response.status(), StatusCode::OK);
/// assert_eq!(calls.load(Ordering::Relaxed), 2);
/// # Ok(())
/// # }
/// ```
pub fn retry_policy<B: 'static>() -> RetryBuilder<Response<B>, BoxError> {
    Retry::builder()
        .retry_if(should_retry::<B>)
        .retry_after_from(retry_after_hint::<B>)
}

/// Whether an HTTP result is worth another attempt.
///
/// Retried: responses with a status [`is_retryable_status`] accepts (5xx but 501 and 505,
/// 429, 408), timeouts, and errors from the inner service, which are taken as transport
/// failures (the request got no response: a refused or reset connection, say). Never
/// retried: a breaker's rejection or a full bulkhead, even when found in an error's source
/// chain, since another attempt would only add load to what is already shedding it.
///
/// Narrow the inner errors with your own `retry_if` if your client tells them apart:
///
/// ```
/// use fusebox_core::Error;
/// use fusebox_policy::policy::{Retry, RetryDecision};
/// use fusebox_tower::http;
///
/// let policy = Retry::<::http::Response<()>, fusebox_tower::BoxError>::builder()
///     .retry_if(|result| match result {
///         // This client reports a malformed URL as an error: no point in retrying it.
///         Err(Error::Inner(e)) if e.to_string().starts_with("invalid url") => RetryDecision::Stop,
///         other => http::should_retry(other),
///     })
///     .retry_after_from(http::retry_after_hint)
///     .build()?;
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn should_retry<B>(result: &Result<Response<B>, Error<BoxError>>) -> RetryDecision {
    match result {
        Ok(response) if is_retryable_status(response.status()) => RetryDecision::Retry,
        Ok(_) => RetryDecision::Stop,
        Err(Error::Inner(error)) => inner_error_decision(error.as_ref()),
        Err(Error::Timeout(_)) => RetryDecision::Retry,
        Err(_) => RetryDecision::Stop,
    }
}

/// Whether a response status is worth another attempt: 408 Request Timeout, 429 Too Many
/// Requests and the 5xx statuses, except 501 Not Implemented and 505 HTTP Version Not
/// Supported, which will not change on a retry.
///
/// ```
/// use fusebox_tower::http::is_retryable_status;
/// use http::StatusCode;
///
/// assert!(is_retryable_status(StatusCode::SERVICE_UNAVAILABLE));
/// assert!(is_retryable_status(StatusCode::TOO_MANY_REQUESTS));
/// assert!(!is_retryable_status(StatusCode::NOT_IMPLEMENTED));
/// assert!(!is_retryable_status(StatusCode::NOT_FOUND));
/// ```
pub fn is_retryable_status(status: StatusCode) -> bool {
    match status {
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => true,
        StatusCode::NOT_IMPLEMENTED | StatusCode::HTTP_VERSION_NOT_SUPPORTED => false,
        other => other.is_server_error(),
    }
}

/// Fusebox's own refusals anywhere in the chain stop retrying; its timeouts and every
/// other error are retried.
fn inner_error_decision(error: &(dyn StdError + 'static)) -> RetryDecision {
    let mut current = Some(error);
    for _ in 0..MAX_SOURCE_DEPTH {
        let Some(error) = current else { break };
        if is_refusal(error) {
            return RetryDecision::Stop;
        }
        if error.is::<TimedOut>() {
            return RetryDecision::Retry;
        }
        current = error.source();
    }
    RetryDecision::Retry
}

/// The server-given delay of an HTTP result, for `RetryBuilder::retry_after_from`: the
/// [`retry_after`] of a response; `None` for an error.
///
/// ```
/// use fusebox_core::Error;
/// use fusebox_tower::{http::retry_after_hint, BoxError};
/// use http::{Response, StatusCode};
/// use std::time::Duration;
///
/// let throttled = Response::builder().status(429).header("retry-after", "3").body(())?;
/// let result: Result<_, Error<BoxError>> = Ok(throttled);
/// assert_eq!(retry_after_hint(&result), Some(Duration::from_secs(3)));
/// # Ok::<(), http::Error>(())
/// ```
pub fn retry_after_hint<B>(result: &Result<Response<B>, Error<BoxError>>) -> Option<Duration> {
    match result {
        Ok(response) => retry_after(response),
        Err(_) => None,
    }
}

/// How long a `429 Too Many Requests` or `503 Service Unavailable` response asks the client
/// to wait, from its `Retry-After` header; see [`retry_after_at`].
///
/// ```
/// use fusebox_tower::http::retry_after;
/// use http::Response;
/// use std::time::Duration;
///
/// let busy = Response::builder().status(503).header("retry-after", "120").body(())?;
/// assert_eq!(retry_after(&busy), Some(Duration::from_secs(120)));
/// # Ok::<(), http::Error>(())
/// ```
pub fn retry_after<B>(response: &Response<B>) -> Option<Duration> {
    retry_after_at(response, SystemTime::now())
}

/// How long a 429 or 503 response asks the client to wait, as seen at `now`.
///
/// Both forms of `Retry-After` are read: delta-seconds (`120`) and an HTTP-date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, the time left until then; zero once it has passed).
/// Other statuses, a missing header and unreadable values give `None`. A delay too long to
/// represent saturates at [`Duration::MAX`]: check it against a bound before adding it to
/// an `Instant` (a retry policy's `max_retry_after` does).
///
/// ```
/// use fusebox_tower::http::retry_after_at;
/// use http::Response;
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
///
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_450); // 07:27:30 GMT
/// let response = |status: u16, value: &str| {
///     Response::builder().status(status).header("retry-after", value).body(())
/// };
/// let later = response(429, "Wed, 21 Oct 2015 07:28:00 GMT")?;
/// assert_eq!(retry_after_at(&later, now), Some(Duration::from_secs(30)));
/// let past = response(503, "Wed, 21 Oct 2015 07:00:00 GMT")?;
/// assert_eq!(retry_after_at(&past, now), Some(Duration::ZERO));
/// assert_eq!(retry_after_at(&response(503, "soon")?, now), None);
/// assert_eq!(retry_after_at(&response(500, "5")?, now), None); // only on 429 and 503
/// # Ok::<(), http::Error>(())
/// ```
pub fn retry_after_at<B>(response: &Response<B>, now: SystemTime) -> Option<Duration> {
    match response.status() {
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            parse_retry_after(response.headers().get(RETRY_AFTER)?, now)
        }
        _ => None,
    }
}

fn parse_retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits, so parsing fails only on overflow: a wait longer than u64 seconds.
        return Some(text.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let date = httpdate::parse_http_date(text).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}
