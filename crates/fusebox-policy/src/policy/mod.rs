//! The policy family beside the breaker: retry, timeout, bulkhead and fallback, each usable
//! alone around an async closure or stacked in a [`Pipeline`](crate::pipeline::Pipeline).
//!
//! The sans-IO parts (backoff sequences, the retry budget's ledger) live in
//! [`backoff`](fusebox_core::backoff) and [`budget`](fusebox_core::budget); the policies here apply them
//! with tokio's timers.
//!
//! # How a breaker and a retry budget divide the work
//!
//! A retry budget caps the *extra* load retries add while nobody knows yet that a dependency
//! is sick: at most a fraction of first attempts (plus a small floor) may be retried, so a
//! failing dependency sees, say, 1.2x its normal traffic instead of 4x. The breaker stops
//! the load once it *knows*: after its trip rule fires, calls are refused without touching
//! the dependency, and retries outside the breaker stop at the first rejection. The budget
//! bounds the damage in the seconds before the breaker trips; the breaker ends it.

mod bulkhead;
mod chaos;
mod concurrency_limit;
mod fallback;
mod hedge;
mod outlier;
mod rate_limit;
mod retry;
mod throttle;
mod timeout;

pub use bulkhead::{Bulkhead, BulkheadBuilder, BulkheadSlot, OwnedBulkheadSlot};
pub use chaos::{Chaos, ChaosBuilder, Injection, Latency};
pub(crate) use concurrency_limit::CompactPermit;
pub use concurrency_limit::{
    AdaptiveLimit, Aimd, ClassifiedLimit, ConcurrencyLimit, ConcurrencyLimitBuilder, Gradient2,
    LimitAlgorithm, LimitPermit, LimitSample, OwnedLimitPermit, Vegas,
};
pub use fallback::Fallback;
pub(crate) use fallback::{Answer, BoxFuture};
pub use hedge::{Hedge, HedgeBuilder, HedgeEvent, HedgeStats, LatencyHistogram, Stopwatch};
pub(crate) use outlier::EndpointGate;
pub use outlier::{
    EjectionPermit, EjectionReason, OutlierDetector, OutlierDetectorBuilder, OutlierEndpoint,
    OutlierEvent, OwnedEjectionPermit,
};
pub use rate_limit::{KeyedRateLimiter, RateLimitMode, RateLimiter, RateLimiterBuilder};
pub use retry::{
    GiveUpReason, Retry, RetryAfterHint, RetryAttempts, RetryBuilder, RetryDecision, RetryEvent,
    RetryPlan, RetryReason,
};
pub use throttle::{ClassifiedThrottle, Throttle, ThrottleBuilder, drop_probability};
pub use timeout::Timeout;
