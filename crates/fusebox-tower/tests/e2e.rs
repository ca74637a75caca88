//! End to end with real axum and hyper servers on 127.0.0.1: the breaker layer around a
//! hyper client, keyed breakers per host, idempotent-only retries, and cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use bytes::Bytes;
use fusebox_core::breaker::{Breaker, BreakerSettings, State as BreakerState};
use fusebox_core::clock::ManualClock;
use fusebox_core::{Rejected, backoff::Backoff};
use fusebox_tower::http::{HttpClassifier, IdempotentRequests};
use fusebox_tower::keyed::{BreakerRegistry, KeyedBreakerLayer};
use fusebox_tower::retry::RetryLayer;
use fusebox_tower::{BoxError, BreakerLayer};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt};

/// A test server: answers 500 while `failing`, otherwise 200, after `delay`; counts requests.
#[derive(Clone, Default)]
struct Upstream {
    failing: Arc<AtomicBool>,
    slow: Arc<AtomicBool>,
    requests: Arc<AtomicU32>,
}

async fn handle(State(up): State<Upstream>) -> (StatusCode, &'static str) {
    up.requests.fetch_add(1, Ordering::Relaxed);
    if up.slow.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    if up.failing.load(Ordering::Relaxed) {
        (StatusCode::INTERNAL_SERVER_ERROR, "down")
    } else {
        (StatusCode::OK, "ok")
    }
}

async fn start(up: Upstream) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind on loopback");
    let addr = listener.local_addr().expect("local addr");
    let app = Router::new().fallback(handle).with_state(up);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn get(url: &str) -> http::Request<Full<Bytes>> {
    http::Request::get(url)
        .body(Full::default())
        .expect("valid request")
}

#[tokio::test]
async fn open_fast_rejection_half_open_and_close() {
    let up = Upstream::default();
    let base = start(up.clone()).await;
    let clock = ManualClock::new();
    let breaker = Breaker::builder("upstream")
        .failures_in_last(2, 4)
        .cooldown(Duration::from_secs(5))
        .clock(clock.clone())
        .build()
        .unwrap();
    let svc = BreakerLayer::new(breaker.clone())
        .classifier(HttpClassifier::default())
        .layer(client());

    assert_eq!(svc.clone().oneshot(get(&base)).await.unwrap().status(), 200);
    up.failing.store(true, Ordering::Relaxed);
    for _ in 0..2 {
        let resp = svc.clone().oneshot(get(&base)).await.unwrap();
        assert_eq!(
            resp.status(),
            500,
            "a 500 is an Ok response, classified as a failure"
        );
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let seen = up.requests.load(Ordering::Relaxed);
    let err = svc.clone().oneshot(get(&base)).await.unwrap_err();
    let rejected = err.downcast_ref::<Rejected>().expect("fast rejection");
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(5)));
    assert_eq!(
        up.requests.load(Ordering::Relaxed),
        seen,
        "the server was spared"
    );

    up.failing.store(false, Ordering::Relaxed);
    clock.advance(Duration::from_secs(5));
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert_eq!(svc.clone().oneshot(get(&base)).await.unwrap().status(), 200);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test]
async fn keyed_breakers_isolate_hosts() {
    let (sick, healthy) = (Upstream::default(), Upstream::default());
    sick.failing.store(true, Ordering::Relaxed);
    let sick_url = start(sick.clone()).await;
    let healthy_url = start(healthy.clone()).await;
    let registry = BreakerRegistry::<String>::builder("host")
        .settings(BreakerSettings {
            consecutive_failures: Some(2),
            ..Default::default()
        })
        .build()
        .unwrap();
    let by_host = |req: &http::Request<Full<Bytes>>| {
        req.uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default()
    };
    let svc = KeyedBreakerLayer::new(registry.clone(), by_host)
        .classifier(HttpClassifier::default())
        .layer(client());

    for _ in 0..2 {
        let _ = svc.clone().oneshot(get(&sick_url)).await.unwrap();
    }
    let err = svc.clone().oneshot(get(&sick_url)).await.unwrap_err();
    assert!(err.is::<Rejected>(), "the sick host's breaker is open");
    for _ in 0..5 {
        let resp = svc.clone().oneshot(get(&healthy_url)).await.unwrap();
        assert_eq!(resp.status(), 200, "the healthy host is unaffected");
    }
    assert_eq!(registry.len(), 2);
    assert_eq!(healthy.requests.load(Ordering::Relaxed), 5);
}

#[tokio::test]
async fn retries_only_idempotent_requests() {
    let up = Upstream::default();
    up.failing.store(true, Ordering::Relaxed);
    let base = start(up.clone()).await;
    let retry = fusebox_tower::http::retry_policy::<hyper::body::Incoming>()
        .max_retries(2)
        .backoff(Backoff::fixed(Duration::from_millis(5)).build().unwrap())
        .build()
        .unwrap();
    let svc = RetryLayer::new(retry)
        .requests(IdempotentRequests::new())
        .layer(client().map_err(BoxError::from));

    let resp = svc.clone().oneshot(get(&base)).await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(
        up.requests.load(Ordering::Relaxed),
        3,
        "a GET: 1 attempt + 2 retries"
    );

    let post = http::Request::post(base.as_str())
        .body(Full::new(Bytes::from_static(b"order")))
        .unwrap();
    let resp = svc.clone().oneshot(post).await.unwrap();
    assert_eq!(resp.status(), 500);
    assert_eq!(up.requests.load(Ordering::Relaxed), 4, "a POST: sent once");
}

#[tokio::test]
async fn a_cancelled_request_never_wedges_half_open() {
    let up = Upstream::default();
    let base = start(up.clone()).await;
    let clock = ManualClock::new();
    let breaker = Breaker::builder("cancel")
        .consecutive_failures(1)
        .cooldown(Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let svc = BreakerLayer::new(breaker.clone())
        .classifier(HttpClassifier::default())
        .layer(client());
    breaker.record_failure();
    clock.advance(Duration::from_secs(1));

    // The trial request hangs on the server; the caller gives up after 50 ms.
    up.slow.store(true, Ordering::Relaxed);
    let trial = svc.clone().oneshot(get(&base));
    assert!(
        tokio::time::timeout(Duration::from_millis(50), trial)
            .await
            .is_err()
    );
    up.slow.store(false, Ordering::Relaxed);

    let snapshot = breaker.snapshot();
    assert_eq!(snapshot.state, BreakerState::HalfOpen);
    assert_eq!(
        snapshot.trials_in_flight, 0,
        "the cancelled trial freed its slot"
    );
    let resp = svc.clone().oneshot(get(&base)).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    assert_eq!(breaker.state(), BreakerState::Closed);
}
