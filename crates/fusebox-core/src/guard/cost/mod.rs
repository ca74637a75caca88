//! The cost guard: a breaker that trips on spend.
//!
//! Calls to paid APIs fail in a second way: they succeed and cost too much. A cost guard
//! accumulates the cost of calls in a [window](CostWindow), warns when spend reaches a share of
//! the limit, and refuses calls while the limit is reached or the current window spikes over
//! its [baseline](CostBaseline).
//!
//! # Layers
//!
//! * [`CostPolicy`]: validated settings, and [`CostPolicy::decide`], the pure decision from a
//!   [`CostStatus`] (the window's totals).
//! * [`CostMeter`]: the sans-IO core, `&mut self`, time passed in as nanoseconds: window
//!   buckets, reservations of calls in flight, the baseline learnt from closed periods,
//!   once-per-period events.
//! * [`CostGuard`]: the concurrent shell (`Clone + Send + Sync`), with a clock, listeners,
//!   `tracing` events and RAII [`CostPermit`]s; usable alone, in a
//!   `fusebox::pipeline::Pipeline` and as a tower layer.
//!
//! # Semantics
//!
//! * **Windows.** A rolling window counts the spend of the last span in buckets that expire
//!   one at a time; a calendar window counts the current UTC hour or day, aligned to Unix time.
//!   A call's cost is counted in the window current when it is recorded.
//! * **Decisions.** In order: refused while an unknown cost blocks the window
//!   ([`UnknownCost::Reject`]); refused once spend plus reservations reaches the limit; refused
//!   while that total is above the baseline's spike threshold; admitted with a warning at the
//!   warning ratio; admitted.
//! * **Events.** Warning, breach and spike are each raised at most once per period, when first
//!   seen; an unknown cost is raised every time.
//! * **Unknown costs** (the extractor says `None`, an invalid number, a permit dropped
//!   mid-call) count as [`UnknownCost`] says: nothing, a pessimistic cost, or a closed window.
//! * **Bursts** cannot blow far past the budget: see [`CostGuard`] for the bound.
//!
//! # Fleet-wide budgets
//!
//! A guard's totals are its own instance's. The decision is kept apart from where the totals
//! come from: [`CostPolicy::decide`] reads only a [`CostStatus`], so a shared store can later
//! supply the fleet's spend in the window (written behind as deltas, read by subscription, as
//! for breakers) and every instance will judge one budget the same way. No store exists yet.
//!
//! ```
//! use fusebox_core::clock::ManualClock;
//! use fusebox_core::guard::{CostBaseline, CostGuard, CostPolicy, CostRejectReason, CostWindow, SpikeCheck};
//! use std::time::Duration;
//!
//! let hour = Duration::from_secs(3600);
//! let clock = ManualClock::new();
//! let policy = CostPolicy::builder(1000.0)
//!     .window(CostWindow::CalendarHour)
//!     .baseline(CostBaseline::Recent { check: SpikeCheck::default(), periods: 3 })
//!     .build()?;
//! let guard = CostGuard::builder("llm", policy).clock(clock.clone()).build()?;
//!
//! // Three ordinary hours...
//! for spend in [120.0, 125.0, 118.0] {
//!     guard.try_acquire()?.record_cost(spend);
//!     clock.advance(hour);
//! }
//! // ...then 260 in one hour: above 1.5 x 121, a spike.
//! guard.try_acquire()?.record_cost(260.0);
//! let rejected = guard.try_acquire().unwrap_err();
//! assert_eq!(rejected.reason, CostRejectReason::Spike { latest: 260.0, threshold: 181.5 });
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod builder;
mod event;
mod meter;
mod permit;
mod policy;
mod shell;
mod status;
mod ticket;

#[cfg(test)]
mod tests;

pub use builder::CostGuardBuilder;
pub use event::{CostEvent, CostExtractor, CostListener, CostRejected};
pub use meter::CostMeter;
pub use permit::{CostPermit, OwnedCostPermit};
pub use policy::{
    CostBaseline, CostDecision, CostPolicy, CostPolicyBuilder, CostRejectReason, CostWindow,
    UnknownCost,
};
pub use shell::CostGuard;
pub use status::{BaselineReading, CostEventKind, CostEvents, CostStatus};
pub use ticket::{Admitted, CostRefusal, CostTicket, Settled};
