//! Retry as a tower layer, driven by a fusebox [`Retry`](fusebox_policy::policy::Retry) policy.
//!
//! A request is retried only if a [`RetryRequest`] policy lets it and clones it: by default
//! every `Clone` request ([`CloneRequests`]); for HTTP, only idempotent methods with a
//! cloneable body ([`IdempotentRequests`](crate::http::IdempotentRequests)).

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::RetryLayer;
pub use service::RetryService;

/// Decides whether a request may be sent again, and makes the copy to send.
///
/// ```
/// use fusebox_tower::retry::{CloneRequests, RetryRequest};
/// assert_eq!(CloneRequests.clone_for_retry(&"GET /"), Some("GET /"));
/// ```
pub trait RetryRequest<Req> {
    /// A copy of `req` for another attempt, or `None` if it must not be retried (not
    /// idempotent, or its body cannot be replayed).
    fn clone_for_retry(&self, req: &Req) -> Option<Req>;
}

/// Retries any request that is `Clone`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CloneRequests;

impl<Req: Clone> RetryRequest<Req> for CloneRequests {
    fn clone_for_retry(&self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

impl<Req, F> RetryRequest<Req> for F
where
    F: Fn(&Req) -> Option<Req>,
{
    fn clone_for_retry(&self, req: &Req) -> Option<Req> {
        self(req)
    }
}
