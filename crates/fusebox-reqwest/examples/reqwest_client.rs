//! A reqwest client with fusebox middleware against a local server that turns flaky, goes
//! down and comes back: retries absorb the flakiness, the host's breaker opens while it is
//! down (requests fail at once, the server sees none), and a trial closes it again.
//!
//! `cargo run -p fusebox-reqwest --example reqwest_client`

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use fusebox_core::backoff::Backoff;
use fusebox_core::breaker::BreakerSettings;
use fusebox_reqwest::{BreakerMiddleware, RetryMiddleware, rejection, retry_policy};

const HEALTHY: u8 = 0;
const FLAKY: u8 = 1;
const DOWN: u8 = 2;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The upstream: its mood is set by the script below; it counts what reaches it.
    let mood = Arc::new(AtomicU8::new(HEALTHY));
    let hits = Arc::new(AtomicU32::new(0));
    let (server_mood, server_hits) = (Arc::clone(&mood), Arc::clone(&hits));
    let app = axum::Router::new().fallback(move || {
        let hit = server_hits.fetch_add(1, Ordering::SeqCst);
        let status = match server_mood.load(Ordering::SeqCst) {
            FLAKY if hit % 2 == 0 => StatusCode::SERVICE_UNAVAILABLE,
            DOWN => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::OK,
        };
        async move { (status, "stock: 42") }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/stock/42", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let breakers = BreakerMiddleware::per_host(
        "inventory",
        BreakerSettings {
            consecutive_failures: Some(3),
            cooldown: Some(Duration::from_millis(300)),
            ..Default::default()
        },
    )?;
    let retry = retry_policy()
        .max_retries(2)
        .backoff(Backoff::fixed(Duration::from_millis(10)).build()?)
        .build()?;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(retry)) // outside: every attempt meets the breaker
        .with(breakers.clone())
        .build();

    for (phase, state) in [("healthy", HEALTHY), ("flaky", FLAKY), ("down", DOWN)] {
        mood.store(state, Ordering::SeqCst);
        let before = hits.load(Ordering::SeqCst);
        let mut line = Vec::new();
        for _ in 0..6 {
            line.push(match client.get(&url).send().await {
                Ok(response) => response.status().as_u16().to_string(),
                Err(e) if rejection(&e).is_some() => "rejected".to_owned(),
                Err(e) => format!("error: {e}"),
            });
        }
        let reached = hits.load(Ordering::SeqCst) - before;
        println!(
            "{phase:>8}: {} ({reached} requests reached the server)",
            line.join(" ")
        );
    }
    let breaker = breakers.breaker_for(&url.parse()?);
    println!("breaker {} is {:?}", breaker.name(), breaker.state());
    assert_eq!(breaker.state(), fusebox_core::State::Open);

    // The server recovers; after the cooldown one trial goes through and closes the breaker.
    mood.store(HEALTHY, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let status = client.get(&url).send().await?.status();
    println!("recovered: {status}, breaker {:?}", breaker.state());
    assert_eq!(breaker.state(), fusebox_core::State::Closed);
    Ok(())
}
