//! The outlier layer: against two real axum servers on 127.0.0.1 (one answering 503) the
//! sick one is ejected and the healthy one keeps serving; on paused time, an ejection ends
//! and axum answers an ejected call with 503 and `Retry-After`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use bytes::Bytes;
use fusebox_core::{Ejected, ErrIsFailure};
use fusebox_policy::TokioClock;
use fusebox_policy::policy::OutlierDetector;
use fusebox_tower::http::HttpClassifier;
use fusebox_tower::outlier::OutlierLayer;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, ServiceExt, service_fn};

#[derive(Clone)]
struct Upstream {
    status: StatusCode,
    requests: Arc<AtomicU32>,
}

async fn handle(State(up): State<Upstream>) -> StatusCode {
    up.requests.fetch_add(1, Ordering::Relaxed);
    up.status
}

async fn start(status: StatusCode) -> (String, Arc<AtomicU32>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind on loopback");
    let addr = listener.local_addr().expect("local addr");
    let requests = Arc::new(AtomicU32::new(0));
    let app = Router::new().fallback(handle).with_state(Upstream {
        status,
        requests: Arc::clone(&requests),
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr.to_string(), requests)
}

fn authority(req: &http::Request<Full<Bytes>>) -> String {
    req.uri()
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_sick_server_is_ejected_and_the_healthy_one_keeps_serving() {
    let (sick, sick_requests) = start(StatusCode::SERVICE_UNAVAILABLE).await;
    let (healthy, healthy_requests) = start(StatusCode::OK).await;
    let detector = OutlierDetector::builder("replicas")
        .consecutive_failures(3)
        .base_ejection_time(Duration::from_secs(60))
        .build()
        .unwrap();
    let endpoints = [sick.clone(), healthy.clone()];
    detector.available(&endpoints);
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let svc =
        OutlierLayer::new(detector.clone(), authority, HttpClassifier::default()).layer(client);
    let get = |host: &str| {
        http::Request::get(format!("http://{host}/"))
            .body(Full::default())
            .unwrap()
    };

    // Round robin over the endpoints the detector leaves available.
    let mut statuses = Vec::new();
    let mut refused = 0;
    for i in 0..20 {
        let host = &endpoints[i % 2];
        match svc.clone().oneshot(get(host)).await {
            Ok(response) => statuses.push((host == &sick, response.status().as_u16())),
            Err(error) => {
                let ejected = error.downcast_ref::<Ejected>().expect("only ejections");
                assert_eq!(ejected.name, sick.as_str());
                refused += 1;
            }
        }
    }
    assert_eq!(
        sick_requests.load(Ordering::Relaxed),
        3,
        "spared after 3 503s"
    );
    assert_eq!(refused, 7);
    assert_eq!(healthy_requests.load(Ordering::Relaxed), 10);
    assert!(
        statuses
            .iter()
            .all(|&(to_sick, status)| status == if to_sick { 503 } else { 200 })
    );
    assert_eq!(detector.ejected(), vec![sick.clone()]);
    assert_eq!(detector.available(&endpoints), [&healthy]);
}

#[tokio::test(start_paused = true)]
async fn an_ejected_endpoint_returns_after_the_ejection_time() {
    let detector = OutlierDetector::builder("replicas")
        .consecutive_failures(2)
        .base_ejection_time(Duration::from_secs(10))
        .clock(TokioClock::new())
        .build()
        .unwrap();
    detector.available(&[1u8, 2]);
    let calls = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&calls);
    let svc = OutlierLayer::new(detector.clone(), |host: &u8| *host, ErrIsFailure).layer(
        service_fn(move |host: u8| {
            seen.fetch_add(1, Ordering::Relaxed);
            async move {
                if host == 1 {
                    Err(std::io::Error::other("reset"))
                } else {
                    Ok(host)
                }
            }
        }),
    );
    for _ in 0..2 {
        assert!(
            svc.clone()
                .oneshot(1)
                .await
                .unwrap_err()
                .is::<std::io::Error>()
        );
    }
    let refused = svc.clone().oneshot(1).await.unwrap_err();
    let ejected = refused.downcast_ref::<Ejected>().unwrap();
    assert_eq!(ejected.retry_after, Duration::from_secs(10));
    assert_eq!(
        calls.load(Ordering::Relaxed),
        2,
        "the ejected call never ran"
    );

    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(
        svc.clone()
            .oneshot(1)
            .await
            .unwrap_err()
            .is::<std::io::Error>()
    );
    assert_eq!(calls.load(Ordering::Relaxed), 3, "back in after 10 s");
    assert_eq!(svc.oneshot(2).await.unwrap(), 2);
}

#[tokio::test]
async fn axum_answers_an_ejected_call_with_503_and_retry_after() {
    let ejected: fusebox_tower::BoxError = Box::new(Ejected {
        name: "10.0.0.7:443".into(),
        retry_after: Duration::from_secs(12),
    });
    let response = fusebox_tower::http::axum::handle_error(ejected).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "12");
}
