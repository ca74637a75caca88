//! Outlier ejection as a tower layer: each request's endpoint (read from it by a key
//! function: a host, a replica) passes a fusebox
//! [`OutlierDetector`](fusebox_policy::policy::OutlierDetector) first and is refused with a
//! boxed [`Ejected`](fusebox_core::Ejected) while ejected, which
//! [`handle_error`](crate::http::axum::handle_error) turns into `503 Service Unavailable`
//! with `Retry-After`. A classifier reads each response, e.g.
//! [`HttpClassifier`](crate::http::HttpClassifier) to count 5xx as the endpoint's failures.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fusebox_tower::BoxError> {
//! use fusebox_core::ErrIsFailure;
//! use fusebox_policy::policy::OutlierDetector;
//! use fusebox_tower::outlier::OutlierLayer;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let detector = OutlierDetector::builder("replicas").consecutive_failures(2).build()?;
//! let replicas = ["r1", "r2"];
//! detector.available(&replicas);
//! let svc = OutlierLayer::new(detector.clone(), |r: &&'static str| *r, ErrIsFailure)
//!     .layer(service_fn(|r: &'static str| async move {
//!         if r == "r1" { Err(std::io::Error::other("reset")) } else { Ok(r) }
//!     }));
//! for _ in 0..2 {
//!     let _ = svc.clone().oneshot("r1").await;
//! }
//! assert_eq!(detector.available(&replicas), [&"r2"]);
//! # Ok(())
//! # }
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::OutlierLayer;
pub use service::OutlierService;
