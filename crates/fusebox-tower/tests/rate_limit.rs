//! The rate-limit layers: refusals as boxed `RateLimited`, waits on paused time, keys, and
//! axum answering 429 with Retry-After.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fusebox_core::RateLimited;
use fusebox_core::clock::ManualClock;
use fusebox_policy::TokioClock;
use fusebox_policy::policy::RateLimiter;
use fusebox_tower::BoxError;
use fusebox_tower::rate_limit::{KeyedRateLimitLayer, RateLimitLayer};
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};

fn counting_service(
    calls: Arc<AtomicU32>,
) -> impl tower::Service<&'static str, Response = &'static str, Error = std::io::Error, Future: Send>
+ Clone {
    service_fn(move |req: &'static str| {
        calls.fetch_add(1, Ordering::Relaxed);
        async move { Ok::<_, std::io::Error>(req) }
    })
}

#[tokio::test]
async fn reject_mode_refuses_past_the_burst_without_calling_the_service() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::builder("api")
        .per_second(2)
        .clock(clock.clone())
        .build()
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let svc = RateLimitLayer::new(limiter).layer(counting_service(calls.clone()));
    assert_eq!(svc.clone().oneshot("a").await.unwrap(), "a");
    assert_eq!(svc.clone().oneshot("b").await.unwrap(), "b");
    let refused: BoxError = svc.clone().oneshot("c").await.unwrap_err();
    let limited = refused
        .downcast_ref::<RateLimited>()
        .expect("a RateLimited");
    assert_eq!(limited.retry_after, Duration::from_millis(500));
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    clock.advance(Duration::from_millis(500));
    assert_eq!(svc.oneshot("d").await.unwrap(), "d");
}

#[tokio::test(start_paused = true)]
async fn wait_mode_delays_the_request_until_its_permit() {
    let limiter = RateLimiter::builder("api")
        .per_second(5)
        .burst(1)
        .max_wait(Duration::from_secs(1))
        .clock(TokioClock::new())
        .build()
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let svc = RateLimitLayer::new(limiter).layer(counting_service(calls.clone()));
    let start = Instant::now();
    for _ in 0..3 {
        svc.clone().oneshot("x").await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::from_millis(400));
    assert_eq!(calls.load(Ordering::Relaxed), 3);
}

#[tokio::test(start_paused = true)]
async fn wait_mode_refuses_when_the_permit_is_past_the_bound() {
    let limiter = RateLimiter::builder("api")
        .per_second(1)
        .max_wait(Duration::from_millis(100))
        .clock(TokioClock::new())
        .build()
        .unwrap();
    let svc = RateLimitLayer::new(limiter).layer(counting_service(Arc::default()));
    svc.clone().oneshot("x").await.unwrap();
    let refused = svc.oneshot("y").await.unwrap_err();
    assert!(refused.is::<RateLimited>());
}

#[tokio::test]
async fn keyed_layer_limits_each_key_on_its_own() {
    let limiter = RateLimiter::builder("tenants")
        .per_second(1)
        .clock(ManualClock::new())
        .build_keyed::<String>()
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let tenant_of = |req: &&'static str| req.split('/').next().unwrap_or_default().to_string();
    let svc = KeyedRateLimitLayer::new(limiter, tenant_of).layer(counting_service(calls.clone()));
    svc.clone().oneshot("acme/orders").await.unwrap();
    let refused = svc.clone().oneshot("acme/invoices").await.unwrap_err();
    assert_eq!(
        refused.downcast_ref::<RateLimited>().unwrap().name,
        "tenants/acme"
    );
    svc.oneshot("initech/orders").await.unwrap();
    assert_eq!(calls.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn axum_answers_429_with_retry_after_through_handle_error() {
    use axum::Router;
    use axum::body::Body;
    use axum::error_handling::HandleErrorLayer;
    use axum::routing::get;
    use fusebox_tower::http::axum::handle_error;
    use tower::ServiceBuilder;

    let limiter = RateLimiter::builder("public-api")
        .quota(1, Duration::from_secs(3))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let app = Router::new().route("/", get(|| async { "hello" })).layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(handle_error))
            .layer(RateLimitLayer::new(limiter)),
    );
    let request = || axum::http::Request::get("/").body(Body::empty()).unwrap();
    let ok = app.clone().oneshot(request()).await.unwrap();
    assert_eq!(ok.status(), 200);
    let limited = app.oneshot(request()).await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "3");
}
