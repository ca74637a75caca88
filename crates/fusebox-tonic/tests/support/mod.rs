//! A scripted gRPC health server on 127.0.0.1 and clients for it.
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_stream::Stream;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

/// Bound on every network wait in the tests: generous, but a hang fails the test.
pub const WAIT: Duration = Duration::from_secs(10);

/// How `check` answers: a code (`Ok` for SERVING), and how `watch` ends.
#[derive(Clone)]
pub struct Script {
    check: Arc<Mutex<Status>>,
    watch_end: Arc<Mutex<Option<Status>>>,
    calls: Arc<AtomicU32>,
}

impl Script {
    pub fn new() -> Self {
        Script {
            check: Arc::new(Mutex::new(Status::ok(""))),
            watch_end: Arc::new(Mutex::new(None)),
            calls: Arc::new(AtomicU32::new(0)),
        }
    }

    /// From now on `check` answers `status` (`Status::ok` for SERVING).
    pub fn answer(&self, status: Status) {
        *self.check.lock().unwrap() = status;
    }

    /// From now on `watch` sends one SERVING message and then ends with `status`
    /// (`None`: it stays open after the message).
    pub fn end_watch_with(&self, status: Option<Status>) {
        *self.watch_end.lock().unwrap() = status;
    }

    /// Calls that reached the handlers.
    pub fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A `Health` service answering as its script says.
#[derive(Clone)]
pub struct ScriptedHealth(pub Script);

type WatchStream = Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, Status>> + Send>>;

fn serving() -> HealthCheckResponse {
    HealthCheckResponse {
        status: ServingStatus::Serving as i32,
    }
}

#[tonic::async_trait]
impl Health for ScriptedHealth {
    async fn check(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let status = self.0.check.lock().unwrap().clone();
        match status.code() {
            Code::Ok => Ok(Response::new(serving())),
            _ => Err(status),
        }
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        _request: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.0.calls.fetch_add(1, Ordering::SeqCst);
        let end = self.0.watch_end.lock().unwrap().clone();
        let first = tokio_stream::once(Ok(serving()));
        let stream: WatchStream = match end {
            Some(status) if status.code() == Code::Ok => Box::pin(first),
            Some(status) => Box::pin(tokio_stream::StreamExt::chain(
                first,
                tokio_stream::once(Err(status)),
            )),
            None => Box::pin(tokio_stream::StreamExt::chain(
                first,
                tokio_stream::pending(),
            )),
        };
        Ok(Response::new(stream))
    }
}

/// A server on 127.0.0.1:0; dropping it shuts the server down.
pub struct TestServer {
    pub addr: SocketAddr,
    _shutdown: oneshot::Sender<()>,
}

impl TestServer {
    /// An endpoint for this server.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("a valid address")
            .connect_timeout(WAIT)
    }

    /// A connected channel.
    pub async fn channel(&self) -> Channel {
        tokio::time::timeout(WAIT, self.endpoint().connect())
            .await
            .expect("connecting timed out")
            .expect("the server accepts connections")
    }
}

/// Serves `router` (a tonic server builder with its services added) on 127.0.0.1:0.
pub async fn serve(router: tonic::transport::server::Router) -> TestServer {
    serve_with(|incoming, shutdown| router.serve_with_incoming_shutdown(incoming, shutdown)).await
}

/// Runs a server on 127.0.0.1:0: `run` serves the incoming connections until the shutdown
/// future completes (when the returned [`TestServer`] is dropped).
pub async fn serve_with<F, Fut>(run: F) -> TestServer
where
    F: FnOnce(TcpListenerStream, Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = Result<(), tonic::transport::Error>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("a local address");
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = run(
        TcpListenerStream::new(listener),
        Box::pin(async move {
            let _ = stopped.await;
        }),
    );
    tokio::spawn(async move { server.await.expect("the test server runs") });
    TestServer {
        addr,
        _shutdown: shutdown,
    }
}

/// The scripted health service alone on a fresh server.
pub async fn scripted_server(script: &Script) -> TestServer {
    serve(Server::builder().add_service(HealthServer::new(ScriptedHealth(script.clone())))).await
}

pub fn check_request() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}
