//! The breaker layer around a trivial service: fusebox against the bare service and against
//! tower-resilience's circuit breaker, in the same run.
//!
//! `cargo bench --bench tower`

use std::hint::black_box;
use std::task::{Context, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use fusebox::breaker::Breaker;
use fusebox::tower::BreakerLayer;
use tower::Layer;

#[path = "support/tower.rs"]
mod support;
use support::{Echo, round_trip};

fn bench(c: &mut Criterion) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut group = support::quick_group(c, "tower_layer_success");

    let mut bare = Echo;
    group.bench_function("bare_service", |b| {
        b.iter(|| black_box(round_trip(&mut bare, &mut cx, black_box(7))))
    });

    let breaker = Breaker::builder("bench").build().expect("valid config");
    let mut fusebox_consecutive = BreakerLayer::new(breaker).layer(Echo);
    group.bench_function("fusebox_consecutive", |b| {
        b.iter(|| black_box(round_trip(&mut fusebox_consecutive, &mut cx, black_box(7))))
    });

    let breaker = Breaker::builder("bench")
        .count_window(100)
        .failure_rate(0.5)
        .build()
        .expect("valid config");
    let mut fusebox_count = BreakerLayer::new(breaker).layer(Echo);
    group.bench_function("fusebox_count_window_100", |b| {
        b.iter(|| black_box(round_trip(&mut fusebox_count, &mut cx, black_box(7))))
    });

    // tower-resilience, configured alike: failure rate 50 % over the last 100 calls.
    let layer = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .build()
        .expect("valid config");
    let mut resilience = layer.layer(Echo);
    group.bench_function("tower_resilience_count_window_100", |b| {
        b.iter(|| black_box(round_trip(&mut resilience, &mut cx, black_box(7))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
