//! An adaptive concurrency limit as a tower layer: calls beyond the limit a
//! [`ConcurrencyLimit`](fusebox_policy::policy::ConcurrencyLimit) has measured fail at once
//! with a typed [`LimitExceeded`](fusebox_core::LimitExceeded).
//!
//! Admission is a compare-and-swap on the count in flight and the permit lives inside the
//! response future, so a call allocates nothing of its own.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fusebox_tower::BoxError> {
//! use fusebox_policy::policy::ConcurrencyLimit;
//! use fusebox_tower::concurrency_limit::ConcurrencyLimitLayer;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let limit = ConcurrencyLimit::builder("db").initial_limit(1).build()?;
//! let held = limit.try_acquire_owned()?;
//! let svc = ConcurrencyLimitLayer::new(limit.clone())
//!     .layer(service_fn(|_: ()| async { Ok::<_, std::io::Error>(1) }));
//! let err = svc.clone().oneshot(()).await.unwrap_err();
//! assert!(err.is::<fusebox_core::LimitExceeded>());
//! drop(held);
//! assert_eq!(svc.oneshot(()).await?, 1);
//! # Ok(())
//! # }
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::ConcurrencyLimitLayer;
pub use service::ConcurrencyLimitService;
