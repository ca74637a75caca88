//! # fusebox
//!
//! Circuit breakers, retries and composable resilience policies for async Rust.
//! This facade re-exports the member crates; see the README for a tour.
#![deny(missing_docs)]

pub use fusebox_core::*;
