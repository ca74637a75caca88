//! fusebox for [reqwest](https://docs.rs/reqwest) clients, as
//! [reqwest-middleware](https://docs.rs/reqwest-middleware) middleware:
//!
//! - [`BreakerMiddleware`]: a circuit breaker per host by default (or one for the client);
//!   a request to a host whose breaker is open fails at once, without a connection.
//! - [`RetryMiddleware`] with [`retry_policy`]: backoff, a retry budget, `Retry-After`,
//!   idempotent methods only.
//! - [`PipelineMiddleware`]: any fusebox [`Pipeline`](fusebox_policy::pipeline::Pipeline)
//!   (retry, breaker, timeout, bulkhead, fallback, cost guard) around the request.
//!
//! Responses and errors are judged as fusebox-tower judges HTTP ([`ReqwestClassifier`]):
//! 5xx, 429, 408 and connection errors and timeouts fail; other statuses (a 404 is the
//! caller's business) succeed; the caller's and other middleware's errors are ignored.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use fusebox_core::breaker::BreakerSettings;
//! use fusebox_reqwest::{BreakerMiddleware, RetryMiddleware, retry_policy};
//!
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     // Outside: each attempt goes through the breaker, which stops the retrying once open.
//!     .with(RetryMiddleware::new(retry_policy().max_retries(3).build()?))
//!     .with(BreakerMiddleware::per_host(
//!         "inventory",
//!         BreakerSettings { consecutive_failures: Some(5), ..Default::default() },
//!     )?)
//!     .build();
//! match client.get("http://127.0.0.1:8080/stock/42").send().await {
//!     Ok(response) => println!("{}", response.status()),
//!     Err(e) if fusebox_reqwest::rejection(&e).is_some() => println!("inventory is down; later"),
//!     Err(e) => return Err(e.into()),
//! }
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod breaker;
mod classify;
mod pipeline;
mod retry;

pub use breaker::BreakerMiddleware;
pub use classify::{ReqwestClassifier, error_outcome, retry_after, should_retry};
pub use pipeline::{BodyNotReplayable, PipelineMiddleware};
pub use retry::{RetryMiddleware, RetryResult, retry_policy};

use fusebox_core::{Rejected, TimedOut};
use reqwest_middleware::Error as MiddlewareError;

/// The breaker's rejection inside a request error, if that is what it is: the request
/// never left, and [`Rejected::retry_after`] says when the breaker may let it through.
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// let breaker = Breaker::builder("api").build()?;
/// breaker.force_open();
/// let rejected = breaker.try_acquire().unwrap_err();
/// let error = reqwest_middleware::Error::middleware(rejected);
/// assert!(fusebox_reqwest::rejection(&error).is_some());
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn rejection(error: &MiddlewareError) -> Option<&Rejected> {
    match error {
        MiddlewareError::Middleware(e) => e.downcast_ref::<Rejected>(),
        MiddlewareError::Reqwest(_) => None,
    }
}

/// A fusebox refusal inside a request error: a breaker's rejection, a pipeline's timeout,
/// a full bulkhead, a spend guard's refusal, or a rate limit, concurrency limit, throttle or
/// ejection (the request was not sent, or was given up).
///
/// ```
/// use fusebox_core::TimedOut;
/// use std::time::Duration;
/// let error = reqwest_middleware::Error::middleware(TimedOut { after: Duration::from_secs(1) });
/// assert!(fusebox_reqwest::refusal(&error).is_some());
/// let other = reqwest_middleware::Error::middleware(std::io::Error::other("no token"));
/// assert!(fusebox_reqwest::refusal(&other).is_none());
/// ```
pub fn refusal(error: &MiddlewareError) -> Option<&(dyn std::error::Error + 'static)> {
    let MiddlewareError::Middleware(e) = error else {
        return None;
    };
    let e: &(dyn std::error::Error + 'static) = e.as_ref();
    let refused = fusebox_core::is_refusal(e) || e.is::<TimedOut>();
    refused.then_some(e)
}
