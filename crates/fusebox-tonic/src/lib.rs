//! # fusebox-tonic
//!
//! gRPC for fusebox, on [tonic](https://docs.rs/tonic):
//!
//! - [`GrpcClassifier`] tells a breaker what a gRPC status means: `UNAVAILABLE`,
//!   `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`, `INTERNAL`, `DATA_LOSS`, `UNKNOWN` and
//!   transport errors fail; `NOT_FOUND`, `INVALID_ARGUMENT`, `PERMISSION_DENIED`… are the
//!   server answering and do not; `CANCELLED` is ignored. Every code is configurable. Use it
//!   with [`Breaker::call_with`](fusebox_core::Breaker::call_with) around a generated
//!   client's calls, in stacks and pipelines, or in the layer below.
//! - [`GrpcBreakerLayer`] puts a breaker around a tonic `Channel` (or a server's routes):
//!   it reads `grpc-status` from the headers of a Trailers-Only response at once, and from
//!   the trailers of any other when its body ends, and answers a rejection without calling
//!   the channel, as `UNAVAILABLE` with the breaker's remaining cooldown.
//! - [`rejection_status`] and [`error_status`] turn fusebox's refusals into the `Status`
//!   a server answers with; [`retry_after_from`] reads the retry delay back (from
//!   `google.rpc.RetryInfo` or the `grpc-retry-pushback-ms` trailer), clamping what a
//!   server may send, and [`retry_hint`] plugs it into a retry policy.
//!
//! # A channel behind a breaker
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fusebox_core::breaker::Breaker;
//! use fusebox_tonic::{retry_after_from, GrpcBreakerLayer};
//! use tonic::transport::Endpoint;
//! use tonic::Code;
//! use tonic_health::pb::{health_client::HealthClient, HealthCheckRequest};
//! use tower::ServiceBuilder;
//!
//! let breaker = Breaker::builder("health").consecutive_failures(3).build()?;
//! let channel = Endpoint::from_static("http://127.0.0.1:50051").connect().await?;
//! let mut client = HealthClient::new(
//!     ServiceBuilder::new().layer(GrpcBreakerLayer::new(breaker)).service(channel),
//! );
//! match client.check(HealthCheckRequest { service: String::new() }).await {
//!     Ok(response) => println!("{:?}", response.into_inner().status()),
//!     // Either the server's own UNAVAILABLE or the breaker's: both say when to come back.
//!     Err(status) if status.code() == Code::Unavailable => {
//!         println!("unavailable; retry after {:?}", retry_after_from(&status));
//!     }
//!     Err(status) => println!("{status}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Which to use
//!
//! The layer sees every call on the channel, streams included, and needs no change at the
//! call sites; a breaker per method or per tenant sits better around the calls, with
//! `breaker.call_with(&GrpcClassifier::new(), || client.method(request))`. The
//! classification is the same either way.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

pub mod breaker;
mod classify;
mod code;
mod status;

pub use breaker::{GrpcBreaker, GrpcBreakerLayer};
pub use classify::{ALL_CODES, GrpcClassifier, GrpcClassifierBuilder};
pub use status::{
    MAX_RETRY_AFTER, RETRY_PUSHBACK_HEADER, error_status, rejection_status, retry_after_capped,
    retry_after_from, retry_hint,
};
