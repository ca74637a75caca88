//! The circuit breaker.
//!
//! Three concerns live in three places:
//! * **classification** ([`Classifier`](crate::Classifier)): what a result means: success,
//!   failure, or ignored; plus the slow-call threshold for durations;
//! * **transition policy** (trip rules over a [window](WindowKind), the half-open
//!   [close rule](CloseRule), the [cooldown](Cooldown)): how outcomes move the state; pure
//!   functions shared by the sans-IO [`Machine`], the [`decide`] function and the concurrent
//!   [`Breaker`];
//! * **admission** ([`Breaker::try_acquire`], [`Permit`]): whether the state admits a call now,
//!   including external triggers ([`Breaker::trip`], [`Breaker::force_open`],
//!   [`Breaker::disable`], [`Breaker::reset`]).
//!
//! ```text
//!            trip rule fires                cooldown elapsed (lazily, on the next call)
//!   CLOSED ───────────────────▶ OPEN ───────────────────────────────▶ HALF_OPEN
//!     ▲                          ▲                                      │   │
//!     │                          └──── a trial failure makes the ───────┘   │
//!     │                                close rule unreachable               │
//!     └──────────────────── close rule met ("5 of 5 trials") ───────────────┘
//! ```

pub mod algorithm;
mod builder;
mod config;
mod decide;
mod follow;
mod gate;
mod handle;
pub mod link;
mod listener;
mod machine;
mod name;
mod permit;
mod reconfigure;
mod rejected;
mod shared;
mod stats;
mod window;
mod word;

#[cfg(all(test, loom))]
mod loom_tests;

pub use builder::BreakerBuilder;
pub use config::{BreakerConfig, BreakerSettings, CloseRule, Cooldown, WindowKind};
pub use decide::{Counters, Decision, decide};
pub use follow::WeakBreaker;
pub use handle::Breaker;
pub use link::{FleetLink, Totals};
pub use listener::BreakerListener;
pub use machine::{Machine, Ticket};
pub use name::Name;
pub use permit::{OwnedPermit, Permit};
pub use reconfigure::Reconfigured;
pub use rejected::Rejected;
pub(crate) use rejected::RetryHint;
pub use stats::{
    LoggedOutcome, OutcomeEntry, OutcomeEvent, Snapshot, State, Transition, TransitionReason,
    TripReason, WindowStats,
};
