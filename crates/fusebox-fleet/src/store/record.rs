//! The data a store holds and answers: the fleet state, the shared record, each
//! instance's share, the fleet-wide sums, and the view built from them.

use std::fmt;

/// The fleet-wide state of one breaker.
///
/// ```
/// use fusebox_fleet::FleetState;
/// assert_eq!(FleetState::HalfOpen.as_str(), "half_open");
/// assert_eq!(FleetState::parse("open"), Some(FleetState::Open));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum FleetState {
    /// Calls flow.
    #[default]
    Closed,
    /// The fleet rejects calls until the cooldown ends.
    Open,
    /// A fleet-wide number of trial calls decides.
    HalfOpen,
}

impl FleetState {
    /// The stable lower-case name stores keep.
    ///
    /// ```
    /// use fusebox_fleet::FleetState;
    /// assert_eq!(FleetState::Closed.as_str(), "closed");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            FleetState::Closed => "closed",
            FleetState::Open => "open",
            FleetState::HalfOpen => "half_open",
        }
    }

    /// Reads a name written by [`as_str`](Self::as_str).
    ///
    /// ```
    /// use fusebox_fleet::FleetState;
    /// assert_eq!(FleetState::parse("half_open"), Some(FleetState::HalfOpen));
    /// assert_eq!(FleetState::parse("ajar"), None);
    /// ```
    pub fn parse(s: &str) -> Option<FleetState> {
        match s {
            "closed" => Some(FleetState::Closed),
            "open" => Some(FleetState::Open),
            "half_open" => Some(FleetState::HalfOpen),
            _ => None,
        }
    }
}

impl fmt::Display for FleetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state an operator imposes on the whole fleet; it wins over every local decision.
///
/// ```
/// use fusebox_fleet::ForcedState;
/// assert_eq!(ForcedState::parse("open"), Some(ForcedState::Open));
/// assert_eq!(ForcedState::Closed.as_str(), "closed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum ForcedState {
    /// Every instance rejects every call (the kill-switch).
    Open,
    /// Every instance admits every call; outcomes are still measured but trip nothing.
    Closed,
}

impl ForcedState {
    /// The stable lower-case name stores keep.
    ///
    /// ```
    /// use fusebox_fleet::ForcedState;
    /// assert_eq!(ForcedState::Open.as_str(), "open");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ForcedState::Open => "open",
            ForcedState::Closed => "closed",
        }
    }

    /// Reads a name written by [`as_str`](Self::as_str).
    ///
    /// ```
    /// use fusebox_fleet::ForcedState;
    /// assert_eq!(ForcedState::parse("closed"), Some(ForcedState::Closed));
    /// assert_eq!(ForcedState::parse(""), None);
    /// ```
    pub fn parse(s: &str) -> Option<ForcedState> {
        match s {
            "open" => Some(ForcedState::Open),
            "closed" => Some(ForcedState::Closed),
            _ => None,
        }
    }
}

/// One breaker's shared record, as a store holds it. Times are milliseconds on the
/// store's own clock, so instances with skewed clocks still agree.
///
/// ```
/// use fusebox_fleet::{BreakerRecord, FleetState};
/// let r = BreakerRecord::default();
/// assert_eq!(r.state, FleetState::Closed);
/// assert_eq!(r.generation, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct BreakerRecord {
    /// Bumped by every fleet transition; transitions are compare-and-set on it.
    pub generation: u64,
    /// The fleet's state.
    pub state: FleetState,
    /// When an OPEN fleet may start trials (store clock, ms).
    pub open_until_ms: u64,
    /// Trips since the fleet last closed (drives a growing cooldown).
    pub trips: u32,
    /// Successful trials counted in the current half-open episode.
    pub trial_successes: u32,
    /// Failed trials counted in the current half-open episode.
    pub trial_failures: u32,
    /// An operator's forced state, if any and not expired.
    pub forced: Option<ForcedState>,
    /// When the forced state ends by itself (store clock, ms); `None` lasts until reset.
    pub forced_until_ms: Option<u64>,
    /// Fleet transitions recorded since the record was created.
    pub transitions: u64,
    /// How many of those transitions opened the fleet.
    pub opens: u64,
    /// When the last transition happened (store clock, ms).
    pub changed_ms: u64,
    /// The fleet mode its instances last declared (`pooled`, `quorum 2 0.5`, `any`).
    pub mode: String,
    /// Why the last transition happened, as its instance wrote it.
    pub reason: String,
}

/// One instance's share of a breaker, as a store holds it.
///
/// ```
/// use fusebox_fleet::InstanceView;
/// let i = InstanceView::default();
/// assert!(!i.live);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct InstanceView {
    /// The instance's id.
    pub id: String,
    /// Whether its lease is current; only live instances count in fleet decisions.
    pub live: bool,
    /// Time left on its lease (ms).
    pub lease_remaining_ms: u64,
    /// Its own verdict: true while its local breaker is open on its own outcomes.
    pub local_open: bool,
    /// Successful calls it has reported, in all.
    pub successes: u64,
    /// Failed calls it has reported, in all.
    pub failures: u64,
    /// Slow calls it has reported, in all.
    pub slow: u64,
    /// The last flush sequence number applied.
    pub seq: u64,
    /// Trial slots it holds in the current half-open episode.
    pub trials_claimed: u32,
}

/// Fleet-wide sums a store keeps as it applies flushes, so that a sync's answer costs the
/// same whatever the number of instances.
///
/// `successes`, `failures` and `slow` add up every delta the store applied for the breaker,
/// from every instance, since its record was created: they only grow (an instance the
/// store forgets keeps its share in them). The live counts are taken at the store's `now`.
///
/// ```
/// use fusebox_fleet::{FleetTotals, FleetView, InstanceView};
/// let v = FleetView {
///     instances: vec![InstanceView { id: "a".into(), successes: 9, ..Default::default() }],
///     totals: Some(FleetTotals { live_instances: 40, open_votes: 3, successes: 900, failures: 100,
///         ..Default::default() }),
///     ..Default::default()
/// };
/// assert_eq!((v.live_instances(), v.open_votes()), (40, 3));
/// assert_eq!(v.failure_rate(), 0.1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FleetTotals {
    /// Instances whose lease is current.
    pub live_instances: u32,
    /// Live instances whose own breaker is open.
    pub open_votes: u32,
    /// Trial slots held by live instances in the current half-open episode.
    pub live_claims: u32,
    /// Successful calls reported by all instances, in all.
    pub successes: u64,
    /// Failed calls reported by all instances, in all.
    pub failures: u64,
    /// Slow calls reported by all instances, in all.
    pub slow: u64,
}

/// What a store answers: the record, the instances, and the store's time.
///
/// Two shapes, so that the hot path does not grow with the fleet:
///
/// * [`view`](crate::StateStore::view) and [`force`](crate::StateStore::force) (operator
///   reads) list every instance the store still knows, and may leave `totals` empty;
/// * [`sync`](crate::StateStore::sync) answers `totals` and, in `instances`, only the
///   flushing instance's own entry (its counts as the store applied them);
///   [`transition`](crate::StateStore::transition) and
///   [`claim_trials`](crate::StateStore::claim_trials) answer `totals` and may leave
///   `instances` empty.
///
/// The helpers ([`live_instances`](Self::live_instances), [`open_votes`](Self::open_votes),
/// [`live_claims`](Self::live_claims), [`failure_rate`](Self::failure_rate)) read `totals`
/// when the store gave them, and count `instances` otherwise.
///
/// ```
/// use fusebox_fleet::{FleetView, InstanceView};
/// let view = FleetView {
///     instances: vec![
///         InstanceView { id: "a".into(), live: true, local_open: true, ..Default::default() },
///         InstanceView { id: "b".into(), live: true, ..Default::default() },
///         InstanceView { id: "c".into(), live: false, local_open: true, ..Default::default() },
///     ],
///     ..Default::default()
/// };
/// assert_eq!(view.live_instances(), 2);
/// assert_eq!(view.open_votes(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct FleetView {
    /// The breaker's name.
    pub name: String,
    /// The store's clock when it answered (ms since the Unix epoch).
    pub now_ms: u64,
    /// The shared record.
    pub record: BreakerRecord,
    /// Instances the store still knows, live or recently expired; in a sync's answer, only
    /// the flushing instance.
    pub instances: Vec<InstanceView>,
    /// Fleet-wide sums kept by the store; `None` when the answer lists every instance
    /// instead.
    pub totals: Option<FleetTotals>,
}

impl FleetView {
    /// Instances whose lease is current.
    ///
    /// ```
    /// use fusebox_fleet::FleetView;
    /// assert_eq!(FleetView::default().live_instances(), 0);
    /// ```
    pub fn live_instances(&self) -> u32 {
        self.totals().live_instances
    }

    /// The fleet-wide sums: the store's when it gave them, or else counted over
    /// `instances`.
    ///
    /// ```
    /// use fusebox_fleet::{FleetView, InstanceView};
    /// let v = FleetView {
    ///     instances: vec![
    ///         InstanceView { live: true, local_open: true, successes: 2, ..Default::default() },
    ///         InstanceView { live: false, failures: 1, trials_claimed: 1, ..Default::default() },
    ///     ],
    ///     ..Default::default()
    /// };
    /// let t = v.totals();
    /// assert_eq!((t.live_instances, t.open_votes, t.live_claims), (1, 1, 0));
    /// assert_eq!((t.successes, t.failures), (2, 1));
    /// ```
    pub fn totals(&self) -> FleetTotals {
        if let Some(totals) = self.totals {
            return totals;
        }
        let mut t = FleetTotals::default();
        for i in &self.instances {
            if i.live {
                t.live_instances = t.live_instances.saturating_add(1);
                t.open_votes = t.open_votes.saturating_add(u32::from(i.local_open));
                t.live_claims = t.live_claims.saturating_add(i.trials_claimed);
            }
            t.successes = t.successes.saturating_add(i.successes);
            t.failures = t.failures.saturating_add(i.failures);
            t.slow = t.slow.saturating_add(i.slow);
        }
        t
    }

    /// Live instances whose own breaker is open.
    ///
    /// ```
    /// use fusebox_fleet::FleetView;
    /// assert_eq!(FleetView::default().open_votes(), 0);
    /// ```
    pub fn open_votes(&self) -> u32 {
        self.totals().open_votes
    }

    /// Trial slots held by live instances in the current half-open episode.
    ///
    /// ```
    /// use fusebox_fleet::FleetView;
    /// assert_eq!(FleetView::default().live_claims(), 0);
    /// ```
    pub fn live_claims(&self) -> u32 {
        self.totals().live_claims
    }

    /// Time left before an OPEN fleet may start trials (ms); zero when not open.
    ///
    /// ```
    /// use fusebox_fleet::{FleetState, FleetView};
    /// let mut v = FleetView::default();
    /// v.now_ms = 1_000;
    /// v.record.state = FleetState::Open;
    /// v.record.open_until_ms = 1_250;
    /// assert_eq!(v.cooldown_remaining_ms(), 250);
    /// ```
    pub fn cooldown_remaining_ms(&self) -> u64 {
        if self.record.state == FleetState::Open {
            self.record.open_until_ms.saturating_sub(self.now_ms)
        } else {
            0
        }
    }

    /// Failure rate over the outcomes all instances reported, in all.
    ///
    /// ```
    /// use fusebox_fleet::{FleetView, InstanceView};
    /// let v = FleetView {
    ///     instances: vec![InstanceView { successes: 3, failures: 1, ..Default::default() }],
    ///     ..Default::default()
    /// };
    /// assert_eq!(v.failure_rate(), 0.25);
    /// ```
    pub fn failure_rate(&self) -> f64 {
        let t = self.totals();
        let (calls, failures) = (t.successes.saturating_add(t.failures), t.failures);
        if calls == 0 {
            0.0
        } else {
            failures as f64 / calls as f64
        }
    }
}
