//! How soon an instance is back in the fleet once Redis returns from an outage: its first
//! attempt after the return must land, and attempts come often enough that it is back
//! within a second, whether the outage lasted 3 s or 10 s.

mod common;

use std::time::Duration;

use fusebox_core::breaker::Breaker;
use fusebox_fleet::contract::wait_until;
use fusebox_fleet::{Fleet, FleetMode, StateStore};
use fusebox_redis::RedisStore;

/// Kills the server for `outage`, starts it again (empty) and returns how long after it
/// answered the instance was registered with it again.
async fn back_after(outage: Duration) -> Option<Duration> {
    let mut server = common::OwnRedis::start()?;
    let store = RedisStore::builder(server.url())
        .prefix("resync:")
        .response_timeout(Duration::from_millis(200))
        .build()
        .expect("store");
    let fleet = Fleet::builder(store.clone())
        .instance_id("a")
        .sync_interval(Duration::from_millis(100))
        .store_timeout(Duration::from_millis(300))
        .build()
        .expect("fleet");
    let breaker = fleet
        .breaker(Breaker::builder("dep"), FleetMode::Pooled)
        .expect("breaker");
    let registered = || async {
        store
            .view("dep")
            .await
            .ok()
            .flatten()
            .is_some_and(|v| v.live_instances() == 1)
    };
    wait_until(Duration::from_secs(5), registered)
        .await
        .expect("registered before the outage");

    server.kill();
    tokio::time::sleep(outage).await;
    let server = tokio::task::spawn_blocking(move || {
        server.restart(); // returns once the server answers
        server
    })
    .await
    .expect("restart");
    let took = wait_until(Duration::from_secs(10), registered).await;
    drop(breaker);
    drop(server);
    Some(took.expect("the instance registers with the restarted server"))
}

async fn check(outage: Duration) {
    let Some(took) = back_after(outage).await else {
        return;
    };
    eprintln!("resync after a {outage:?} outage: {took:?} after the store was back");
    assert!(
        took <= Duration::from_secs(1),
        "back in the fleet {took:?} after a {outage:?} outage ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_within_a_second_of_a_3s_outage() {
    check(Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_within_a_second_of_a_10s_outage() {
    check(Duration::from_secs(10)).await;
}
