//! # fusebox-core
//!
//! The sans-IO core and concurrent shell of fusebox: circuit breakers, backoff, retry budgets,
//! spend guards and a safe rule language. Most users depend on the `fusebox` facade, which
//! re-exports everything here.
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod clock;
mod error;
pub mod guard;
pub mod keyed;
pub mod observe;
mod outcome;
#[cfg(feature = "tokio")]
pub mod pipeline;
#[cfg(feature = "tokio")]
pub mod policy;
#[cfg(feature = "tokio")]
pub mod stack;
pub(crate) mod sync;

pub use breaker::{Breaker, Rejected, State};
pub use error::{BulkheadFull, ConfigError, Error, TimedOut, check};
pub use guard::CostRejected;
pub use outcome::{Classifier, ErrIsFailure, FailureWhen, Outcome};
