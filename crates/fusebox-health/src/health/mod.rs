//! Health: a registry of named breakers, bulkheads, retry policies and async checks, and
//! the aggregate report built from them.
//!
//! A component is healthy, degraded or unhealthy:
//!
//! | component | healthy | degraded | unhealthy |
//! | --- | --- | --- | --- |
//! | breaker | closed or disabled | half-open | open or forced open |
//! | bulkhead | a slot free | every slot busy | never |
//! | retry policy | always: its counts feed [mode rules](crate::mode) | | |
//! | check | says so | says so | says so, fails, panics or times out |
//!
//! The report is **unhealthy** when a component marked critical is unhealthy, **degraded**
//! when any other component is not healthy, and **healthy** otherwise. With the `serde`
//! feature it serializes to JSON (`fusebox_tower::http::axum::health_handler` serves it).
//! The registry, the checks and the retry counts need the `tokio` feature; the report types
//! do not.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use fusebox_core::breaker::Breaker;
//! use fusebox_health::health::{HealthCheck, HealthRegistry, HealthStatus};
//! use std::time::Duration;
//!
//! let db = Breaker::builder("db").build()?;
//! let registry = HealthRegistry::new();
//! registry.add_breaker(&db)?;
//! registry.add_check(
//!     HealthCheck::builder("disk", || async { Ok::<_, std::io::Error>(()) })
//!         .timeout(Duration::from_secs(1))
//!         .critical()
//!         .build()?,
//! )?;
//! assert_eq!(registry.report().await.status, HealthStatus::Healthy);
//!
//! db.force_open();
//! let report = registry.report().await;
//! assert_eq!(report.status, HealthStatus::Degraded); // the breaker is not critical
//! assert_eq!(report.failed_components, 1);
//! # Ok(())
//! # }
//! ```

mod registry;
mod report;
mod retry;

pub use registry::{CheckOutcome, HealthCheck, HealthCheckBuilder, HealthRegistry};
pub use report::{ComponentHealth, ComponentKind, HealthReport, HealthStatus};
pub use retry::RetryStats;

#[cfg(test)]
mod tests;
