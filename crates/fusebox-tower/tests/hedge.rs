//! The hedge layer around a service on paused tokio time (who wins and when, how many
//! requests go out, what is never hedged, budget, failures, cancellation), and once through
//! a real axum server on 127.0.0.1: a GET is hedged, a POST is not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use bytes::Bytes;
use fusebox_core::budget::{BudgetConfig, RetryBudget};
use fusebox_policy::policy::Hedge;
use fusebox_tower::BoxError;
use fusebox_tower::hedge::HedgeLayer;
use fusebox_tower::http::IdempotentRequests;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::{Instant, sleep};
use tower::{Layer, Service, ServiceExt, service_fn};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A replica set: the `n`th request (from 0) takes `latencies[n]` (the last one for the
/// rest) and answers `Ok(n)`, or `Err` when `failing`; counts requests and cancellations.
#[derive(Clone)]
struct Replicas {
    latencies: Arc<Vec<u64>>,
    failing: bool,
    requests: Arc<AtomicU32>,
    cancelled: Arc<AtomicU32>,
}

impl Replicas {
    fn new(latencies: &[u64]) -> Self {
        Replicas {
            latencies: Arc::new(latencies.to_vec()),
            failing: false,
            requests: Arc::default(),
            cancelled: Arc::default(),
        }
    }

    fn failing(mut self) -> Self {
        self.failing = true;
        self
    }

    fn requests(&self) -> u32 {
        self.requests.load(Ordering::Relaxed)
    }
}

struct CancelGuard(Arc<AtomicU32>, bool);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<Req> Service<Req> for Replicas {
    type Response = u32;
    type Error = BoxError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<u32, BoxError>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Req) -> Self::Future {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let latency = self.latencies[(n as usize).min(self.latencies.len() - 1)];
        let failing = self.failing;
        let cancelled = self.cancelled.clone();
        Box::pin(async move {
            let mut guard = CancelGuard(cancelled, false);
            sleep(ms(latency)).await;
            guard.1 = true;
            if failing {
                Err(format!("replica {n} failed").into())
            } else {
                Ok(n)
            }
        })
    }
}

fn hedge(delay: u64, max: u32) -> Hedge {
    Hedge::builder("replicas")
        .delay(ms(delay))
        .max_hedged_attempts(max)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_request_loses_to_the_hedge() {
    let replicas = Replicas::new(&[3_000, 15]);
    let policy = hedge(40, 1);
    let svc = HedgeLayer::new(policy.clone()).layer(replicas.clone());
    let started = Instant::now();
    assert_eq!(svc.oneshot("q").await.unwrap(), 1);
    assert_eq!(started.elapsed(), ms(55), "delay + the hedge's latency");
    assert_eq!(replicas.requests(), 2);
    tokio::task::yield_now().await;
    assert_eq!(
        replicas.cancelled.load(Ordering::Relaxed),
        1,
        "the first was dropped"
    );
    let stats = policy.stats();
    assert_eq!(
        (stats.hedges_sent, stats.hedge_wins, stats.losers_cancelled),
        (1, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_fast_first_request_sends_no_hedge() {
    let replicas = Replicas::new(&[39]);
    let policy = hedge(40, 1);
    let svc = HedgeLayer::new(policy.clone()).layer(replicas.clone());
    for _ in 0..5 {
        let started = Instant::now();
        svc.clone().oneshot("q").await.unwrap();
        assert_eq!(started.elapsed(), ms(39));
    }
    assert_eq!(replicas.requests(), 5);
    assert_eq!(policy.stats().hedges_sent, 0);
}

#[tokio::test(start_paused = true)]
async fn no_more_than_the_maximum_hedges_go_out() {
    let replicas = Replicas::new(&[10_000]);
    let policy = hedge(10, 2);
    let svc = HedgeLayer::new(policy.clone()).layer(replicas.clone());
    let started = Instant::now();
    assert_eq!(
        svc.oneshot("q").await.unwrap(),
        0,
        "the first answers first"
    );
    assert_eq!(started.elapsed(), ms(10_000));
    assert_eq!(
        replicas.requests(),
        3,
        "1 + 2 hedges, however long it takes"
    );
    assert_eq!(policy.stats().losers_cancelled, 2);
}

#[tokio::test(start_paused = true)]
async fn requests_the_policy_cannot_copy_are_never_hedged() {
    let replicas = Replicas::new(&[500, 500, 5]);
    let policy = hedge(10, 3);
    // Only even ids are safe to send twice.
    let svc = HedgeLayer::new(policy.clone())
        .requests(|id: &u32| id.is_multiple_of(2).then_some(*id))
        .layer(replicas.clone());
    let started = Instant::now();
    svc.clone().oneshot(7).await.unwrap();
    assert_eq!(started.elapsed(), ms(500));
    assert_eq!(replicas.requests(), 1);
    assert_eq!(policy.stats().hedges_sent, 0);

    let started = Instant::now();
    svc.oneshot(8).await.unwrap();
    assert_eq!(started.elapsed(), ms(15));
    assert_eq!(replicas.requests(), 3);
    assert_eq!(policy.stats().hedges_sent, 1);
}

#[tokio::test(start_paused = true)]
async fn http_posts_are_not_hedged_and_gets_are() {
    let requests = Arc::new(AtomicU32::new(0));
    let counter = requests.clone();
    let slow_then_fast = service_fn(move |req: http::Request<String>| {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        async move {
            sleep(ms(if n <= 1 { 1_000 } else { 5 })).await;
            Ok::<_, std::io::Error>(http::Response::new(req.method().to_string()))
        }
    });
    let policy = hedge(20, 1);
    let svc = HedgeLayer::new(policy.clone())
        .requests(IdempotentRequests::new())
        .layer(slow_then_fast);
    let started = Instant::now();
    let post = http::Request::post("/orders").body(String::new()).unwrap();
    svc.clone().oneshot(post).await.unwrap();
    assert_eq!(
        started.elapsed(),
        ms(1_000),
        "a POST waits for its only attempt"
    );
    assert_eq!(requests.load(Ordering::Relaxed), 1);

    let started = Instant::now();
    let get = http::Request::get("/orders/7").body(String::new()).unwrap();
    assert_eq!(svc.oneshot(get).await.unwrap().body(), "GET");
    assert_eq!(started.elapsed(), ms(25));
    assert_eq!(requests.load(Ordering::Relaxed), 3);
}

#[tokio::test(start_paused = true)]
async fn no_hedge_goes_out_once_the_budget_is_spent() {
    let budget = RetryBudget::new(
        BudgetConfig::builder()
            .ratio(0.0)
            .min_retries_per_second(0.0)
            .build()
            .unwrap(),
    );
    let replicas = Replicas::new(&[200, 5]);
    let policy = Hedge::builder("replicas")
        .delay(ms(10))
        .budget(budget)
        .build()
        .unwrap();
    let svc = HedgeLayer::new(policy.clone()).layer(replicas.clone());
    let started = Instant::now();
    assert_eq!(svc.oneshot("q").await.unwrap(), 0);
    assert_eq!(started.elapsed(), ms(200), "no hedge to answer sooner");
    assert_eq!(replicas.requests(), 1);
    let stats = policy.stats();
    assert_eq!((stats.hedges_sent, stats.refused_by_budget), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn when_every_request_fails_the_last_failure_is_the_error() {
    // The first fails at 100 ms, the hedge (sent at 10 ms) at 60 ms: the first is last.
    let replicas = Replicas::new(&[100, 50]).failing();
    let svc = HedgeLayer::new(hedge(10, 1)).layer(replicas.clone());
    let started = Instant::now();
    let err = svc.oneshot("q").await.unwrap_err();
    assert_eq!(err.to_string(), "replica 0 failed");
    assert_eq!(started.elapsed(), ms(100));
    assert_eq!(replicas.requests(), 2);
}

/// A service whose readiness the test controls: open, closed (pending), or broken (an
/// error), shared by its clones. The `n`th request takes `latencies[n]`.
#[derive(Clone)]
struct Gated {
    gate: Arc<std::sync::Mutex<(Gate, Vec<std::task::Waker>)>>,
    replicas: Replicas,
}

#[derive(Clone, Copy, PartialEq)]
enum Gate {
    Open,
    Closed,
    Broken,
}

impl Gated {
    fn set(&self, gate: Gate) {
        let mut state = self.gate.lock().unwrap();
        state.0 = gate;
        for waker in state.1.drain(..) {
            waker.wake();
        }
    }
}

impl Service<&'static str> for Gated {
    type Response = u32;
    type Error = BoxError;
    type Future = <Replicas as Service<&'static str>>::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), BoxError>> {
        let mut state = self.gate.lock().unwrap();
        match state.0 {
            Gate::Open => std::task::Poll::Ready(Ok(())),
            Gate::Broken => std::task::Poll::Ready(Err("connection pool closed".into())),
            Gate::Closed => {
                state.1.push(cx.waker().clone());
                std::task::Poll::Pending
            }
        }
    }

    fn call(&mut self, req: &'static str) -> Self::Future {
        self.replicas.call(req)
    }
}

#[tokio::test(start_paused = true)]
async fn a_hedge_waits_for_the_service_to_be_ready() {
    let gated = Gated {
        gate: Arc::new(std::sync::Mutex::new((Gate::Open, Vec::new()))),
        replicas: Replicas::new(&[1_000, 5]),
    };
    let policy = hedge(10, 1);
    let svc = HedgeLayer::new(policy.clone()).layer(gated.clone());
    let started = Instant::now();
    let call = tokio::spawn(svc.oneshot("q"));
    sleep(ms(5)).await;
    gated.set(Gate::Closed); // the hedge, due at 10 ms, finds the service busy
    sleep(ms(25)).await;
    assert_eq!(gated.replicas.requests(), 1);
    gated.set(Gate::Open); // at 30 ms: the hedge goes out and answers at 35 ms
    assert_eq!(call.await.unwrap().unwrap(), 1);
    assert_eq!(started.elapsed(), ms(35));
    assert_eq!(policy.stats().hedge_wins, 1);
}

#[tokio::test(start_paused = true)]
async fn a_hedge_the_service_cannot_take_fails_and_the_first_still_answers() {
    let gated = Gated {
        gate: Arc::new(std::sync::Mutex::new((Gate::Open, Vec::new()))),
        replicas: Replicas::new(&[100, 5]),
    };
    let policy = hedge(10, 3);
    let svc = HedgeLayer::new(policy.clone()).layer(gated.clone());
    let started = Instant::now();
    let call = tokio::spawn(svc.oneshot("q"));
    sleep(ms(5)).await;
    gated.set(Gate::Broken);
    assert_eq!(call.await.unwrap().unwrap(), 0);
    assert_eq!(started.elapsed(), ms(100));
    assert_eq!(
        gated.replicas.requests(),
        1,
        "no hedge after the service broke"
    );
    assert_eq!(
        policy.stats().hedges_sent,
        1,
        "the one that found it broken"
    );
}

// A real server and client: paused time would stall the sockets, so this one runs on the
// real clock with short delays.
async fn handle(State((calls, slow_first)): State<(Arc<AtomicU32>, Arc<AtomicBool>)>) -> String {
    let n = calls.fetch_add(1, Ordering::Relaxed);
    if n == 0 && slow_first.load(Ordering::Relaxed) {
        sleep(Duration::from_secs(5)).await;
    }
    format!("answer {n}")
}

#[tokio::test]
async fn through_a_real_server_a_get_is_hedged_and_a_post_is_not() {
    let calls = Arc::new(AtomicU32::new(0));
    let slow_first = Arc::new(AtomicBool::new(true));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .fallback(handle)
        .with_state((calls.clone(), slow_first.clone()));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let policy = hedge(50, 1);
    let svc = HedgeLayer::new(policy.clone())
        .requests(IdempotentRequests::new())
        .layer(client);

    let get = http::Request::get(format!("http://{addr}/users/7"))
        .body(Full::default())
        .unwrap();
    let started = std::time::Instant::now();
    let response = svc.clone().oneshot(get).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "answer 1", "the hedge answered");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(policy.stats().hedge_wins, 1);

    // A slow POST is sent once, however long it takes.
    calls.store(0, Ordering::Relaxed);
    slow_first.store(true, Ordering::Relaxed);
    let post = http::Request::post(format!("http://{addr}/orders"))
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap();
    let svc_post = svc.clone();
    let pending = tokio::spawn(async move { svc_post.oneshot(post).await });
    sleep(ms(300)).await;
    assert_eq!(calls.load(Ordering::Relaxed), 1, "no second POST");
    pending.abort();
    assert_eq!(policy.stats().hedges_sent, 1, "only the GET was hedged");
}
