//! Chaos as a tower layer, for resilience tests of the stack around it: a fusebox
//! [`Chaos`](fusebox_policy::policy::Chaos) draws for each request whether to delay it
//! (on tokio's timer, before the inner service is called) and whether to answer it with a
//! fault instead: an error, or a synthetic response such as a `503`. Disabled, a request
//! passes through at the cost of one atomic load.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), fusebox_tower::BoxError> {
//! use fusebox_policy::policy::Chaos;
//! use fusebox_tower::chaos::ChaosLayer;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! // About a third of the calls answer 503 without reaching the service (here answers are
//! // bare status codes; with http, build a `Response` the same way).
//! let chaos = Chaos::builder("catalog").enabled(true).seed(11).fault(0.3, || Ok(503)).build()?;
//! let svc = ChaosLayer::new(chaos.clone())
//!     .layer(service_fn(|_: ()| async { Ok::<u16, std::io::Error>(200) }));
//! let mut unavailable = 0;
//! for _ in 0..100 {
//!     if svc.clone().oneshot(()).await? == 503 {
//!         unavailable += 1;
//!     }
//! }
//! assert!((20..=40).contains(&unavailable), "{unavailable}");
//! assert_eq!(unavailable, chaos.faults_injected());
//! # Ok(())
//! # }
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::ChaosLayer;
pub use service::ChaosService;

/// What a chaos fault answers in a tower service: `Err` for an error, `Ok` for a synthetic
/// response.
///
/// ```
/// use fusebox_tower::chaos::ChaosFault;
/// let fault: ChaosFault<u16> = Err("connection reset (injected)".into());
/// assert!(fault.is_err());
/// ```
pub type ChaosFault<R> = Result<R, crate::BoxError>;
