//! # fusebox-policy
//!
//! The policies beside the breaker, where tokio is: [`policy`] (retry, timeout, bulkhead,
//! fallback), composed by the typed [`stack`] or the run-time [`pipeline`], with metrics
//! hooks in [`observe`] and the [`TokioClock`] for paused-time tests. The breaker, backoff
//! and retry budget they apply are fusebox-core's, which stays free of any runtime.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

mod clock;
#[cfg(feature = "metrics")]
pub mod observe;
pub mod pipeline;
pub mod policy;
pub mod settings;
pub mod stack;

pub use clock::TokioClock;
