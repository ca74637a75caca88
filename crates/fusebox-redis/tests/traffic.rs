//! Store traffic stays bounded whatever the call rate: 100k calls through a Redis-backed
//! breaker cost a handful of round trips per sync interval.

mod common;

use std::time::{Duration, Instant};

use fusebox_core::breaker::Breaker;
use fusebox_fleet::{Fleet, FleetMode};
use fusebox_redis::RedisStore;

/// Calls of one command kind from `INFO commandstats`.
fn calls(stats: &str, command: &str) -> u64 {
    stats
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
        .and_then(|l| l.split("calls=").nth(1))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_traffic_is_bounded_by_the_sync_interval() {
    let Some(server) = common::OwnRedis::start() else {
        return;
    };
    let interval = Duration::from_millis(100);
    let store = RedisStore::builder(server.url())
        .prefix("traffic:")
        .build()
        .expect("store");
    let fleet = Fleet::builder(store)
        .instance_id("a")
        .sync_interval(interval)
        .build()
        .expect("fleet");
    let breaker = fleet
        .breaker(
            Breaker::builder("dep").failures_in_last(50, 100),
            FleetMode::Pooled,
        )
        .expect("breaker");
    tokio::time::sleep(interval * 3).await; // registered and subscribed

    let round_trips = |stats: &str| {
        ["evalsha", "eval", "ping", "subscribe", "script"]
            .iter()
            .map(|c| calls(stats, c))
            .sum::<u64>()
    };
    let before = round_trips(&common::command(server.port, "INFO commandstats"));
    let start = Instant::now();
    for i in 0..100_000u32 {
        let permit = breaker.try_acquire().expect("closed");
        if i % 10 == 0 {
            permit.failure();
        } else {
            permit.success();
        }
        // Spread the calls over a couple of seconds, so that many sync intervals pass.
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    // Let the last flush happen, then count.
    tokio::time::sleep(interval * 2).await;
    let elapsed = start.elapsed();
    let after = round_trips(&common::command(server.port, "INFO commandstats"));
    let used = after - before;
    let intervals = elapsed.as_secs_f64() / interval.as_secs_f64();
    eprintln!(
        "100k calls in {elapsed:?}: {used} store round trips ({:.2} per sync interval)",
        used as f64 / intervals
    );
    // One flush per interval, plus a few for wake-ups: never anything per call.
    assert!(
        (used as f64) <= 2.0 * (intervals + 2.0),
        "{used} round trips over {intervals:.1} sync intervals"
    );
}
