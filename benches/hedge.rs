//! Hedging's success path, where the first attempt answers at once and no hedge fires:
//! fusebox's `Hedge` in a typed stack, and fusebox's tower layer beside tower-resilience's
//! hedge layer, in the same run. Each hedge allows one extra attempt after 100 ms.
//!
//! `cargo bench --bench hedge`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fusebox::Stack;
use fusebox::policy::Hedge;
use fusebox::tower::hedge::HedgeLayer;
use tower::Layer;

#[path = "support/tower.rs"]
mod support;
use support::{Echo, round_trip};

const DELAY: Duration = Duration::from_millis(100);

/// Polls a future that completes on its first poll.
fn poll_once<F: Future>(future: F, cx: &mut Context<'_>) -> Option<F::Output> {
    match pin!(future).poll(cx) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

fn fixed() -> Hedge {
    Hedge::builder("bench").delay(DELAY).build().expect("valid")
}

fn percentile() -> Hedge {
    Hedge::builder("bench")
        .percentile_delay(0.95)
        .fallback_delay(DELAY)
        .build()
        .expect("valid")
}

fn bench(c: &mut Criterion) {
    let runtime = support::runtime();
    let _entered = runtime.enter();
    let mut cx = Context::from_waker(Waker::noop());

    let mut group = support::quick_group(c, "hedge_success");

    let bare = Stack::new();
    group.bench_function("stack_bare", |b| {
        b.iter(|| poll_once(bare.call(|| async { Ok::<_, ()>(black_box(7)) }), &mut cx))
    });
    let stack = Stack::new().hedge(fixed());
    group.bench_function("stack_hedge_fixed", |b| {
        b.iter(|| poll_once(stack.call(|| async { Ok::<_, ()>(black_box(7)) }), &mut cx))
    });
    let stack = Stack::new().hedge(percentile());
    group.bench_function("stack_hedge_percentile", |b| {
        b.iter(|| poll_once(stack.call(|| async { Ok::<_, ()>(black_box(7)) }), &mut cx))
    });

    let mut bare = Echo;
    group.bench_function("bare_service", |b| {
        b.iter(|| black_box(round_trip(&mut bare, &mut cx, black_box(7))))
    });
    let mut fusebox_fixed = HedgeLayer::new(fixed()).layer(Echo);
    group.bench_function("fusebox_layer_fixed", |b| {
        b.iter(|| black_box(round_trip(&mut fusebox_fixed, &mut cx, black_box(7))))
    });
    let mut fusebox_percentile = HedgeLayer::new(percentile()).layer(Echo);
    group.bench_function("fusebox_layer_percentile", |b| {
        b.iter(|| black_box(round_trip(&mut fusebox_percentile, &mut cx, black_box(7))))
    });
    // tower-resilience counts the first attempt: 2 attempts = the first and one hedge.
    let mut peer = tower_resilience::hedge::HedgeLayer::builder()
        .delay(DELAY)
        .max_hedged_attempts(2)
        .build()
        .layer(Echo);
    group.bench_function("tower_resilience_layer", |b| {
        b.iter(|| black_box(round_trip(&mut peer, &mut cx, black_box(7))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
