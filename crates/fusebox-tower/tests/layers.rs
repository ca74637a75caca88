//! Each layer against `tower-test` mocks, and the layers stacked with `ServiceBuilder`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fusebox_core::breaker::{Breaker, State};
use fusebox_core::clock::ManualClock;
use fusebox_core::{BulkheadFull, Rejected, TimedOut};
use fusebox_policy::pipeline::Pipeline;
use fusebox_policy::policy::{Bulkhead, Retry};
use fusebox_tower::bulkhead::BulkheadLayer;
use fusebox_tower::fallback::FallbackLayer;
use fusebox_tower::pipeline::PipelineLayer;
use fusebox_tower::retry::RetryLayer;
use fusebox_tower::timeout::TimeoutLayer;
use fusebox_tower::{BoxError, BreakerLayer};
use std::task::Poll;

use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};
use tower_test::mock;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn breaker(threshold: u32, clock: &ManualClock) -> Breaker {
    Breaker::builder("mock")
        .consecutive_failures(threshold)
        .cooldown(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn breaker_layer_opens_and_rejects_without_calling_inner() {
    let clock = ManualClock::new();
    let b = breaker(2, &clock);
    let (mut svc, mut handle) = mock::spawn_layer::<u32, u32, _>(BreakerLayer::new(b.clone()));

    for _ in 0..2 {
        handle.allow(1);
        assert!(svc.poll_ready().is_ready());
        let call = svc.call(1);
        let (req, respond) = handle.next_request().await.unwrap();
        assert_eq!(req, 1);
        respond.send_error("boom");
        assert!(call.await.is_err());
    }
    assert_eq!(b.state(), State::Open);

    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let err = svc.call(7).await.unwrap_err();
    let rejected = err.downcast_ref::<Rejected>().expect("a typed rejection");
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(10)));
    assert!(
        handle.poll_request().is_pending(),
        "the inner service was not called"
    );

    // After the cooldown a trial goes through and closes the breaker.
    clock.advance(Duration::from_secs(10));
    let call = svc.call(8);
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_response(80);
    assert_eq!(call.await.unwrap(), 80);
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test]
async fn breaker_poll_ready_is_the_inner_services() {
    let clock = ManualClock::new();
    let b = breaker(1, &clock);
    let (mut svc, mut handle) = mock::spawn_layer::<u32, u32, _>(BreakerLayer::new(b.clone()));
    handle.allow(0);
    assert!(svc.poll_ready().is_pending(), "inner not ready: not ready");
    b.force_open();
    handle.allow(1);
    assert!(
        svc.poll_ready().is_ready(),
        "an open breaker does not show as unreadiness"
    );
}

#[tokio::test]
async fn dropped_half_open_call_frees_the_trial_slot() {
    let clock = ManualClock::new();
    let b = breaker(1, &clock);
    let (mut svc, mut handle) = mock::spawn_layer::<u32, u32, _>(BreakerLayer::new(b.clone()));
    b.record_failure();
    clock.advance(Duration::from_secs(10));
    handle.allow(10);
    assert!(svc.poll_ready().is_ready());
    let trial = svc.call(1);
    let _ = handle.next_request().await.unwrap();
    assert!(svc.poll_ready().is_ready());
    assert!(
        svc.call(2).await.unwrap_err().is::<Rejected>(),
        "one trial at a time"
    );
    drop(trial); // the client went away
    assert!(svc.poll_ready().is_ready());
    let call = svc.call(3);
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_response(3);
    assert_eq!(call.await.unwrap(), 3);
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test]
async fn clones_share_one_breaker() {
    let clock = ManualClock::new();
    let b = breaker(1, &clock);
    let layer = BreakerLayer::new(b.clone());
    let failing = service_fn(|_: ()| async { Err::<(), _>("down") });
    let first = layer.layer(failing);
    let second = first.clone();
    let _ = first.oneshot(()).await;
    assert!(second.oneshot(()).await.unwrap_err().is::<Rejected>());
}

#[tokio::test(start_paused = true)]
async fn retry_layer_retries_clone_requests_and_respects_opt_out() {
    let retry = Retry::builder()
        .max_retries(2)
        .backoff(
            fusebox_core::backoff::Backoff::fixed(ms(100))
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let (inner, mut handle) = mock::pair::<String, u32>();
    let svc = RetryLayer::new(retry.clone()).layer(inner);
    handle.allow(10);
    let call = tokio::spawn(svc.oneshot("GET /x".to_string()));
    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req, "GET /x");
    respond.send_error("busy");
    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req, "GET /x", "the retry sends a copy of the request");
    respond.send_response(200);
    assert_eq!(call.await.unwrap().unwrap(), 200);

    // A policy that refuses to copy the request means: never retry it.
    let no_copies = RetryLayer::new(retry).requests(|_: &String| None::<String>);
    let (inner, mut handle) = mock::pair::<String, u32>();
    let svc = no_copies.layer(inner);
    handle.allow(10);
    let call = tokio::spawn(svc.oneshot("POST /x".to_string()));
    let (_, respond) = handle.next_request().await.unwrap();
    respond.send_error("busy");
    assert!(call.await.unwrap().is_err());
    assert!(
        !matches!(handle.poll_request(), Poll::Ready(Some(_))),
        "not sent again"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_outside_breaker_stops_on_rejection() {
    let clock = ManualClock::new();
    let b = breaker(2, &clock);
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let svc = ServiceBuilder::new()
        .layer(RetryLayer::new(
            Retry::builder().max_retries(5).build().unwrap(),
        ))
        .layer(BreakerLayer::new(b.clone()))
        .service(service_fn(move |_: ()| {
            counter.fetch_add(1, Ordering::Relaxed);
            async { Err::<(), _>("down") }
        }));
    let err = svc.clone().oneshot(()).await.unwrap_err();
    assert!(
        err.is::<Rejected>(),
        "the third attempt met the open breaker: {err}"
    );
    assert_eq!(calls.load(Ordering::Relaxed), 2, "no retry storm once open");
}

#[tokio::test(start_paused = true)]
async fn timeout_layer_fails_with_timed_out() {
    let (mut svc, mut handle) = mock::spawn_layer::<(), (), _>(TimeoutLayer::new(ms(250)).unwrap());
    handle.allow(1);
    assert!(svc.poll_ready().is_ready());
    let call = svc.call(());
    let _pending_response = handle.next_request().await.unwrap();
    let err = call.await.unwrap_err();
    assert_eq!(
        err.downcast_ref::<TimedOut>().map(|t| t.after),
        Some(ms(250))
    );
}

#[tokio::test]
async fn bulkhead_layer_queues_then_refuses() {
    let bulkhead = Bulkhead::builder("mock")
        .max_concurrent(1)
        .max_queued(1)
        .build()
        .unwrap();
    let (inner, mut handle) = mock::pair::<u32, u32>();
    let svc = BulkheadLayer::new(bulkhead.clone()).layer(inner);
    handle.allow(10);
    let first = tokio::spawn(svc.clone().oneshot(1));
    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req, 1);
    let second = tokio::spawn(svc.clone().oneshot(2));
    tokio::task::yield_now().await;
    let third = svc.clone().oneshot(3).await;
    assert!(
        third.unwrap_err().is::<BulkheadFull>(),
        "one running, one queued: full"
    );
    respond.send_response(10);
    assert_eq!(first.await.unwrap().unwrap(), 10);
    let (req, respond) = handle.next_request().await.unwrap();
    assert_eq!(req, 2, "the queued call ran once the slot freed");
    respond.send_response(20);
    assert_eq!(second.await.unwrap().unwrap(), 20);
    assert_eq!(bulkhead.available(), 1);
}

#[tokio::test]
async fn fallback_layer_answers_chosen_errors() {
    let clock = ManualClock::new();
    let b = breaker(1, &clock);
    let svc = ServiceBuilder::new()
        .layer(FallbackLayer::value(0u32).on_rejected())
        .layer(BreakerLayer::new(b.clone()))
        .service(service_fn(|fail: bool| async move {
            if fail { Err("down") } else { Ok(1u32) }
        }));
    let err = svc.clone().oneshot(true).await.unwrap_err();
    assert_eq!(err.to_string(), "down", "not a rejection: passes through");
    assert_eq!(
        svc.clone().oneshot(false).await.unwrap(),
        0,
        "open: fallback"
    );

    let any = ServiceBuilder::new()
        .layer(FallbackLayer::from_fn(|e: BoxError| async move {
            Ok::<_, BoxError>(format!("fallback for {e}"))
        }))
        .service(service_fn(|_: ()| async { Err::<String, _>("boom") }));
    assert_eq!(any.oneshot(()).await.unwrap(), "fallback for boom");
}

#[tokio::test(start_paused = true)]
async fn pipeline_layer_runs_the_whole_stack() {
    let clock = ManualClock::new();
    let b = breaker(10, &clock);
    let pipeline = Pipeline::builder()
        .retry(Retry::builder().max_retries(2).build().unwrap())
        .breaker(b.clone())
        .timeout(ms(100))
        .build()
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let counter = calls.clone();
    let svc = PipelineLayer::new(pipeline).layer(service_fn(move |n: u32| {
        let attempt = counter.fetch_add(1, Ordering::Relaxed);
        async move {
            if attempt == 0 {
                tokio::time::sleep(Duration::from_secs(1)).await; // times out
            }
            Ok::<_, BoxError>(n * 10)
        }
    }));
    assert_eq!(svc.oneshot(4).await.unwrap(), 40);
    assert_eq!(
        calls.load(Ordering::Relaxed),
        2,
        "timed out once, retried once"
    );
    assert_eq!(b.snapshot().consecutive_failures, 0);
}

#[tokio::test(start_paused = true)]
async fn service_builder_composes_every_layer() {
    let clock = ManualClock::new();
    let b = breaker(3, &clock);
    let svc = ServiceBuilder::new()
        .layer(FallbackLayer::value("fallback").on_rejected())
        .layer(TimeoutLayer::new(Duration::from_secs(5)).unwrap())
        .layer(RetryLayer::new(
            Retry::builder().max_retries(1).build().unwrap(),
        ))
        .layer(BreakerLayer::new(b.clone()))
        .layer(TimeoutLayer::new(ms(500)).unwrap())
        .layer(BulkheadLayer::new(
            Bulkhead::builder("stack")
                .max_concurrent(4)
                .build()
                .unwrap(),
        ))
        .service(service_fn(|ok: bool| async move {
            if ok { Ok("fresh") } else { Err("down") }
        }));
    assert_eq!(svc.clone().oneshot(true).await.unwrap(), "fresh");
    assert!(svc.clone().oneshot(false).await.is_err()); // 2 failed attempts
    // The third failure opens the breaker; the retry meets the rejection and the fallback
    // answers it.
    assert_eq!(svc.clone().oneshot(false).await.unwrap(), "fallback");
    assert_eq!(b.state(), State::Open);
    assert_eq!(svc.oneshot(true).await.unwrap(), "fallback");
}
