//! Circuit breakers keyed by host, route, tenant or any key extracted from the request.
//!
//! One sick host should not cut a client off from the healthy ones. A
//! [`KeyedBreakerLayer`] extracts a key from each request and sends the call through that
//! key's own [`Breaker`](fusebox_core::Breaker), kept in a shared [`BreakerRegistry`]: one
//! key tripping never affects another.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fusebox_tower::BoxError> {
//! use fusebox_core::breaker::{BreakerSettings, State};
//! use fusebox_tower::keyed::{BreakerRegistry, KeyedBreakerLayer};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! struct Request {
//!     host: &'static str,
//! }
//!
//! let registry = BreakerRegistry::<&str>::builder("upstream")
//!     .settings(BreakerSettings { consecutive_failures: Some(2), ..Default::default() })
//!     .build()?;
//! let svc = KeyedBreakerLayer::new(registry.clone(), |req: &Request| req.host).layer(
//!     service_fn(|req: Request| async move {
//!         if req.host == "down.example" { Err("connection refused") } else { Ok("200 OK") }
//!     }),
//! );
//! for _ in 0..2 {
//!     assert!(svc.clone().oneshot(Request { host: "down.example" }).await.is_err());
//! }
//! assert_eq!(registry.get("down.example").map(|b| b.state()), Some(State::Open));
//! assert_eq!(svc.clone().oneshot(Request { host: "up.example" }).await?, "200 OK");
//! # Ok(())
//! # }
//! ```
//!
//! How the registry builds each key's breaker, bounds itself and evicts idle keys is told
//! in [`fusebox_core::keyed`].

mod layer;
mod service;

pub use fusebox_core::keyed::{BreakerRegistry, RegistryBuilder, RegistryStats};
pub use layer::KeyedBreakerLayer;
pub use service::KeyedCircuitBreaker;
