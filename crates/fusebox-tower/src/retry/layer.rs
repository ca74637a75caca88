use fusebox_policy::policy::Retry;
use tower_layer::Layer;

use super::{CloneRequests, RetryService};
use crate::BoxError;

/// Retries calls to the wrapped service per a fusebox [`Retry`] policy: backoff, budget,
/// Retry-After, classification of responses and errors.
///
/// The inner service must be `Clone` (each retry waits for a clone to be ready). Requests are
/// copied for retries by a [`RetryRequest`](super::RetryRequest) policy, `Clone` requests by
/// default. Errors reach the classifier as [`fusebox_core::Error`] values, so an inner
/// breaker's rejection stops the retrying (the default classification does not retry it).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_policy::policy::Retry;
/// use fusebox_tower::retry::RetryLayer;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// let calls = Arc::new(AtomicU32::new(0));
/// let counter = calls.clone();
/// let flaky = service_fn(move |req: u32| {
///     let n = counter.fetch_add(1, Ordering::Relaxed);
///     async move { if n < 2 { Err("busy") } else { Ok(req * 2) } }
/// });
/// let svc = RetryLayer::new(Retry::builder().max_retries(3).build()?).layer(flaky);
/// assert_eq!(svc.oneshot(21).await?, 42);
/// assert_eq!(calls.load(Ordering::Relaxed), 3);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct RetryLayer<T, P = CloneRequests> {
    policy: Retry<T, BoxError>,
    requests: P,
}

impl<T> RetryLayer<T> {
    /// A layer retrying per `policy`, copying `Clone` requests.
    pub fn new(policy: Retry<T, BoxError>) -> Self {
        RetryLayer {
            policy,
            requests: CloneRequests,
        }
    }
}

impl<T, P> RetryLayer<T, P> {
    /// Chooses which requests may be retried and how they are copied.
    pub fn requests<P2>(self, requests: P2) -> RetryLayer<T, P2> {
        RetryLayer {
            policy: self.policy,
            requests,
        }
    }

    /// The retry policy.
    pub fn policy(&self) -> &Retry<T, BoxError> {
        &self.policy
    }
}

impl<S, T, P: Clone> Layer<S> for RetryLayer<T, P> {
    type Service = RetryService<S, T, P>;

    fn layer(&self, inner: S) -> Self::Service {
        RetryService::new(inner, self.policy.clone(), self.requests.clone())
    }
}

// Not derived: a derive would require `T: Clone`, and responses rarely are.
impl<T, P: Clone> Clone for RetryLayer<T, P> {
    fn clone(&self) -> Self {
        RetryLayer {
            policy: self.policy.clone(),
            requests: self.requests.clone(),
        }
    }
}
