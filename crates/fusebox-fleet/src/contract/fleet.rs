//! Contract cases for the fleet built on a store: pooled and quorum modes, fleet-wide
//! trials, simultaneous trips, and the kill-switch, each run with several instances in
//! real time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::{Harness, fail, namespace, one_fleet_at_a_time, succeed, wait_until};
use crate::{FleetMode, FleetState, ForcedState, StateStore};
use fusebox_core::breaker::{Breaker, State};

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
