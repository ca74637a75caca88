//! Ready-made axum responses for fusebox's refusals.
//!
//! | Error              | Status                      | `Retry-After`                   |
//! |--------------------|-----------------------------|---------------------------------|
//! | breaker rejection  | `503 Service Unavailable`   | seconds, when the breaker knows |
//! | full bulkhead      | `503 Service Unavailable`   | none                            |
//! | cost guard refusal | `503 Service Unavailable`   | seconds, when the guard knows   |
//! | rate limited       | `429 Too Many Requests`     | seconds until a permit          |
//! | concurrency limit  | `503 Service Unavailable`   | none                            |
//! | throttled          | `503 Service Unavailable`   | none                            |
//! | endpoint ejected   | `503 Service Unavailable`   | seconds the ejection has left   |
//! | timeout            | `504 Gateway Timeout`       | none                            |
//! | anything else      | `500 Internal Server Error` | none                            |
//!
//! A full bulkhead answers 503 rather than 429: 429 tells one client that *it* sends too
//! much, while a full bulkhead means the service as a whole has no room, whoever asks. A
//! rate limiter is the one refusal about the rate of calls, so it alone answers 429.
//!
//! A cost guard's refusal is the service declining to spend, for every client alike, so it
//! answers 503 too; its body names the guard and the reason but never the spend figures.
//!
//! With the `health` feature, [`health_handler`] serves a
//! [`HealthRegistry`](fusebox_health::health::HealthRegistry)'s report as JSON (`200` while the
//! service answers, `503` when it is unhealthy).
//!
//! Bodies are one line of plain text naming the breaker, bulkhead or guard. The text of any other
//! error stays on the server: it is logged with `tracing` and the client reads a generic
//! message, so internal details never leak into responses.
//!
//! ```
//! use axum::{error_handling::HandleErrorLayer, routing::get, Router};
//! use fusebox_core::breaker::Breaker;
//! use fusebox_tower::http::{axum::handle_error, HttpClassifier};
//! use fusebox_tower::BreakerLayer;
//! use tower::ServiceBuilder;
//!
//! let breaker = Breaker::builder("reports").build()?;
//! let app: Router = Router::new()
//!     .route("/report", get(|| async { "ready" }))
//!     .layer(
//!         ServiceBuilder::new()
//!             // Turns a rejection into a 503 with Retry-After, a timeout into a 504...
//!             .layer(HandleErrorLayer::new(handle_error))
//!             // ...from a breaker that counts the handlers' 5xx responses as failures.
//!             .layer(BreakerLayer::new(breaker).classifier(HttpClassifier::new())),
//!     );
//! # Ok::<(), fusebox_core::ConfigError>(())
//! ```

use std::fmt;
use std::time::Duration;

use axum_core::response::{IntoResponse, Response};
use fusebox_core::{BulkheadFull, CostRejected, Error, Rejected, TimedOut};
use http::header::RETRY_AFTER;
use http::{HeaderValue, StatusCode};

use crate::{BoxError, classify_error};

#[cfg(feature = "health")]
pub use super::health::{HealthFuture, HealthResponse, health_handler};

/// Turns the error of a fusebox tower stack into a response, for axum's
/// `HandleErrorLayer::new(handle_error)` (see the [module docs](self) for the statuses).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use fusebox_core::{Rejected, State, TimedOut};
/// use fusebox_tower::http::axum::handle_error;
/// use std::time::Duration;
///
/// let rejected = Rejected::new("payments", State::Open, Some(Duration::from_millis(2_500)));
/// let response = handle_error(Box::new(rejected)).await;
/// assert_eq!(response.status(), 503);
/// assert_eq!(response.headers()["retry-after"], "3");
///
/// let timed_out = TimedOut { after: Duration::from_secs(2) };
/// assert_eq!(handle_error(Box::new(timed_out)).await.status(), 504);
/// assert_eq!(handle_error("db password rejected".into()).await.status(), 500);
/// # }
/// ```
pub async fn handle_error(error: BoxError) -> Response {
    error_response(classify_error(error))
}

/// A breaker's rejection as a response: `503 Service Unavailable` with a `Retry-After` in
/// whole seconds (rounded up, at least 1) when the breaker knows when it will admit calls
/// again, and no `Retry-After` when it does not.
///
/// ```
/// use axum_core::response::IntoResponse;
/// use fusebox_core::breaker::Breaker;
/// use fusebox_core::clock::ManualClock;
/// use fusebox_tower::http::axum::RejectedResponse;
/// use std::time::Duration;
///
/// let breaker = Breaker::builder("search")
///     .consecutive_failures(1)
///     .cooldown(Duration::from_secs(10))
///     .clock(ManualClock::new())
///     .build()?;
/// breaker.record_failure();
/// let Err(rejected) = breaker.try_acquire() else { panic!("the breaker is open") };
///
/// let response = RejectedResponse(rejected).into_response();
/// assert_eq!(response.status(), 503);
/// assert_eq!(response.headers()["retry-after"], "10");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RejectedResponse(pub Rejected);

impl From<Rejected> for RejectedResponse {
    fn from(rejected: Rejected) -> Self {
        RejectedResponse(rejected)
    }
}

impl IntoResponse for RejectedResponse {
    fn into_response(self) -> Response {
        let rejected = self.0;
        let (name, state) = (rejected.name(), rejected.state().as_str());
        tracing::debug!(breaker = %name, state, "call rejected; answering 503");
        let message = format!("service unavailable: circuit breaker `{name}` is {state}");
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
        if let Some(wait) = rejected.retry_after() {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds(wait)));
        }
        response
    }
}

/// A fusebox call error as a response, so a handler can use `?` on what a breaker,
/// retry or pipeline returns. The caller's own error (`Error::Inner`) becomes a `500` whose
/// text is logged, never sent.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use axum_core::response::IntoResponse;
/// use fusebox_core::breaker::Breaker;
/// use fusebox_tower::http::axum::ErrorResponse;
///
/// async fn load_profile(breaker: &Breaker) -> Result<String, ErrorResponse<std::io::Error>> {
///     let profile = breaker
///         .call(|| async { Err::<String, _>(std::io::Error::other("disk on fire")) })
///         .await?;
///     Ok(profile)
/// }
///
/// let breaker = Breaker::builder("profiles").build()?;
/// let Err(error) = load_profile(&breaker).await else { panic!("the call fails") };
/// let response = error.into_response();
/// assert_eq!(response.status(), 500);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct ErrorResponse<E>(pub Error<E>);

impl<E> From<Error<E>> for ErrorResponse<E> {
    fn from(error: Error<E>) -> Self {
        ErrorResponse(error)
    }
}

impl<E: fmt::Display> IntoResponse for ErrorResponse<E> {
    fn into_response(self) -> Response {
        error_response(self.0)
    }
}

fn error_response<E: fmt::Display>(error: Error<E>) -> Response {
    match error {
        Error::Rejected(rejected) => RejectedResponse(rejected).into_response(),
        Error::BulkheadFull(full) => bulkhead_full_response(&full),
        Error::CostRejected(refused) => cost_rejected_response(&refused),
        Error::Timeout(timed_out) => timeout_response(timed_out),
        Error::Inner(inner) => internal_error_response(&inner),
        Error::RateLimited(limited) => shed(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many requests: rate limiter `{}`", limited.name),
            Some(limited.retry_after),
        ),
        Error::LimitExceeded(exceeded) => shed(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "service unavailable: concurrency limit `{}` reached",
                exceeded.name
            ),
            None,
        ),
        Error::Throttled(throttled) => shed(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "service unavailable: throttle `{}` shed the call",
                throttled.name
            ),
            None,
        ),
        Error::Ejected(ejected) => shed(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "service unavailable: endpoint `{}` is ejected",
                ejected.name
            ),
            Some(ejected.retry_after),
        ),
    }
}

/// A load-shedding policy's refusal: its status, its one-line message, and `Retry-After`
/// when the policy knows the wait.
fn shed(status: StatusCode, message: String, wait: Option<Duration>) -> Response {
    tracing::debug!(status = status.as_u16(), %message, "call shed");
    with_retry_after((status, message).into_response(), wait)
}

fn with_retry_after(mut response: Response, wait: Option<Duration>) -> Response {
    if let Some(wait) = wait {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds(wait)));
    }
    response
}

fn bulkhead_full_response(full: &BulkheadFull) -> Response {
    tracing::debug!(bulkhead = %full.name, "bulkhead full; answering 503");
    let message = format!("service unavailable: bulkhead `{}` is full", full.name);
    (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
}

fn cost_rejected_response(refused: &CostRejected) -> Response {
    let reason = refused.reason.as_str();
    tracing::debug!(guard = %refused.name, reason, "call refused by cost guard; answering 503");
    let message = format!(
        "service unavailable: cost guard `{}` refused the call ({reason})",
        refused.name
    );
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, message).into_response();
    if let Some(wait) = refused.retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds(wait)));
    }
    response
}

fn timeout_response(timed_out: TimedOut) -> Response {
    tracing::warn!(after = ?timed_out.after, "call timed out; answering 504");
    (
        StatusCode::GATEWAY_TIMEOUT,
        "gateway timeout: the upstream call took too long",
    )
        .into_response()
}

fn internal_error_response(error: &dyn fmt::Display) -> Response {
    tracing::error!(error = %error, "call failed; answering 500");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal server error").into_response()
}

/// `Retry-After` carries whole seconds: round up so a client never comes back too early,
/// and never say 0, which would invite an immediate retry into an open breaker.
fn retry_after_seconds(wait: Duration) -> u64 {
    let whole = wait.as_secs();
    let rounded = if wait.subsec_nanos() > 0 {
        whole.saturating_add(1)
    } else {
        whole
    };
    rounded.max(1)
}

#[cfg(test)]
mod tests {
    use super::retry_after_seconds;
    use std::time::Duration;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds_and_saturates() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(2_500)), 3);
        assert_eq!(retry_after_seconds(Duration::from_secs(10)), 10);
        assert_eq!(retry_after_seconds(Duration::MAX), u64::MAX);
    }
}
