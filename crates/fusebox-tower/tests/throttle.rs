//! The throttle layer: drops as boxed `Throttled`, the classifier deciding what counts as
//! accepted, recovery when the dependency heals, and axum's answer to a drop.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use fusebox_core::{ErrIsFailure, FailureWhen, Throttled};
use fusebox_policy::TokioClock;
use fusebox_policy::policy::Throttle;
use fusebox_tower::throttle::ThrottleLayer;
use tower::{Layer, ServiceExt, service_fn};

#[tokio::test(start_paused = true)]
async fn sheds_while_the_dependency_refuses_and_recovers_when_it_heals() {
    let throttle = Throttle::builder("quotes")
        .window(Duration::from_secs(1), 10)
        .seed(11)
        .clock(TokioClock::new())
        .build()
        .unwrap();
    let healthy = Arc::new(AtomicBool::new(false));
    let reached = Arc::new(AtomicU32::new(0));
    let svc = ThrottleLayer::new(throttle.clone(), ErrIsFailure).layer(service_fn({
        let (healthy, reached) = (healthy.clone(), reached.clone());
        move |_: ()| {
            reached.fetch_add(1, Ordering::Relaxed);
            let ok = healthy.load(Ordering::Relaxed);
            async move {
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::other("overloaded"))
                }
            }
        }
    }));

    let mut dropped = 0;
    for _ in 0..200 {
        if let Err(e) = svc.clone().oneshot(()).await {
            dropped += u32::from(e.is::<Throttled>());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(dropped > 150, "dropped {dropped} of 200");
    assert_eq!(reached.load(Ordering::Relaxed), 200 - dropped);

    healthy.store(true, Ordering::Relaxed);
    for _ in 0..1000 {
        let _ = svc.clone().oneshot(()).await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(throttle.probability(), 0.0);
    for _ in 0..100 {
        svc.clone()
            .oneshot(())
            .await
            .expect("healthy and not throttled");
    }
}

#[tokio::test]
async fn errors_the_classifier_ignores_count_as_accepted() {
    let throttle = Throttle::builder("db").seed(2).build().unwrap();
    let only_overload = FailureWhen(|e: &std::io::Error| e.kind() == std::io::ErrorKind::Other);
    let svc =
        ThrottleLayer::new(throttle.clone(), only_overload).layer(service_fn(|_: ()| async {
            Err::<(), _>(std::io::Error::from(std::io::ErrorKind::NotFound))
        }));
    for _ in 0..100 {
        let err = svc.clone().oneshot(()).await.unwrap_err();
        assert!(!err.is::<Throttled>());
    }
    assert_eq!(throttle.probability(), 0.0);
}

#[tokio::test]
async fn axum_answers_a_drop_with_503() {
    use fusebox_tower::http::axum::handle_error;
    let throttled = Throttled {
        name: "quotes".into(),
        probability: 0.5,
    };
    assert_eq!(handle_error(Box::new(throttled)).await.status(), 503);
}
