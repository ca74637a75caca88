//! # fusebox-tower
//!
//! tower [`Layer`](tower_layer::Layer)s for fusebox: a circuit breaker, retry, timeout,
//! bulkhead, fallback and cost guard, and the load-adaptive policies (rate limit, keyed rate
//! limit, adaptive concurrency limit, adaptive throttling, hedging, outlier ejection, chaos),
//! each a `XxxLayer` + service + `ResponseFuture` that compose with `tower::ServiceBuilder`
//! and with each other; HTTP classification and helpers;
//! breakers keyed by host, route or tenant; and, with feature `dashboard`, a live web
//! dashboard of breakers (module `dashboard`).
//!
//! # Errors
//!
//! Every service here returns [`BoxError`], the tower convention, so layers stack in any order
//! with any other tower middleware. The caller's error stays intact inside it, and fusebox's
//! own reasons are typed: downcast to [`Rejected`](fusebox_core::Rejected),
//! [`TimedOut`](fusebox_core::TimedOut), [`BulkheadFull`](fusebox_core::BulkheadFull),
//! [`CostRejected`](fusebox_core::CostRejected), [`RateLimited`](fusebox_core::RateLimited),
//! [`LimitExceeded`](fusebox_core::LimitExceeded), [`Throttled`](fusebox_core::Throttled) or
//! [`Ejected`](fusebox_core::Ejected) ([`fusebox_core::is_refusal`] tells any of these), or
//! call [`classify_error`] to get a [`fusebox_core::Error`] back.
//!
//! # Readiness
//!
//! `poll_ready` only reports the inner service's readiness; an open breaker, a full bulkhead
//! or a spent budget shows as an error from `call` (a ready future that fails at once), never as
//! unreadiness. Pending readiness would stall a `Buffer`'s worker and every caller behind it
//! until something woke it, and an error from `poll_ready` makes a load balancer or `Buffer`
//! treat the service as permanently failed. A fast, typed per-call error lets the caller
//! (or a fallback layer) decide, and lets a balancer keep routing to other endpoints.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

pub mod breaker;
pub mod bulkhead;
pub mod chaos;
pub mod concurrency_limit;
pub mod cost;
#[cfg(feature = "dashboard")]
pub mod dashboard;
mod error;
pub mod fallback;
pub mod hedge;
mod held;
#[cfg(feature = "http")]
pub mod http;
pub mod keyed;
pub mod outlier;
pub mod pipeline;
#[cfg(feature = "http")]
pub mod preset;
pub mod rate_limit;
pub mod retry;
mod settled;
pub mod throttle;
pub mod timeout;

pub use breaker::{BreakerLayer, CircuitBreaker};
pub(crate) use error::into_box;
pub use error::{BoxError, classify_error};
