//! An axum service whose handler calls a flaky downstream through a fusebox-wrapped hyper
//! client.
//!
//! * `pricing` (the downstream, on 127.0.0.1) answers prices, until it starts failing;
//! * `shop` (the service, on 127.0.0.1) answers `GET /quote/{sku}` by asking `pricing` through
//!   a hyper client wrapped in a breaker (HTTP classification: 5xx, 429, 408 are failures)
//!   and a timeout.
//!
//! When `pricing` fails the breaker opens and `shop` answers at once with `503 Service
//! Unavailable` and a `Retry-After` header, without waiting on the sick dependency; once it
//! recovers, a trial request closes the breaker and traffic resumes.
//!
//! Run it with `cargo run --example axum_server`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use fusebox::breaker::Breaker;
use fusebox::error::{Rejected, TimedOut};
use fusebox::tower::http::HttpClassifier;
use fusebox::tower::http::axum::RejectedResponse;
use fusebox::tower::timeout::TimeoutLayer;
use fusebox::tower::{BoxError, BreakerLayer};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{ServiceBuilder, ServiceExt};

// ---------------------------------------------------------------------------------------
// The downstream
// ---------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Pricing {
    failing: Arc<AtomicBool>,
    requests: Arc<AtomicU32>,
}

async fn price(State(p): State<Pricing>, Path(sku): Path<String>) -> (StatusCode, String) {
    p.requests.fetch_add(1, Ordering::Relaxed);
    if p.failing.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(50)).await; // a sick service is slow too
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "pricing database unavailable".into(),
        )
    } else {
        (
            StatusCode::OK,
            format!("{{\"sku\":\"{sku}\",\"price\":42}}"),
        )
    }
}

// ---------------------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------------------

type Downstream = tower::util::BoxCloneSyncService<
    http::Request<Empty<Bytes>>,
    http::Response<hyper::body::Incoming>,
    BoxError,
>;

#[derive(Clone)]
struct Shop {
    pricing: Downstream,
    base: String,
}

async fn quote(State(shop): State<Shop>, Path(sku): Path<String>) -> Response {
    let request = match http::Request::get(format!("{}/price/{sku}", shop.base)).body(Empty::new())
    {
        Ok(r) => r,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    match shop.pricing.oneshot(request).await {
        Ok(resp) if resp.status().is_success() => {
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (StatusCode::OK, body).into_response()
        }
        Ok(resp) => (
            StatusCode::BAD_GATEWAY,
            format!("pricing answered {}", resp.status()),
        )
            .into_response(),
        Err(e) => match e.downcast::<Rejected>() {
            Ok(rejected) => RejectedResponse(*rejected).into_response(),
            Err(e) if e.is::<TimedOut>() => StatusCode::GATEWAY_TIMEOUT.into_response(),
            Err(_) => StatusCode::BAD_GATEWAY.into_response(),
        },
    }
}

async fn serve(app: Router) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

type Caller = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

/// One request to the shop, printed with its status, Retry-After and latency.
async fn ask(
    caller: &Caller,
    url: &str,
    label: &str,
) -> Result<(StatusCode, Option<String>, Duration), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let resp = caller
        .request(http::Request::get(url).body(Empty::new())?)
        .await?;
    let took = start.elapsed();
    let status = StatusCode::from_u16(resp.status().as_u16())?;
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    println!(
        "{label:>10}: {} {}{:>6.1} ms",
        status.as_u16(),
        retry_after
            .as_deref()
            .map(|s| format!("Retry-After: {s}s  "))
            .unwrap_or_default(),
        took.as_secs_f64() * 1000.0
    );
    Ok((status, retry_after, took))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pricing = Pricing::default();
    let pricing_url = serve(
        Router::new()
            .route("/price/{sku}", get(price))
            .with_state(pricing.clone()),
    )
    .await?;

    let breaker = Breaker::builder("pricing")
        .failures_in_last(3, 5)
        .cooldown(Duration::from_millis(800))
        .half_open_trials(1, 1)
        .on_transition(|t| println!("    [breaker] {} -> {}: {}", t.from, t.to, t.reason))
        .build()?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let downstream = ServiceBuilder::new()
        .layer(BreakerLayer::new(breaker.clone()).classifier(HttpClassifier::default()))
        .layer(TimeoutLayer::new(Duration::from_secs(2))?)
        .service(client.map_err(BoxError::from));
    let shop = Shop {
        pricing: tower::util::BoxCloneSyncService::new(downstream),
        base: pricing_url,
    };
    let shop_url = serve(
        Router::new()
            .route("/quote/{sku}", get(quote))
            .with_state(shop),
    )
    .await?;

    let caller = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let url = format!("{shop_url}/quote/sku-7");
    let (mut tripped, mut fast_503s, mut recovered) = (false, 0, false);

    println!("pricing is healthy");
    for _ in 0..3 {
        ask(&caller, &url, "healthy").await?;
    }

    println!("pricing starts failing");
    let before_outage = pricing.requests.load(Ordering::Relaxed);
    pricing.failing.store(true, Ordering::Relaxed);
    for _ in 0..8 {
        let (status, retry_after, _) = ask(&caller, &url, "failing").await?;
        if status == StatusCode::SERVICE_UNAVAILABLE && retry_after.is_some() {
            tripped = true;
            fast_503s += 1;
        }
    }
    let outage_calls = pricing.requests.load(Ordering::Relaxed) - before_outage;

    println!("pricing recovers; waiting out the cooldown");
    pricing.failing.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(900)).await;
    for _ in 0..3 {
        let (status, _, _) = ask(&caller, &url, "recovered").await?;
        recovered |= status == StatusCode::OK;
    }

    println!(
        "during the outage the shop answered 8 requests, pricing saw {outage_calls}; {fast_503s} fast 503s; final state {}",
        breaker.state()
    );
    if !(tripped && fast_503s > 0 && recovered && breaker.state() == fusebox::State::Closed) {
        return Err("expected a trip, fast 503s with Retry-After, and recovery".into());
    }
    Ok(())
}
