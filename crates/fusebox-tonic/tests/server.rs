//! Breakers on the server side: a tonic server shedding load with the layer, and a server
//! whose handler protects a downstream and answers the downstream's breaker's rejections.

mod support;

use std::time::Duration;

use fusebox_core::breaker::{Breaker, State};
use fusebox_core::clock::ManualClock;
use fusebox_tonic::{GrpcBreakerLayer, GrpcClassifier, error_status, retry_after_from};
use support::{Script, ScriptedHealth, WAIT, check_request, scripted_server, serve_with};
use tokio::time::timeout;
use tonic::transport::{Channel, Server};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_types::StatusExt;

const COOLDOWN: Duration = Duration::from_secs(15);

fn breaker(name: &'static str, clock: &ManualClock) -> Breaker {
    Breaker::builder(name)
        .consecutive_failures(2)
        .cooldown(COOLDOWN)
        .clock(clock.clone())
        .build()
        .expect("a valid breaker")
}

#[tokio::test]
async fn a_server_layer_answers_unavailable_with_retry_info_once_its_handlers_fail() {
    let script = Script::new();
    script.answer(Status::internal("corrupt index"));
    let clock = ManualClock::new();
    let breaker = breaker("search-server", &clock);
    let layer = GrpcBreakerLayer::new(breaker.clone());
    let health = HealthServer::new(ScriptedHealth(script.clone()));
    let server = serve_with(move |incoming, shutdown| {
        Server::builder()
            .layer(layer)
            .add_service(health)
            .serve_with_incoming_shutdown(incoming, shutdown)
    })
    .await;
    let mut client = HealthClient::new(server.channel().await);

    for _ in 0..2 {
        let error = timeout(WAIT, client.check(check_request()))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(error.code(), Code::Internal);
    }
    assert_eq!(breaker.state(), State::Open);
    let shed = timeout(WAIT, client.check(check_request()))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(script.calls(), 2, "the handler was not called");
    assert_eq!(shed.code(), Code::Unavailable);
    assert_eq!(retry_after_from(&shed), Some(COOLDOWN));
    assert_eq!(
        shed.get_details_retry_info()
            .and_then(|info| info.retry_delay),
        Some(COOLDOWN)
    );

    clock.advance(COOLDOWN);
    script.answer(Status::ok(""));
    timeout(WAIT, client.check(check_request()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(breaker.state(), State::Closed);
}

/// A front service whose `check` asks a downstream health service, through a breaker.
struct Front {
    downstream: HealthClient<Channel>,
    breaker: Breaker,
}

#[tonic::async_trait]
impl Health for Front {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let mut downstream = self.downstream.clone();
        let request = request.into_inner();
        self.breaker
            .call_with(&GrpcClassifier::new(), || downstream.check(request))
            .await
            .map_err(error_status)
    }

    type WatchStream = tonic::codec::Streaming<HealthCheckResponse>;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not proxied"))
    }
}

#[tokio::test]
async fn a_handler_protecting_a_downstream_answers_its_rejections_as_unavailable() {
    let script = Script::new();
    script.answer(Status::unavailable("downstream restarting"));
    let downstream = scripted_server(&script).await;
    let clock = ManualClock::new();
    let breaker = breaker("downstream", &clock);
    let front = Front {
        downstream: HealthClient::new(downstream.channel().await),
        breaker: breaker.clone(),
    };
    let front = serve_with(move |incoming, shutdown| {
        Server::builder()
            .add_service(HealthServer::new(front))
            .serve_with_incoming_shutdown(incoming, shutdown)
    })
    .await;
    let mut client = HealthClient::new(front.channel().await);

    for _ in 0..2 {
        let error = timeout(WAIT, client.check(check_request()))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(
            error.message(),
            "downstream restarting",
            "the downstream's own status"
        );
    }
    clock.advance(Duration::from_secs(5));
    let refused = timeout(WAIT, client.check(check_request()))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(script.calls(), 2, "the downstream was spared");
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(
        refused
            .message()
            .contains("circuit breaker `downstream` is open")
    );
    assert_eq!(retry_after_from(&refused), Some(Duration::from_secs(10)));
}
