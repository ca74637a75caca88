//! The HTTP client preset behaves as documented: retries a 503, honours Retry-After within
//! its bound, spares non-idempotent requests, and trips its breaker on a sick upstream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fusebox_core::{Rejected, State};
use fusebox_tower::preset::{HTTP_MAX_RETRIES, http_client};
use http::{Request, Response, StatusCode};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

/// An upstream answering the statuses of `script` in turn (its last one forever), with
/// `retry_after` on every 503, counting the requests it receives.
fn upstream(
    script: &'static [u16],
    retry_after: Option<&'static str>,
) -> (
    Arc<AtomicU32>,
    impl Service<Request<String>, Response = Response<String>, Error = std::io::Error, Future: Send>
    + Clone,
) {
    let seen = Arc::new(AtomicU32::new(0));
    let count = seen.clone();
    let svc = service_fn(move |_req: Request<String>| {
        let n = count.fetch_add(1, Ordering::Relaxed) as usize;
        let status = script[n.min(script.len() - 1)];
        async move {
            let mut response = Response::builder().status(status);
            if let (503, Some(after)) = (status, retry_after) {
                response = response.header(http::header::RETRY_AFTER, after);
            }
            Ok(response.body(String::new()).expect("a valid response"))
        }
    });
    (seen, svc)
}

fn get() -> Request<String> {
    Request::get("http://upstream/items")
        .body(String::new())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn retries_a_503_and_returns_the_success() {
    let (seen, svc) = upstream(&[503, 200], None);
    let client = http_client::<String>("items").unwrap().layer(svc);
    let response = client.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.load(Ordering::Relaxed), 2);
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_its_retries_with_the_last_response() {
    let (seen, svc) = upstream(&[503], None);
    let client = http_client::<String>("items").unwrap().layer(svc);
    let response = client.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen.load(Ordering::Relaxed), HTTP_MAX_RETRIES + 1);
}

#[tokio::test(start_paused = true)]
async fn honours_retry_after_up_to_its_bound() {
    let (seen, svc) = upstream(&[503, 200], Some("3"));
    let client = http_client::<String>("items").unwrap().layer(svc);
    let started = Instant::now();
    let response = client.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(seen.load(Ordering::Relaxed), 2);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(4),
        "waited {waited:?}"
    );

    // Past the 30 s bound: no retry, the 503 goes back at once.
    let (seen, svc) = upstream(&[503, 200], Some("120"));
    let client = http_client::<String>("items").unwrap().layer(svc);
    let started = Instant::now();
    let response = client.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen.load(Ordering::Relaxed), 1);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn sends_a_post_once() {
    let (seen, svc) = upstream(&[503, 200], None);
    let client = http_client::<String>("items").unwrap().layer(svc);
    let post = Request::post("http://upstream/orders")
        .body("order".to_string())
        .unwrap();
    let response = client.oneshot(post).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen.load(Ordering::Relaxed), 1);
}

#[tokio::test(start_paused = true)]
async fn trips_its_breaker_on_a_sick_upstream_and_then_rejects_without_calling() {
    let (seen, svc) = upstream(&[500], None);
    let preset = http_client::<String>("items").unwrap();
    let breaker = preset.breaker().clone();
    let client = preset.layer(svc);
    let mut calls = 0;
    while breaker.state() == State::Closed {
        calls += 1;
        assert!(calls <= 10, "still closed after {calls} calls");
        // The call whose attempt trips the breaker gets the rejection of its next attempt:
        // the retry stops at once.
        match client.clone().oneshot(get()).await {
            Ok(response) => assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR),
            Err(e) => assert!(e.is::<Rejected>() && breaker.state() == State::Open, "{e}"),
        }
    }
    assert_eq!(breaker.state(), State::Open);
    // Half of the last 20 attempts failed once 10 were made: at the 10th attempt.
    assert_eq!(seen.load(Ordering::Relaxed), 10);
    let before = seen.load(Ordering::Relaxed);
    let refused = client.clone().oneshot(get()).await.unwrap_err();
    assert!(refused.is::<Rejected>(), "{refused}");
    assert_eq!(
        seen.load(Ordering::Relaxed),
        before,
        "an open breaker sends nothing"
    );
}
