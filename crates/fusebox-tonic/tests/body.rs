//! The layer on hand-made responses: the shapes a real server rarely sends (a proxy's HTTP
//! error, a body cut before its trailers, a malformed status) and how each is recorded.

use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use fusebox_core::Outcome;
use fusebox_core::breaker::{Breaker, State};
use fusebox_core::clock::ManualClock;
use fusebox_tonic::{GrpcBreakerLayer, GrpcClassifier, retry_after_from};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty, StreamBody};
use tonic::{Code, Status};
use tower::{Layer, ServiceExt, service_fn};

type Frames = Vec<Result<Frame<Bytes>, io::Error>>;

fn breaker(failures: u32) -> Breaker {
    Breaker::builder("mock")
        .consecutive_failures(failures)
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

fn trailers(status: &'static str) -> Frame<Bytes> {
    let mut map = HeaderMap::new();
    map.insert("grpc-status", HeaderValue::from_static(status));
    Frame::trailers(map)
}

fn message() -> Frame<Bytes> {
    Frame::data(Bytes::from_static(b"\0\0\0\0\x02\x08\x01"))
}

/// Sends one request through the layer to a server answering `status` and `frames`, and
/// reads the whole body.
async fn exchange(
    layer: &GrpcBreakerLayer,
    status: StatusCode,
    frames: fn() -> Frames,
) -> Result<(), io::Error> {
    let service = layer.layer(service_fn(move |_: Request<()>| async move {
        let body = StreamBody::new(tokio_stream::iter(frames()));
        let mut response = Response::new(body);
        *response.status_mut() = status;
        Ok::<_, Infallible>(response)
    }));
    let response = service.oneshot(Request::new(())).await.unwrap();
    response.into_body().collect().await.map(drop)
}

#[tokio::test]
async fn the_status_in_the_trailers_is_recorded_when_the_body_ends() {
    let breaker = breaker(1);
    let layer = GrpcBreakerLayer::new(breaker.clone());
    let service = layer.layer(service_fn(|_: Request<()>| async {
        let frames: Frames = vec![Ok(message()), Ok(trailers("14"))];
        Ok::<_, Infallible>(Response::new(StreamBody::new(tokio_stream::iter(frames))))
    }));
    let mut body = service.oneshot(Request::new(())).await.unwrap().into_body();
    assert_eq!(breaker.state(), State::Closed, "the head says nothing yet");
    assert!(body.frame().await.unwrap().unwrap().is_data());
    assert_eq!(
        breaker.state(),
        State::Closed,
        "a message says nothing either"
    );
    assert!(body.frame().await.unwrap().unwrap().is_trailers());
    assert_eq!(breaker.state(), State::Open, "UNAVAILABLE in the trailers");
}

#[tokio::test]
async fn bodies_without_a_usable_status_count_as_unknown() {
    let cases: [fn() -> Frames; 4] = [
        || vec![Ok(message())], // ended with no trailers
        || vec![Ok(message()), Ok(Frame::trailers(HeaderMap::new()))], // trailers, no status
        || vec![Ok(message()), Ok(trailers("not-a-code"))],
        || vec![Ok(trailers("17"))], // no such code
    ];
    for frames in cases {
        let breaker = breaker(1);
        exchange(
            &GrpcBreakerLayer::new(breaker.clone()),
            StatusCode::OK,
            frames,
        )
        .await
        .unwrap();
        assert_eq!(breaker.state(), State::Open);
    }
    // Unless UNKNOWN is configured otherwise.
    let breaker = breaker(1);
    let classifier = GrpcClassifier::builder()
        .code(Code::Unknown, Outcome::Ignored)
        .build()
        .unwrap();
    let layer = GrpcBreakerLayer::new(breaker.clone()).classifier(classifier);
    exchange(&layer, StatusCode::OK, || vec![Ok(message())])
        .await
        .unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test]
async fn a_body_error_is_a_transport_error() {
    let broken: fn() -> Frames = || vec![Ok(message()), Err(io::Error::other("stream reset"))];
    let breaker = breaker(1);
    let error = exchange(
        &GrpcBreakerLayer::new(breaker.clone()),
        StatusCode::OK,
        broken,
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "stream reset",
        "the error passes through unchanged"
    );
    assert_eq!(breaker.state(), State::Open);

    let breaker = self::breaker(1);
    let ignore = GrpcClassifier::builder()
        .transport_errors(Outcome::Ignored)
        .build()
        .unwrap();
    let layer = GrpcBreakerLayer::new(breaker.clone()).classifier(ignore);
    exchange(&layer, StatusCode::OK, broken).await.unwrap_err();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test]
async fn http_errors_without_a_grpc_status_are_read_as_grpc_maps_them() {
    // A proxy's 503: UNAVAILABLE, recorded from the head.
    let breaker = breaker(1);
    exchange(
        &GrpcBreakerLayer::new(breaker.clone()),
        StatusCode::SERVICE_UNAVAILABLE,
        Vec::new,
    )
    .await
    .unwrap();
    assert_eq!(breaker.state(), State::Open);
    // A 404: UNIMPLEMENTED, the server answering (a success by default).
    let breaker = self::breaker(2);
    breaker.record_failure();
    exchange(
        &GrpcBreakerLayer::new(breaker.clone()),
        StatusCode::NOT_FOUND,
        Vec::new,
    )
    .await
    .unwrap();
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
}

#[tokio::test]
async fn a_trailers_only_response_is_recorded_from_its_head() {
    let breaker = breaker(2);
    breaker.record_failure();
    let layer = GrpcBreakerLayer::new(breaker.clone());
    let service = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Status::not_found("no such row").into_http::<Empty<Bytes>>())
    }));
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(
        breaker.snapshot().consecutive_failures,
        0,
        "NOT_FOUND recorded before the body is read"
    );
    drop(response);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test]
async fn an_inner_service_error_is_a_transport_error() {
    let breaker = breaker(1);
    let service =
        GrpcBreakerLayer::new(breaker.clone()).layer(service_fn(|_: Request<()>| async {
            Err::<Response<Empty<Bytes>>, _>(io::Error::from(io::ErrorKind::ConnectionRefused))
        }));
    let error = service.oneshot(Request::new(())).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test]
async fn a_rejection_is_a_trailers_only_unavailable_response_made_without_the_inner_service() {
    let breaker = breaker(1);
    breaker.trip("drill");
    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let service = GrpcBreakerLayer::new(breaker.clone()).layer(service_fn(move |_: Request<()>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new())) }
    }));
    let response = service.oneshot(Request::new(())).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert_eq!(response.headers()["grpc-status"], "14");
    assert!(response.headers().contains_key("grpc-status-details-bin"));
    let status = Status::from_header_map(response.headers()).unwrap();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(retry_after_from(&status).is_some());
    let body = response.into_body();
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));
    assert!(body.collect().await.unwrap().to_bytes().is_empty());
}

#[tokio::test]
async fn a_pushback_on_a_failure_opens_the_breaker_that_long() {
    let clock = ManualClock::new();
    let breaker = Breaker::builder("inventory")
        .consecutive_failures(1)
        .cooldown(std::time::Duration::from_secs(30))
        .open_for_retry_after(std::time::Duration::from_secs(600))
        .clock(clock.clone())
        .build()
        .unwrap();
    let service =
        GrpcBreakerLayer::new(breaker.clone()).layer(service_fn(|_: Request<()>| async {
            let mut status = Status::unavailable("draining");
            status
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", "7000".parse().unwrap());
            Ok::<_, Infallible>(status.into_http::<Empty<Bytes>>())
        }));
    let response = service.oneshot(Request::new(())).await.unwrap();
    drop(response);
    assert_eq!(breaker.state(), State::Open);
    let rejected = breaker.try_acquire().unwrap_err();
    assert_eq!(
        rejected.retry_after(),
        Some(std::time::Duration::from_secs(7))
    );
}
