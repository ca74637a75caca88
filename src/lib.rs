//! # fusebox
//!
//! Circuit breakers, retries and composable resilience policies for async Rust.
//!
//! Protect a call to something that fails (an HTTP API, a database, a queue, a paid LLM
//! API) with one policy or a stack of them, around any async closure or, through
//! [`tower`], around any service.
//!
//! ```
//! use fusebox::{Breaker, Error, Retry, Stack};
//! use fusebox::backoff::Backoff;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let breaker = Breaker::builder("payments")
//!     .failures_in_last(3, 10) // trip when 3 of the last 10 calls failed
//!     .cooldown(Duration::from_secs(5))
//!     .build()?;
//! let retry = Retry::builder()
//!     .max_retries(2)
//!     .backoff(Backoff::fixed(Duration::from_millis(1)).build()?)
//!     .build()?;
//!
//! // Retry outside the breaker: every attempt counts in the breaker's window.
//! let stack = Stack::new().retry(retry).breaker(breaker.clone());
//! let paid: Result<u32, Error<std::io::Error>> = stack.call(|| async { Ok(42) }).await;
//! assert_eq!(paid?, 42);
//! # Ok(())
//! # }
//! ```
//!
//! # Where things are
//!
//! The types most calls need are here at the root. The rest live in named modules:
//!
//! | module | what |
//! |---|---|
//! | [`breaker`] | the breaker, its builder, listeners, snapshots, the sans-IO [`breaker::Machine`] and the pure [`breaker::algorithm`] |
//! | [`policy`], [`stack`], [`pipeline`] | retry, timeout, bulkhead, fallback; typed stacks and run-time pipelines of them |
//! | [`backoff`], [`budget`] | delay sequences and the retry budget against retry storms |
//! | [`guard`] | spend guards: limits, spikes, EWMA baselines, the cost guard |
//! | [`keyed`] | one breaker per host, route or tenant |
//! | [`clock`], [`observe`], [`error`] | time sources, metrics and tracing, every error type |
//! | [`fleet`], [`health`], [`mode`], [`rule`], [`tower`] | fleet-wide breakers, health reports, degradation modes, the rule language, tower layers |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub use fusebox_core::{Breaker, Classifier, ConfigError, Error, Outcome, Rejected, State};

#[cfg(feature = "tokio")]
pub use fusebox_policy::{
    pipeline::Pipeline,
    policy::{Bulkhead, Fallback, Retry, Timeout},
    stack::Stack,
};

pub use fusebox_core::{backoff, breaker, budget, check, duration, guard, keyed};

#[cfg(feature = "tokio")]
pub use fusebox_policy::{pipeline, policy, settings, stack};

/// Time sources: the default monotonic clock, a precise one, a manual one for tests, a
/// calendar-anchored one and, with tokio, one that follows `tokio::time::pause`.
///
/// ```
/// use fusebox::clock::{Clock, ManualClock};
/// use std::time::Duration;
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(clock.now_nanos(), 1_000_000_000);
/// ```
pub mod clock {
    pub use fusebox_core::clock::*;
    #[cfg(feature = "tokio")]
    pub use fusebox_policy::TokioClock;
}

/// Observability: tracing spans, the metrics listener for breakers and, for the policies,
/// metrics hooks; the series names are in [`observe::names`].
///
/// ```
/// assert_eq!(fusebox::observe::names::LABEL_POLICY, "policy");
/// ```
pub mod observe {
    pub use fusebox_core::observe::*;
    #[cfg(all(feature = "tokio", feature = "metrics"))]
    pub use fusebox_policy::observe::{bulkhead_metrics, retry_metrics};
}

/// Every error a call or a builder can return: the call's [`Error`], whose variants carry
/// the caller's own error or the reason fusebox stopped the call, and [`ConfigError`] for
/// settings.
///
/// ```
/// use fusebox::error::{Error, TimedOut};
/// use std::time::Duration;
/// let e: Error<std::io::Error> = Error::Timeout(TimedOut { after: Duration::from_millis(5) });
/// assert!(!e.is_rejected());
/// assert!(e.to_string().contains("5ms"), "{e}");
/// ```
pub mod error {
    pub use fusebox_core::{
        BulkheadFull, ConfigError, CostRejected, ErrIsFailure, Error, FailureWhen, Rejected,
        TimedOut,
    };
}

/// How outcomes are classified: a success, a failure, or ignored.
///
/// ```
/// use fusebox::classify::{Classifier, FailureWhen, Outcome};
/// let only_5xx = FailureWhen(|code: &u16| *code >= 500);
/// assert_eq!(only_5xx.classify(&Err::<(), _>(404)), Outcome::Ignored);
/// assert_eq!(only_5xx.classify(&Err::<(), _>(503)), Outcome::Failure);
/// ```
pub mod classify {
    pub use fusebox_core::{Classifier, ErrIsFailure, FailureWhen, Outcome};
}

/// Health reports and progressive degradation modes.
#[cfg(feature = "health")]
pub use fusebox_health::{health, mode};

/// The safe rule language for trip rules and degradation modes.
pub use fusebox_rule as rule;

/// Fleet-wide breakers: the sync engine, the store contract and the in-memory store.
#[cfg(feature = "fleet")]
pub use fusebox_fleet as fleet;

/// tower Layers: breakers, retries, timeouts, bulkheads, fallbacks, HTTP and keyed breakers.
#[cfg(feature = "tower")]
pub use fusebox_tower as tower;

/// The README's examples, compiled and run by `cargo test --all-features` so that they
/// cannot drift from the API.
#[cfg(all(
    doctest,
    feature = "serde",
    feature = "tower",
    feature = "fleet",
    feature = "health",
    feature = "metrics"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
