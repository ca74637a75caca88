//! The middleware against real HTTP servers on 127.0.0.1.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Server, closed_port_url, reqwest_client, status_response, with_retry_after};
use fusebox_core::State;
use fusebox_core::backoff::Backoff;
use fusebox_core::breaker::{Breaker, BreakerSettings};
use fusebox_policy::pipeline::Pipeline;
use fusebox_reqwest::{
    BreakerMiddleware, PipelineMiddleware, ReqwestClassifier, RetryMiddleware, refusal, rejection,
    retry_policy,
};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};

fn trips_after(n: u32) -> BreakerSettings {
    BreakerSettings {
        consecutive_failures: Some(n),
        cooldown: Some(Duration::from_secs(60)),
        ..Default::default()
    }
}

fn client(middleware: impl reqwest_middleware::Middleware) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest_client(Duration::from_secs(10)))
        .with(middleware)
        .build()
}

#[tokio::test]
async fn a_sick_host_is_cut_off_alone() {
    let sick = Server::always(503).await;
    let healthy = Server::always(200).await;
    let breakers = BreakerMiddleware::per_host("api", trips_after(3)).expect("settings");
    let client = client(breakers.clone());

    for _ in 0..3 {
        let response = client
            .get(format!("{}/items", sick.url))
            .send()
            .await
            .expect("a response");
        assert_eq!(
            response.status(),
            503,
            "a 503 reaches the caller as a response"
        );
    }
    // Open: the next requests fail at once, and never reach the host.
    for _ in 0..5 {
        let error = client
            .get(format!("{}/items", sick.url))
            .send()
            .await
            .unwrap_err();
        let rejected = rejection(&error).expect("a rejection");
        let wait = rejected.retry_after().expect("an open breaker says when");
        assert!(
            wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
    }
    assert_eq!(sick.hits(), 3);

    // The other host has its own breaker, closed.
    for _ in 0..5 {
        let response = client.get(&healthy.url).send().await.expect("a response");
        assert_eq!(response.status(), 200);
    }
    assert_eq!(healthy.hits(), 5);
    let registry = breakers.registry().expect("per host");
    assert_eq!(registry.len(), 2);
    let sick_url = reqwest::Url::parse(&sick.url).expect("url");
    assert_eq!(breakers.breaker_for(&sick_url).state(), State::Open);
    assert_eq!(
        breakers.breaker_for(&sick_url).name().to_string(),
        format!("api:{}", sick.url)
    );
}

#[tokio::test]
async fn what_fails_and_what_does_not() {
    // 404 and 400 are the caller's business; 429, 408 and 5xx fail.
    for (status, trips) in [
        (404, false),
        (400, false),
        (200, false),
        (429, true),
        (408, true),
        (500, true),
        (502, true),
    ] {
        let server = Server::always(status).await;
        let breaker = Breaker::builder("one")
            .consecutive_failures(2)
            .build()
            .expect("breaker");
        let client = client(BreakerMiddleware::single(breaker.clone()));
        for _ in 0..2 {
            let response = client.get(&server.url).send().await.expect("a response");
            assert_eq!(response.status(), status);
        }
        assert_eq!(breaker.state() == State::Open, trips, "status {status}");
    }

    // A refused connection fails (the host is not there).
    let breaker = Breaker::builder("gone")
        .consecutive_failures(2)
        .build()
        .expect("breaker");
    let refused = client(BreakerMiddleware::single(breaker.clone()));
    let url = closed_port_url().await;
    for _ in 0..2 {
        let error = refused.get(&url).send().await.unwrap_err();
        assert!(rejection(&error).is_none(), "{error}");
    }
    assert_eq!(breaker.state(), State::Open);

    // A timeout fails.
    let slow = Server::start(|_, _| {
        std::thread::sleep(Duration::from_millis(300));
        status_response(200)
    })
    .await;
    let breaker = Breaker::builder("slow")
        .consecutive_failures(1)
        .build()
        .expect("breaker");
    let impatient = ClientBuilder::new(reqwest_client(Duration::from_millis(50)))
        .with(BreakerMiddleware::single(breaker.clone()))
        .build();
    let error = impatient.get(&slow.url).send().await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert_eq!(breaker.state(), State::Open);

    // A URL reqwest cannot use is the caller's mistake: ignored.
    let breaker = Breaker::builder("mine")
        .consecutive_failures(1)
        .build()
        .expect("breaker");
    let careless = self::client(BreakerMiddleware::single(breaker.clone()));
    assert!(careless.get("http://[::1").send().await.is_err());
    assert_eq!(breaker.state(), State::Closed);
}

fn quick_retry(
    max_retries: u32,
) -> fusebox_policy::policy::RetryBuilder<reqwest::Response, reqwest_middleware::Error> {
    retry_policy().max_retries(max_retries).backoff(
        Backoff::fixed(Duration::from_millis(1))
            .build()
            .expect("backoff"),
    )
}

#[tokio::test]
async fn retries_recover_a_flaky_host() {
    let flaky = Server::start(|hit, _| status_response(if hit <= 2 { 503 } else { 200 })).await;
    let retrying = client(RetryMiddleware::new(quick_retry(3).build().expect("retry")));
    let response = retrying.get(&flaky.url).send().await.expect("a response");
    assert_eq!(response.status(), 200);
    assert_eq!(flaky.hits(), 3);

    // Out of retries: the last response is returned as it is.
    let down = Server::always(502).await;
    let client = client(RetryMiddleware::new(quick_retry(2).build().expect("retry")));
    assert_eq!(
        client
            .get(&down.url)
            .send()
            .await
            .expect("a response")
            .status(),
        502
    );
    assert_eq!(down.hits(), 3);

    // 404 is not retried.
    let missing = Server::always(404).await;
    assert_eq!(
        client
            .get(&missing.url)
            .send()
            .await
            .expect("a response")
            .status(),
        404
    );
    assert_eq!(missing.hits(), 1);
}

#[tokio::test]
async fn only_idempotent_requests_are_sent_twice() {
    let flaky = Server::start(|hit, _| status_response(if hit == 1 { 503 } else { 201 })).await;
    let retry = || RetryMiddleware::new(quick_retry(3).build().expect("retry"));
    let client = client(retry());
    let response = client
        .post(&flaky.url)
        .body("order")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 503, "a POST is sent once");
    assert_eq!(flaky.hits(), 1);

    let flaky = Server::start(|hit, _| status_response(if hit == 1 { 503 } else { 201 })).await;
    let client = self::client(retry().any_method());
    let response = client
        .post(&flaky.url)
        .body("order")
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 201, "any_method resends a POST");
    assert_eq!(flaky.hits(), 2);

    let flaky = Server::start(|hit, _| status_response(if hit == 1 { 503 } else { 200 })).await;
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let response = self::client(retry())
            .request(method.clone(), &flaky.url)
            .send()
            .await
            .expect("a response");
        assert_eq!(response.status(), 200, "{method}");
    }
}

#[tokio::test]
async fn retry_after_is_honoured_bounded_and_never_trusted_blindly() {
    let retried = Arc::new(AtomicU32::new(0));
    let on_retry = |counter: &Arc<AtomicU32>| {
        let counter = Arc::clone(counter);
        move |_: &fusebox_policy::policy::RetryEvent| {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    };

    // Longer than the bound: given up at once, the 429 returned without waiting.
    let throttled = Server::start(|_, _| with_retry_after(429, "120")).await;
    let retry = quick_retry(5)
        .max_retry_after(Duration::from_secs(1))
        .on_retry(on_retry(&retried))
        .build()
        .expect("retry");
    let client = client(RetryMiddleware::new(retry));
    let started = std::time::Instant::now();
    let response = client.get(&throttled.url).send().await.expect("a response");
    assert_eq!(response.status(), 429);
    assert_eq!(throttled.hits(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // Values too large to hold, dates, nonsense: no panic; nonsense means the backoff.
    for (value, hits) in [
        ("99999999999999999999999999", 1),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 1),
        ("Wed, 21 Oct 3015 07:28:00 GMT", 3), // the wrong weekday: not a date
        ("soon", 3),
        ("-5", 3),
        ("", 3),
    ] {
        let server = Server::start(move |hit, _| {
            if hit <= 2 {
                with_retry_after(503, value)
            } else {
                status_response(200)
            }
        })
        .await;
        let retry = quick_retry(5)
            .max_retry_after(Duration::from_secs(1))
            .build()
            .expect("retry");
        let response = client_for(retry)
            .get(&server.url)
            .send()
            .await
            .expect("a response");
        assert_eq!(server.hits(), hits, "Retry-After: {value:?}");
        assert_eq!(response.status(), if hits == 1 { 503 } else { 200 });
    }

    // A past date or zero: retried at once.
    let server = Server::start(|hit, _| {
        if hit == 1 {
            with_retry_after(503, "Wed, 21 Oct 2015 07:28:00 GMT")
        } else {
            status_response(200)
        }
    })
    .await;
    let retry = quick_retry(2).build().expect("retry");
    assert_eq!(
        client_for(retry)
            .get(&server.url)
            .send()
            .await
            .expect("a response")
            .status(),
        200
    );
    assert_eq!(
        retried.load(Ordering::SeqCst),
        0,
        "the first case never retried"
    );
}

fn client_for(
    retry: fusebox_policy::policy::Retry<reqwest::Response, reqwest_middleware::Error>,
) -> ClientWithMiddleware {
    client(RetryMiddleware::new(retry))
}

#[tokio::test]
async fn retry_outside_a_breaker_stops_at_the_first_rejection() {
    let down = Server::always(503).await;
    let breaker = Breaker::builder("inventory")
        .consecutive_failures(2)
        .build()
        .expect("breaker");
    let client = ClientBuilder::new(reqwest_client(Duration::from_secs(10)))
        .with(RetryMiddleware::new(
            quick_retry(10).build().expect("retry"),
        ))
        .with(BreakerMiddleware::single(breaker.clone()))
        .build();
    let error = client.get(&down.url).send().await.unwrap_err();
    assert!(rejection(&error).is_some(), "{error}");
    assert_eq!(
        down.hits(),
        2,
        "two failures opened it; the rejection is not retried"
    );
}

#[tokio::test]
async fn a_pipeline_wraps_the_request() {
    let slow_then_down = Server::start(|hit, _| {
        if hit == 1 {
            std::thread::sleep(Duration::from_millis(400));
        }
        status_response(503)
    })
    .await;
    let breaker = Breaker::builder("search")
        .consecutive_failures(3)
        .build()
        .expect("breaker");
    let pipeline = Pipeline::builder()
        .retry(quick_retry(1).build().expect("retry"))
        .breaker_with(breaker.clone(), ReqwestClassifier::new().in_pipeline())
        .timeout(Duration::from_millis(100))
        .build()
        .expect("pipeline");
    let client = client(PipelineMiddleware::new(pipeline));

    // The first attempt times out, the retry gets a 503: returned as a response.
    let response = client
        .get(&slow_then_down.url)
        .send()
        .await
        .expect("a response");
    assert_eq!(response.status(), 503);
    // Another 503 and a third failure: the breaker opens on the second call's retry.
    let error = client.get(&slow_then_down.url).send().await;
    let error = match error {
        Ok(response) => panic!("expected a refusal, got {}", response.status()),
        Err(e) => e,
    };
    assert!(
        refusal(&error).is_some() && rejection(&error).is_some(),
        "{error}"
    );
    assert_eq!(breaker.state(), State::Open);

    // A pipeline timeout on its own comes back as a refusal too.
    let slow = Server::start(|_, _| {
        std::thread::sleep(Duration::from_millis(300));
        status_response(200)
    })
    .await;
    let pipeline = Pipeline::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .expect("pipeline");
    let error = client_with_pipeline(pipeline)
        .get(&slow.url)
        .send()
        .await
        .unwrap_err();
    let refused = refusal(&error).expect("a refusal");
    assert!(refused.is::<fusebox_core::TimedOut>(), "{refused}");
}

fn client_with_pipeline(
    pipeline: Pipeline<reqwest::Response, reqwest_middleware::Error>,
) -> ClientWithMiddleware {
    client(PipelineMiddleware::new(pipeline))
}

#[tokio::test]
async fn a_503_with_retry_after_opens_the_host_breaker_that_long() {
    let down = Server::start(|_, _| with_retry_after(503, "45")).await;
    let breaker = Breaker::builder("inventory")
        .consecutive_failures(1)
        .cooldown(Duration::from_secs(5))
        .open_for_retry_after(Duration::from_secs(300))
        .build()
        .expect("valid breaker");
    let client = client(BreakerMiddleware::single(breaker.clone()));
    let response = client.get(&down.url).send().await.expect("a response");
    assert_eq!(response.status(), 503);
    let error = client.get(&down.url).send().await.unwrap_err();
    let wait = rejection(&error)
        .and_then(|r| r.retry_after())
        .expect("an open breaker says when");
    assert!(
        wait > Duration::from_secs(40) && wait <= Duration::from_secs(45),
        "the server's 45 s, not the 5 s cooldown: {wait:?}"
    );
    assert_eq!(down.hits(), 1);
}

#[tokio::test]
async fn per_host_overrides_come_from_a_settings_file() {
    let payments = Server::always(503).await;
    let search = Server::always(503).await;
    // The registry's keys are origins, `scheme://host:port`.
    let file = format!(
        r#"
        [defaults]
        consecutive_failures = 3

        [keys."{}"]
        consecutive_failures = 1
        "#,
        payments.url.trim_end_matches('/')
    );
    let settings: fusebox_policy::settings::RegistrySettings =
        toml::from_str(&file).expect("valid TOML");
    let breakers =
        BreakerMiddleware::registry_per_host(settings.build("api").expect("valid settings"));
    let client = client(breakers.clone());

    for _ in 0..3 {
        let _ = client.get(&payments.url).send().await;
        let _ = client.get(&search.url).send().await;
    }
    assert_eq!(payments.hits(), 1, "its override opens after one failure");
    assert_eq!(search.hits(), 3, "the default needs three");
    let registry = breakers.registry().expect("per host");
    assert_eq!(registry.len(), 2);
}
