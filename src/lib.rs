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
//! # Start here
//!
//! * **Around a call**: the example above, [`Breaker::call`], [`Retry::call`], a [`Stack`]
//!   or a [`Pipeline`] around any async closure.
//! * **An HTTP client in one line** (feature `http`): [`preset::http_client`] gives the
//!   standard stack, a retry honouring `Retry-After` with a retry budget, outside a breaker
//!   with the HTTP classifier, outside a per-attempt timeout, its numbers in its docs.
//! * **From configuration** (feature `serde`): [`settings::PipelineSettings`] loads a whole
//!   pipeline from TOML, with environment overrides and errors naming the field's path.
//! * **The guide**: the crate's README walks through every policy, the fleet stores, the
//!   metrics and the CLI; every one of its examples is compiled and run as a test.
//!
#![cfg_attr(
    feature = "http",
    doc = r##"
```
# #[tokio::main(flavor = "current_thread", start_paused = true)]
# async fn main() -> Result<(), fusebox::tower::BoxError> {
use fusebox::preset::http_client;
use tower::{ServiceBuilder, ServiceExt};

// Retry (2, Retry-After, budget) -> breaker (HTTP classifier) -> 10 s per attempt.
let client = ServiceBuilder::new()
    .layer(http_client::<String>("pricing")?)
    .service_fn(|_: http::Request<String>| async {
        Ok::<_, std::io::Error>(http::Response::new("42".to_string())) // your HTTP client here
    });
let response = client.oneshot(http::Request::new(String::new())).await?;
assert_eq!(response.into_body(), "42");
# Ok(())
# }
```
"##
)]
//!
//! # One client, many result types
//!
//! A [`Breaker`], a [`Timeout`] and a [`Bulkhead`] do not depend on what a call returns, so
//! a [`Stack`] of them serves calls of every result type: its `call` is generic per call. A
//! [`Retry`] and a [`Pipeline`] are typed by the results they classify. For an SDK whose
//! methods return different types, build one stack per result type from *clones* of the same
//! policies: a breaker's clones share one state and a retry budget's clones one bucket, so
//! the breaker still judges the whole client and the budget still caps it.
//!
//! ```
//! use fusebox::budget::{BudgetConfig, RetryBudget};
//! use fusebox::stack::{Bare, Stack, Then};
//! use fusebox::{Breaker, Error, Retry, Timeout};
//! use std::time::Duration;
//!
//! type Io = std::io::Error;
//! type Guarded = Then<Then<Bare, Breaker>, Timeout>; // breaker, then a timeout per attempt
//!
//! struct Client {
//!     guarded: Stack<Guarded>,                              // any result type
//!     names: Stack<Then<Then<Then<Bare, Retry<String, Io>>, Breaker>, Timeout>>,
//! }
//!
//! impl Client {
//!     fn new() -> Result<Self, fusebox::ConfigError> {
//!         let breaker = Breaker::builder("users").build()?;   // one state, shared by clones
//!         let budget = RetryBudget::new(BudgetConfig::default());
//!         let attempt = Duration::from_secs(2);
//!         Ok(Client {
//!             guarded: Stack::new().breaker(breaker.clone()).timeout(attempt)?,
//!             names: Stack::new()
//!                 .retry(Retry::builder().budget(budget).build()?)
//!                 .breaker(breaker)
//!                 .timeout(attempt)?,
//!         })
//!     }
//!     async fn name(&self, id: u32) -> Result<String, Error<Io>> {
//!         self.names.call(|| async move { Ok(format!("user-{id}")) }).await
//!     }
//!     async fn count(&self) -> Result<u64, Error<Io>> {
//!         self.guarded.call(|| async { Ok(7) }).await
//!     }
//!     async fn active(&self) -> Result<bool, Error<Io>> {
//!         self.guarded.call(|| async { Ok(true) }).await     // the same stack, another type
//!     }
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new()?;
//! assert_eq!(client.name(1).await?, "user-1");
//! assert_eq!((client.count().await?, client.active().await?), (7, true));
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
//!
//! # Features
//!
//! | feature | default | what it adds | pulls in |
//! |---|---|---|---|
//! | `tokio` | yes | [`policy`], [`stack`], [`pipeline`], [`settings`], `TokioClock` | tokio (time, sync) |
//! | `tower` | yes | [`tower`]: a layer per policy, keyed breakers | tower-layer, tower-service, tokio-util |
//! | `http` | yes | HTTP classification, Retry-After, idempotent requests, [`preset`] | http, httpdate |
//! | `axum` | yes | rejections as 503 responses, the health handler | axum-core, serde_json, the health crate |
//! | `metrics` | yes | the [`observe`] metrics listener and hooks, series descriptions | metrics |
//! | `fleet` | yes | [`fleet`]: fleet-wide breakers, the in-memory store | |
//! | `health` | yes | [`health`] reports and degradation [`mode`]s | |
//! | `serde` | no | settings and reports from and to TOML, JSON… | serde |
//! | `reload` | no | `settings::Reloader`: live breakers and retries reconfigured from a TOML file, on demand or on change | serde, toml, notify |
//!
//! A tonic or plain-tower client keeps what it needs with
//! `default-features = false, features = ["tower", "metrics"]`: no axum-core, no serde_json.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub use fusebox_core::{Breaker, Classifier, ConfigError, Error, Outcome, Rejected, State};

#[cfg(feature = "tokio")]
pub use fusebox_policy::{
    pipeline::Pipeline,
    policy::{
        Bulkhead, Chaos, Fallback, Hedge, OutlierDetector, RateLimiter, Retry, Throttle, Timeout,
    },
    stack::Stack,
};

#[cfg(feature = "tokio")]
pub use fusebox_policy::policy::ConcurrencyLimit;

pub use fusebox_core::{backoff, breaker, budget, check, duration, guard, keyed, revisions};

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
    pub use fusebox_policy::observe::{
        bulkhead_metrics, chaos_metrics, concurrency_limit_metrics, hedge_metrics, outlier_metrics,
        rate_limiter_metrics, retry_metrics, throttle_metrics,
    };
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
        BulkheadFull, ConfigError, CostRejected, Ejected, ErrIsFailure, Error, FailureWhen,
        LimitExceeded, RateLimited, Rejected, Throttled, TimedOut,
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

/// Standard stacks in one line, their numbers documented: [`preset::http_client`] (retry
/// with Retry-After and a budget, a breaker with the HTTP classifier, a per-attempt timeout).
#[cfg(feature = "http")]
pub use fusebox_tower::preset;

/// The README's examples, compiled and run by `cargo test --all-features` so that they
/// cannot drift from the API.
#[cfg(all(
    doctest,
    feature = "serde",
    feature = "tower",
    feature = "axum",
    feature = "fleet",
    feature = "health",
    feature = "metrics"
))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
