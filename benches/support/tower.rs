//! What the tower benches share: a service that answers at once, and one request's
//! ready-call-poll round trip.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::task::{Context, Poll};

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
