//! Contract cases for the store alone: sequence numbers, compare-and-set transitions,
//! leases, trial claims and their episodes, forced states, and notices.

use std::time::Duration;

use tokio::time::Instant;

use super::{Harness, namespace, request, wait_until};
use crate::{FleetChange, FleetState, ForcedState};

/// A flush resent with the same sequence number is applied once; a newer one adds.
pub async fn sequence_numbers_apply_once(h: &Harness) {
    let store = h.store(&namespace("seq")).await;
    let first = store.sync(&request("a", 1, 5, 2)).await.expect("sync");
    let again = store.sync(&request("a", 1, 5, 2)).await.expect("sync");
    // Counts only: the lease's remaining time moves between the two answers.
    let counts = |v: &crate::FleetView| {
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
