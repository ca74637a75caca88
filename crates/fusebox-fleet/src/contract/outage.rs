//! Contract cases where the store goes away under the fleet and comes back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;

use super::{Harness, namespace, one_fleet_at_a_time, wait_until};
use crate::{
    Cas, Claim, Fleet, FleetChange, FleetMode, FleetState, FleetView, ForcedState, Notice,
    OutagePolicy, StateStore, StoreError, StoreFuture, SyncRequest,
};
use fusebox_core::breaker::{Breaker, State};

/// A store handle whose connection can be cut: while cut, every operation fails as an
/// unreachable store does, and every sync attempt is counted. Clones, and handles made with
/// [`sharing_switch`](Self::sharing_switch), share one switch and one count, so a test can
/// cut a whole fleet off while its operator keeps a plain handle on the store.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use fusebox_fleet::contract::Severable;
/// use fusebox_fleet::{MemoryStore, StateStore};
/// let store = Severable::new(MemoryStore::new());
/// assert!(store.breakers().await.is_ok());
/// store.set_cut(true);
/// assert!(store.breakers().await.unwrap_err().is_unavailable());
/// # });
/// ```
#[derive(Clone)]
pub struct Severable {
    inner: Arc<dyn StateStore>,
    cut: Arc<AtomicBool>,
    syncs: Arc<AtomicU64>,
}

impl std::fmt::Debug for Severable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Severable")
            .field("cut", &self.is_cut())
            .field("syncs", &self.syncs())
            .finish_non_exhaustive()
    }
}

impl Severable {
    /// A handle on `inner`, connected.
    ///
    /// ```
    /// use fusebox_fleet::{contract::Severable, MemoryStore};
    /// assert!(!Severable::new(MemoryStore::new()).is_cut());
    /// ```
    pub fn new(inner: impl StateStore) -> Self {
        Severable {
            inner: Arc::new(inner),
            cut: Arc::new(AtomicBool::new(false)),
            syncs: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A handle on `inner` behind this handle's switch and count.
    ///
    /// ```
    /// use fusebox_fleet::{contract::Severable, MemoryStore};
    /// let a = Severable::new(MemoryStore::new());
    /// let b = a.sharing_switch(MemoryStore::new());
    /// a.set_cut(true);
    /// assert!(b.is_cut());
    /// ```
    pub fn sharing_switch(&self, inner: impl StateStore) -> Self {
        Severable {
            inner: Arc::new(inner),
            cut: Arc::clone(&self.cut),
            syncs: Arc::clone(&self.syncs),
        }
    }

    /// Cuts (`true`) or restores (`false`) the connection.
    ///
    /// ```
    /// use fusebox_fleet::{contract::Severable, MemoryStore};
    /// let s = Severable::new(MemoryStore::new());
    /// s.set_cut(true);
    /// assert!(s.is_cut());
    /// ```
    pub fn set_cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }

    /// Whether the connection is cut.
    ///
    /// ```
    /// use fusebox_fleet::{contract::Severable, MemoryStore};
    /// assert!(!Severable::new(MemoryStore::new()).is_cut());
    /// ```
    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// Sync attempts made through this switch so far, cut or not.
    ///
    /// ```
    /// use fusebox_fleet::{contract::Severable, MemoryStore};
    /// assert_eq!(Severable::new(MemoryStore::new()).syncs(), 0);
    /// ```
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.is_cut() {
            Err(StoreError::Unavailable("connection cut by the test".into()))
        } else {
            Ok(())
        }
    }
}

impl StateStore for Severable {
    fn sync<'a>(&'a self, request: &'a SyncRequest) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            self.check()?;
            self.inner.sync(request).await
        })
    }
    fn transition<'a>(
        &'a self,
        breaker: &'a str,
        expected_generation: u64,
        change: FleetChange,
        reason: &'a str,
    ) -> StoreFuture<'a, Cas> {
        Box::pin(async move {
            self.check()?;
            self.inner
                .transition(breaker, expected_generation, change, reason)
                .await
        })
    }
    fn claim_trials<'a>(
        &'a self,
        breaker: &'a str,
        instance: &'a str,
        want: u32,
        permitted: u32,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            self.check()?;
            self.inner
                .claim_trials(breaker, instance, want, permitted)
                .await
        })
    }
    fn force<'a>(
        &'a self,
        breaker: &'a str,
        forced: Option<ForcedState>,
        for_ms: Option<u64>,
    ) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            self.check()?;
            self.inner.force(breaker, forced, for_ms).await
        })
    }
    fn view<'a>(&'a self, breaker: &'a str) -> StoreFuture<'a, Option<FleetView>> {
        Box::pin(async move {
            self.check()?;
            self.inner.view(breaker).await
        })
    }
    fn breakers(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            self.check()?;
            self.inner.breakers().await
        })
    }
    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.inner.subscribe()
    }
}

/// Three instances of breaker "dep" behind one switch, with the given outage policy.
async fn severable_fleet(h: &Harness, ns: &str, outage: OutagePolicy) -> (Vec<Breaker>, Severable) {
    let switch = Severable::new(h.store(ns).await);
    let mut fleet = Vec::new();
    for i in 0..3 {
        let instance = Fleet::builder(switch.sharing_switch(h.store(ns).await))
            .instance_id(format!("i{i}"))
            .sync_interval(h.sync_interval)
            .outage(outage)
            .build()
            .expect("valid fleet settings");
        let breaker = instance
            .breaker(
                Breaker::builder("dep").consecutive_failures(5),
                FleetMode::Pooled,
            )
            .expect("fleet breaker");
        fleet.push(breaker);
    }
    let admin = h.store(ns).await;
    wait_until(h.sync_interval * 20, || async {
        let view = admin.view("dep").await.ok().flatten();
        view.is_some_and(|v| v.live_instances() == 3)
    })
    .await
    .expect("every instance registers within 20 sync intervals");
    (fleet, switch)
}

async fn all_reach(h: &Harness, fleet: &[Breaker], state: State, what: &str) {
    // Reconnection backs off (up to 5 s between attempts), so allow for one full backoff.
    let reached = wait_until(h.sync_interval * 20 + Duration::from_secs(6), || async {
        fleet.iter().all(|b| b.state() == state)
    })
    .await;
    let states: Vec<State> = fleet.iter().map(Breaker::state).collect();
    assert!(reached.is_some(), "{what}: instances are {states:?}");
}

/// A forced state that ends, or is reset, while the instances cannot reach the store is
/// followed once they can: the store's word wins after every resync, and a state the fleet
/// forced is never mistaken for one set by hand in the process.
pub async fn forced_state_lifted_during_an_outage(h: &Harness) {
    let _serial = one_fleet_at_a_time().await;
    let ns = namespace("forced-outage");
    let (fleet, cut) = severable_fleet(h, &ns, OutagePolicy::Local).await;
    let admin = h.store(&ns).await;

    // 1. A timed force ends during the outage.
    let span = h.sync_interval * 4;
    let for_ms = u64::try_from(span.as_millis()).expect("small");
    admin
        .force("dep", Some(ForcedState::Open), Some(for_ms))
        .await
        .expect("force");
    all_reach(h, &fleet, State::ForcedOpen, "the kill-switch").await;
    cut.set_cut(true);
    let ended = wait_until(span * 10, || async {
        let view = admin.view("dep").await.ok().flatten();
        view.is_some_and(|v| v.record.forced.is_none())
    })
    .await;
    assert!(ended.is_some(), "the timed force did not end in the store");
    tokio::time::sleep(h.sync_interval * 2).await;
    assert!(
        fleet.iter().all(|b| b.state() == State::ForcedOpen),
        "cut off, instances keep the last forced state they saw"
    );
    cut.set_cut(false);
    all_reach(h, &fleet, State::Closed, "after a force ended in an outage").await;
    for b in &fleet {
        assert!(b.try_acquire().is_ok(), "a closed instance admits calls");
    }

    // 2. An operator resets during the outage.
    admin
        .force("dep", Some(ForcedState::Open), None)
        .await
        .expect("force");
    all_reach(h, &fleet, State::ForcedOpen, "the kill-switch again").await;
    cut.set_cut(true);
    admin.force("dep", None, None).await.expect("reset");
    tokio::time::sleep(h.sync_interval * 3).await;
    cut.set_cut(false);
    all_reach(h, &fleet, State::Closed, "after a reset in an outage").await;

    // 3. The operator's force changes during the outage.
    admin
        .force("dep", Some(ForcedState::Open), None)
        .await
        .expect("force");
    all_reach(h, &fleet, State::ForcedOpen, "forced open").await;
    cut.set_cut(true);
    admin
        .force("dep", Some(ForcedState::Closed), None)
        .await
        .expect("force closed");
    tokio::time::sleep(h.sync_interval * 3).await;
    cut.set_cut(false);
    all_reach(
        h,
        &fleet,
        State::Disabled,
        "after a change of force in an outage",
    )
    .await;
    admin.force("dep", None, None).await.expect("reset");
    all_reach(h, &fleet, State::Closed, "after the last reset").await;
}

/// With the fail-closed outage policy, an instance rejects while cut off, and on return
/// follows the store's forced state, not its own outage state.
pub async fn fail_closed_outage_gives_way_to_the_store(h: &Harness) {
    let _serial = one_fleet_at_a_time().await;
    let ns = namespace("reject-outage");
    let (fleet, cut) = severable_fleet(h, &ns, OutagePolicy::Reject).await;
    let admin = h.store(&ns).await;
    admin
        .force("dep", Some(ForcedState::Closed), None)
        .await
        .expect("force closed");
    all_reach(h, &fleet, State::Disabled, "forced closed").await;
    cut.set_cut(true);
    all_reach(h, &fleet, State::ForcedOpen, "failing closed while cut off").await;
    cut.set_cut(false);
    all_reach(
        h,
        &fleet,
        State::Disabled,
        "the store's force after the outage",
    )
    .await;
    admin.force("dep", None, None).await.expect("reset");
    all_reach(h, &fleet, State::Closed, "reset").await;
    cut.set_cut(true);
    all_reach(h, &fleet, State::ForcedOpen, "failing closed again").await;
    cut.set_cut(false);
    all_reach(
        h,
        &fleet,
        State::Closed,
        "no force: closed after the outage",
    )
    .await;
}

/// With the fail-open outage policy, an instance admits every call while cut off, trips on
/// nothing, and flushes what it measured once back; a kill-switch it applied before holds.
pub async fn fail_open_outage_admits_and_resyncs(h: &Harness) {
    let _serial = one_fleet_at_a_time().await;
    let ns = namespace("admit-outage");
    let (fleet, cut) = severable_fleet(h, &ns, OutagePolicy::Admit).await;
    let admin = h.store(&ns).await;
    cut.set_cut(true);
    all_reach(h, &fleet, State::Disabled, "failing open while cut off").await;
    for _ in 0..8 {
        fleet[0]
            .try_acquire()
            .expect("failing open admits every call")
            .failure();
    }
    assert_eq!(
        fleet[0].state(),
        State::Disabled,
        "nothing trips failing open"
    );
    cut.set_cut(false);
    let flushed = wait_until(h.sync_interval * 20, || async {
        let view = admin.view("dep").await.ok().flatten();
        view.is_some_and(|v| v.totals().failures == 8)
    })
    .await;
    assert!(
        flushed.is_some(),
        "the outcomes measured failing open did not reach the store"
    );
    // Whether the flushed failures trip the pooled fleet depends on whether a peer looked
    // at the totals before the flush (a first look after an outage only takes note), so
    // either word is right; what must hold is that every instance drops its outage state
    // and follows the store's.
    let follows = wait_until(h.sync_interval * 20 + Duration::from_secs(6), || async {
        let Some(view) = admin.view("dep").await.ok().flatten() else {
            return false;
        };
        let fleet_word = match view.record.state {
            FleetState::Closed => State::Closed,
            FleetState::Open => State::Open,
            FleetState::HalfOpen => State::HalfOpen,
        };
        fleet.iter().all(|b| b.state() == fleet_word)
    })
    .await;
    let states: Vec<State> = fleet.iter().map(Breaker::state).collect();
    assert!(
        follows.is_some(),
        "no force: after the outage the instances follow the store, but are {states:?}"
    );

    admin
        .force("dep", Some(ForcedState::Open), None)
        .await
        .expect("force");
    all_reach(h, &fleet, State::ForcedOpen, "the kill-switch").await;
    cut.set_cut(true);
    tokio::time::sleep(h.sync_interval * 5).await;
    for b in &fleet {
        assert_eq!(
            b.state(),
            State::ForcedOpen,
            "failing open lifted the kill-switch"
        );
        assert!(b.try_acquire().is_err());
    }
    cut.set_cut(false);
    admin.force("dep", None, None).await.expect("reset");
    all_reach(h, &fleet, State::Closed, "reset").await;
}

/// An instance back from an outage takes the fleet's newer word: one that followed a fleet
/// OPEN and was cut off while the fleet's trials closed it does not open the fleet again.
pub async fn a_fleet_that_moved_on_outranks_a_returning_instance(h: &Harness) {
    let _serial = one_fleet_at_a_time().await;
    let ns = namespace("moved-on");
    let cooldown = Duration::from_millis(400);
    let breaker = || {
        Breaker::builder("dep")
            .consecutive_failures(2)
            .cooldown(cooldown)
            .half_open_trials(1, 1)
    };
    let a = h
        .fleet(h.store(&ns).await, "a")
        .breaker(breaker(), FleetMode::Any)
        .expect("fleet breaker");
    let cut = Severable::new(h.store(&ns).await);
    let x = h
        .fleet(Arc::new(cut.clone()), "x")
        .breaker(breaker(), FleetMode::Any)
        .expect("fleet breaker");
    let admin = h.store(&ns).await;
    wait_until(h.sync_interval * 20, || async {
        let view = admin.view("dep").await.ok().flatten();
        view.is_some_and(|v| v.live_instances() == 2)
    })
    .await
    .expect("both instances register");

    for _ in 0..2 {
        a.try_acquire().expect("closed").failure();
    }
    wait_until(h.sync_interval * 20, || async { x.state() == State::Open })
        .await
        .expect("x follows the fleet's OPEN");
    cut.set_cut(true);
    // The fleet's trial, made by `a` once the cooldown is over, closes it while x is away.
    wait_until(cooldown * 10 + h.sync_interval * 20, || async {
        if let Ok(p) = a.try_acquire() {
            p.success();
        }
        let view = admin.view("dep").await.ok().flatten();
        view.is_some_and(|v| v.record.state == FleetState::Closed)
    })
    .await
    .expect("the fleet closes on a's trial");
    assert_ne!(
        x.state(),
        State::Closed,
        "x, cut off, still holds the episode"
    );
    cut.set_cut(false);
    // Reconnection backs off (up to 500 ms between attempts).
    wait_until(h.sync_interval * 20 + Duration::from_secs(1), || async {
        x.state() == State::Closed
    })
    .await
    .expect("x takes the fleet's newer word");
    tokio::time::sleep(h.sync_interval * 3).await; // a late reopening would show now
    let view = admin.view("dep").await.expect("view").expect("record");
    assert_eq!(
        (view.record.state, view.record.opens),
        (FleetState::Closed, 1),
        "the returning instance opened the fleet again"
    );
}
