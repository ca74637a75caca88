//! Settings reloaded from a file while a client runs against real servers on 127.0.0.1:
//! the breaker and the retry in front of them change, and keep their state.

mod common;

use std::time::Duration;

use common::{Server, reqwest_client};
use fusebox_core::State;
use fusebox_core::backoff::Backoff;
use fusebox_core::breaker::Breaker;
use fusebox_policy::settings::Reloader;
use fusebox_reqwest::{BreakerMiddleware, RetryMiddleware, rejection, retry_policy};
use reqwest_middleware::ClientBuilder;

#[tokio::test]
async fn a_reloaded_file_retunes_the_client_without_losing_its_state() {
    let sick = Server::always(503).await;
    let dir = std::env::temp_dir().join(format!("fusebox-reqwest-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("fusebox.toml");
    std::fs::write(
        &path,
        "[breakers.api]\nconsecutive_failures = 10\ncooldown = \"60s\"\n\
         [retries.api]\nmax_retries = 0\n",
    )
    .expect("write");

    let breaker = Breaker::builder("api").build().expect("breaker");
    let retry = retry_policy()
        .backoff(
            Backoff::fixed(Duration::from_millis(1))
                .build()
                .expect("backoff"),
        )
        .build()
        .expect("retry");
    let reloader = Reloader::new(&path)
        .breaker("api", &breaker)
        .retry("api", &retry);
    reloader.reload().expect("the first file is valid");
    // The retry sits outside the breaker: each attempt is one breaker call.
    let client = ClientBuilder::new(reqwest_client(Duration::from_secs(10)))
        .with(RetryMiddleware::new(retry.clone()))
        .with(BreakerMiddleware::single(breaker.clone()))
        .build();

    for _ in 0..4 {
        let response = client.get(&sick.url).send().await.expect("a response");
        assert_eq!(response.status(), 503);
    }
    assert_eq!((sick.hits(), breaker.state()), (4, State::Closed));

    // Four failures in a row are kept: a threshold of six now needs two more, and the
    // retry now makes a second attempt of every call.
    std::fs::write(
        &path,
        "[breakers.api]\nconsecutive_failures = 6\ncooldown = \"60s\"\n\
         [retries.api]\nmax_retries = 1\nbackoff = { kind = \"fixed\", delay = \"1ms\" }\n",
    )
    .expect("write");
    let report = reloader.reload().expect("valid");
    assert_eq!(report.applied, ["breakers.api", "retries.api"]);
    assert_eq!(breaker.state(), State::Closed);
    let response = client.get(&sick.url).send().await.expect("a response");
    assert_eq!(response.status(), 503);
    assert_eq!(sick.hits(), 6, "one call, two attempts");
    assert_eq!(
        breaker.state(),
        State::Open,
        "4 kept + 2 new failures in a row"
    );
    let refused = client.get(&sick.url).send().await.unwrap_err();
    assert!(rejection(&refused).is_some(), "{refused}");
    assert_eq!(sick.hits(), 6, "an open breaker keeps the host's load off");

    // A bad file changes nothing.
    std::fs::write(&path, "[breakers.api]\ncooldown = \"0s\"\n").expect("write");
    let err = reloader.reload().unwrap_err();
    assert_eq!(err.setting(), Some("breakers.api.cooldown"));
    assert_eq!(breaker.config().consecutive_failures(), Some(6));
    let _ = std::fs::remove_dir_all(&dir);
}
