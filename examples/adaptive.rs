//! The load-adaptive policies against a local server on 127.0.0.1, in three acts:
//!
//! 1. **Hedging**: one answer in ten takes 300 ms. A second attempt sent after 25 ms cuts
//!    the slow tail: the p99 drops from about 300 ms to about 30 ms.
//! 2. **Adaptive concurrency limit**: the server has room for 16 calls; past that it slows
//!    down, and past 18 it times out. 64 eager clients go through a `ConcurrencyLimit`
//!    that starts at 4 and finds the server's capacity on its own.
//! 3. **Adaptive throttling**: the server accepts only 30 % of calls, then heals. The
//!    throttle sheds most of the doomed calls locally, and stops shedding once it heals.
//!
//! Run it with `cargo run --example adaptive` (about ten seconds). Each act checks its own
//! outcome and the run fails if one does not hold.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use fusebox::policy::{ConcurrencyLimit, Gradient2, Hedge, Throttle};
use fusebox::stack::Stack;
use fusebox::{Error, Outcome};
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

// ---------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------

/// Calls the server takes at once before it slows down.
const CAPACITY: u32 = 16;

#[derive(Clone, Default)]
struct Server {
    requests: Arc<AtomicU64>,
    in_flight: Arc<AtomicU32>,
    healed: Arc<AtomicBool>,
}

/// One answer in ten is slow, spread at random over the requests.
async fn slow_tail(State(s): State<Server>) -> StatusCode {
    let n = s.requests.fetch_add(1, Ordering::Relaxed);
    let draw = n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    let wait = if draw % 10 == 0 { 300 } else { 2 };
    tokio::time::sleep(Duration::from_millis(wait)).await;
    StatusCode::OK
}

/// Quick up to its capacity, slower with every call past it, timing out past 110 %.
async fn capacity(State(s): State<Server>) -> StatusCode {
    let n = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    let base = Duration::from_millis(10);
    let answer = if n > CAPACITY + CAPACITY / 8 {
        tokio::time::sleep(base * 5).await;
        StatusCode::GATEWAY_TIMEOUT
    } else {
        let overload = f64::from(n.saturating_sub(CAPACITY)) / f64::from(CAPACITY);
        tokio::time::sleep(base.mul_f64(1.0 + 8.0 * overload)).await;
        StatusCode::OK
    };
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    answer
}

/// Accepts three calls in ten until healed.
async fn refusing(State(s): State<Server>) -> StatusCode {
    let n = s.requests.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(2)).await;
    if s.healed.load(Ordering::Relaxed) || n % 10 < 3 {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn start_server(state: Server) -> String {
    let app = Router::new()
        .route("/slow-tail", get(slow_tail))
        .route("/capacity", get(capacity))
        .route("/refusing", get(refusing))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

// ---------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------

#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("status {0}")]
    Status(u16),
    #[error("transport: {0}")]
    Transport(String),
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

async fn get_status(client: &HttpClient, url: &str) -> Result<(), CallError> {
    let uri = url
        .parse()
        .map_err(|e| CallError::Transport(format!("{e}")))?;
    let response = client
        .get(uri)
        .await
        .map_err(|e| CallError::Transport(e.to_string()))?;
    match response.status().as_u16() {
        200 => Ok(()),
        status => Err(CallError::Status(status)),
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

// ---------------------------------------------------------------------------------------
// Act 1: hedging
// ---------------------------------------------------------------------------------------

async fn hedging(client: &HttpClient, base: &str) -> Result<(), Box<dyn std::error::Error>> {
    let url = format!("{base}/slow-tail");
    let hedge = Hedge::builder("catalog")
        .delay(Duration::from_millis(25))
        .max_hedged_attempts(1)
        .build()?;
    let mut plain = Vec::new();
    let mut hedged = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        get_status(client, &url).await?;
        plain.push(started.elapsed());

        let started = Instant::now();
        hedge.call(|| get_status(client, &url)).await?;
        hedged.push(started.elapsed());
    }
    plain.sort();
    hedged.sort();
    let stats = hedge.stats();
    println!("== 1. hedging: one answer in ten takes 300 ms");
    println!(
        "   without a hedge: p50 {:>4} ms, p99 {:>4} ms",
        percentile(&plain, 0.5).as_millis(),
        percentile(&plain, 0.99).as_millis()
    );
    println!(
        "   hedged at 25 ms: p50 {:>4} ms, p99 {:>4} ms ({} hedges sent, {} won, {} losers dropped)",
        percentile(&hedged, 0.5).as_millis(),
        percentile(&hedged, 0.99).as_millis(),
        stats.hedges_sent,
        stats.hedge_wins,
        stats.losers_cancelled
    );
    if percentile(&hedged, 0.99) >= Duration::from_millis(200) || stats.hedge_wins == 0 {
        return Err("the hedges did not cut the slow tail".into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Act 2: the adaptive concurrency limit
// ---------------------------------------------------------------------------------------

async fn concurrency(client: &HttpClient, base: &str) -> Result<(), Box<dyn std::error::Error>> {
    let url = Arc::new(format!("{base}/capacity"));
    let limit = ConcurrencyLimit::builder("inventory")
        .algorithm(Gradient2::new())
        .initial_limit(4)
        .min_limit(1)
        .max_limit(200)
        .window(Duration::from_millis(100), 10)
        .build()?;
    let stack = Stack::new().policy(limit.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let (served, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (client, url, stack) = (client.clone(), Arc::clone(&url), stack.clone());
            let (stop, served, refused) =
                (Arc::clone(&stop), Arc::clone(&served), Arc::clone(&refused));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match stack.call(|| get_status(&client, &url)).await {
                        Err(Error::LimitExceeded(_)) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        _ => {
                            served.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    println!("== 2. adaptive concurrency limit: the server has room for {CAPACITY} calls");
    let mut line = String::from("   limit every 250 ms:");
    let mut late = Vec::new();
    for tick in 0..16 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = limit.limit();
        line.push_str(&format!(" {now}"));
        if tick >= 8 {
            late.push(f64::from(now));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    println!("{line}");
    let mean = late.iter().sum::<f64>() / late.len() as f64;
    println!(
        "   settled at {mean:.1} over the last 2 s; {} calls served, {} refused at once",
        served.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    let capacity = f64::from(CAPACITY);
    if !(capacity * 0.5..=capacity * 1.5).contains(&mean) {
        return Err(format!("the limit settled at {mean:.1}, far from {CAPACITY}").into());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Act 3: adaptive throttling
// ---------------------------------------------------------------------------------------

async fn throttling(
    client: &HttpClient,
    base: &str,
    server: &Server,
) -> Result<(), Box<dyn std::error::Error>> {
    let url = format!("{base}/refusing");
    let throttle = Throttle::builder("quotes")
        .window(Duration::from_secs(1), 10)
        .seed(7)
        .build()?;
    // A 503 is a refusal by the dependency; nothing else is.
    let refused_by_server = |r: &Result<(), Error<CallError>>| match r {
        Err(Error::Inner(CallError::Status(503))) => Outcome::Failure,
        _ => Outcome::Success,
    };
    let stack = Stack::new().policy(throttle.clone().classified(refused_by_server));
    println!("== 3. adaptive throttling: the server accepts 30 % of calls, then heals");
    let phase = |label: &'static str| {
        let (stack, client, url) = (&stack, client, &url);
        async move {
            let (mut sent, mut shed) = (0u32, 0u32);
            let until = Instant::now() + Duration::from_millis(1500);
            while Instant::now() < until {
                match stack.call(|| get_status(client, url)).await {
                    Err(Error::Throttled(_)) => {
                        shed += 1;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    _ => sent += 1,
                }
            }
            let share = f64::from(shed) / f64::from(sent + shed);
            println!(
                "   {label}: {sent} calls sent, {shed} shed locally ({:.0} %)",
                share * 100.0
            );
            share
        }
    };
    let sick = phase("refusing 70 %").await;
    server.healed.store(true, Ordering::Relaxed);
    // The window forgets the refusals within a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let healed = phase("healed       ").await;
    if sick < 0.3 || healed > 0.05 {
        return Err(format!("shed {sick:.2} while refusing and {healed:.2} once healed").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::default();
    let base = start_server(server.clone()).await;
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(128)
        .build_http();
    hedging(&client, &base).await?;
    concurrency(&client, &base).await?;
    throttling(&client, &base, &server).await?;
    Ok(())
}
