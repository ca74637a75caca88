//! Contract cases for an instance restarted under the same id, as fixed ids and
//! StatefulSet pods are: its new run's flushes are never taken for replays of the old one's.

use std::time::Duration;

use super::{Harness, namespace, one_fleet_at_a_time, request, succeed, wait_until};
use crate::{FleetChange, FleetMode, FleetView};
use fusebox_core::breaker::Breaker;

fn counts(view: &FleetView, id: &str) -> Option<(u64, u64)> {
    view.instances
        .iter()
        .find(|i| i.id == id)
        .map(|i| (i.successes, i.seq))
}

/// A new incarnation starts the sequence again: its first flush counts, a resent one does
/// not, and the trial slots the previous run held are free again.
pub async fn incarnations_start_a_new_sequence(h: &Harness) {
    let store = h.store(&namespace("incarnation")).await;
    let flush = |incarnation: u64, seq: u64, successes: u64| {
        let mut r = request("a", seq, successes, 0);
        r.incarnation = incarnation;
        r
    };
    for seq in 1..=3 {
        store.sync(&flush(7, seq, 2)).await.expect("sync");
    }
    let restarted = store.sync(&flush(8, 1, 5)).await.expect("sync");
    assert_eq!(
        counts(&restarted, "a"),
        Some((11, 1)),
        "the first flush of a restarted instance was not counted"
    );
    let resent = store.sync(&flush(8, 1, 5)).await.expect("sync");
    assert_eq!(
        counts(&resent, "a"),
        Some((11, 1)),
        "a resent flush counted twice"
    );
    let next = store.sync(&flush(8, 2, 1)).await.expect("sync");
    assert_eq!(counts(&next, "a"), Some((12, 2)));

    // Trial slots held by a run that is gone are freed by the next run's first flush.
    store.sync(&request("b", 1, 0, 0)).await.expect("sync");
    let cas = store
        .transition("dep", 0, FleetChange::Open { cooldown_ms: 0 }, "test")
        .await
        .expect("transition");
    assert!(cas.won);
    let claim = store.claim_trials("dep", "a", 2, 2).await.expect("claim");
    assert_eq!(claim.granted, 2);
    let before = store.claim_trials("dep", "b", 2, 2).await.expect("claim");
    assert_eq!(before.granted, 0, "slots granted beyond the permitted two");
    let view = store.sync(&flush(9, 1, 0)).await.expect("sync");
    assert_eq!(
        view.live_claims(),
        0,
        "a dead run's trial slots are still held"
    );
    let after = store.claim_trials("dep", "b", 2, 2).await.expect("claim");
    assert_eq!(after.granted, 2, "the freed slots were not granted");
}

/// A fleet instance stopped and started again under the same id keeps being counted: the
/// outcomes of its second run reach the store on its first flush.
pub async fn an_instance_restarted_under_its_id_is_counted(h: &Harness) {
    let _serial = one_fleet_at_a_time().await;
    let ns = namespace("restart");
    let store = h.store(&ns).await;
    let total = |expected: u64| {
        let store = store.clone();
        async move {
            store
                .view("dep")
                .await
                .ok()
                .flatten()
                .and_then(|v| counts(&v, "fixed-id"))
                .is_some_and(|(successes, _)| successes == expected)
        }
    };
    let ns = &ns;
    let run = |successes: u32| async move {
        let fleet = h.fleet(h.store(ns).await, "fixed-id");
        let breaker = fleet
            .breaker(Breaker::builder("dep"), FleetMode::Pooled)
            .expect("fleet breaker");
        for _ in 0..successes {
            succeed(&breaker);
        }
        breaker
    };
    let first = run(40).await;
    wait_until(h.sync_interval * 20, || total(40))
        .await
        .expect("the first run's outcomes flushed");
    // Several flushes, so the first run's sequence is well past where a new one starts.
    tokio::time::sleep(h.sync_interval * 3).await;
    drop(first);
    let second = run(7).await;
    let counted = wait_until(h.sync_interval * 20, || total(47)).await;
    assert!(
        counted.is_some(),
        "the restarted instance's outcomes were dropped as replays"
    );
    drop(second);
    // Give the dropped engines a turn to notice and stop.
    tokio::time::sleep(Duration::from_millis(1)).await;
}
