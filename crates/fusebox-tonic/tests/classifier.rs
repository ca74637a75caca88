//! The classifier's table, its builder, and its use around generated-client calls in
//! breakers, stacks and pipelines, against a real tonic server on 127.0.0.1.

mod support;

use std::time::Duration;

use fusebox_core::breaker::{Breaker, State};
use fusebox_core::clock::ManualClock;
use fusebox_core::{Classifier, Error, Outcome, TimedOut};
use fusebox_policy::pipeline::Pipeline;
use fusebox_policy::policy::Retry;
use fusebox_policy::stack::Stack;
use fusebox_tonic::{ALL_CODES, GrpcClassifier, error_status, retry_after_from, retry_hint};
use support::{Script, WAIT, check_request, scripted_server};
use tonic::{Code, Response, Status};
use tonic_health::pb::HealthCheckResponse;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::{ErrorDetails, StatusExt};

/// The documented defaults, written out code by code (no wildcard: a code added to gRPC
/// fails to compile here until someone decides what it means).
fn documented_default(code: Code) -> Outcome {
    match code {
        Code::Ok => Outcome::Success,
        Code::Cancelled => Outcome::Ignored,
        Code::Unknown => Outcome::Failure,
        Code::InvalidArgument => Outcome::Success,
        Code::DeadlineExceeded => Outcome::Failure,
        Code::NotFound => Outcome::Success,
        Code::AlreadyExists => Outcome::Success,
        Code::PermissionDenied => Outcome::Success,
        Code::ResourceExhausted => Outcome::Failure,
        Code::FailedPrecondition => Outcome::Success,
        Code::Aborted => Outcome::Success,
        Code::OutOfRange => Outcome::Success,
        Code::Unimplemented => Outcome::Success,
        Code::Internal => Outcome::Failure,
        Code::Unavailable => Outcome::Failure,
        Code::DataLoss => Outcome::Failure,
        Code::Unauthenticated => Outcome::Success,
    }
}

#[test]
fn the_default_table_covers_every_code_as_documented() {
    let classifier = GrpcClassifier::new();
    assert_eq!(ALL_CODES.len(), 17);
    for number in 0..=16 {
        let code = Code::from_i32(number);
        assert_eq!(ALL_CODES[number as usize], code);
        assert_eq!(
            classifier.code_outcome(code),
            documented_default(code),
            "{code:?}"
        );
        let status = Status::new(code, "x");
        let expected = if code == Code::Ok {
            Outcome::Success
        } else {
            documented_default(code)
        };
        assert_eq!(classifier.classify(&Err::<(), _>(status)), expected);
    }
    assert_eq!(classifier.transport_outcome(), Outcome::Failure);
    assert_eq!(GrpcClassifier::default(), classifier);
    assert_eq!(
        classifier.classify(&Ok::<_, Status>(Response::new(()))),
        Outcome::Success
    );
}

#[test]
fn every_code_can_be_set_to_every_outcome_but_ok_to_failure() {
    for code in ALL_CODES {
        for outcome in [Outcome::Success, Outcome::Failure, Outcome::Ignored] {
            let built = GrpcClassifier::builder().code(code, outcome).build();
            if code == Code::Ok && outcome == Outcome::Failure {
                assert_eq!(built.unwrap_err().field(), Some("codes"));
                continue;
            }
            let classifier = built.unwrap();
            assert_eq!(classifier.code_outcome(code), outcome);
            for other in ALL_CODES.into_iter().filter(|&c| c != code) {
                assert_eq!(classifier.code_outcome(other), documented_default(other));
            }
        }
    }
}

#[test]
fn numbers_outside_the_codes_are_a_named_error() {
    for number in [-1, 17, 42, i32::MIN, i32::MAX] {
        let error = GrpcClassifier::builder()
            .code_number(number, Outcome::Failure)
            .build()
            .unwrap_err();
        assert_eq!(error.field(), Some("codes"));
        assert!(error.to_string().contains(&number.to_string()), "{error}");
    }
    let error = GrpcClassifier::builder()
        .code_number(0, Outcome::Failure)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("OK"), "{error}");
    // The first error is kept even when later settings are valid.
    let error = GrpcClassifier::builder()
        .code_number(99, Outcome::Ignored)
        .code(Code::NotFound, Outcome::Failure)
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("99"));
}

#[test]
fn inside_a_stack_refusals_are_ignored_and_timeouts_fail() {
    let classifier = GrpcClassifier::new();
    let rejected = fusebox_core::Rejected::new("inner", State::Open, None);
    assert_eq!(
        classifier.classify(&Err::<(), _>(Error::<Status>::Rejected(rejected))),
        Outcome::Ignored
    );
    let timed_out = Error::<Status>::Timeout(TimedOut {
        after: Duration::from_secs(1),
    });
    assert_eq!(
        classifier.classify(&Err::<(), _>(timed_out)),
        Outcome::Failure
    );
    let not_found = Error::Inner(Status::not_found("x"));
    assert_eq!(
        classifier.classify(&Err::<(), _>(not_found)),
        Outcome::Success
    );
}

/// A generated client's result.
type Check = Result<Response<HealthCheckResponse>, Status>;
/// The same inside a fusebox stack.
type GuardedCheck = Result<Response<HealthCheckResponse>, Error<Status>>;

#[tokio::test]
async fn a_breaker_call_around_a_generated_client() {
    let script = Script::new();
    let server = scripted_server(&script).await;
    let client = HealthClient::new(server.channel().await);
    let breaker = Breaker::builder("direct")
        .consecutive_failures(1)
        .build()
        .unwrap();
    let classifier = GrpcClassifier::new();
    let call = || {
        let mut client = client.clone();
        async move { client.check(check_request()).await }
    };

    script.answer(Status::permission_denied("not yours"));
    let denied = tokio::time::timeout(WAIT, breaker.call_with(&classifier, call))
        .await
        .unwrap();
    assert_eq!(
        denied.unwrap_err().inner().unwrap().code(),
        Code::PermissionDenied
    );
    assert_eq!(breaker.state(), State::Closed);

    script.answer(Status::data_loss("torn page"));
    let lost = tokio::time::timeout(WAIT, breaker.call_with(&classifier, call))
        .await
        .unwrap();
    assert_eq!(lost.unwrap_err().inner().unwrap().code(), Code::DataLoss);
    assert_eq!(breaker.state(), State::Open);

    let refused = breaker.call_with(&classifier, call).await.unwrap_err();
    assert!(refused.is_rejected());
    assert_eq!(script.calls(), 2);
    let status = error_status(refused);
    assert_eq!(status.code(), Code::Unavailable);
    assert!(retry_after_from(&status).is_some());
}

#[tokio::test]
async fn a_stack_around_a_generated_client() {
    let script = Script::new();
    let server = scripted_server(&script).await;
    let client = HealthClient::new(server.channel().await);
    let clock = ManualClock::new();
    let breaker = Breaker::builder("stacked")
        .consecutive_failures(2)
        .cooldown(Duration::from_secs(8))
        .clock(clock.clone())
        .build()
        .unwrap();
    let classifier = GrpcClassifier::new();
    let stack = Stack::new().breaker_with(breaker.clone(), move |r: &GuardedCheck| {
        classifier.classify(r)
    });
    let call = || {
        let mut client = client.clone();
        async move { client.check(check_request()).await }
    };

    script.answer(Status::not_found("no such service"));
    for _ in 0..3 {
        let r = tokio::time::timeout(WAIT, stack.call(call)).await.unwrap();
        assert_eq!(r.unwrap_err().inner().unwrap().code(), Code::NotFound);
    }
    assert_eq!(breaker.state(), State::Closed);
    script.answer(Status::resource_exhausted("out of connections"));
    for _ in 0..2 {
        let _ = tokio::time::timeout(WAIT, stack.call(call)).await.unwrap();
    }
    assert_eq!(breaker.state(), State::Open);
    let refused = stack.call(call).await.unwrap_err();
    assert_eq!(
        retry_hint::<()>(&Err(refused)),
        Some(Duration::from_secs(8))
    );
    assert_eq!(script.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_retry_waits_as_long_as_the_server_asks() {
    let script = Script::new();
    let asked = Duration::from_secs(3);
    script.answer(Status::with_error_details(
        Code::Unavailable,
        "warming up",
        ErrorDetails::with_retry_info(Some(asked)),
    ));
    let server = scripted_server(&script).await;
    let client = HealthClient::new(server.channel().await);
    let breaker = Breaker::builder("piped")
        .consecutive_failures(3)
        .build()
        .unwrap();
    let classifier = GrpcClassifier::new();
    let pipeline = Pipeline::<Response<HealthCheckResponse>, Status>::builder()
        .retry(
            Retry::builder()
                .max_retries(2)
                .retry_after_from(retry_hint)
                .build()
                .unwrap(),
        )
        .breaker_with(breaker.clone(), move |r| classifier.classify(r))
        .build()
        .unwrap();

    let started = tokio::time::Instant::now();
    let result: Check = pipeline
        .call(|| {
            let mut client = client.clone();
            async move { client.check(check_request()).await }
        })
        .await
        .map_err(error_status);
    let status = result.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.get_details_retry_info().unwrap().retry_delay,
        Some(asked)
    );
    assert_eq!(script.calls(), 3, "three attempts");
    assert!(
        started.elapsed() >= asked * 2,
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(breaker.state(), State::Open);
}
