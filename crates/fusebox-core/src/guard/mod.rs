//! Spend guards: spend-limit checks, spike detection, EWMA baselines and the cost guard built on them.
//!
//! The checks are sans-IO: plain functions of their inputs, no clock read, no I/O, no
//! randomness. Each check returns a typed report (`Debug + Clone + PartialEq`, serde behind the
//! `serde` feature) meant to be written to an audit log as is, and rejects every invalid input
//! with a [`ConfigError::Invalid`](crate::ConfigError::Invalid) naming the field.
//!
//! * [`SpendLimitCheck`]: how much of a spending limit is used; warning and breach flags.
//! * [`SpikeCheck`]: is the newest point of a series far above the mean of the ones before it.
//! * [`EwmaBaseline`], [`SeasonalBaseline`], [`KeyedBaselines`]: a slowly moving baseline of
//!   normal spend, optionally one per hour of the week and one per key such as
//!   `(service, model)`, flagging values far above it as a [`SpendAnomaly`].
//! * [`CostGuard`] (with its sans-IO core [`CostMeter`]): a breaker that trips on spend,
//!   accumulating the cost of calls in a window and refusing calls once the budget is breached
//!   or the window spikes; see the [`cost`] module.
//!
//! Every number in a report is finite: results that would overflow `f64` saturate at
//! [`f64::MAX`], so reports always serialize.
//!
//! ```
//! use fusebox_core::guard::{SpendLimitCheck, SpikeCheck};
//!
//! let limit = SpendLimitCheck::new(1000.0).evaluate(920.0)?;
//! assert!(limit.is_warning && !limit.is_breached);
//!
//! let spike = SpikeCheck::default().evaluate(&[120.0, 125.0, 118.0, 260.0])?;
//! assert!(spike.is_spike);
//! # Ok::<(), fusebox_core::ConfigError>(())
//! ```

pub mod cost;
mod ewma;
mod hour;
mod keyed;
mod seasonal;
mod spend_limit;
mod spike;

#[cfg(test)]
mod proptests;

pub use cost::{
    Admitted, BaselineReading, CostBaseline, CostDecision, CostEvent, CostEventKind, CostEvents,
    CostExtractor, CostGuard, CostGuardBuilder, CostListener, CostMeter, CostPermit, CostPolicy,
    CostPolicyBuilder, CostRefusal, CostRejectReason, CostRejected, CostStatus, CostTicket,
    CostWindow, OwnedCostPermit, Settled, UnknownCost,
};
pub use ewma::{EwmaBaseline, EwmaConfig, EwmaReading, SpendAnomaly};
pub use hour::HourOfWeek;
pub use keyed::KeyedBaselines;
pub use seasonal::SeasonalBaseline;
pub use spend_limit::{SpendLimitCheck, SpendLimitStatus};
pub use spike::{SpikeCheck, SpikeReport};

/// Clamps a non-negative result that overflowed to infinity back into the finite range, so a
/// report never carries a value that JSON-like formats cannot encode.
fn saturate(value: f64) -> f64 {
    value.min(f64::MAX)
}

/// Pulls an average back between the values it averages. Rounding can carry it an ulp outside
/// them, or past `f64::MAX`; neither should reach a report.
fn between(average: f64, low: f64, high: f64) -> f64 {
    average.max(low).min(high)
}
