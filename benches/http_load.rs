//! End-to-end loopback HTTP load: requests per second through a hyper client, bare and
//! wrapped in fusebox's breaker layer, against a local axum server. Runs are alternated
//! (bare, fusebox, bare, fusebox, ...) so drift on a shared machine hits both alike.
//!
//! `cargo bench --bench http_load` (about 20 s; `LOAD_SECONDS` and `LOAD_ROUNDS` adjust it)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use fusebox::breaker::Breaker;
use fusebox::tower::BreakerLayer;
use fusebox::tower::http::HttpClassifier;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Layer, Service, ServiceExt};

const CONCURRENCY: usize = 32;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Drives `svc` with `CONCURRENCY` loops for `seconds`; returns completed requests per second.
async fn load<S>(svc: S, url: &str, seconds: u64) -> f64
where
    S: Service<http::Request<Empty<Bytes>>, Response = http::Response<hyper::body::Incoming>>
        + Clone
        + Send
        + 'static,
    S::Error: std::fmt::Debug + Send,
    S::Future: Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (svc, done, stop, url) = (svc.clone(), done.clone(), stop.clone(), url.to_owned());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(req) = http::Request::get(url.as_str()).body(Empty::new()) else {
                        return;
                    };
                    match svc.clone().oneshot(req).await {
                        Ok(resp) if resp.status().is_success() => {
                            let _ = resp.into_body().collect().await;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("load request failed: {other:?}"),
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Criterion-style arguments (`--bench`) are accepted and ignored.
    let seconds = env_or("LOAD_SECONDS", 1).max(1);
    let rounds = env_or("LOAD_ROUNDS", 10).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hello", listener.local_addr()?);
        let app = Router::new().route("/hello", get(|| async { "hello" }));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
        let breaker = Breaker::builder("load")
            .count_window(100)
            .failure_rate(0.5)
            .build()?;
        let wrapped = BreakerLayer::new(breaker.clone())
            .classifier(HttpClassifier::default())
            .layer(client.clone());

        let _ = load(client.clone(), &url, 1).await; // warm up connections
        // Paired rounds, the order swapped every round so drift on a shared machine cancels
        // out; the verdict is the median of the per-round ratios, not the mean throughput.
        let mut ratios = Vec::new();
        let (mut bare_sum, mut fused_sum) = (0.0, 0.0);
        for round in 1..=rounds {
            let (b, f) = if round % 2 == 1 {
                let b = load(client.clone(), &url, seconds).await;
                (b, load(wrapped.clone(), &url, seconds).await)
            } else {
                let f = load(wrapped.clone(), &url, seconds).await;
                (load(client.clone(), &url, seconds).await, f)
            };
            println!(
                "round {round:>2}: bare {b:>9.0} req/s   fusebox breaker layer {f:>9.0} req/s"
            );
            ratios.push(f / b);
            bare_sum += b;
            fused_sum += f;
        }
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        println!(
            "mean: bare {:.0} req/s, with the breaker layer {:.0} req/s",
            bare_sum / rounds as f64,
            fused_sum / rounds as f64
        );
        println!(
            "median of paired rounds: the layer costs {:.2} % of throughput",
            (1.0 - median) * 100.0
        );
        println!("breaker after the run: {:?}", breaker.snapshot().window);
        Ok(())
    })
}
