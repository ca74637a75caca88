//! The circuit breaker as a tower layer.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use fusebox_core::breaker::Breaker;
//! use fusebox_tower::BreakerLayer;
//! use tower::{service_fn, Layer, Service, ServiceExt};
//!
//! let breaker = Breaker::builder("echo").consecutive_failures(1).build()?;
//! let mut svc = BreakerLayer::new(breaker.clone()).layer(service_fn(|fail: bool| async move {
//!     if fail { Err("boom") } else { Ok("ok") }
//! }));
//! assert_eq!(svc.ready().await?.call(false).await?, "ok");
//! assert!(svc.ready().await?.call(true).await.is_err());
//! // Open now: the next call fails fast with a typed rejection.
//! let err = svc.ready().await?.call(false).await.unwrap_err();
//! assert!(err.is::<fusebox_core::Rejected>());
//! # Ok(())
//! # }
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::BreakerLayer;
pub use service::CircuitBreaker;
