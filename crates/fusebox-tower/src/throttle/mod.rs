//! Adaptive client-side throttling as a tower layer: each request passes a fusebox
//! [`Throttle`](fusebox_policy::policy::Throttle) first and is dropped locally with a boxed
//! [`Throttled`](fusebox_core::Throttled) error, or sent; a classifier reads the response
//! to tell whether the dependency accepted it (anything but
//! [`Outcome::Failure`](fusebox_core::Outcome::Failure) counts as accepted).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), fusebox_tower::BoxError> {
//! use fusebox_core::ErrIsFailure;
//! use fusebox_policy::policy::Throttle;
//! use fusebox_tower::throttle::ThrottleLayer;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let throttle = Throttle::builder("quotes").seed(3).build()?;
//! let svc = ThrottleLayer::new(throttle.clone(), ErrIsFailure)
//!     .layer(service_fn(|_: ()| async { Err::<(), _>(std::io::Error::other("overloaded")) }));
//! for _ in 0..50 {
//!     let _ = svc.clone().oneshot(()).await;
//! }
//! assert!(throttle.probability() > 0.9);
//! # Ok(())
//! # }
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::ThrottleLayer;
pub use service::ThrottleService;
