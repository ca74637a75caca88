//! What a PostgreSQL-backed fleet breaker costs per call (nothing on the network: it should
//! match a plain breaker), and how fast a trip on one instance reaches another.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!     cargo run --release -p fusebox-postgres --example pg_overhead
//! ```

use std::time::{Duration, Instant};

use fusebox_core::breaker::{Breaker, State};
use fusebox_fleet::{Fleet, FleetMode, StateStore};
use fusebox_postgres::PostgresStore;

const CALLS: u32 = 5_000_000;
const TRIPS: usize = 30;

fn per_call(breaker: &Breaker) -> f64 {
    // Warm up, then time the same loop three times and keep the best.
    let mut best = f64::MAX;
    for _ in 0..4 {
        let start = Instant::now();
        for _ in 0..CALLS {
            if let Ok(permit) = breaker.try_acquire() {
                permit.success();
            }
        }
        best = best.min(start.elapsed().as_nanos() as f64 / f64::from(CALLS));
    }
    best
}

async fn wait(timeout: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if condition() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    None
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("fusebox_example_{}", std::process::id());
    let store = || {
        PostgresStore::builder(url.as_str())
            .schema(schema.as_str())
            .build()
    };
    let admin = store()?;
    admin.setup().await?;

    let plain = Breaker::builder("plain").consecutive_failures(5).build()?;
    let fleet_a = Fleet::builder(store()?).instance_id("a").build()?;
    let fleet_b = Fleet::builder(store()?).instance_id("b").build()?;
    let shared = fleet_a.breaker(
        Breaker::builder("dep")
            .consecutive_failures(1)
            .cooldown(Duration::from_secs(60)),
        FleetMode::Any,
    )?;
    let other = fleet_b.breaker(
        Breaker::builder("dep")
            .consecutive_failures(1)
            .cooldown(Duration::from_secs(60)),
        FleetMode::Any,
    )?;
    while admin.view("dep").await?.map_or(0, |v| v.live_instances()) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The same fleet breaker on the in-memory store: what the fleet link itself costs.
    let memory_fleet = Fleet::builder(fusebox_fleet::MemoryStore::new()).build()?;
    let in_memory = memory_fleet.breaker(
        Breaker::builder("dep").consecutive_failures(5),
        FleetMode::Pooled,
    )?;

    let plain_ns = per_call(&plain);
    let memory_ns = per_call(&in_memory);
    let shared_ns = per_call(&shared);
    println!("success in CLOSED, plain breaker:            {plain_ns:.1} ns/call");
    println!("success in CLOSED, memory fleet breaker:     {memory_ns:.1} ns/call");
    println!("success in CLOSED, PostgreSQL fleet breaker: {shared_ns:.1} ns/call");
    drop(in_memory);

    // Trip propagation: `a` trips, how long until `b` rejects? (sync interval 100 ms)
    let mut took = Vec::with_capacity(TRIPS);
    for _ in 0..TRIPS {
        shared.record_failure();
        let t = wait(Duration::from_secs(5), || other.state() == State::Open)
            .await
            .ok_or("b never opened")?;
        took.push(t);
        admin.force("dep", None, None).await?;
        wait(Duration::from_secs(5), || {
            shared.state() == State::Closed && other.state() == State::Closed
        })
        .await
        .ok_or("never reset")?;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "trip on a -> b open ({TRIPS} trips, sync interval 100 ms): median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ms(took[TRIPS / 2]),
        ms(took[TRIPS * 9 / 10]),
        ms(took[TRIPS - 1])
    );

    drop((shared, other));
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await?;
    Ok(())
}
