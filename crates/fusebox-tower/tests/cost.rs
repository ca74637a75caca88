//! The cost guard layer against `tower-test` mocks, alone and stacked with a breaker.

use std::time::Duration;

use fusebox_core::breaker::Breaker;
use fusebox_core::clock::ManualClock;
use fusebox_core::guard::{CostGuard, CostPolicy, CostRejectReason, UnknownCost};
use fusebox_core::{CostRejected, Rejected};
use fusebox_tower::cost::CostGuardLayer;
use fusebox_tower::{BoxError, BreakerLayer};
use tower::ServiceBuilder;
use tower_test::mock;

fn guard(limit: f64, clock: &ManualClock) -> CostGuard {
    let policy = CostPolicy::builder(limit)
        .unknown_cost(UnknownCost::Reject)
        .build()
        .unwrap();
    CostGuard::builder("mock", policy)
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// Responses are token counts at one unit per thousand; refusals further in are free.
fn tokens(result: &Result<u32, BoxError>) -> Option<f64> {
    match result {
        Ok(tokens) => Some(f64::from(*tokens) / 1000.0),
        Err(e) if e.is::<Rejected>() => Some(0.0),
        Err(_) => None,
    }
}

#[tokio::test]
async fn refuses_without_calling_inner_once_the_budget_is_spent() {
    let clock = ManualClock::new();
    let g = guard(2.0, &clock);
    let (mut svc, mut handle) =
        mock::spawn_layer::<&str, u32, _>(CostGuardLayer::new(g.clone(), tokens));

    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let call = svc.call("summarise");
    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req, "summarise");
    respond.send_response(2000);
    assert_eq!(call.await.unwrap(), 2000);
    assert_eq!(g.status().spent, 2.0);

    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let err = svc.call("again").await.unwrap_err();
    let rejected = err.downcast_ref::<CostRejected>().expect("a typed refusal");
    assert_eq!(rejected.reason, CostRejectReason::BudgetBreached);
    assert_eq!(rejected.retry_after, Some(Duration::from_secs(86_400)));
    assert!(
        handle.poll_request().is_pending(),
        "the inner service was not called"
    );
}

#[tokio::test]
async fn an_error_without_a_cost_fails_closed() {
    let clock = ManualClock::new();
    let g = guard(100.0, &clock);
    let (mut svc, mut handle) =
        mock::spawn_layer::<&str, u32, _>(CostGuardLayer::new(g.clone(), tokens));

    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let call = svc.call("prompt");
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_error("connection reset mid-stream");
    assert!(call.await.is_err());

    let err = svc.call("next").await.unwrap_err();
    let rejected = err.downcast_ref::<CostRejected>().expect("a typed refusal");
    assert_eq!(rejected.reason, CostRejectReason::UnknownCost);
}

#[tokio::test]
async fn a_breaker_inside_refuses_for_free() {
    let clock = ManualClock::new();
    let g = guard(100.0, &clock);
    let breaker = Breaker::builder("model")
        .clock(clock.clone())
        .build()
        .unwrap();
    let layers = ServiceBuilder::new()
        .layer(CostGuardLayer::new(g.clone(), tokens))
        .layer(BreakerLayer::new(breaker.clone()));
    let (mut svc, mut handle) = mock::spawn_layer::<&str, u32, _>(layers);

    breaker.force_open();
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let err = svc.call("prompt").await.unwrap_err();
    assert!(err.is::<Rejected>());
    let status = g.status();
    assert_eq!((status.spent, status.unknown_costs), (0.0, 0));
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn axum_answers_a_refusal_with_503_and_retry_after() {
    use fusebox_tower::http::axum::handle_error;

    let clock = ManualClock::new();
    clock.set(Duration::from_secs(1_704_067_200 + 3600)); // 2024-01-01 01:00 UTC
    let g = guard(1.0, &clock);
    g.record_cost(1.5).unwrap();
    let refused = g.try_acquire().unwrap_err();
    let response = handle_error(Box::new(refused)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "82800");
}
