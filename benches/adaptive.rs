//! The load-adaptive policies' success path around a trivial service, beside
//! tower-resilience's equivalents where it has one, in the same run.
//!
//! `cargo bench --bench adaptive`

use std::hint::black_box;
use std::task::{Context, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fusebox::policy::{Aimd, ConcurrencyLimit, LimitAlgorithm, Vegas};
use fusebox::tower::concurrency_limit::ConcurrencyLimitLayer;
use tower::Layer;

#[path = "support/tower.rs"]
mod support;
use support::{Echo, round_trip};

fn fusebox_limit(algorithm: impl Into<LimitAlgorithm>) -> ConcurrencyLimit {
    ConcurrencyLimit::builder("bench")
        .algorithm(algorithm)
        .min_limit(1)
        .max_limit(100)
        .initial_limit(10)
        .build()
        .expect("valid config")
}

fn concurrency_limit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime");
    let _entered = runtime.enter();
    let mut cx = Context::from_waker(Waker::noop());
    let mut group = c.benchmark_group("concurrency_limit_success");
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(40);

    let mut bare = Echo;
    group.bench_function("bare_service", |b| {
        b.iter(|| black_box(round_trip(&mut bare, &mut cx, black_box(7))))
    });

    let mut fusebox_aimd = ConcurrencyLimitLayer::new(fusebox_limit(Aimd::new())).layer(Echo);
    group.bench_function("fusebox_aimd", |b| {
        b.iter(|| black_box(round_trip(&mut fusebox_aimd, &mut cx, black_box(7))))
    });
    let mut fusebox_vegas = ConcurrencyLimitLayer::new(fusebox_limit(Vegas::new())).layer(Echo);
    group.bench_function("fusebox_vegas", |b| {
        b.iter(|| black_box(round_trip(&mut fusebox_vegas, &mut cx, black_box(7))))
    });

    // tower-resilience, configured alike: limits 1..=100 starting at 10.
    let aimd = tower_resilience::adaptive::Aimd::builder()
        .initial_limit(10)
        .min_limit(1)
        .max_limit(100)
        .build()
        .expect("valid config");
    let mut resilience_aimd =
        tower_resilience::adaptive::AdaptiveLimiterLayer::new(aimd).layer(Echo);
    group.bench_function("tower_resilience_aimd", |b| {
        b.iter(|| black_box(round_trip(&mut resilience_aimd, &mut cx, black_box(7))))
    });
    let vegas = tower_resilience::adaptive::Vegas::builder()
        .initial_limit(10)
        .min_limit(1)
        .max_limit(100)
        .build()
        .expect("valid config");
    let mut resilience_vegas =
        tower_resilience::adaptive::AdaptiveLimiterLayer::new(vegas).layer(Echo);
    group.bench_function("tower_resilience_vegas", |b| {
        b.iter(|| black_box(round_trip(&mut resilience_vegas, &mut cx, black_box(7))))
    });
    group.finish();
}

criterion_group!(benches, concurrency_limit);
criterion_main!(benches);
