//! What the tower benches share: a service that answers at once, one request's
//! ready-call-poll round trip, the runtime their timers need, and the short group settings
//! of a 2-core machine.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};
use tower::Service;

/// A service that answers every request with itself, ready at once.
#[derive(Clone, Copy)]
pub struct Echo;

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

/// One ready-call-poll round trip, as a server or client stack does per request. Futures
/// here complete on first poll; a pending one would be polled again.
#[inline(always)]
pub fn round_trip<S: Service<u64>>(svc: &mut S, cx: &mut Context<'_>, req: u64) -> bool {
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

/// A current-thread runtime with timers, for layers that read tokio's clock; enter it for
/// the bench's duration.
#[allow(dead_code)] // the breaker layer's bench reads no tokio clock
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
}

/// A group measured briefly (1 s warm-up, 3 s, 40 samples): read ratios, not times.
pub fn quick_group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(3));
    group.sample_size(40);
    group
}
