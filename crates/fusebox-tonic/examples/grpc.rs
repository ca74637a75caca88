//! A tonic client behind a circuit breaker, against a tonic server on 127.0.0.1 that goes
//! down for a while and comes back.
//!
//! ```text
//! cargo run -p fusebox-tonic --example grpc
//! ```
//!
//! The server answers `UNAVAILABLE` while it is down; three of those open the breaker, and
//! the client then gets `UNAVAILABLE` from the breaker itself, at once, with the time left
//! before it tries again (`google.rpc.RetryInfo`), while the server sees no calls. The
//! client waits that long, the trial call succeeds and the breaker closes.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use fusebox_core::breaker::Breaker;
use fusebox_tonic::{GrpcBreaker, GrpcBreakerLayer, retry_after_from};
use tokio::net::TcpListener;
use tokio_stream::Stream;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// A health service that can be taken down, counting the calls that reach it.
#[derive(Clone, Default)]
struct Flaky {
    down: Arc<AtomicBool>,
    calls: Arc<AtomicU32>,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Health for Flaky {
    async fn check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Status::unavailable("database failover in progress"));
        }
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("this example only checks"))
    }
}

type Client = HealthClient<GrpcBreaker<Channel>>;

/// One call, printed with who answered it; returns the delay a rejection asked for.
async fn check(client: &mut Client, server: &Flaky) -> Option<Duration> {
    let request = HealthCheckRequest {
        service: String::new(),
    };
    let before = server.calls.load(Ordering::SeqCst);
    let answer = client.check(request).await;
    let reached = server.calls.load(Ordering::SeqCst) > before;
    let whom = if reached { "server " } else { "breaker" };
    match answer {
        Ok(response) => {
            println!("  {whom}: {:?}", response.into_inner().status());
            None
        }
        Err(status) => {
            let delay = retry_after_from(&status);
            match delay {
                Some(delay) => println!(
                    "  {whom}: {:?} \"{}\", retry after {delay:?}",
                    status.code(),
                    status.message()
                ),
                None => println!("  {whom}: {:?} \"{}\"", status.code(), status.message()),
            }
            if reached { None } else { delay }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Flaky::default();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        Server::builder()
            .add_service(HealthServer::new(server.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    println!("health server on {addr}");

    let breaker = Breaker::builder("health")
        .consecutive_failures(3)
        .cooldown(Duration::from_secs(1))
        .build()?;
    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let mut client = HealthClient::new(
        tower::ServiceBuilder::new()
            .layer(GrpcBreakerLayer::new(breaker.clone()))
            .service(channel),
    );

    println!("the server is up:");
    check(&mut client, &server).await;

    println!("the server goes down:");
    server.down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        check(&mut client, &server).await;
    }
    println!(
        "breaker is {}; calls fail fast without reaching the server:",
        breaker.state()
    );
    check(&mut client, &server).await;
    let mut wait = check(&mut client, &server).await;

    println!("the server recovers; the client waits as long as the breaker asked:");
    server.down.store(false, Ordering::SeqCst);
    // A retry loop honouring the delay (bounded: a breaker's clock ticks in milliseconds,
    // so an early comer is told the few left and gets through on the next try).
    for _ in 0..5 {
        let Some(delay) = wait else { break };
        tokio::time::sleep(delay).await;
        wait = check(&mut client, &server).await;
    }
    println!(
        "breaker is {}; {} calls reached the server",
        breaker.state(),
        server.calls.load(Ordering::SeqCst)
    );
    Ok(())
}
