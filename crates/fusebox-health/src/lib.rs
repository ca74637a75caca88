//! # fusebox-health
//!
//! What a service tells its operators about its dependencies: a [`health`] registry of
//! breakers, bulkheads, retry policies and async checks with the report built from them,
//! and progressive degradation [`mode`]s (PRIMARY → HEURISTIC → SAFE) switched by rules
//! written in the [`fusebox_rule`] language.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

pub mod health;
pub mod mode;
