//! The adaptive concurrency limit as a tower layer, on paused time.

use std::future::Future;
use std::time::Duration;

use fusebox_core::{LimitExceeded, Outcome};
use fusebox_policy::policy::{Aimd, ConcurrencyLimit};
use fusebox_tower::BoxError;
use fusebox_tower::concurrency_limit::ConcurrencyLimitLayer;
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

fn slow_echo() -> impl Service<
    u16,
    Response = u16,
    Error = std::io::Error,
    Future = impl Future<Output = Result<u16, std::io::Error>>,
> + Clone {
    service_fn(|code: u16| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok::<_, std::io::Error>(code)
    })
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_call_past_the_limit_is_refused_with_a_typed_error() {
    let limit = ConcurrencyLimit::builder("api")
        .initial_limit(1)
        .build()
        .unwrap();
    let mut svc = ConcurrencyLimitLayer::new(limit.clone()).layer(slow_echo());
    let first = svc.ready().await.unwrap().call(200);
    let refused = svc.ready().await.unwrap().call(200).await.unwrap_err();
    let refusal = refused
        .downcast_ref::<LimitExceeded>()
        .expect("a LimitExceeded");
    assert_eq!((refusal.limit, refusal.in_flight), (1, 1));
    assert_eq!(first.await.unwrap(), 200);
    assert_eq!(limit.in_flight(), 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_dropped_response_future_gives_its_place_back() {
    let limit = ConcurrencyLimit::builder("api")
        .initial_limit(1)
        .build()
        .unwrap();
    let mut svc = ConcurrencyLimitLayer::new(limit.clone()).layer(slow_echo());
    let pending = svc.ready().await.unwrap().call(200);
    assert_eq!(limit.in_flight(), 1);
    drop(pending);
    assert_eq!(limit.in_flight(), 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn overload_answers_shrink_the_limit_through_the_classifier() {
    let limit = ConcurrencyLimit::builder("api")
        .algorithm(Aimd::new())
        .initial_limit(20)
        .window(Duration::from_millis(5), 1)
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(ConcurrencyLimitLayer::new(limit.clone()).classifier(
            |r: &Result<u16, std::io::Error>| match r {
                Ok(503) | Err(_) => Outcome::Failure,
                Ok(_) => Outcome::Success,
            },
        ))
        .service(slow_echo());
    for _ in 0..4 {
        let answer: Result<u16, BoxError> = svc.clone().oneshot(503).await;
        assert_eq!(answer.unwrap(), 503);
    }
    assert!(limit.limit() < 20, "limit {}", limit.limit());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn inner_errors_pass_through_untouched() {
    let limit = ConcurrencyLimit::builder("api").build().unwrap();
    let svc = ConcurrencyLimitLayer::new(limit.clone()).layer(service_fn(|_: ()| async {
        Err::<(), _>(std::io::Error::other("boom"))
    }));
    let err = svc.oneshot(()).await.unwrap_err();
    assert!(err.downcast_ref::<std::io::Error>().is_some());
    assert_eq!(limit.in_flight(), 0);
}
