//! The policies a pipeline holds, one [`Slot`] each, outermost first.

use std::fmt;
use std::sync::Arc;

use crate::policy::{
    Bulkhead, Chaos, ConcurrencyLimit, EndpointGate, Fallback, Hedge, RateLimiter, Retry, Throttle,
    Timeout,
};
use fusebox_core::Error;
use fusebox_core::Outcome;
use fusebox_core::breaker::Breaker;
use fusebox_core::guard::CostGuard;

/// A breaker's own classification of results, from
/// [`PipelineBuilder::breaker_with`](super::PipelineBuilder::breaker_with).
pub(crate) type ClassifyOutcome<T, E> = Arc<dyn Fn(&Result<T, Error<E>>) -> Outcome + Send + Sync>;
/// A cost guard's extractor, from
/// [`PipelineBuilder::cost_guard`](super::PipelineBuilder::cost_guard).
pub(super) type ExtractCost<T, E> = Arc<dyn Fn(&Result<T, Error<E>>) -> Option<f64> + Send + Sync>;

/// One policy of a pipeline, with the function that reads its results where it has one.
pub(super) enum Slot<T, E> {
    Fallback(Fallback<T, E>),
    Timeout(Timeout),
    Retry(Retry<T, E>),
    /// `None`: the default classification, [`breaker_outcome`](super::breaker_outcome).
    Breaker(Breaker, Option<ClassifyOutcome<T, E>>),
    Bulkhead(Bulkhead),
    Cost(CostGuard, ExtractCost<T, E>),
    /// A rate limiter that refuses (a waiting one is refused by the builder).
    RateLimit(RateLimiter),
    /// `None`: the default classification, [`breaker_outcome`](super::breaker_outcome):
    /// anything but a failure counts as accepted.
    Throttle(Throttle, Option<ClassifyOutcome<T, E>>),
    /// `None`: the default classification, [`breaker_outcome`](super::breaker_outcome).
    Limit(ConcurrencyLimit, Option<ClassifyOutcome<T, E>>),
    /// Fault and latency injection.
    Chaos(Chaos<E>),
    /// One endpoint of an outlier detector.
    Outlier(Arc<dyn EndpointGate>),
    /// Hedged attempts; always the innermost policy (the builder sees to it).
    Hedge(Hedge),
}

impl<T, E> Clone for Slot<T, E> {
    fn clone(&self) -> Self {
        match self {
            Slot::Fallback(f) => Slot::Fallback(f.clone()),
            Slot::Timeout(t) => Slot::Timeout(*t),
            Slot::Retry(r) => Slot::Retry(r.clone()),
            Slot::Breaker(b, c) => Slot::Breaker(b.clone(), c.clone()),
            Slot::Bulkhead(b) => Slot::Bulkhead(b.clone()),
            Slot::Cost(g, x) => Slot::Cost(g.clone(), Arc::clone(x)),
            Slot::RateLimit(l) => Slot::RateLimit(l.clone()),
            Slot::Throttle(t, c) => Slot::Throttle(t.clone(), c.clone()),
            Slot::Limit(l, c) => Slot::Limit(l.clone(), c.clone()),
            Slot::Chaos(c) => Slot::Chaos(c.clone()),
            Slot::Outlier(o) => Slot::Outlier(Arc::clone(o)),
            Slot::Hedge(h) => Slot::Hedge(h.clone()),
        }
    }
}

impl<T, E> fmt::Debug for Slot<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Slot::Fallback(x) => x.fmt(f),
            Slot::Timeout(x) => x.fmt(f),
            Slot::Retry(x) => x.fmt(f),
            Slot::Breaker(b, _) => b.fmt(f),
            Slot::Bulkhead(x) => x.fmt(f),
            Slot::Cost(g, _) => g.fmt(f),
            Slot::RateLimit(l) => l.fmt(f),
            Slot::Throttle(t, _) => t.fmt(f),
            Slot::Limit(l, _) => l.fmt(f),
            Slot::Chaos(c) => c.fmt(f),
            Slot::Outlier(_) => f.write_str("OutlierEndpoint"),
            Slot::Hedge(h) => h.fmt(f),
        }
    }
}
