//! The storage contract every fleet store implements, and the data it exchanges.
//!
//! The trait and the answers to its writes live here; the errors and span checks
//! (`error`), the stored record and views (`record`) and the requests instances send
//! (`request`) each have a file of their own.

mod error;
mod record;
mod request;

pub use error::{MAX_STORE_SPAN_MS, StoreError, check_force_ms, check_span_ms, force_millis};
pub use record::{BreakerRecord, FleetState, FleetTotals, FleetView, ForcedState, InstanceView};
pub use request::{FleetChange, OutcomeDelta, SyncRequest, TrialDelta};

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::broadcast;

/// The future a store operation returns: boxed, because stores are used as
/// `Arc<dyn StateStore>` and no store call is on a caller's hot path.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

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
