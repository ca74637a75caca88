//! Store outages, simulated by a store that can be switched off: calls never wait, local
//! decisions go on (or every call is rejected under `OutagePolicy::Reject`), and the
//! breaker resyncs with the fleet when the store is back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fusebox_core::breaker::{Breaker, State};
use fusebox_fleet::{
    Cas, Claim, Fleet, FleetChange, FleetMode, FleetView, ForcedState, MemoryStore, Notice,
    OutagePolicy, StateStore, StoreError, StoreFuture, SyncRequest,
};
use tokio::sync::broadcast;

/// A memory store that fails every operation while switched off, and counts syncs.
#[derive(Clone)]
struct Switchable {
    inner: MemoryStore,
    down: Arc<AtomicBool>,
    syncs: Arc<AtomicU64>,
}

impl Switchable {
    fn gate(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("switched off".into()))
        } else {
            Ok(())
        }
    }
}

impl StateStore for Switchable {
    fn sync<'a>(&'a self, request: &'a SyncRequest) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            self.gate()?;
            self.inner.sync(request).await
        })
    }
    fn transition<'a>(
        &'a self,
        breaker: &'a str,
        expected: u64,
        change: FleetChange,
        reason: &'a str,
    ) -> StoreFuture<'a, Cas> {
        Box::pin(async move {
            self.gate()?;
            self.inner
                .transition(breaker, expected, change, reason)
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
            self.gate()?;
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
            self.gate()?;
            self.inner.force(breaker, forced, for_ms).await
        })
    }
    fn view<'a>(&'a self, breaker: &'a str) -> StoreFuture<'a, Option<FleetView>> {
        Box::pin(async move {
            self.gate()?;
            self.inner.view(breaker).await
        })
    }
    fn breakers(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            self.gate()?;
            self.inner.breakers().await
        })
    }
    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.inner.subscribe()
    }
}

fn switchable() -> Switchable {
    Switchable {
        inner: MemoryStore::new(),
        down: Arc::new(AtomicBool::new(false)),
        syncs: Arc::new(AtomicU64::new(0)),
    }
}

async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

fn fleet(store: &Switchable, id: &str, policy: OutagePolicy) -> Fleet {
    Fleet::builder(store.clone())
        .instance_id(id)
        .sync_interval(Duration::from_millis(20))
        .outage(policy)
        .build()
        .expect("fleet")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_decisions_go_on_while_the_store_is_down() {
    let store = switchable();
    let b = fleet(&store, "a", OutagePolicy::Local)
        .breaker(
            Breaker::builder("dep")
                .consecutive_failures(3)
                .cooldown(Duration::from_millis(100)),
            FleetMode::Any,
        )
        .expect("breaker");
    tokio::time::sleep(Duration::from_millis(60)).await;
    store.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(60)).await;

    // Calls flow and the breaker still trips, waits, probes and closes on its own.
    for _ in 0..3 {
        b.try_acquire().expect("closed").failure();
    }
    assert_eq!(b.state(), State::Open);
    assert!(
        wait_until(Duration::from_secs(2), || {
            if let Ok(p) = b.try_acquire() {
                p.success();
            }
            b.state() == State::Closed
        })
        .await,
        "a local half-open episode closes the breaker while the store is down"
    );
    // Reconnection is attempted with backoff, not at every interval.
    let before = store.syncs.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attempts = store.syncs.load(Ordering::SeqCst) - before;
    assert!(
        attempts < 15,
        "{attempts} attempts in 500 ms at a 20 ms interval"
    );

    // Back: the breaker reports to the store again and follows the fleet.
    store.down.store(false, Ordering::SeqCst);
    store
        .inner
        .force("dep", Some(ForcedState::Open), None)
        .await
        .expect("force");
    assert!(
        wait_until(Duration::from_secs(10), || b.state() == State::ForcedOpen).await,
        "the breaker resyncs with the store's forced state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_policy_fails_closed_until_the_store_is_back() {
    let store = switchable();
    let b = fleet(&store, "a", OutagePolicy::Reject)
        .breaker(Breaker::builder("dep"), FleetMode::Pooled)
        .expect("breaker");
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(b.try_acquire().is_ok());
    store.down.store(true, Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(2), || b.try_acquire().is_err()).await,
        "calls are rejected while the store is unreachable"
    );
    assert_eq!(b.state(), State::ForcedOpen);
    store.down.store(false, Ordering::SeqCst);
    assert!(
        wait_until(Duration::from_secs(10), || b.try_acquire().is_ok()).await,
        "calls flow again once the store is back"
    );
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_task_ends_with_the_breaker() {
    let store = switchable();
    let b = fleet(&store, "a", OutagePolicy::Local)
        .breaker(Breaker::builder("dep"), FleetMode::Pooled)
        .expect("breaker");
    tokio::time::sleep(Duration::from_millis(60)).await;
    drop(b);
    tokio::time::sleep(Duration::from_millis(60)).await;
    let after_drop = store.syncs.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.syncs.load(Ordering::SeqCst), after_drop);
}
