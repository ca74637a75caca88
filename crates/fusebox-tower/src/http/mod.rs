//! HTTP: response classification, idempotent retries, Retry-After, and axum responses.
//!
//! An HTTP client reports a sick upstream as an `Ok` response (a 503 is still a response),
//! so the generic layers need to be told what HTTP means:
//!
//! - [`HttpClassifier`] tells a [`BreakerLayer`](crate::BreakerLayer) which responses and
//!   transport errors count as failures (5xx, 429 and 408 by default).
//! - [`retry_policy`] builds a [`Retry`](fusebox_policy::policy::Retry) that retries 5xx
//!   (but 501 and 505), 429, 408, transport errors and timeouts, honours `Retry-After`,
//!   and never retries a breaker's rejection or a full bulkhead. Its parts,
//!   [`should_retry`], [`retry_after_hint`] and [`retry_after`], compose with your own
//!   classification.
//! - [`IdempotentRequests`] lets a [`RetryLayer`](crate::retry::RetryLayer) resend only
//!   requests that are safe to send twice, and copies them, body included.
//! - [`axum`] (feature `axum`) turns rejections, full bulkheads and timeouts into 503 and 504
//!   responses with `Retry-After`, and (feature `health`) serves a health report as JSON.
//!
//! # Order of the layers
//!
//! Put the retry outside the breaker: every attempt then feeds the breaker, and once it
//! opens the retry stops at its first rejection instead of hammering an upstream known to
//! be down. A retry budget caps the extra load in the meantime.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), fusebox_tower::BoxError> {
//! use fusebox_core::breaker::Breaker;
//! use fusebox_tower::http::{self, HttpClassifier, IdempotentRequests};
//! use fusebox_tower::{retry::RetryLayer, BreakerLayer};
//! use ::http::{Request, Response, StatusCode};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! let upstream = service_fn(|_: Request<String>| async {
//!     let mut response = Response::new(String::from("down for maintenance"));
//!     *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
//!     Ok::<_, std::io::Error>(response)
//! });
//! let breaker = Breaker::builder("inventory").consecutive_failures(2).build()?;
//! let client = ServiceBuilder::new()
//!     .layer(RetryLayer::new(http::retry_policy().max_retries(5).build()?)
//!         .requests(IdempotentRequests::new()))
//!     .layer(BreakerLayer::new(breaker).classifier(HttpClassifier::new()))
//!     .service(upstream);
//!
//! // Two 503s open the breaker; the third attempt is rejected and the retrying stops there.
//! let error = client.oneshot(Request::get("/stock").body(String::new())?).await.unwrap_err();
//! assert!(error.is::<fusebox_core::Rejected>());
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "axum")]
pub mod axum;
mod classify;
#[cfg(feature = "health")]
mod health;
mod idempotent;
mod retry;

pub use classify::{HttpClassifier, HttpClassifierBuilder};
pub use idempotent::IdempotentRequests;
pub use retry::{
    is_retryable_status, retry_after, retry_after_at, retry_after_hint, retry_policy, should_retry,
};
