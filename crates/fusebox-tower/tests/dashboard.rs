//! The dashboard's routes: the page, the JSON snapshot and the event stream, driven in
//! paused time through the router itself.
#![cfg(feature = "dashboard")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use fusebox_core::{Breaker, State};
use fusebox_tower::dashboard::{
    BreakerReading, Dashboard, DashboardError, LocalSource, Source, SourceError,
};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn get(app: &Router, path: &str) -> http::Response<Body> {
    let request = http::Request::get(path).body(Body::empty()).unwrap();
    app.clone().oneshot(request).await.unwrap()
}

async fn snapshot(app: &Router) -> Value {
    let response = get(app, "/api/snapshot").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&body).unwrap()
}

/// Reads server-sent events from a response body, one frame at a time.
struct Events {
    body: Body,
    buffer: String,
}

impl Events {
    async fn open(app: &Router) -> Events {
        let response = get(app, "/api/events").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events {
            body: response.into_body(),
            buffer: String::new(),
        }
    }

    async fn next_frame(&mut self) -> Value {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                if event.lines().any(|l| l == "event: frame") {
                    return serde_json::from_str(&data).unwrap();
                }
                continue; // a keep-alive comment
            }
            let frame = self.body.frame().await.expect("stream ended").unwrap();
            if let Ok(bytes) = frame.into_data() {
                self.buffer.push_str(std::str::from_utf8(&bytes).unwrap());
            }
        }
    }

    /// The first frame that satisfies `done`, within `limit` (paused time).
    async fn until(&mut self, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        tokio::time::timeout(limit, async {
            loop {
                let frame = self.next_frame().await;
                if done(&frame) {
                    return frame;
                }
            }
        })
        .await
        .expect("no such frame in time")
    }
}

fn breaker<'a>(frame: &'a Value, name: &str) -> Option<&'a Value> {
    frame["breakers"]
        .as_array()?
        .iter()
        .find(|b| b["name"] == name)
}

#[tokio::test(start_paused = true)]
async fn the_page_is_self_contained_and_guarded() {
    let app = Dashboard::builder()
        .build(LocalSource::new())
        .unwrap()
        .router()
        .unwrap();
    let response = get(&app, "/").await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("connect-src 'self'"), "{policy}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let page = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(page.contains("api/events") && page.contains("api/snapshot"));
    // Nothing is loaded from elsewhere: the only absolute URL is the SVG namespace name.
    let outside = page
        .replace("\"http://www.w3.org/2000/svg\"", "")
        .matches("://")
        .count();
    assert_eq!(outside, 0);
    assert!(!page.contains("<link") && !page.contains(" src="));
    // Data reaches the page as text only.
    assert!(!page.contains("innerHTML") && !page.contains("insertAdjacentHTML"));
    assert!(!page.contains("document.write"));
    assert_eq!(get(&app, "/nothing-here").await.status(), 404);
}

#[tokio::test(start_paused = true)]
async fn a_breaker_driven_open_shows_in_the_stream_with_its_rates_and_transition() {
    let source = Arc::new(LocalSource::new());
    let api = source
        .build(Breaker::builder("api").consecutive_failures(3))
        .unwrap();
    let app = Dashboard::builder()
        .interval(Duration::from_millis(100))
        .title("checkout")
        .build(source.clone())
        .unwrap()
        .router()
        .unwrap();
    let mut events = Events::open(&app).await;
    let first = events
        .until(Duration::from_secs(1), |f| breaker(f, "api").is_some())
        .await;
    assert_eq!(first["title"], "checkout");
    assert_eq!(breaker(&first, "api").unwrap()["state"], "closed");

    for _ in 0..5 {
        api.record_success();
    }
    for _ in 0..3 {
        api.record_failure();
    }
    for _ in 0..4 {
        assert!(api.try_acquire().is_err());
    }
    let open = events
        .until(Duration::from_secs(1), |f| {
            breaker(f, "api").is_some_and(|b| b["state"] == "open")
        })
        .await;
    let b = breaker(&open, "api").unwrap();
    assert_eq!(
        (b["calls"].as_u64(), b["failures"].as_u64()),
        (Some(8), Some(3))
    );
    assert_eq!(b["rejections"], 4);
    // 8 calls within one 100ms interval.
    assert_eq!(b["calls_per_sec"].as_f64(), Some(80.0));
    assert_eq!(b["rejections_per_sec"].as_f64(), Some(40.0));
    assert!(
        b["reason"]
            .as_str()
            .unwrap()
            .contains("3 consecutive failures")
    );
    assert!(b["spark"]["calls_per_sec"].as_array().unwrap().len() >= 2);
    assert!(
        b["spark"]["calls_per_sec"]
            .as_array()
            .unwrap()
            .contains(&80.0.into())
    );
    let t = &open["transitions"][0];
    assert_eq!(
        (&t["name"], &t["from"], &t["to"]),
        (&"api".into(), &"closed".into(), &"open".into())
    );

    // The JSON endpoint says the same.
    let json = snapshot(&app).await;
    assert_eq!(breaker(&json, "api").unwrap()["state"], "open");
    // Idle: the rate falls back to zero at the next sample.
    let idle = events
        .until(Duration::from_secs(1), |f| {
            breaker(f, "api").is_some_and(|b| b["calls_per_sec"] == 0.0)
        })
        .await;
    assert_eq!(breaker(&idle, "api").unwrap()["state"], "open");
}

/// Fails while `down` is set, then answers again.
struct Flaky {
    down: Mutex<bool>,
}

impl Source for Flaky {
    async fn read(&self) -> Result<Vec<BreakerReading>, SourceError> {
        if *self.down.lock().unwrap() {
            return Err(SourceError::new("store unreachable: connection refused"));
        }
        let mut r = BreakerReading::new("payments <b>&</b>", State::ForcedOpen);
        r.generation = 1;
        Ok(vec![r])
    }
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_source_shows_as_an_error_and_the_stream_recovers() {
    let flaky = Arc::new(Flaky {
        down: Mutex::new(false),
    });
    let app = Dashboard::builder()
        .interval(Duration::from_millis(200))
        .build(flaky.clone())
        .unwrap()
        .router()
        .unwrap();
    let mut events = Events::open(&app).await;
    let up = events
        .until(Duration::from_secs(1), |f| f["samples"].as_u64() >= Some(1))
        .await;
    assert_eq!(up["error"], Value::Null);
    assert_eq!(
        breaker(&up, "payments <b>&</b>").unwrap()["state"],
        "forced_open"
    );

    *flaky.down.lock().unwrap() = true;
    let down = events
        .until(Duration::from_secs(1), |f| !f["error"].is_null())
        .await;
    assert_eq!(down["error"], "store unreachable: connection refused");
    // The last good readings stay, with when they were read.
    assert!(breaker(&down, "payments <b>&</b>").is_some());
    assert_eq!(down["fresh_at_ms"], up["fresh_at_ms"]);
    // The stream keeps going while the source is down.
    let later = events.next_frame().await;
    assert!(later["samples"].as_u64() > down["samples"].as_u64());

    *flaky.down.lock().unwrap() = false;
    let back = events
        .until(Duration::from_secs(1), |f| f["error"].is_null())
        .await;
    assert_eq!(
        breaker(&back, "payments <b>&</b>").unwrap()["state"],
        "forced_open"
    );
}

/// Never answers.
struct Hangs;

impl Source for Hangs {
    async fn read(&self) -> Result<Vec<BreakerReading>, SourceError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_read_that_hangs_times_out_and_sampling_goes_on() {
    let app = Dashboard::builder()
        .interval(Duration::from_millis(100))
        .read_timeout(Duration::from_millis(300))
        .build(Hangs)
        .unwrap()
        .router()
        .unwrap();
    let mut events = Events::open(&app).await;
    let first = events
        .until(Duration::from_secs(2), |f| !f["error"].is_null())
        .await;
    assert_eq!(first["error"], "no answer within 300ms");
    let next = events
        .until(Duration::from_secs(2), |f| f["samples"].as_u64() >= Some(2))
        .await;
    assert_eq!(next["error"], "no answer within 300ms");
}

/// Panics on every read.
struct Panics;

impl Source for Panics {
    async fn read(&self) -> Result<Vec<BreakerReading>, SourceError> {
        panic!("a bug in the source")
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_source_shows_as_an_error() {
    let app = Dashboard::builder()
        .interval(Duration::from_millis(100))
        .build(Panics)
        .unwrap()
        .router()
        .unwrap();
    let mut events = Events::open(&app).await;
    let frame = events
        .until(Duration::from_secs(1), |f| f["samples"].as_u64() >= Some(2))
        .await;
    assert_eq!(frame["error"], "the dashboard's source panicked");
}

#[tokio::test(start_paused = true)]
async fn the_sampling_task_stops_with_the_router() {
    struct Counted(Arc<Mutex<u32>>);
    impl Source for Counted {
        async fn read(&self) -> Result<Vec<BreakerReading>, SourceError> {
            *self.0.lock().unwrap() += 1;
            Ok(Vec::new())
        }
    }
    let reads = Arc::new(Mutex::new(0));
    let app = Dashboard::builder()
        .interval(Duration::from_millis(100))
        .build(Counted(reads.clone()))
        .unwrap()
        .router()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(550)).await;
    let while_served = *reads.lock().unwrap();
    assert!((5..=7).contains(&while_served), "{while_served}");
    drop(app);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let at_drop = *reads.lock().unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(*reads.lock().unwrap(), at_drop);
}

#[test]
fn settings_out_of_range_are_refused_by_field() {
    let build = |b: fusebox_tower::dashboard::DashboardBuilder| b.build(LocalSource::new()).err();
    let d = Dashboard::builder;
    assert_eq!(
        build(d().interval(Duration::from_millis(49))),
        Some(DashboardError::Interval {
            value: Duration::from_millis(49)
        })
    );
    assert!(build(d().interval(Duration::from_millis(50))).is_none());
    assert!(build(d().interval(Duration::from_secs(60))).is_none());
    assert!(build(d().interval(Duration::MAX)).is_some());
    assert!(matches!(
        build(d().read_timeout(Duration::from_secs(61))),
        Some(DashboardError::ReadTimeout { .. })
    ));
    assert_eq!(
        build(d().history(1)),
        Some(DashboardError::History { value: 1 })
    );
    assert!(build(d().history(2)).is_none());
    assert!(build(d().history(600)).is_none());
    assert_eq!(
        build(d().history(601)),
        Some(DashboardError::History { value: 601 })
    );
    assert_eq!(
        build(d().history(usize::MAX)),
        Some(DashboardError::History { value: usize::MAX })
    );
    assert_eq!(
        build(d().transitions(1_001)),
        Some(DashboardError::Transitions { value: 1_001 })
    );
    assert!(build(d().title("é".repeat(200))).is_none());
    assert_eq!(
        build(d().title("é".repeat(201))),
        Some(DashboardError::Title { value: 201 })
    );
    let message = DashboardError::Interval {
        value: Duration::ZERO,
    }
    .to_string();
    assert_eq!(message, "interval must be from 50ms to 60s, got 0ns");
}

#[tokio::test(start_paused = true)]
async fn nested_under_a_path_the_page_and_its_endpoints_answer() {
    let dashboard = Dashboard::builder()
        .build(LocalSource::new())
        .unwrap()
        .router()
        .unwrap();
    let app = Router::new().nest("/ops/breakers", dashboard);
    // The page, served at the nest's path, finds its endpoints under that path.
    assert_eq!(get(&app, "/ops/breakers").await.status(), 200);
    assert_eq!(get(&app, "/ops/breakers/api/snapshot").await.status(), 200);
    assert_eq!(get(&app, "/ops/breakers/api/events").await.status(), 200);
    assert_eq!(get(&app, "/api/snapshot").await.status(), 404);
}
