//! # fusebox-core
//!
//! The sans-IO core and concurrent shell of fusebox, free of any async runtime: circuit
//! breakers (the pure [`breaker::algorithm`], the sans-IO [`breaker::Machine`] and the
//! lock-free [`Breaker`]), outcome windows, backoff, retry budgets, spend guards, keyed
//! registries, clocks, outcomes and errors. Most users depend on the `fusebox` facade.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

pub mod backoff;
pub mod breaker;
pub mod budget;
pub mod clock;
pub mod duration;
mod error;
pub mod guard;
pub mod keyed;
pub mod observe;
mod outcome;
pub mod revisions;
pub mod rng;
mod shed;
pub(crate) mod sync;

pub use breaker::{Breaker, Rejected, State};
pub use error::{BulkheadFull, ConfigError, Error, TimedOut, check};
pub use guard::CostRejected;
pub use outcome::{Classifier, ErrIsFailure, FailureWhen, Outcome};
pub use shed::{Ejected, LimitExceeded, RateLimited, Throttled, is_refusal};
