//! The load-adaptive policies' success path around a trivial service, beside
//! tower-resilience's equivalents where it has one, in the same run.
//!
//! `cargo bench --bench adaptive`

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fusebox::policy::{Aimd, ConcurrencyLimit, LimitAlgorithm, Vegas};
use fusebox::tower::concurrency_limit::ConcurrencyLimitLayer;
use tower::{Layer, Service};

#[derive(Clone, Copy)]
struct Echo;

impl Service<u64> for Echo {
    type Response = u64;
    type Error = Infallible;
    type Future = Ready<Result<u64, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: u64) -> Self::Future {
        ready(Ok(req))
    }
}

/// One ready-call-poll round trip, as a server or client stack does per request.
#[inline(always)]
fn round_trip<S: Service<u64>>(svc: &mut S, cx: &mut Context<'_>, req: u64) -> bool {
    if !matches!(svc.poll_ready(cx), Poll::Ready(Ok(()))) {
        return false;
    }
    let mut fut = pin!(svc.call(req));
    loop {
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return r.is_ok();
        }
    }
}

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
