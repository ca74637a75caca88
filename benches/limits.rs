//! The rate limiter's success path: fusebox's limiter against governor used directly (the
//! cost of fusebox's wrapper), and fusebox's tower layer against tower-resilience's rate
//! limiter layer, in the same run. Quotas are far above the call rate, so every call finds a
//! permit.
//!
//! `cargo bench --bench limits`

use std::hint::black_box;
use std::num::NonZeroU32;
use std::task::{Context, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fusebox::policy::RateLimiter;
use fusebox::tower::rate_limit::RateLimitLayer;
use tower::Layer;

#[path = "support/tower.rs"]
mod support;
use support::{Echo, round_trip};

const PER_SECOND: u32 = 1_000_000_000;

fn bench(c: &mut Criterion) {
    let runtime = support::runtime();
    let _entered = runtime.enter(); // tower-resilience reads tokio's clock
    let mut cx = Context::from_waker(Waker::noop());

    let mut group = support::quick_group(c, "rate_limit_success");

    let governor_direct = governor::RateLimiter::direct(governor::Quota::per_second(
        NonZeroU32::new(PER_SECOND).expect("non-zero"),
    ));
    group.bench_function("governor_direct_check", |b| {
        b.iter(|| black_box(governor_direct.check().is_ok()))
    });

    let limiter = RateLimiter::builder("bench")
        .per_second(PER_SECOND.into())
        .build()
        .expect("valid config");
    group.bench_function("fusebox_try_acquire", |b| {
        b.iter(|| black_box(limiter.try_acquire().is_ok()))
    });

    let mut bare = Echo;
    group.bench_function("bare_service", |b| {
        b.iter(|| black_box(round_trip(&mut bare, &mut cx, black_box(7))))
    });

    let mut fusebox_layer = RateLimitLayer::new(limiter.clone()).layer(Echo);
    group.bench_function("fusebox_layer", |b| {
        b.iter(|| black_box(round_trip(&mut fusebox_layer, &mut cx, black_box(7))))
    });

    let peer = tower_resilience::ratelimiter::RateLimiterLayer::builder()
        .limit_for_period(PER_SECOND as usize)
        .refresh_period(Duration::from_secs(1))
        .build()
        .expect("valid config");
    let mut peer_layer = peer.layer(Echo);
    group.bench_function("tower_resilience_layer", |b| {
        b.iter(|| black_box(round_trip(&mut peer_layer, &mut cx, black_box(7))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
