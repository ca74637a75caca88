//! The contract suite every [`StateStore`] must pass, written once and run on the memory,
//! Redis and PostgreSQL stores (feature `contract`).
//!
//! A store crate runs it from its tests with [`store_contract_tests!`](crate::store_contract_tests),
//! giving a [`Harness`] that opens a handle on an isolated namespace (a key prefix, a
//! schema). Every case opens its own namespace, so cases run in parallel.
//!
//! The suite checks the store alone (sequence numbers, compare-and-set, leases, trial
//! claims, forced states, notices) and the fleet built on it (pooled and quorum modes,
//! fleet-wide trials, simultaneous trips, the kill-switch). Fleet cases run in real time
//! with a short sync interval and wait on conditions, never on fixed sleeps.
//!
//! ```
//! use fusebox_fleet::MemoryStore;
//! use fusebox_fleet::contract::Harness;
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//!
//! // One store per namespace; every handle on a namespace sees the same store.
//! let stores: Arc<Mutex<HashMap<String, MemoryStore>>> = Arc::default();
//! let harness = Harness::new(move |namespace: &str| {
//!     let store = stores.lock().unwrap().entry(namespace.to_owned()).or_default().clone();
//!     Arc::new(store) as Arc<dyn fusebox_fleet::StateStore>
//! });
//! # drop(harness);
//! ```

mod bounds;
mod names;
mod outage;
mod restart;
mod totals;

pub use bounds::{shortest_force_ends, spans_are_range_checked};
pub use names::names_are_opaque;
pub use outage::{
    Severable, a_fleet_that_moved_on_outranks_a_returning_instance,
    fail_closed_outage_gives_way_to_the_store, fail_open_outage_admits_and_resyncs,
    forced_state_lifted_during_an_outage,
};
pub use restart::{
    an_instance_restarted_under_its_id_is_counted, incarnations_start_a_new_sequence,
};
pub use totals::{expired_instances_leave_the_totals, totals_match_the_instances};

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{
    Fleet, FleetChange, FleetMode, FleetState, ForcedState, OutcomeDelta, StateStore, SyncRequest,
};
use fusebox_core::breaker::{Breaker, BreakerBuilder, State};

type Open = dyn Fn(&str) -> Arc<dyn StateStore> + Send + Sync;

/// Opens store handles on isolated namespaces for the contract cases.
pub struct Harness {
    open: Box<Open>,
    sync_interval: Duration,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("sync_interval", &self.sync_interval)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// A harness whose `open(namespace)` returns a handle on the store's part named
    /// `namespace`; handles opened with the same namespace must share state.
    ///
    /// ```
    /// use fusebox_fleet::{contract::Harness, MemoryStore, StateStore};
    /// use std::sync::Arc;
    /// let store = MemoryStore::new();
    /// let harness = Harness::new(move |_ns: &str| Arc::new(store.clone()) as Arc<dyn StateStore>);
    /// # drop(harness);
    /// ```
    pub fn new(open: impl Fn(&str) -> Arc<dyn StateStore> + Send + Sync + 'static) -> Self {
        Harness {
            open: Box::new(open),
            sync_interval: Duration::from_millis(100),
        }
    }

    /// The sync interval fleet cases use (default 100 ms).
    ///
    /// ```
    /// use fusebox_fleet::{contract::Harness, MemoryStore, StateStore};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// let h = Harness::new(|_: &str| Arc::new(MemoryStore::new()) as Arc<dyn StateStore>)
    ///     .sync_interval(Duration::from_millis(50));
    /// # drop(h);
    /// ```
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }

    async fn store(&self, namespace: &str) -> Arc<dyn StateStore> {
        let store = (self.open)(namespace);
        if let Err(e) = store.prepare().await {
            panic!("the store could not be prepared: {e}");
        }
        store
    }

    fn fleet(&self, store: Arc<dyn StateStore>, instance: &str) -> Fleet {
        Fleet::builder(store)
            .instance_id(instance)
            .sync_interval(self.sync_interval)
            .build()
            .expect("valid fleet settings")
    }

    async fn instances(
        &self,
        namespace: &str,
        count: usize,
        mode: FleetMode,
        builder: impl Fn() -> BreakerBuilder,
    ) -> Vec<Breaker> {
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let store = self.store(namespace).await;
            let fleet = self.fleet(store, &format!("i{i}"));
            out.push(fleet.breaker(builder(), mode).expect("fleet breaker"));
        }
        // Every instance has flushed once and holds a lease.
        let store = self.store(namespace).await;
        wait_until(self.sync_interval * 20, || async {
            let view = store.view("dep").await.ok().flatten();
            view.is_some_and(|v| v.live_instances() as usize == count)
        })
        .await
        .expect("every instance registers within 20 sync intervals");
        out
    }
}

/// Fleet cases run one at a time in a process: each runs several instances with their sync
/// tasks, and their timing bounds should measure the fleet, not a crowded machine.
async fn one_fleet_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// A namespace no other case or run uses.
fn namespace(case: &str) -> String {
    format!(
        "{case}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Polls `condition` every few milliseconds until it holds; the time it took, or `None`
/// after `timeout`. For store crates' own tests, which wait on conditions the same way.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use fusebox_fleet::contract::wait_until;
/// use std::time::Duration;
/// assert!(wait_until(Duration::from_secs(1), || async { true }).await.is_some());
/// assert!(wait_until(Duration::from_millis(10), || async { false }).await.is_none());
/// # }
/// ```
pub async fn wait_until<F, Fut>(timeout: Duration, mut condition: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if condition().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn request(instance: &str, seq: u64, successes: u64, failures: u64) -> SyncRequest {
    SyncRequest {
        breaker: "dep".into(),
        instance: instance.into(),
        lease_ttl_ms: 10_000,
        seq,
        outcomes: OutcomeDelta {
            successes,
            failures,
            slow: 0,
        },
        mode: "pooled".into(),
        ..Default::default()
    }
}

fn fail(b: &Breaker) {
    if let Ok(permit) = b.try_acquire() {
        permit.failure();
    }
}

fn succeed(b: &Breaker) {
    if let Ok(permit) = b.try_acquire() {
        permit.success();
    }
}

/// A flush resent with the same sequence number is applied once; a newer one adds.
pub async fn sequence_numbers_apply_once(h: &Harness) {
    let store = h.store(&namespace("seq")).await;
    let first = store.sync(&request("a", 1, 5, 2)).await.expect("sync");
    let again = store.sync(&request("a", 1, 5, 2)).await.expect("sync");
    // Counts only: the lease's remaining time moves between the two answers.
    let counts = |v: &super::FleetView| {
        v.instances
            .iter()
            .map(|i| (i.id.clone(), i.successes, i.failures, i.slow, i.seq))
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&first), vec![("a".to_owned(), 5, 2, 0, 1)]);
    assert_eq!(
        counts(&again),
        counts(&first),
        "a resent flush counted twice"
    );
    let next = store.sync(&request("a", 2, 1, 1)).await.expect("sync");
    let a = &next.instances[0];
    assert_eq!((a.successes, a.failures, a.seq), (6, 3, 2));
    let stale = store.sync(&request("a", 1, 100, 100)).await.expect("sync");
    assert_eq!(
        stale.instances[0].successes, 6,
        "an older flush was applied"
    );
}

/// Of many transitions from the same generation, exactly one wins.
pub async fn concurrent_transitions_one_wins(h: &Harness) {
    let ns = namespace("cas");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = h.store(&ns).await;
        tasks.push(tokio::spawn(async move {
            store
                .transition(
                    "dep",
                    0,
                    FleetChange::Open {
                        cooldown_ms: 60_000,
                    },
                    "test",
                )
                .await
                .expect("transition")
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += u32::from(t.await.expect("task").won);
    }
    assert_eq!(won, 1);
    let view = h
        .store(&ns)
        .await
        .view("dep")
        .await
        .expect("view")
        .expect("record");
    assert_eq!(view.record.state, FleetState::Open);
    assert_eq!((view.record.generation, view.record.opens), (1, 1));
    assert!(view.cooldown_remaining_ms() > 50_000);
}

/// An instance whose lease ran out is no longer live; a live one stays.
pub async fn leases_expire(h: &Harness) {
    let store = h.store(&namespace("lease")).await;
    let mut short = request("short", 1, 0, 0);
    short.lease_ttl_ms = 1_000;
    short.local_open = true;
    store.sync(&short).await.expect("sync");
    let view = store.sync(&request("long", 1, 0, 0)).await.expect("sync");
    assert_eq!((view.live_instances(), view.open_votes()), (2, 1));
    let gone = wait_until(Duration::from_secs(5), || async {
        let v = store.view("dep").await.expect("view").expect("record");
        v.live_instances() == 1
    })
    .await;
    assert!(gone.is_some(), "an expired lease still counts");
    let v = store.view("dep").await.expect("view").expect("record");
    assert_eq!(v.open_votes(), 0, "an expired instance still votes");
}

/// Claims never grant more than the permitted slots, and a dead holder's slots come back.
pub async fn trial_claims_are_bounded(h: &Harness) {
    let ns = namespace("claims");
    let store = h.store(&ns).await;
    // Long enough to outlive the claims below on a loaded machine, short enough to wait out.
    let mut holder = request("holder", 1, 0, 0);
    holder.lease_ttl_ms = 1_500;
    store.sync(&holder).await.expect("sync");
    for i in 0..4 {
        store
            .sync(&request(&format!("i{i}"), 1, 0, 0))
            .await
            .expect("sync");
    }
    let cas = store
        .transition("dep", 0, FleetChange::Open { cooldown_ms: 1 }, "test")
        .await
        .expect("transition");
    assert!(cas.won);
    tokio::time::sleep(Duration::from_millis(5)).await; // past the 1 ms cooldown
    let first = store
        .claim_trials("dep", "holder", 2, 2)
        .await
        .expect("claim");
    assert_eq!(first.granted, 2);
    assert_eq!(first.view.record.state, FleetState::HalfOpen);
    let mut tasks = Vec::new();
    for i in 0..4 {
        let store = h.store(&ns).await;
        tasks.push(tokio::spawn(async move {
            let id = format!("i{i}");
            store
                .claim_trials("dep", &id, 2, 2)
                .await
                .expect("claim")
                .granted
        }));
    }
    let mut others = 0;
    for t in tasks {
        others += t.await.expect("task");
    }
    assert_eq!(others, 0, "slots granted beyond the permitted two");
    // The holder stops renewing its lease: its slots are freed.
    let freed = wait_until(Duration::from_secs(5), || async {
        store
            .claim_trials("dep", "i0", 2, 2)
            .await
            .expect("claim")
            .granted
            == 2
    })
    .await;
    assert!(freed.is_some(), "a dead instance kept its trial slots");
    let view = store.view("dep").await.expect("view").expect("record");
    assert_eq!(view.live_claims(), 2);
}

/// Trial outcomes count once, and only for the current half-open episode.
pub async fn trials_count_for_their_episode(h: &Harness) {
    let store = h.store(&namespace("trials")).await;
    store.sync(&request("a", 1, 0, 0)).await.expect("sync");
    store
        .transition("dep", 0, FleetChange::Open { cooldown_ms: 0 }, "test")
        .await
        .expect("transition");
    let claim = store.claim_trials("dep", "a", 3, 3).await.expect("claim");
    let episode = claim.view.record.generation;
    let mut trial = request("a", 2, 0, 0);
    trial.trials.generation = episode;
    trial.trials.successes = 1;
    trial.trials.release = 1;
    let view = store.sync(&trial).await.expect("sync");
    let resent = store.sync(&trial).await.expect("sync");
    assert_eq!(view.record.trial_successes, 1);
    assert_eq!(
        resent.record.trial_successes, 1,
        "a resent trial counted twice"
    );
    assert_eq!(resent.live_claims(), 2, "a released slot is still held");
    let mut stale = request("a", 3, 0, 0);
    stale.trials.generation = episode - 1;
    stale.trials.failures = 5;
    let view = store.sync(&stale).await.expect("sync");
    assert_eq!(
        view.record.trial_failures, 0,
        "a trial of another episode counted"
    );
}

/// A forced state shows in the view, ends by itself when timed, and clearing it resets.
pub async fn forced_states(h: &Harness) {
    let store = h.store(&namespace("forced")).await;
    store.sync(&request("a", 1, 0, 3)).await.expect("sync");
    let view = store
        .force("dep", Some(ForcedState::Open), Some(150))
        .await
        .expect("force");
    assert_eq!(view.record.forced, Some(ForcedState::Open));
    let g = view.record.generation;
    let lifted = wait_until(Duration::from_secs(5), || async {
        let v = store.view("dep").await.expect("view").expect("record");
        v.record.forced.is_none()
    })
    .await;
    assert!(lifted.is_some(), "a timed forced state did not end");
    store
        .transition(
            "dep",
            g,
            FleetChange::Open {
                cooldown_ms: 60_000,
            },
            "test",
        )
        .await
        .expect("transition");
    let view = store
        .force("dep", Some(ForcedState::Closed), None)
        .await
        .expect("force");
    assert_eq!(view.record.forced, Some(ForcedState::Closed));
    assert_eq!(view.record.forced_until_ms, None);
    let reset = store.force("dep", None, None).await.expect("reset");
    assert_eq!(reset.record.forced, None);
    assert_eq!(reset.record.state, FleetState::Closed);
    assert_eq!(reset.record.trips, 0);
    assert!(reset.record.generation > view.record.generation);
    let names = store.breakers().await.expect("breakers");
    assert!(names.iter().any(|n| n == "dep"), "{names:?}");
}

/// Subscribers hear of a transition.
pub async fn notices_announce_transitions(h: &Harness) {
    let ns = namespace("notice");
    let store = h.store(&ns).await;
    let mut notices = store.subscribe();
    // Subscriptions may connect in the background: repeat the announcement until heard.
    let writer = h.store(&ns).await;
    let start = Instant::now();
    let mut heard = false;
    while !heard && start.elapsed() < Duration::from_secs(5) {
        let view = writer.view("dep").await.expect("view");
        let g = view.map_or(0, |v| v.record.generation);
        writer
            .transition("dep", g, FleetChange::Closed, "test")
            .await
            .expect("transition");
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(200), notices.recv()).await
        {
            if n.breaker == "dep" && n.generation > g {
                heard = true;
                break;
            }
        }
    }
    assert!(heard, "no notice of a transition");
}

/// Pooled: outcomes of two instances add up to a trip neither would make alone; both
/// reject within two sync intervals and recover together.
pub async fn pooled_fleet_trips_and_recovers_together(h: &Harness) {
    let _serial = one_fleet_at_a_time().await;
    let ns = namespace("pooled");
    let cooldown = Duration::from_millis(300);
    let fleet = h
        .instances(&ns, 2, FleetMode::Pooled, || {
            Breaker::builder("dep")
                .failures_in_last(6, 10)
                .cooldown(cooldown)
                .half_open_trials(1, 1)
        })
        .await;
    let (a, b) = (&fleet[0], &fleet[1]);
    for _ in 0..4 {
        fail(a);
    }
    // Let `b` hear of `a`'s failures before it adds its own.
    let store = h.store(&ns).await;
    wait_until(h.sync_interval * 20, || async {
        let v = store.view("dep").await.ok().flatten();
        v.is_some_and(|v| v.instances.iter().map(|i| i.failures).sum::<u64>() == 4)
    })
    .await
    .expect("a's failures flushed");
    // `b` takes them into its own window on its next sync.
    wait_until(h.sync_interval * 20, || async {
        b.snapshot().window.failures == 4
    })
    .await
    .expect("b's window holds a's failures");
    assert_eq!(a.state(), State::Closed);
    for _ in 0..3 {
        fail(b);
    }
    let took = wait_until(h.sync_interval * 20, || async {
        a.state() == State::Open && b.state() == State::Open
    })
    .await
    .expect("the pooled window trips both instances");
    assert!(
        took <= h.sync_interval * 2,
        "both open only after {took:?} (sync interval {:?})",
        h.sync_interval
    );
    assert!(a.try_acquire().is_err() && b.try_acquire().is_err());

    // Recovery: one trial for the fleet, then both close.
    wait_until(cooldown * 10, || async {
        if let Ok(p) = a.try_acquire() {
            assert!(p.is_trial());
            p.success();
            return true;
        }
        false
    })
    .await
    .expect("a trial after the cooldown");
    wait_until(h.sync_interval * 20, || async {
        a.state() == State::Closed && b.state() == State::Closed
    })
    .await
    .expect("both close after the fleet's trial");
    let view = store.view("dep").await.expect("view").expect("record");
    assert_eq!(view.record.opens, 1);
}

/// Quorum (3 instances, at least 2): one sick instance opens alone; a second opens all.
pub async fn quorum_opens_only_with_enough_instances(h: &Harness) {
    let _serial = one_fleet_at_a_time().await;
    let ns = namespace("quorum");
    let mode = FleetMode::quorum(2, 0.5).expect("valid quorum");
    let fleet = h
        .instances(&ns, 3, mode, || {
            Breaker::builder("dep")
                .consecutive_failures(3)
                .cooldown(Duration::from_secs(60))
        })
        .await;
    for _ in 0..3 {
        fail(&fleet[0]);
    }
    assert_eq!(fleet[0].state(), State::Open);
    let store = h.store(&ns).await;
    wait_until(h.sync_interval * 20, || async {
        let v = store.view("dep").await.ok().flatten();
        v.is_some_and(|v| v.open_votes() == 1)
    })
    .await
    .expect("the sick instance's verdict is published");
    // Several sync intervals later the other two still serve.
    tokio::time::sleep(h.sync_interval * 3).await;
    assert_eq!(fleet[1].state(), State::Closed);
    assert_eq!(fleet[2].state(), State::Closed);
    succeed(&fleet[1]);
    let view = store.view("dep").await.expect("view").expect("record");
    assert_eq!(view.record.state, FleetState::Closed);
    for _ in 0..3 {
        fail(&fleet[1]);
    }
    wait_until(h.sync_interval * 20, || async {
        fleet.iter().all(|b| b.state() == State::Open)
    })
    .await
    .expect("quorum reached: every instance opens");
    let view = store.view("dep").await.expect("view").expect("record");
    assert_eq!(
        (view.record.state, view.record.opens),
        (FleetState::Open, 1)
    );
}

/// Quorum by fraction: an instance that stops heartbeating drops out of the count.
pub async fn quorum_counts_only_live_instances(h: &Harness) {
    let _serial = one_fleet_at_a_time().await;
    let ns = namespace("quorum-live");
    let mode = FleetMode::quorum(1, 0.5).expect("valid quorum");
    let mut fleet = h
        .instances(&ns, 3, mode, || {
            Breaker::builder("dep")
                .consecutive_failures(2)
                .cooldown(Duration::from_secs(60))
        })
        .await;
    fail(&fleet[0]);
    fail(&fleet[0]);
    tokio::time::sleep(h.sync_interval * 3).await;
    assert_eq!(fleet[1].state(), State::Closed, "1 of 3 is under half");
    // The third instance goes away: its sync task ends and its lease runs out.
    drop(fleet.pop());
    wait_until(h.sync_interval * 30, || async {
        fleet[1].state() == State::Open
    })
    .await
    .expect("1 of 2 live instances is half: the fleet opens");
}

/// Fleet-wide half-open: five instances, two permitted trials, two trial calls in all.
pub async fn fleet_trials_are_bounded(h: &Harness) {
    let _serial = one_fleet_at_a_time().await;
    let ns = namespace("trials-fleet");
    let fleet = h
        .instances(&ns, 5, FleetMode::Any, || {
            Breaker::builder("dep")
                .consecutive_failures(1)
                .cooldown(Duration::from_millis(200))
                .half_open_trials(2, 2)
        })
        .await;
    fail(&fleet[0]);
    wait_until(h.sync_interval * 20, || async {
        fleet.iter().all(|b| b.state() == State::Open)
    })
    .await
    .expect("every instance opens");
    let trials = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for b in fleet.clone() {
        let trials = Arc::clone(&trials);
        tasks.push(tokio::spawn(async move {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(p) = b.try_acquire() {
                    if !p.is_trial() {
                        return; // closed: a normal call
                    }
                    trials.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    p.success();
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            panic!("the fleet never closed");
        }));
    }
    for t in tasks {
        t.await.expect("instance task");
    }
    assert_eq!(
        trials.load(Ordering::SeqCst),
        2,
        "trial calls across the fleet"
    );
}

/// Eight instances tripping at the same moment make one OPEN transition.
pub async fn simultaneous_trips_make_one_open(h: &Harness) {
    let _serial = one_fleet_at_a_time().await;
    let ns = namespace("stampede");
    let fleet = h
        .instances(&ns, 8, FleetMode::Any, || {
            Breaker::builder("dep")
                .consecutive_failures(1)
                .cooldown(Duration::from_secs(60))
        })
        .await;
    let barrier = Arc::new(tokio::sync::Barrier::new(fleet.len()));
    let mut tasks = Vec::new();
    for b in fleet.clone() {
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            fail(&b);
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let store = h.store(&ns).await;
    wait_until(h.sync_interval * 20, || async {
        fleet.iter().all(|b| b.state() == State::Open)
    })
    .await
    .expect("all open");
    tokio::time::sleep(h.sync_interval * 3).await; // any late transition would show now
    let view = store.view("dep").await.expect("view").expect("record");
    assert_eq!((view.record.opens, view.record.transitions), (1, 1));
}

/// The kill-switch: a forced state reaches every instance within one sync interval
/// (plus the time to notice), and lifting it closes them.
pub async fn kill_switch_reaches_every_instance(h: &Harness) {
    let _serial = one_fleet_at_a_time().await;
    let ns = namespace("kill");
    let fleet = h
        .instances(&ns, 2, FleetMode::Pooled, || {
            Breaker::builder("dep").consecutive_failures(5)
        })
        .await;
    let admin = h.store(&ns).await;
    admin
        .force("dep", Some(ForcedState::Open), None)
        .await
        .expect("force");
    let took = wait_until(h.sync_interval * 20, || async {
        fleet.iter().all(|b| b.state() == State::ForcedOpen)
    })
    .await
    .expect("every instance obeys the kill-switch");
    assert!(took <= h.sync_interval * 2, "took {took:?}");
    admin
        .force("dep", Some(ForcedState::Closed), None)
        .await
        .expect("force");
    wait_until(h.sync_interval * 20, || async {
        fleet.iter().all(|b| b.state() == State::Disabled)
    })
    .await
    .expect("forced closed everywhere");
    admin.force("dep", None, None).await.expect("reset");
    wait_until(h.sync_interval * 20, || async {
        fleet.iter().all(|b| b.state() == State::Closed)
    })
    .await
    .expect("reset everywhere");
}

/// Generates one `#[tokio::test]` per contract case, each with a fresh harness from
/// `$harness` (an expression evaluated per test).
///
/// ```ignore
/// fusebox_fleet::store_contract_tests!(my_harness());
/// ```
#[macro_export]
macro_rules! store_contract_tests {
    ($harness:expr) => {
        $crate::store_contract_tests!(@cases $harness;
            sequence_numbers_apply_once,
            concurrent_transitions_one_wins,
            leases_expire,
            trial_claims_are_bounded,
            trials_count_for_their_episode,
            forced_states,
            notices_announce_transitions,
            pooled_fleet_trips_and_recovers_together,
            quorum_opens_only_with_enough_instances,
            quorum_counts_only_live_instances,
            fleet_trials_are_bounded,
            simultaneous_trips_make_one_open,
            kill_switch_reaches_every_instance,
            spans_are_range_checked,
            shortest_force_ends,
            forced_state_lifted_during_an_outage,
            fail_closed_outage_gives_way_to_the_store,
            fail_open_outage_admits_and_resyncs,
            a_fleet_that_moved_on_outranks_a_returning_instance,
            incarnations_start_a_new_sequence,
            an_instance_restarted_under_its_id_is_counted,
            names_are_opaque,
            totals_match_the_instances,
            expired_instances_leave_the_totals
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(harness) = $harness else { return };
                $crate::contract::$case(&harness).await;
            }
        )*
    };
}
