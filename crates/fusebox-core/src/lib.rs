//! # fusebox-core
//!
//! The sans-IO core and concurrent shell of fusebox: circuit breakers, backoff, retry budgets,
//! spend guards and a safe rule language. Most users depend on the `fusebox` facade, which
//! re-exports everything here.
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

pub mod backoff;
pub mod budget;
pub mod clock;
mod error;
pub mod guard;
pub mod rule;
pub(crate) mod sync;

pub use error::ConfigError;
