//! Hedged requests as a tower layer: a request not answered within the hedge's delay is sent
//! again through a clone of the service, the first success is the response, and the
//! attempts still in flight are dropped. See [`Hedge`](fusebox_policy::policy::Hedge) for
//! the delay, the budget and what a failure does.
//!
//! Only requests safe to send twice are hedged. A [`RetryRequest`](crate::retry::RetryRequest)
//! policy chooses them and copies them, as for the retry layer:
//! [`CloneRequests`](crate::retry::CloneRequests) (the default) hedges every request and
//! needs `Req: Clone`; for HTTP, [`IdempotentRequests`](crate::http::IdempotentRequests)
//! hedges GET, HEAD, OPTIONS, TRACE, PUT and DELETE (and requests with an
//! `Idempotency-Key`), never a plain POST; a closure `Fn(&Req) -> Option<Req>` decides
//! anything else. The service must be `Clone`: each hedge waits for a clone to be ready.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), fusebox_tower::BoxError> {
//! use fusebox_policy::policy::Hedge;
//! use fusebox_tower::hedge::HedgeLayer;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! let calls = Arc::new(AtomicU32::new(0));
//! let counter = calls.clone();
//! let replicas = service_fn(move |id: u32| {
//!     // The first replica asked is stuck; the next answers in 5 ms.
//!     let stuck = counter.fetch_add(1, Ordering::Relaxed) == 0;
//!     async move {
//!         tokio::time::sleep(Duration::from_millis(if stuck { 5_000 } else { 5 })).await;
//!         Ok::<_, std::io::Error>(format!("user-{id}"))
//!     }
//! });
//! let hedge = Hedge::builder("users").delay(Duration::from_millis(20)).build()?;
//! let svc = HedgeLayer::new(hedge.clone()).layer(replicas);
//! let started = tokio::time::Instant::now();
//! assert_eq!(svc.oneshot(7).await?, "user-7");
//! assert_eq!(started.elapsed(), Duration::from_millis(25));
//! assert_eq!(hedge.stats().hedge_wins, 1);
//! # Ok(())
//! # }
//! ```

mod future;
mod layer;
mod service;

pub use future::ResponseFuture;
pub use layer::HedgeLayer;
pub use service::HedgeService;
