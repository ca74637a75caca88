//! An SDK-style client whose every method runs through one shared pipeline.
//!
//! A local inventory server on 127.0.0.1 is flaky (one request in three answers 503 with a
//! `Retry-After`), then goes down, then recovers. The client's pipeline is
//!
//! ```text
//! fallback (when the breaker rejects) -> retry (2, exponential, honours Retry-After)
//!     -> breaker (4 of the last 8 attempts failed) -> timeout (300 ms per attempt)
//! ```
//!
//! and the run prints every retry, every breaker transition and every fallback.
//!
//! Run it with `cargo run --example client_sdk`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use bytes::Bytes;
use fusebox::backoff::{Backoff, Jitter};
use fusebox::breaker::Breaker;
use fusebox::pipeline::Pipeline;
use fusebox::policy::{Fallback, Retry, RetryAfterHint, RetryDecision};
use fusebox::{Error, Outcome};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

// ---------------------------------------------------------------------------------------
// The flaky server
// ---------------------------------------------------------------------------------------

const FLAKY: u8 = 0;
const DOWN: u8 = 1;
const UP: u8 = 2;

#[derive(Clone, Default)]
struct ServerState {
    phase: Arc<AtomicU8>,
    requests: Arc<AtomicU32>,
}

async fn item(
    State(s): State<ServerState>,
    Path(id): Path<u32>,
) -> (StatusCode, HeaderMap, String) {
    let n = s.requests.fetch_add(1, Ordering::Relaxed);
    let mut headers = HeaderMap::new();
    match s.phase.load(Ordering::Relaxed) {
        FLAKY if n % 3 == 0 => {
            headers.insert("retry-after", "0".parse().expect("valid header"));
            (StatusCode::SERVICE_UNAVAILABLE, headers, "busy".into())
        }
        DOWN => (
            StatusCode::INTERNAL_SERVER_ERROR,
            headers,
            "database down".into(),
        ),
        _ => (
            StatusCode::OK,
            headers,
            format!("{{\"id\":{id},\"stock\":{}}}", id * 3),
        ),
    }
}

async fn start_server(state: ServerState) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/items/{id}", get(item))
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}

// ---------------------------------------------------------------------------------------
// The SDK
// ---------------------------------------------------------------------------------------

/// What the transport returns: a status, a body and a server-given delay.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    body: Bytes,
    retry_after: Option<Duration>,
}

impl RetryAfterHint for Reply {
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

#[derive(Debug, thiserror::Error)]
enum SdkError {
    #[error("transport: {0}")]
    Transport(String),
    #[error("server answered {0}")]
    Status(u16),
}

impl RetryAfterHint for SdkError {}

/// What the client observed, for the summary at the end.
#[derive(Default)]
struct Observed {
    retries: AtomicU32,
    trips: AtomicU32,
}

struct InventoryClient {
    http: Client<HttpConnector, Empty<Bytes>>,
    base: String,
    pipeline: Pipeline<Reply, SdkError>,
}

fn is_server_trouble(status: u16) -> bool {
    status >= 500 || status == 429 || status == 408
}

impl InventoryClient {
    fn new(base: String, observed: Arc<Observed>) -> Result<Self, fusebox::ConfigError> {
        let seen = observed.clone();
        let breaker = Breaker::builder("inventory")
            .failures_in_last(4, 8)
            .cooldown(Duration::from_millis(500))
            .half_open_trials(2, 2)
            .on_transition(move |t| {
                if t.to == fusebox::State::Open {
                    seen.trips.fetch_add(1, Ordering::Relaxed);
                }
                println!("  [breaker] {} -> {}: {}", t.from, t.to, t.reason)
            })
            .build()?;
        let retry = Retry::builder()
            .name("inventory")
            .max_retries(2)
            .backoff(
                Backoff::exponential(Duration::from_millis(20), Duration::from_millis(200))
                    .jitter(Jitter::Equal)
                    .build()?,
            )
            .retry_if(|r: &Result<Reply, Error<SdkError>>| match r {
                Ok(reply) if is_server_trouble(reply.status) => RetryDecision::Retry,
                Ok(_) => RetryDecision::Stop,
                Err(Error::Inner(_)) | Err(Error::Timeout(_)) => RetryDecision::Retry,
                Err(_) => RetryDecision::Stop, // a rejection: the breaker knows better
            })
            .honor_retry_after()
            .on_retry(move |e| {
                observed.retries.fetch_add(1, Ordering::Relaxed);
                println!(
                    "  [retry] attempt {} in {} ms ({})",
                    e.attempt,
                    e.delay.as_millis(),
                    e.reason.as_str()
                )
            })
            .build()?;
        let fallback = Fallback::value(Reply {
            status: 200,
            body: Bytes::from_static(b"{\"stock\":null,\"stale\":true}"),
            retry_after: None,
        })
        .on_rejected();
        let pipeline = Pipeline::builder()
            .fallback(fallback)
            .retry(retry)
            .breaker_with(breaker, |r: &Result<Reply, Error<SdkError>>| match r {
                Ok(reply) if is_server_trouble(reply.status) => Outcome::Failure,
                Ok(_) => Outcome::Success,
                Err(Error::Inner(_)) | Err(Error::Timeout(_)) => Outcome::Failure,
                Err(_) => Outcome::Ignored,
            })
            .timeout(Duration::from_millis(300))
            .build()?;
        let http = Client::builder(TokioExecutor::new()).build_http();
        Ok(InventoryClient {
            http,
            base,
            pipeline,
        })
    }

    /// One HTTP exchange: this is what the pipeline protects.
    async fn get(&self, path: &str) -> Result<Reply, SdkError> {
        let uri: hyper::Uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|e| SdkError::Transport(format!("{e}")))?;
        let resp = self
            .http
            .get(uri)
            .await
            .map_err(|e| SdkError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| SdkError::Transport(e.to_string()))?
            .to_bytes();
        Ok(Reply {
            status,
            body,
            retry_after,
        })
    }

    async fn request(&self, path: &str) -> Result<String, Error<SdkError>> {
        let reply = self.pipeline.call(|| self.get(path)).await?;
        if reply.status >= 400 {
            return Err(Error::Inner(SdkError::Status(reply.status)));
        }
        Ok(String::from_utf8_lossy(&reply.body).into_owned())
    }

    async fn get_item(&self, id: u32) -> Result<String, Error<SdkError>> {
        self.request(&format!("/items/{id}")).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let state = ServerState::default();
    let base = start_server(state.clone()).await?;
    let observed = Arc::new(Observed::default());
    let client = InventoryClient::new(base, observed.clone())?;

    let (mut fallbacks, mut failures) = (0, 0);
    for (phase, name, calls) in [(FLAKY, "flaky", 4), (DOWN, "down", 6), (UP, "recovered", 3)] {
        state.phase.store(phase, Ordering::Relaxed);
        println!("-- server is {name}");
        if phase == UP {
            tokio::time::sleep(Duration::from_millis(600)).await; // let the cooldown pass
        }
        for id in 1..=calls {
            match client.get_item(id).await {
                Ok(body) if body.contains("stale") => {
                    fallbacks += 1;
                    println!("item {id}: fallback {body}");
                }
                Ok(body) => println!("item {id}: {body}"),
                Err(e) => {
                    failures += 1;
                    println!("item {id}: error: {e}");
                }
            }
        }
    }
    println!(
        "server saw {} requests; {failures} calls failed, {fallbacks} answered by the fallback",
        state.requests.load(Ordering::Relaxed)
    );
    let (retries, trips) = (
        observed.retries.load(Ordering::Relaxed),
        observed.trips.load(Ordering::Relaxed),
    );
    println!("{retries} retries, {trips} trips");
    if fallbacks == 0 || retries == 0 || trips == 0 {
        return Err("expected retries, a trip and fallbacks".into());
    }
    Ok(())
}
