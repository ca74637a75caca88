//! The breaker layer on a tonic `Channel`, against real tonic servers on 127.0.0.1.

mod support;

use std::time::Duration;

use fusebox_core::Outcome;
use fusebox_core::breaker::{Breaker, State};
use fusebox_core::clock::ManualClock;
use fusebox_tonic::{GrpcBreaker, GrpcBreakerLayer, GrpcClassifier, retry_after_from};
use support::{Script, WAIT, check_request, scripted_server, serve};
use tokio::time::timeout;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;
use tower::ServiceBuilder;

const COOLDOWN: Duration = Duration::from_secs(30);

fn breaker(failures: u32, clock: &ManualClock) -> Breaker {
    Breaker::builder("health")
        .consecutive_failures(failures)
        .cooldown(COOLDOWN)
        .clock(clock.clone())
        .build()
        .expect("a valid breaker")
}

fn client(channel: Channel, breaker: &Breaker) -> HealthClient<GrpcBreaker<Channel>> {
    HealthClient::new(
        ServiceBuilder::new()
            .layer(GrpcBreakerLayer::new(breaker.clone()))
            .service(channel),
    )
}

async fn check(client: &mut HealthClient<GrpcBreaker<Channel>>) -> Result<(), Status> {
    timeout(WAIT, client.check(check_request()))
        .await
        .expect("the call timed out")
        .map(drop)
}

#[tokio::test]
async fn trailers_only_failures_trip_the_breaker_and_the_client_reads_the_retry_delay() {
    let script = Script::new();
    script.answer(Status::unavailable("overloaded"));
    let server = scripted_server(&script).await;
    let clock = ManualClock::new();
    let breaker = breaker(3, &clock);
    let mut client = client(server.channel().await, &breaker);

    for _ in 0..3 {
        let error = check(&mut client).await.unwrap_err();
        assert_eq!(error.code(), Code::Unavailable);
        assert_eq!(error.message(), "overloaded");
        assert_eq!(retry_after_from(&error), None, "the server sent no delay");
    }
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(script.calls(), 3);

    // Open: answered by the layer, not the server.
    clock.advance(Duration::from_secs(10));
    let rejected = check(&mut client).await.unwrap_err();
    assert_eq!(script.calls(), 3, "the rejection never reached the server");
    assert_eq!(rejected.code(), Code::Unavailable);
    assert!(
        rejected
            .message()
            .contains("circuit breaker `health` is open"),
        "{rejected:?}"
    );
    assert_eq!(retry_after_from(&rejected), Some(Duration::from_secs(20)));
    // Standard rich error details, readable by any gRPC client library...
    let info = rejected
        .get_details_retry_info()
        .expect("a RetryInfo detail");
    assert_eq!(info.retry_delay, Some(Duration::from_secs(20)));
    // ...and gRPC's retry pushback trailer.
    assert_eq!(
        rejected.metadata().get("grpc-retry-pushback-ms").unwrap(),
        "20000"
    );

    // After the cooldown a trial goes through; the server has recovered and it closes.
    clock.advance(Duration::from_secs(20));
    script.answer(Status::ok(""));
    check(&mut client).await.expect("the trial succeeds");
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(script.calls(), 4);
}

#[tokio::test]
async fn every_default_failure_code_trips_and_not_found_never_does() {
    let script = Script::new();
    let server = scripted_server(&script).await;
    let channel = server.channel().await;
    for code in [
        Code::Unavailable,
        Code::DeadlineExceeded,
        Code::ResourceExhausted,
        Code::Internal,
        Code::DataLoss,
        Code::Unknown,
    ] {
        let breaker = breaker(1, &ManualClock::new());
        let mut client = client(channel.clone(), &breaker);
        script.answer(Status::new(code, "trouble"));
        assert_eq!(check(&mut client).await.unwrap_err().code(), code);
        assert_eq!(breaker.state(), State::Open, "{code:?} trips");
    }
    for code in [
        Code::NotFound,
        Code::InvalidArgument,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::Unauthenticated,
        Code::FailedPrecondition,
        Code::Cancelled,
    ] {
        let breaker = breaker(1, &ManualClock::new());
        let mut client = client(channel.clone(), &breaker);
        script.answer(Status::new(code, "your request"));
        for _ in 0..3 {
            assert_eq!(check(&mut client).await.unwrap_err().code(), code);
        }
        assert_eq!(breaker.state(), State::Closed, "{code:?} does not trip");
        assert_eq!(breaker.snapshot().consecutive_failures, 0);
    }
}

#[tokio::test]
async fn the_real_health_service_not_found_leaves_the_breaker_closed() {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("known", tonic_health::ServingStatus::NotServing)
        .await;
    let server = serve(Server::builder().add_service(health)).await;
    let breaker = breaker(1, &ManualClock::new());
    let mut client = client(server.channel().await, &breaker);

    for _ in 0..5 {
        let request = HealthCheckRequest {
            service: "unknown".into(),
        };
        let error = timeout(WAIT, client.check(request))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(error.code(), Code::NotFound);
    }
    // NOT_SERVING is an answer too, carried in a message with OK in the trailers.
    let request = HealthCheckRequest {
        service: "known".into(),
    };
    let response = timeout(WAIT, client.check(request)).await.unwrap().unwrap();
    assert_eq!(
        response.into_inner().status(),
        tonic_health::pb::health_check_response::ServingStatus::NotServing
    );
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
}

#[tokio::test]
async fn ok_in_the_trailers_of_a_unary_call_is_a_success() {
    let script = Script::new();
    let server = scripted_server(&script).await;
    let breaker = breaker(3, &ManualClock::new());
    let mut client = client(server.channel().await, &breaker);

    script.answer(Status::internal("flaky"));
    check(&mut client).await.unwrap_err();
    check(&mut client).await.unwrap_err();
    assert_eq!(breaker.snapshot().consecutive_failures, 2);
    script.answer(Status::ok(""));
    check(&mut client).await.unwrap();
    // The success came from `grpc-status: 0` in the trailers and ended the run.
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
    script.answer(Status::internal("flaky"));
    check(&mut client).await.unwrap_err();
    check(&mut client).await.unwrap_err();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test]
async fn an_error_in_the_trailers_after_streamed_messages_trips_when_the_stream_ends() {
    let script = Script::new();
    script.end_watch_with(Some(Status::internal("lost the database")));
    let server = scripted_server(&script).await;
    let breaker = breaker(1, &ManualClock::new());
    let mut client = client(server.channel().await, &breaker);

    let mut stream = timeout(WAIT, client.watch(check_request()))
        .await
        .unwrap()
        .expect("the stream opens with a normal response head")
        .into_inner();
    let first = timeout(WAIT, stream.message()).await.unwrap().unwrap();
    assert!(first.is_some(), "one message before the error");
    assert_eq!(
        breaker.state(),
        State::Closed,
        "no status yet: nothing recorded"
    );
    let error = timeout(WAIT, stream.message()).await.unwrap().unwrap_err();
    assert_eq!(error.code(), Code::Internal);
    assert_eq!(
        breaker.state(),
        State::Open,
        "the trailers' INTERNAL tripped it"
    );

    let rejected = timeout(WAIT, client.watch(check_request()))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(rejected.code(), Code::Unavailable);
    assert_eq!(retry_after_from(&rejected), Some(COOLDOWN));
    assert_eq!(script.calls(), 1);
}

#[tokio::test]
async fn a_stream_ending_with_ok_is_a_success() {
    let script = Script::new();
    script.end_watch_with(Some(Status::ok("")));
    let server = scripted_server(&script).await;
    let breaker = breaker(2, &ManualClock::new());
    breaker.record_failure();
    let mut client = client(server.channel().await, &breaker);

    let mut stream = client.watch(check_request()).await.unwrap().into_inner();
    assert!(
        timeout(WAIT, stream.message())
            .await
            .unwrap()
            .unwrap()
            .is_some()
    );
    assert_eq!(breaker.snapshot().consecutive_failures, 1);
    assert!(
        timeout(WAIT, stream.message())
            .await
            .unwrap()
            .unwrap()
            .is_none()
    );
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
}

#[tokio::test]
async fn a_stream_dropped_before_its_trailers_records_nothing_and_frees_its_trial() {
    let script = Script::new();
    script.end_watch_with(None); // one message, then open until the caller leaves
    let server = scripted_server(&script).await;
    let clock = ManualClock::new();
    let breaker = breaker(1, &clock);
    let mut client = client(server.channel().await, &breaker);

    breaker.trip("drill");
    clock.advance(COOLDOWN);
    let mut stream = client.watch(check_request()).await.unwrap().into_inner();
    assert!(
        timeout(WAIT, stream.message())
            .await
            .unwrap()
            .unwrap()
            .is_some()
    );
    assert_eq!(
        breaker.snapshot().trials_in_flight,
        1,
        "the stream holds the trial"
    );
    // The only trial is taken: another call is refused while the stream lives.
    let busy = check(&mut client).await.unwrap_err();
    assert_eq!(busy.code(), Code::Unavailable);
    assert_eq!(breaker.state(), State::HalfOpen);

    drop(stream);
    let snapshot = breaker.snapshot();
    assert_eq!(
        snapshot.trials_in_flight, 0,
        "dropping the stream freed the trial"
    );
    assert_eq!(snapshot.trial_failures, 0);
    assert_eq!(snapshot.state, State::HalfOpen);
    // The next trial is admitted and closes the breaker.
    check(&mut client).await.unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test]
async fn transport_errors_trip_the_breaker_and_rejections_skip_the_connection() {
    // A port nobody listens on: bound, then closed.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(WAIT)
        .connect_lazy();
    let breaker = breaker(2, &ManualClock::new());
    let mut client = client(channel, &breaker);

    for _ in 0..2 {
        let error = check(&mut client).await.unwrap_err();
        assert_eq!(error.code(), Code::Unavailable);
        assert!(
            retry_after_from(&error).is_none(),
            "a transport error: {error:?}"
        );
    }
    assert_eq!(breaker.state(), State::Open);
    let rejected = check(&mut client).await.unwrap_err();
    assert!(
        rejected.message().contains("circuit breaker"),
        "{rejected:?}"
    );
    assert_eq!(retry_after_from(&rejected), Some(COOLDOWN));
}

#[tokio::test]
async fn transport_errors_can_be_ignored() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let breaker = breaker(1, &ManualClock::new());
    let classifier = GrpcClassifier::builder()
        .transport_errors(Outcome::Ignored)
        .build()
        .unwrap();
    let mut client = HealthClient::new(
        ServiceBuilder::new()
            .layer(GrpcBreakerLayer::new(breaker.clone()).classifier(classifier))
            .service(channel),
    );
    for _ in 0..3 {
        let error = timeout(WAIT, client.check(check_request()))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(error.code(), Code::Unavailable);
    }
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test]
async fn a_configured_classifier_counts_not_found_as_a_failure() {
    let script = Script::new();
    script.answer(Status::not_found("gone"));
    let server = scripted_server(&script).await;
    let breaker = breaker(2, &ManualClock::new());
    let classifier = GrpcClassifier::builder()
        .code(Code::NotFound, Outcome::Failure)
        .build()
        .unwrap();
    let mut client = HealthClient::new(
        ServiceBuilder::new()
            .layer(GrpcBreakerLayer::new(breaker.clone()).classifier(classifier))
            .service(server.channel().await),
    );
    check(&mut client).await.unwrap_err();
    check(&mut client).await.unwrap_err();
    assert_eq!(breaker.state(), State::Open);
}
