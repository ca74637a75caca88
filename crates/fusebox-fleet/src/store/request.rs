//! What an instance sends a store: outcome and trial deltas, the periodic sync request,
//! and the transitions it asks for.

use super::{FleetState, StoreError, check_span_ms};

/// Outcome counts an instance flushes.
///
/// ```
/// use fusebox_fleet::OutcomeDelta;
/// let d = OutcomeDelta { successes: 2, failures: 1, slow: 0 };
/// assert!(!d.is_empty());
/// assert!(OutcomeDelta::default().is_empty());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutcomeDelta {
    /// Successful calls.
    pub successes: u64,
    /// Failed calls.
    pub failures: u64,
    /// Slow calls (a subset of the two above).
    pub slow: u64,
}

impl OutcomeDelta {
    /// True when there is nothing to add.
    ///
    /// ```
    /// use fusebox_fleet::OutcomeDelta;
    /// assert!(OutcomeDelta::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.successes == 0 && self.failures == 0 && self.slow == 0
    }
}

/// Trial outcomes and released trial slots an instance flushes for one half-open episode.
///
/// ```
/// use fusebox_fleet::TrialDelta;
/// let t = TrialDelta { generation: 4, successes: 1, failures: 0, release: 1 };
/// assert_eq!(t.generation, 4);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrialDelta {
    /// The fleet generation of the half-open episode the trials belong to; counted only if
    /// it is still the current one.
    pub generation: u64,
    /// Trials that succeeded.
    pub successes: u32,
    /// Trials that failed.
    pub failures: u32,
    /// Claimed trial slots the instance gives back unused.
    pub release: u32,
}

/// One periodic flush: lease renewal, outcome deltas, trials, and the instance's verdict.
///
/// ```
/// use fusebox_fleet::SyncRequest;
/// let r = SyncRequest { breaker: "payments".into(), instance: "a1".into(), lease_ttl_ms: 300,
///     seq: 1, ..Default::default() };
/// assert_eq!(r.seq, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncRequest {
    /// The breaker's name.
    pub breaker: String,
    /// The instance flushing.
    pub instance: String,
    /// How long the instance's lease lasts from now.
    pub lease_ttl_ms: u64,
    /// The run of the instance this flush belongs to: drawn afresh whenever an engine
    /// starts, so an instance restarted under the same id is never taken for a replay of
    /// its previous run. A store seeing a new incarnation for an instance starts its
    /// sequence again and drops the trial slots the previous run held.
    pub incarnation: u64,
    /// Sequence number of this flush within its incarnation; the store applies the deltas
    /// only if it is greater than the last one it applied for this instance and
    /// incarnation, so a retried flush never counts twice.
    pub seq: u64,
    /// Outcomes since the previous flush.
    pub outcomes: OutcomeDelta,
    /// Trials since the previous flush.
    pub trials: TrialDelta,
    /// The instance's own verdict (its local breaker is open on its own outcomes).
    pub local_open: bool,
    /// The fleet mode the instance runs, as text.
    pub mode: String,
}

/// A transition an instance asks the store to make.
///
/// ```
/// use fusebox_fleet::{FleetChange, FleetState};
/// let c = FleetChange::Open { cooldown_ms: 5_000 };
/// assert_eq!(c.target(), FleetState::Open);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetChange {
    /// Open for `cooldown_ms` from the store's now.
    Open {
        /// The cooldown.
        cooldown_ms: u64,
    },
    /// Start a half-open episode.
    HalfOpen,
    /// Close, clearing trips.
    Closed,
}

impl FleetChange {
    /// The state the change leads to.
    ///
    /// ```
    /// use fusebox_fleet::{FleetChange, FleetState};
    /// assert_eq!(FleetChange::Closed.target(), FleetState::Closed);
    /// ```
    pub fn target(self) -> FleetState {
        match self {
            FleetChange::Open { .. } => FleetState::Open,
            FleetChange::HalfOpen => FleetState::HalfOpen,
            FleetChange::Closed => FleetState::Closed,
        }
    }

    /// Refuses a change no store should write: an open cooldown over
    /// [`MAX_STORE_SPAN_MS`](crate::MAX_STORE_SPAN_MS). A zero cooldown is a valid change:
    /// open, with trials allowed at once.
    ///
    /// ```
    /// use fusebox_fleet::FleetChange;
    /// assert!(FleetChange::Open { cooldown_ms: 5_000 }.check().is_ok());
    /// assert!(FleetChange::Open { cooldown_ms: u64::MAX }.check().is_err());
    /// ```
    pub fn check(self) -> Result<(), StoreError> {
        match self {
            FleetChange::Open { cooldown_ms: 0 } => Ok(()),
            FleetChange::Open { cooldown_ms } => check_span_ms("cooldown_ms", cooldown_ms),
            FleetChange::HalfOpen | FleetChange::Closed => Ok(()),
        }
    }
}
