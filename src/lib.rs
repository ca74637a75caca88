//! # fusebox
//!
//! Circuit breakers, retries and composable resilience policies for async Rust.
//! This facade re-exports the member crates; see the README for a tour.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use fusebox_core::*;

/// Health reports and progressive degradation modes.
#[cfg(feature = "health")]
pub use fusebox_health::{health, mode};

/// The safe rule language for trip rules and degradation modes.
pub use fusebox_rule as rule;

/// Fleet-wide breakers: the sync engine, the store contract and the in-memory store.
#[cfg(feature = "fleet")]
pub use fusebox_fleet as fleet;

/// tower Layers: breakers, retries, timeouts, bulkheads, fallbacks, HTTP and keyed breakers.
#[cfg(feature = "tower")]
pub use fusebox_tower as tower;
