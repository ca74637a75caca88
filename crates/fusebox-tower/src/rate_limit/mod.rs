//! A rate limiter as a tower layer: each request takes a permit from a fusebox
//! [`RateLimiter`](fusebox_policy::policy::RateLimiter) (or from its key's quota in a
//! [`KeyedRateLimiter`](fusebox_policy::policy::KeyedRateLimiter)), waits for one in wait
//! mode, or fails with a boxed [`RateLimited`](fusebox_core::RateLimited), which
//! [`handle_error`](crate::http::axum::handle_error) turns into `429 Too Many Requests` with
//! `Retry-After`.
//!
//! A request that finds a free permit allocates nothing; one that has to wait allocates its
//! waiting future once.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fusebox_tower::BoxError> {
//! use fusebox_policy::policy::RateLimiter;
//! use fusebox_tower::rate_limit::RateLimitLayer;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let limiter = RateLimiter::builder("api").per_second(1).build()?;
//! let svc = RateLimitLayer::new(limiter)
//!     .layer(service_fn(|_: ()| async { Ok::<_, std::io::Error>("ok") }));
//! assert_eq!(svc.clone().oneshot(()).await?, "ok");
//! let refused = svc.oneshot(()).await.unwrap_err();
//! assert!(refused.is::<fusebox_core::RateLimited>());
//! # Ok(())
//! # }
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::{KeyedRateLimitLayer, RateLimitLayer};
pub use service::{KeyedRateLimit, RateLimit};
