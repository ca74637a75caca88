//! The circuit breaker as a tower layer for gRPC services: a tonic `Channel` on the client
//! side, a tonic server's routes on the server side.
//!
//! [`GrpcBreakerLayer`] makes [`GrpcBreaker`] services, whose [`ResponseFuture`] yields
//! responses with a [`ResponseBody`] that carries the breaker's permit to the trailers.

mod body;
mod future;
mod layer;
mod service;

pub use body::ResponseBody;
pub use future::ResponseFuture;
pub use layer::GrpcBreakerLayer;
pub use service::GrpcBreaker;
