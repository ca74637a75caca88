//! Store outages, simulated by a store that can be switched off: calls never wait, local
//! decisions go on (or every call is rejected under `OutagePolicy::Reject`), and the
//! breaker resyncs with the fleet when the store is back.

use std::time::{Duration, Instant};

use fusebox_core::breaker::{Breaker, State};
use fusebox_fleet::contract::Severable;
use fusebox_fleet::{Fleet, FleetMode, ForcedState, MemoryStore, OutagePolicy, StateStore};

fn switchable() -> Severable {
    Severable::new(MemoryStore::new())
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

fn fleet(store: &Severable, id: &str, policy: OutagePolicy) -> Fleet {
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
    store.set_cut(true);
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
    let before = store.syncs();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attempts = store.syncs() - before;
    assert!(
        attempts < 15,
        "{attempts} attempts in 500 ms at a 20 ms interval"
    );

    // Back: the breaker reports to the store again and follows the fleet.
    store.set_cut(false);
    store
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
    store.set_cut(true);
    assert!(
        wait_until(Duration::from_secs(2), || b.try_acquire().is_err()).await,
        "calls are rejected while the store is unreachable"
    );
    assert_eq!(b.state(), State::ForcedOpen);
    store.set_cut(false);
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
    let after_drop = store.syncs();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(store.syncs(), after_drop);
}
