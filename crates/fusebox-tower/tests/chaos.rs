//! The chaos layer injects errors, synthetic responses and delays into a tower service on
//! paused time, and passes requests through untouched while disabled.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fusebox_policy::policy::{Chaos, Latency};
use fusebox_tower::BoxError;
use fusebox_tower::chaos::{ChaosFault, ChaosLayer};
use http::{Response, StatusCode};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

type Answer = Response<&'static str>;

/// An upstream that counts its calls and answers 200.
fn upstream(
    calls: &Arc<AtomicU32>,
) -> impl Service<(), Response = Answer, Error = std::io::Error, Future: Send> + Clone + use<> {
    let calls = Arc::clone(calls);
    service_fn(move |()| {
        calls.fetch_add(1, Ordering::Relaxed);
        async { Ok::<_, std::io::Error>(Response::new("ok")) }
    })
}

#[tokio::test(start_paused = true)]
async fn injected_503s_and_errors_replace_the_call_at_the_drawn_rate() {
    let calls = Arc::new(AtomicU32::new(0));
    let unavailable = Chaos::builder("catalog")
        .enabled(true)
        .seed(5)
        .fault(0.3, || {
            Ok(Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body("injected")
                .unwrap())
        })
        .build()
        .unwrap();
    let svc = ChaosLayer::new(unavailable.clone()).layer(upstream(&calls));
    let mut statuses = [0u32; 2];
    for _ in 0..1_000 {
        let response = svc.clone().oneshot(()).await.unwrap();
        statuses[usize::from(response.status() == StatusCode::SERVICE_UNAVAILABLE)] += 1;
    }
    assert_eq!(u64::from(statuses[1]), unavailable.faults_injected());
    assert!((250..=350).contains(&statuses[1]), "{statuses:?}");
    assert_eq!(
        calls.load(Ordering::Relaxed),
        statuses[0],
        "faults never reach it"
    );

    let resets: Chaos<ChaosFault<Answer>> = Chaos::builder("catalog")
        .enabled(true)
        .fault(1.0, || Err("connection reset (injected)".into()))
        .build()
        .unwrap();
    let error: BoxError = ChaosLayer::new(resets)
        .layer(upstream(&calls))
        .oneshot(())
        .await
        .unwrap_err();
    assert_eq!(error.to_string(), "connection reset (injected)");
}

#[tokio::test(start_paused = true)]
async fn delays_run_before_the_call_on_tokio_time() {
    let calls = Arc::new(AtomicU32::new(0));
    let chaos = Chaos::builder("catalog")
        .enabled(true)
        .latency(1.0, Latency::Fixed(Duration::from_millis(400)))
        .build()
        .unwrap();
    let svc = ChaosLayer::new(chaos.clone()).layer(upstream(&calls));
    let start = Instant::now();
    let mut pending = tokio::spawn(svc.clone().oneshot(()));
    tokio::time::sleep(Duration::from_millis(399)).await;
    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "not called during the delay"
    );
    assert!(futures_poll_pending(&mut pending).await);
    let response = pending.await.unwrap().unwrap();
    assert_eq!(response.body(), &"ok");
    assert_eq!(start.elapsed(), Duration::from_millis(400));
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    assert_eq!(chaos.delays_injected(), 1);

    // A delayed fault: slow, then failed, and the service is never called.
    let slow_fault: Chaos<ChaosFault<Answer>> = Chaos::builder("catalog")
        .enabled(true)
        .fault(1.0, || Err("injected".into()))
        .latency(1.0, Latency::Fixed(Duration::from_secs(2)))
        .build()
        .unwrap();
    let start = Instant::now();
    let svc = ChaosLayer::new(slow_fault).layer(upstream(&calls));
    assert!(svc.oneshot(()).await.is_err());
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(calls.load(Ordering::Relaxed), 1);
}

/// Whether a spawned task is still running, after letting it run once.
async fn futures_poll_pending<T>(task: &mut tokio::task::JoinHandle<T>) -> bool {
    tokio::task::yield_now().await;
    !task.is_finished()
}

#[tokio::test(start_paused = true)]
async fn disabled_chaos_passes_through_untouched_and_can_be_switched_on() {
    let calls = Arc::new(AtomicU32::new(0));
    let chaos: Chaos<ChaosFault<Answer>> = Chaos::builder("catalog")
        .fault(1.0, || Err("injected".into()))
        .latency(1.0, Latency::Fixed(Duration::from_secs(1)))
        .build()
        .unwrap();
    let svc = ChaosLayer::new(chaos.clone()).layer(upstream(&calls));
    let start = Instant::now();
    for _ in 0..100 {
        assert_eq!(svc.clone().oneshot(()).await.unwrap().body(), &"ok");
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(calls.load(Ordering::Relaxed), 100);
    assert_eq!(chaos.faults_injected() + chaos.delays_injected(), 0);

    chaos.set_enabled(true);
    assert!(svc.oneshot(()).await.is_err());
    assert_eq!(calls.load(Ordering::Relaxed), 100);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}
