//! An instance cut off from the store and back: what it decided alone gives way to what the
//! fleet decided meanwhile, and each breaker's outage policy holds while it is away. On
//! tokio's paused clock, with the memory store on the same clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox_core::breaker::{Breaker, BreakerBuilder, State};
use fusebox_fleet::contract::Severable;
use fusebox_fleet::{
    Fleet, FleetMode, FleetState, ForcedState, MemoryStore, OutagePolicy, StateStore,
};
use fusebox_policy::TokioClock;

mod support;
use support::succeed_a_trial;

const INTERVAL: Duration = Duration::from_millis(100);

fn store() -> MemoryStore {
    MemoryStore::with_clock(TokioClock::new())
}

fn member(store: impl StateStore, id: &str) -> Fleet {
    Fleet::builder(store)
        .instance_id(id)
        .sync_interval(INTERVAL)
        .store_timeout(Duration::from_millis(200))
        .build()
        .expect("valid fleet settings")
}

fn dep(cooldown: Duration) -> BreakerBuilder {
    named("dep", cooldown)
}

fn named(name: &'static str, cooldown: Duration) -> BreakerBuilder {
    Breaker::builder(name)
        .consecutive_failures(2)
        .cooldown(cooldown)
        .half_open_trials(1, 1)
        .clock(TokioClock::new())
}

fn fail_twice(b: &Breaker) {
    for _ in 0..2 {
        b.try_acquire().expect("admitted").failure();
    }
}

async fn record(store: &MemoryStore, name: &str) -> fusebox_fleet::BreakerRecord {
    store
        .view(name)
        .await
        .expect("view")
        .expect("the breaker's record")
        .record
}

/// Regression: an instance that followed a fleet OPEN, was cut off while the fleet closed,
/// and came back still open (its copy of the cooldown, then a local half-open) opened the
/// fleet a second time for the same episode.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_followed_open_does_not_reopen_a_fleet_that_closed_meanwhile() {
    let store = store();
    let x_link = Severable::new(store.clone());
    let cooldown = Duration::from_secs(1);
    let a = member(store.clone(), "a")
        .breaker(dep(cooldown), FleetMode::Any)
        .unwrap();
    let x = member(x_link.clone(), "x")
        .breaker(dep(cooldown), FleetMode::Any)
        .unwrap();
    tokio::time::sleep(INTERVAL * 3).await;

    fail_twice(&a);
    tokio::time::sleep(INTERVAL * 2).await;
    assert_eq!(x.state(), State::Open, "x follows the fleet's OPEN");
    x_link.set_cut(true);
    tokio::time::sleep(cooldown + INTERVAL * 2).await;
    // The fleet's trial, made by `a`, closes it while `x` is away.
    succeed_a_trial(&a).await;
    tokio::time::sleep(INTERVAL * 2).await;
    assert_eq!(record(&store, "dep").await.state, FleetState::Closed);
    assert_ne!(
        x.state(),
        State::Closed,
        "x, cut off, still holds the episode"
    );

    x_link.set_cut(false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = record(&store, "dep").await;
    assert_eq!((r.state, r.opens), (FleetState::Closed, 1), "{r:?}");
    assert_eq!(x.state(), State::Closed, "x takes the fleet's newer word");
}

/// Regression: a verdict an instance reached while cut off counted as a quorum vote on its
/// first flush back, although the fleet had been reset meanwhile.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_verdict_from_before_a_reset_lends_no_vote() {
    let store = store();
    let x_link = Severable::new(store.clone());
    let mode = FleetMode::quorum(2, 0.6).unwrap();
    let cooldown = Duration::from_secs(30);
    let a = member(store.clone(), "a")
        .breaker(dep(cooldown), mode)
        .unwrap();
    let _b = member(store.clone(), "b")
        .breaker(dep(cooldown), mode)
        .unwrap();
    let x = member(x_link.clone(), "x")
        .breaker(dep(cooldown), mode)
        .unwrap();
    tokio::time::sleep(INTERVAL * 3).await;

    x_link.set_cut(true);
    fail_twice(&x);
    assert_eq!(x.state(), State::Open, "x trips on its own while cut off");
    store
        .force("dep", None, None)
        .await
        .expect("an operator's reset");
    tokio::time::sleep(INTERVAL * 3).await;
    fail_twice(&a); // one vote of three: below the quorum
    tokio::time::sleep(INTERVAL * 3).await;

    x_link.set_cut(false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let r = record(&store, "dep").await;
    assert_eq!((r.state, r.opens), (FleetState::Closed, 0), "{r:?}");
    assert_eq!(
        x.state(),
        State::Closed,
        "the reset outranks what x judged alone"
    );
    assert_eq!(
        a.state(),
        State::Open,
        "a stays open alone, below the quorum"
    );
}

/// Regression: failing closed, an instance back while the fleet was open passed through
/// CLOSED (admitting calls) on its way to the fleet's OPEN.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn failing_closed_returns_straight_to_the_fleets_open_state() {
    let store = store();
    let x_link = Severable::new(store.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let cooldown = Duration::from_secs(30);
    let a = member(store.clone(), "a")
        .breaker(dep(cooldown), FleetMode::Any)
        .unwrap();
    let x = member(x_link.clone(), "x")
        .breaker(
            dep(cooldown).on_transition(move |t| log.lock().unwrap().push(t.to)),
            FleetMode::Any.on_outage(OutagePolicy::Reject),
        )
        .unwrap();
    tokio::time::sleep(INTERVAL * 3).await;
    fail_twice(&a);
    tokio::time::sleep(INTERVAL * 2).await;
    x_link.set_cut(true);
    tokio::time::sleep(INTERVAL * 5).await;
    assert_eq!(x.state(), State::ForcedOpen, "failing closed while cut off");
    x_link.set_cut(false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(x.state(), State::Open);
    let states = seen.lock().unwrap().clone();
    assert_eq!(
        states,
        [State::Open, State::ForcedOpen, State::Open],
        "{states:?}"
    );
}

/// One fleet, three breakers, three outage policies: each keeps its own while the store is
/// away, and what a fail-open breaker measured meanwhile reaches the store on return.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn each_breaker_keeps_its_own_outage_policy() {
    let store = store();
    let link = Severable::new(store.clone());
    let fleet = Fleet::builder(link.clone())
        .instance_id("x")
        .sync_interval(INTERVAL)
        .outage(OutagePolicy::Reject) // the fleet's default
        .build()
        .unwrap();
    let cooldown = Duration::from_secs(30);
    let local = fleet
        .breaker(
            named("local", cooldown),
            FleetMode::Any.on_outage(OutagePolicy::Local),
        )
        .unwrap();
    let reject = fleet
        .breaker(named("reject", cooldown), FleetMode::Any)
        .unwrap();
    let admit = fleet
        .breaker(
            named("admit", cooldown),
            FleetMode::Any.on_outage(OutagePolicy::Admit),
        )
        .unwrap();
    tokio::time::sleep(INTERVAL * 3).await;

    link.set_cut(true);
    tokio::time::sleep(INTERVAL * 3).await;
    assert_eq!(local.state(), State::Closed, "local: decides alone");
    fail_twice(&local);
    assert_eq!(
        local.state(),
        State::Open,
        "local: trips on its own outcomes"
    );
    assert_eq!(reject.state(), State::ForcedOpen, "reject: fails closed");
    assert!(reject.try_acquire().is_err());
    assert_eq!(admit.state(), State::Disabled, "admit: fails open");
    for _ in 0..5 {
        admit.try_acquire().expect("admit: every call").failure();
    }
    assert_eq!(admit.state(), State::Disabled, "admit: nothing trips");

    link.set_cut(false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(reject.state(), State::Closed);
    assert_eq!(admit.state(), State::Closed);
    let view = store.view("admit").await.unwrap().unwrap();
    assert_eq!(
        view.totals().failures,
        5,
        "outcomes measured failing open are flushed"
    );
    assert_eq!(
        record(&store, "local").await.state,
        FleetState::Open,
        "local's own trip"
    );
}

/// Failing open does not lift the operator's kill-switch: the instance keeps rejecting
/// while cut off, and follows the store once back.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn failing_open_keeps_the_kill_switch() {
    let store = store();
    let link = Severable::new(store.clone());
    let b = member(link.clone(), "x")
        .breaker(
            dep(Duration::from_secs(5)),
            FleetMode::Pooled.on_outage(OutagePolicy::Admit),
        )
        .unwrap();
    tokio::time::sleep(INTERVAL * 3).await;
    store
        .force("dep", Some(ForcedState::Open), None)
        .await
        .unwrap();
    tokio::time::sleep(INTERVAL * 2).await;
    assert_eq!(b.state(), State::ForcedOpen);
    link.set_cut(true);
    tokio::time::sleep(INTERVAL * 5).await;
    assert_eq!(
        b.state(),
        State::ForcedOpen,
        "the kill-switch holds while cut off"
    );
    assert!(b.try_acquire().is_err());
    link.set_cut(false);
    store.force("dep", None, None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(b.state(), State::Closed);
}

/// Without the breaker's own setting, the fleet's policy applies.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_fleets_outage_policy_is_the_default() {
    let link = Severable::new(store());
    let fleet = Fleet::builder(link.clone())
        .instance_id("x")
        .sync_interval(INTERVAL)
        .outage(OutagePolicy::Admit)
        .build()
        .unwrap();
    let b = fleet
        .breaker(dep(Duration::from_secs(5)), FleetMode::Any)
        .unwrap();
    tokio::time::sleep(INTERVAL * 3).await;
    link.set_cut(true);
    tokio::time::sleep(INTERVAL * 3).await;
    assert_eq!(b.state(), State::Disabled);
}
