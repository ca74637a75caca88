//! The load-adaptive policies' success path around a trivial service, beside
//! tower-resilience's equivalents where it has one, in the same run.
//!
//! `cargo bench --bench adaptive`

use std::hint::black_box;
use std::task::{Context, Waker};

use criterion::{Criterion, criterion_group, criterion_main};
use fusebox::breaker::Breaker;
use fusebox::classify::ErrIsFailure;
use fusebox::policy::{Aimd, ConcurrencyLimit, LimitAlgorithm, Throttle, Vegas};
use fusebox::stack::Stack;
use fusebox::tower::breaker::BreakerLayer;
use fusebox::tower::concurrency_limit::ConcurrencyLimitLayer;
use fusebox::tower::throttle::ThrottleLayer;
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
    let runtime = support::runtime();
    let _entered = runtime.enter();
    let mut cx = Context::from_waker(Waker::noop());
    let mut group = support::quick_group(c, "concurrency_limit_success");

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

/// Adaptive throttling's success path (no peer in tower-resilience): the layer beside the
/// bare service and beside fusebox's breaker layer, a yardstick of one policy's cost, and
/// the policy in a `Stack` beside an empty one.
fn throttle(c: &mut Criterion) {
    let runtime = support::runtime();
    let _entered = runtime.enter();
    let mut cx = Context::from_waker(Waker::noop());
    let mut group = support::quick_group(c, "throttle_success");

    let mut bare = Echo;
    group.bench_function("bare_service", |b| {
        b.iter(|| black_box(round_trip(&mut bare, &mut cx, black_box(7))))
    });
    let throttle = Throttle::builder("bench").seed(1).build().expect("valid");
    let mut layered = ThrottleLayer::new(throttle.clone(), ErrIsFailure).layer(Echo);
    group.bench_function("fusebox_throttle_layer", |b| {
        b.iter(|| black_box(round_trip(&mut layered, &mut cx, black_box(7))))
    });
    let breaker = Breaker::builder("bench").build().expect("valid");
    let mut breaker_layer = BreakerLayer::new(breaker).layer(Echo);
    group.bench_function("fusebox_breaker_layer", |b| {
        b.iter(|| black_box(round_trip(&mut breaker_layer, &mut cx, black_box(7))))
    });

    let empty = Stack::new();
    group.bench_function("empty_stack", |b| {
        b.iter(|| {
            let call = empty.call(|| async { Ok::<_, ()>(black_box(7u64)) });
            black_box(poll_once(call, &mut cx))
        })
    });
    let stack = Stack::new().policy(throttle.classified(ErrIsFailure));
    group.bench_function("fusebox_throttle_stack", |b| {
        b.iter(|| {
            let call = stack.call(|| async { Ok::<_, ()>(black_box(7u64)) });
            black_box(poll_once(call, &mut cx))
        })
    });
    group.finish();
}

/// Polls a future that completes at once.
fn poll_once<F: std::future::Future>(future: F, cx: &mut Context<'_>) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

criterion_group!(benches, concurrency_limit, throttle);
criterion_main!(benches);
