//! Refusals of the load-adaptive policies: a rate limiter, an adaptive concurrency limit,
//! client-side throttling and outlier ejection. Each is small (a name and a word or two), so
//! an [`Error`](crate::Error) carrying one is no wider than one carrying a breaker's
//! [`Rejected`](crate::Rejected).

use std::time::Duration;

use crate::breaker::Name;

/// A rate limiter refused the call: the limiter `name` has no permit before `retry_after`.
///
/// ```
/// use fusebox_core::RateLimited;
/// use std::time::Duration;
/// let e = RateLimited { name: "search".into(), retry_after: Duration::from_millis(40) };
/// assert_eq!(e.to_string(), "rate limiter `search` has no permit; retry after 40ms");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limiter `{name}` has no permit; retry after {retry_after:?}")]
pub struct RateLimited {
    /// The limiter's name (for a keyed limiter, the key's).
    pub name: Name,
    /// How long until a permit is free.
    pub retry_after: Duration,
}

/// An adaptive concurrency limit refused the call: `in_flight` calls already held the
/// `limit` it had measured.
///
/// ```
/// use fusebox_core::LimitExceeded;
/// let e = LimitExceeded { name: "db".into(), limit: 12, in_flight: 12 };
/// assert_eq!(e.to_string(), "concurrency limit `db` reached (12 of 12 in flight)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("concurrency limit `{name}` reached ({in_flight} of {limit} in flight)")]
pub struct LimitExceeded {
    /// The limit's name.
    pub name: Name,
    /// The limit when the call arrived.
    pub limit: u32,
    /// Calls in flight when the call arrived.
    pub in_flight: u32,
}

/// Client-side throttling dropped the call: the dependency had been refusing, and the call
/// was shed locally with `probability`.
///
/// ```
/// use fusebox_core::Throttled;
/// let e = Throttled { name: "quotes".into(), probability: 0.25 };
/// assert_eq!(e.to_string(), "throttle `quotes` shed the call (drop probability 0.25)");
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("throttle `{name}` shed the call (drop probability {probability:.2})")]
pub struct Throttled {
    /// The throttle's name.
    pub name: Name,
    /// The drop probability when the call was shed, in `0.0..=1.0`.
    pub probability: f64,
}

/// Outlier ejection refused the call: the endpoint `name` is ejected for `retry_after` more.
///
/// ```
/// use fusebox_core::Ejected;
/// use std::time::Duration;
/// let e = Ejected { name: "10.0.0.7:443".into(), retry_after: Duration::from_secs(30) };
/// assert_eq!(e.to_string(), "endpoint `10.0.0.7:443` is ejected; retry after 30s");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("endpoint `{name}` is ejected; retry after {retry_after:?}")]
pub struct Ejected {
    /// The endpoint's key.
    pub name: Name,
    /// How long the ejection has left.
    pub retry_after: Duration,
}

/// Whether `error` is one of fusebox's refusals (a breaker's rejection, a full bulkhead, a
/// cost guard's refusal, a rate limit, a concurrency limit, throttling, an ejection), for
/// code that holds it boxed, as tower services and HTTP clients do. A timeout is not a
/// refusal: the call ran. Only `error` itself is looked at, not its sources.
///
/// ```
/// use fusebox_core::{is_refusal, RateLimited, TimedOut};
/// use std::time::Duration;
/// let limited = RateLimited { name: "api".into(), retry_after: Duration::from_millis(5) };
/// assert!(is_refusal(&limited));
/// assert!(!is_refusal(&TimedOut { after: Duration::from_secs(1) }));
/// assert!(!is_refusal(&std::io::Error::other("reset")));
/// ```
pub fn is_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    error.is::<crate::Rejected>()
        || error.is::<crate::BulkheadFull>()
        || error.is::<crate::guard::CostRejected>()
        || error.is::<RateLimited>()
        || error.is::<LimitExceeded>()
        || error.is::<Throttled>()
        || error.is::<Ejected>()
}
