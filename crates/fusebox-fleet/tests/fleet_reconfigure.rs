//! A fleet breaker reconfigured while it runs: the fleet's decisions follow its new rules.
//! On tokio's paused clock, with the memory store on the same clock.

use std::time::Duration;

use fusebox_core::breaker::{Breaker, BreakerBuilder, State};
use fusebox_fleet::{Fleet, FleetMode, FleetState, MemoryStore, StateStore};
use fusebox_policy::TokioClock;

mod support;
use support::succeed_a_trial;

const INTERVAL: Duration = Duration::from_millis(100);

fn dep(trials: u32) -> BreakerBuilder {
    Breaker::builder("dep")
        .consecutive_failures(2)
        .cooldown(Duration::from_secs(1))
        .half_open_trials(trials, trials)
        .clock(TokioClock::new())
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_fleet_judges_its_trials_by_the_reconfigured_close_rule() {
    let store = MemoryStore::with_clock(TokioClock::new());
    let fleet = Fleet::builder(store.clone())
        .instance_id("a")
        .sync_interval(INTERVAL)
        .build()
        .expect("valid fleet settings");
    let breaker = fleet
        .breaker(dep(3), FleetMode::Any)
        .expect("fleet breaker");
    tokio::time::sleep(INTERVAL * 3).await;

    // Three successful trials were needed; one is enough after the reconfiguration.
    breaker
        .reconfigure(dep(1).build_config().expect("valid"))
        .expect("accepted");
    for _ in 0..2 {
        breaker.try_acquire().expect("closed").failure();
    }
    tokio::time::sleep(Duration::from_secs(1) + INTERVAL * 3).await;
    succeed_a_trial(&breaker).await;
    tokio::time::sleep(INTERVAL * 3).await;
    let record = store
        .view("dep")
        .await
        .expect("view")
        .expect("record")
        .record;
    assert_eq!(record.state, FleetState::Closed, "{record:?}");
    assert_eq!(breaker.state(), State::Closed);
}
