//! The storage contract every fleet store implements, and the data it exchanges.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::broadcast;

/// The future a store operation returns: boxed, because stores are used as
/// `Arc<dyn StateStore>` and no store call is on a caller's hot path.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Why a store operation failed.
///
/// ```
/// use fusebox_fleet::StoreError;
/// let e = StoreError::Unavailable("connection refused".into());
/// assert!(e.is_unavailable());
/// assert_eq!(e.to_string(), "store unavailable: connection refused");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or did not answer in time.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered, but its schema or scripts are missing (run the setup first).
    #[error("store not set up: {0}")]
    NotSetUp(String),
    /// The store answered with something this version cannot read.
    #[error("store protocol error: {0}")]
    Protocol(String),
    /// The request itself was invalid (an empty breaker name, say).
    #[error("invalid store request: {0}")]
    Invalid(String),
}

impl StoreError {
    /// True for errors that a retry after a reconnect may cure.
    ///
    /// ```
    /// use fusebox_fleet::StoreError;
    /// assert!(!StoreError::Protocol("bad reply".into()).is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// The longest span, in milliseconds, that a value written to a store may cover: a forced
/// state's duration, an open cooldown, a lease. Ten years, far inside what every store's
/// arithmetic holds (Lua's exact integers below 2^53, PostgreSQL's `bigint` and its
/// timestamps, calendar dates before year 10000), so no store ever writes an overflowed time.
///
/// ```
/// use fusebox_fleet::MAX_STORE_SPAN_MS;
/// assert_eq!(MAX_STORE_SPAN_MS, 10 * 365 * 24 * 60 * 60 * 1000);
/// ```
pub const MAX_STORE_SPAN_MS: u64 = 10 * 365 * 24 * 60 * 60 * 1000;

/// Checks a forced state's duration before any store writes it: `None` (until reset) or
/// 1 ms to [`MAX_STORE_SPAN_MS`]. Every store calls it first, so they all refuse the same
/// values with the same words: a zero duration would mean "forever" to one store and
/// "already over" to another.
///
/// ```
/// use fusebox_fleet::{check_force_ms, MAX_STORE_SPAN_MS};
/// assert!(check_force_ms(None).is_ok());
/// assert!(check_force_ms(Some(1)).is_ok());
/// assert!(check_force_ms(Some(0)).is_err());
/// assert!(check_force_ms(Some(MAX_STORE_SPAN_MS + 1)).is_err());
/// ```
pub fn check_force_ms(for_ms: Option<u64>) -> Result<(), StoreError> {
    match for_ms {
        Some(ms) => check_span_ms("a forced state's duration", ms),
        None => Ok(()),
    }
}

/// Checks any span a store is asked to write (a lease's time to live, an open cooldown, a
/// forced state's duration): 1 ms to [`MAX_STORE_SPAN_MS`], named by `what` in the error.
///
/// ```
/// use fusebox_fleet::check_span_ms;
/// assert!(check_span_ms("lease_ttl_ms", 500).is_ok());
/// let e = check_span_ms("cooldown_ms", u64::MAX).unwrap_err();
/// assert!(e.to_string().contains("cooldown_ms"));
/// ```
pub fn check_span_ms(what: &str, ms: u64) -> Result<(), StoreError> {
    match ms {
        0 => Err(StoreError::Invalid(format!("{what} must be at least 1ms"))),
        ms if ms > MAX_STORE_SPAN_MS => Err(StoreError::Invalid(format!(
            "{what} must be at most {} days, got {} days",
            MAX_STORE_SPAN_MS / 86_400_000,
            ms / 86_400_000
        ))),
        _ => Ok(()),
    }
}

/// A forced state's duration in whole milliseconds, as stores take it: refused below 1 ms
/// or above [`MAX_STORE_SPAN_MS`], and rounded up to the next millisecond otherwise, so a
/// force never ends sooner than asked.
///
/// ```
/// use fusebox_fleet::force_millis;
/// use std::time::Duration;
/// assert_eq!(force_millis(Duration::from_micros(1_500)).unwrap(), 2);
/// assert_eq!(force_millis(Duration::from_secs(90)).unwrap(), 90_000);
/// assert!(force_millis(Duration::from_micros(500)).is_err());
/// assert!(force_millis(Duration::from_secs(u64::MAX)).is_err());
/// ```
pub fn force_millis(duration: std::time::Duration) -> Result<u64, StoreError> {
    if duration < std::time::Duration::from_millis(1) {
        return Err(StoreError::Invalid(format!(
            "a forced state's duration must be at least 1ms, got {duration:?}"
        )));
    }
    let whole = duration.as_millis();
    let ms = if duration.subsec_nanos().is_multiple_of(1_000_000) {
        whole
    } else {
        whole + 1
    };
    let ms = u64::try_from(ms).unwrap_or(u64::MAX);
    check_span_ms("a forced state's duration", ms)?;
    Ok(ms)
}

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
/// * [`view`](StateStore::view) and [`force`](StateStore::force) (operator reads) list
///   every instance the store still knows, and may leave `totals` empty;
/// * [`sync`](StateStore::sync) answers `totals` and, in `instances`, only the flushing
///   instance's own entry (its counts as the store applied them);
///   [`transition`](StateStore::transition) and [`claim_trials`](StateStore::claim_trials)
///   answer `totals` and may leave `instances` empty.
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

    /// Refuses a change no store should write: an open cooldown over [`MAX_STORE_SPAN_MS`].
    /// A zero cooldown is a valid change: open, with trials allowed at once.
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

/// The result of a compare-and-set transition.
///
/// ```
/// use fusebox_fleet::{Cas, FleetView};
/// let c = Cas { won: false, view: FleetView::default() };
/// assert!(!c.won);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cas {
    /// True when this request made the transition; false when the generation had moved.
    pub won: bool,
    /// The record after the attempt (the winner's state when lost).
    pub view: FleetView,
}

/// The result of a trial claim.
///
/// ```
/// use fusebox_fleet::{Claim, FleetView};
/// let c = Claim { granted: 2, view: FleetView::default() };
/// assert_eq!(c.granted, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Trial slots granted to the instance by this claim.
    pub granted: u32,
    /// The record after the claim (a claim may start the half-open episode).
    pub view: FleetView,
}

/// A change announced to every subscriber: a breaker's record moved to `generation`.
///
/// ```
/// use fusebox_fleet::Notice;
/// let n = Notice { breaker: "payments".into(), generation: 3 };
/// assert_eq!(n.breaker, "payments");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// The breaker whose record changed.
    pub breaker: String,
    /// Its generation after the change.
    pub generation: u64,
}

/// Storage for fleet-wide breakers: memory, Redis, PostgreSQL, or your own.
///
/// Every method is one atomic operation on the store, made by a background sync task and
/// never by a call being protected. Implementations must keep these promises, which the
/// contract suite in [`contract`](crate::contract) checks:
///
/// * [`sync`](Self::sync) renews the instance's lease, records its verdict, and adds its
///   deltas only when `seq` is greater than the last applied for the instance; a new
///   `incarnation` (a restart under the same id) starts the sequence again and frees the
///   trial slots of the previous one; trial deltas count only for the current half-open
///   generation;
/// * [`transition`](Self::transition) happens only when the generation still equals
///   `expected_generation`, bumps it, and announces it;
/// * [`claim_trials`](Self::claim_trials) starts the half-open episode once an OPEN record's
///   cooldown is over, and never grants more slots than `permitted` minus the slots held by
///   live instances;
/// * a forced state past its end reads as no forced state;
/// * all times come from the store's clock.
///
/// ```
/// use fusebox_fleet::{MemoryStore, StateStore, SyncRequest};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let req = SyncRequest { breaker: "db".into(), instance: "a".into(), lease_ttl_ms: 300,
///     seq: 1, ..Default::default() };
/// let view = store.sync(&req).await?;
/// assert_eq!(view.live_instances(), 1);
/// # Ok::<(), fusebox_fleet::StoreError>(())
/// # }).unwrap();
/// ```
pub trait StateStore: Send + Sync + 'static {
    /// Prepares the store (loads scripts, checks tables). Called once before use; the
    /// default does nothing.
    ///
    /// ```
    /// use fusebox_fleet::{MemoryStore, StateStore};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// MemoryStore::new().prepare().await.unwrap();
    /// # });
    /// ```
    fn prepare(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    /// Flushes one instance's deltas and verdict, renews its lease, and reads the view.
    fn sync<'a>(&'a self, request: &'a SyncRequest) -> StoreFuture<'a, FleetView>;

    /// Moves the record to `change` if its generation is still `expected_generation`.
    /// `reason` is kept beside the record for operators.
    fn transition<'a>(
        &'a self,
        breaker: &'a str,
        expected_generation: u64,
        change: FleetChange,
        reason: &'a str,
    ) -> StoreFuture<'a, Cas>;

    /// Claims up to `want` of the `permitted` trial slots of the current half-open episode
    /// for `instance`, starting the episode if the record is OPEN and its cooldown is over.
    fn claim_trials<'a>(
        &'a self,
        breaker: &'a str,
        instance: &'a str,
        want: u32,
        permitted: u32,
    ) -> StoreFuture<'a, Claim>;

    /// Sets or clears the forced state, for `for_ms` or until cleared. Clearing also closes
    /// the record with fresh counters (a fleet-wide reset).
    fn force<'a>(
        &'a self,
        breaker: &'a str,
        forced: Option<ForcedState>,
        for_ms: Option<u64>,
    ) -> StoreFuture<'a, FleetView>;

    /// Reads one breaker's view without flushing anything; `None` when the store has never
    /// seen it.
    fn view<'a>(&'a self, breaker: &'a str) -> StoreFuture<'a, Option<FleetView>>;

    /// Names of every breaker the store holds.
    fn breakers(&self) -> StoreFuture<'_, Vec<String>>;

    /// Announcements of record changes. A store that cannot push them may return a receiver
    /// that never yields; the periodic sync is the backstop.
    fn subscribe(&self) -> broadcast::Receiver<Notice>;
}

impl<S: StateStore + ?Sized> StateStore for Arc<S> {
    fn prepare(&self) -> StoreFuture<'_, ()> {
        (**self).prepare()
    }
    fn sync<'a>(&'a self, request: &'a SyncRequest) -> StoreFuture<'a, FleetView> {
        (**self).sync(request)
    }
    fn transition<'a>(
        &'a self,
        breaker: &'a str,
        expected_generation: u64,
        change: FleetChange,
        reason: &'a str,
    ) -> StoreFuture<'a, Cas> {
        (**self).transition(breaker, expected_generation, change, reason)
    }
    fn claim_trials<'a>(
        &'a self,
        breaker: &'a str,
        instance: &'a str,
        want: u32,
        permitted: u32,
    ) -> StoreFuture<'a, Claim> {
        (**self).claim_trials(breaker, instance, want, permitted)
    }
    fn force<'a>(
        &'a self,
        breaker: &'a str,
        forced: Option<ForcedState>,
        for_ms: Option<u64>,
    ) -> StoreFuture<'a, FleetView> {
        (**self).force(breaker, forced, for_ms)
    }
    fn view<'a>(&'a self, breaker: &'a str) -> StoreFuture<'a, Option<FleetView>> {
        (**self).view(breaker)
    }
    fn breakers(&self) -> StoreFuture<'_, Vec<String>> {
        (**self).breakers()
    }
    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        (**self).subscribe()
    }
}
