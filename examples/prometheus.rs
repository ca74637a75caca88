//! fusebox's metrics, scraped by Prometheus.
//!
//! Installs the Prometheus recorder, serves `GET /metrics` (and `GET /health`) on 127.0.0.1
//! at a free port, drives a breaker, a retry policy, a bulkhead and a mode controller
//! through a few failures, then scrapes its own endpoint once over plain HTTP, prints the
//! fusebox lines and exits.
//!
//! Run it with `cargo run --example prometheus`.

use std::error::Error;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use fusebox::backoff::Backoff;
use fusebox::breaker::Breaker;
use fusebox::clock::PreciseClock;
use fusebox::health::{HealthRegistry, RetryStats};
use fusebox::mode::ModeController;
use fusebox::observe::{self, MetricsListener, names};
use fusebox::policy::{Bulkhead, Retry};
use fusebox::tower::http::axum::health_handler;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves the endpoints, drives the policies, and returns the text of one scrape.
pub async fn serve_and_scrape() -> Result<String, Box<dyn Error>> {
    // Durations as a histogram with buckets (without them the exporter writes a summary).
    let prometheus = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(names::CALL_DURATION.to_owned()),
            &[0.001, 0.01, 0.1, 1.0],
        )?
        .install_recorder()?;

    let breaker = Breaker::builder("inventory")
        .consecutive_failures(3)
        .cooldown(Duration::from_secs(30))
        .clock(PreciseClock) // these calls take microseconds: time them finely
        .listener(Arc::new(MetricsListener::new()))
        .build()?;
    observe::publish_state(&breaker);
    let retry_stats = RetryStats::new();
    let retry = retry_stats
        .attach(observe::retry_metrics(
            Retry::<u32, io::Error>::builder()
                .name("inventory-retry")
                .max_retries(2)
                .backoff(Backoff::fixed(Duration::from_millis(1)).build()?),
        ))
        .build()?;
    let bulkhead =
        observe::bulkhead_metrics(Bulkhead::builder("exports").max_concurrent(1)).build()?;
    let registry = HealthRegistry::new();
    registry.add_breaker(&breaker)?;
    registry.add_bulkhead(&bulkhead)?;
    registry.add_retry("inventory-retry", &retry_stats)?;
    let modes = ModeController::builder("storefront", ["PRIMARY", "HEURISTIC", "SAFE"])
        .rule(
            "HEURISTIC",
            r#"(state == "open" or retries_1h > 10) and failed_components < 2"#,
        )
        .rule("SAFE", "failed_components >= 2")
        .build()?;

    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let text = prometheus.render();
                async move { text }
            }),
        )
        .route("/health", get(health_handler(registry.clone())));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // Two good calls, then a dependency that fails every time: the retry makes three
    // attempts through the breaker, which trips on the third and rejects what follows.
    for _ in 0..2 {
        breaker.call(|| async { Ok::<_, io::Error>(1) }).await?;
    }
    let outcome = retry
        .call(|| async {
            let upstream = || async { Err::<u32, _>(io::Error::other("503 from upstream")) };
            breaker.call(upstream).await.map_err(io::Error::other)
        })
        .await;
    assert!(outcome.is_err());
    assert!(
        breaker
            .call(|| async { Ok::<_, io::Error>(1) })
            .await
            .is_err()
    );
    let _busy = bulkhead.try_enter();
    assert!(bulkhead.call(|| async { Ok::<_, ()>(()) }).await.is_err());
    modes.update(&registry).await?;

    let text = scrape(addr, "/metrics").await?;
    server.abort();
    Ok(text)
}

/// One `GET` over a plain TCP connection, as a scraper would make it; returns the body.
pub async fn scrape(addr: SocketAddr, path: &str) -> Result<String, Box<dyn Error>> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or("no end of headers in the response")?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("unexpected response: {head}").into());
    }
    Ok(body.to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let text = serve_and_scrape().await?;
    for line in text.lines().filter(|l| l.starts_with("fusebox_")) {
        println!("{line}");
    }
    Ok(())
}
