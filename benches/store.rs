//! Fleet stores: what sharing a breaker with a fleet costs a call, and how fast a trip
//! reaches another instance. Memory, Redis and PostgreSQL side by side in one run.
//!
//! * `store_calls`: one successful call (acquire + record) through a local breaker, a
//!   fleet breaker on the in-memory store, and fleet breakers on Redis and PostgreSQL. Every fleet
//!   breaker has its sync task flushing behind on a tokio runtime while the calls run.
//!   Target: store-backed breakers keep at least half the in-memory throughput.
//! * trip propagation (printed, not a criterion group): instance A trips, and the time
//!   until instance B rejects is sampled 50 times per store. Target: p99 within two sync
//!   intervals.
//!
//! Run with `cargo bench --bench store` (Redis at `REDIS_URL`, default
//! redis://127.0.0.1:6379, PostgreSQL at `DATABASE_URL`, default
//! postgres://postgres@127.0.0.1:5432/test; a store that cannot be reached is skipped).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fusebox::breaker::{Breaker, State};
use fusebox::fleet::{Fleet, FleetMode, MemoryStore, StateStore};
use fusebox_postgres::PostgresStore;
use fusebox_redis::RedisStore;

const SYNC: Duration = Duration::from_millis(100);

fn redis() -> Option<Arc<dyn StateStore>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let store = RedisStore::builder(url)
        .prefix(format!("fusebox-bench:{}:", std::process::id()))
        .build()
        .ok()?;
    let rt = tokio::runtime::Runtime::new().ok()?;
    rt.block_on(store.prepare()).ok()?;
    Some(Arc::new(store))
}

/// One breaker per run: a store that keeps state between runs (PostgreSQL) starts fresh.
fn breaker_name() -> String {
    format!("bench-{}", std::process::id())
}

fn postgres_store() -> Option<PostgresStore> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    PostgresStore::builder(url)
        .schema("fusebox_bench")
        .setup_on_prepare(true)
        .build()
        .ok()
}

fn postgres() -> Option<Arc<dyn StateStore>> {
    let store = postgres_store()?;
    let rt = tokio::runtime::Runtime::new().ok()?;
    rt.block_on(store.prepare()).ok()?;
    Some(Arc::new(store))
}

fn fleet_breaker(store: Arc<dyn StateStore>, instance: &str, mode: FleetMode) -> Breaker {
    Fleet::builder(store)
        .instance_id(instance)
        .sync_interval(SYNC)
        .build()
        .expect("valid fleet")
        .breaker(
            Breaker::builder(breaker_name())
                .failures_in_last(50, 100)
                .cooldown(Duration::from_secs(3600)),
            mode,
        )
        .expect("fleet breaker")
}

fn call(b: &Breaker) {
    if let Ok(permit) = b.try_acquire() {
        black_box(&permit);
        permit.success();
    }
}

fn store_calls(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = rt.enter();
    let local = Breaker::builder("bench")
        .failures_in_last(50, 100)
        .build()
        .expect("breaker");
    let memory = fleet_breaker(Arc::new(MemoryStore::new()), "m", FleetMode::Pooled);
    let redis = redis().map(|store| fleet_breaker(store, "r", FleetMode::Pooled));
    if redis.is_none() {
        eprintln!("Redis unreachable: the redis case is skipped");
    }
    let postgres = postgres().map(|store| fleet_breaker(store, "p", FleetMode::Pooled));
    if postgres.is_none() {
        eprintln!("PostgreSQL unreachable: the postgres case is skipped");
    }
    let mut group = c.benchmark_group("store_calls");
    group.bench_function("local", |b| b.iter(|| call(&local)));
    group.bench_function("memory", |b| b.iter(|| call(&memory)));
    if let Some(redis) = &redis {
        group.bench_function("redis", |b| b.iter(|| call(redis)));
    }
    if let Some(postgres) = &postgres {
        group.bench_function("postgres", |b| b.iter(|| call(postgres)));
    }
    group.finish();
}

/// Samples how long a trip of one instance takes to make another reject.
fn propagation(label: &str, store: impl Fn() -> Arc<dyn StateStore>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let samples = rt.block_on(async {
        let admin = store();
        let a = fleet_breaker(store(), "a", FleetMode::Any);
        let b = fleet_breaker(store(), "b", FleetMode::Any);
        tokio::time::sleep(SYNC * 3).await;
        let mut samples = Vec::new();
        for _ in 0..50 {
            for _ in 0..50 {
                if let Ok(p) = a.try_acquire() {
                    p.failure();
                }
            }
            let tripped = Instant::now();
            while b.state() != State::Open && tripped.elapsed() < SYNC * 50 {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            samples.push(tripped.elapsed());
            admin
                .force(&breaker_name(), None, None)
                .await
                .expect("reset");
            while (a.state() != State::Closed || b.state() != State::Closed)
                && tripped.elapsed() < SYNC * 100
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        samples
    });
    let mut sorted = samples;
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "trip propagation ({label}, sync interval {SYNC:?}, {} samples): p50 {:?}, p99 {:?}, max {:?}",
        sorted.len(),
        at(0.5),
        at(0.99),
        sorted[sorted.len() - 1]
    );
}

fn trip_propagation(_: &mut Criterion) {
    let memory = MemoryStore::new();
    propagation("memory", move || Arc::new(memory.clone()));
    if redis().is_some() {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!("fusebox-bench-trip:{}:", std::process::id());
        propagation("redis", move || {
            Arc::new(
                RedisStore::builder(url.as_str())
                    .prefix(prefix.as_str())
                    .build()
                    .expect("store"),
            )
        });
    }
    if postgres().is_some() {
        propagation("postgres", || {
            Arc::new(postgres_store().expect("store")) as Arc<dyn StateStore>
        });
    }
}

criterion_group!(benches, store_calls, trip_propagation);
criterion_main!(benches);
