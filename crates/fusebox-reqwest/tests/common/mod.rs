//! A real HTTP server on 127.0.0.1 whose answers a test scripts, and that counts hits.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Response, StatusCode};

type Script = dyn Fn(u32, &Method) -> Response<Body> + Send + Sync;

/// A server on an ephemeral port; answers by `script(hit number from 1, method)`.
pub struct Server {
    pub url: String,
    hits: Arc<AtomicU32>,
}

impl Server {
    pub async fn start(
        script: impl Fn(u32, &Method) -> Response<Body> + Send + Sync + 'static,
    ) -> Server {
        let script: Arc<Script> = Arc::new(script);
        let hits = Arc::new(AtomicU32::new(0));
        let counter = Arc::clone(&hits);
        let app = axum::Router::new().fallback(move |method: Method| {
            let script = Arc::clone(&script);
            let counter = Arc::clone(&counter);
            async move {
                let hit = counter.fetch_add(1, Ordering::SeqCst) + 1;
                script(hit, &method)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server { url, hits }
    }

    /// Always answers `status`.
    pub async fn always(status: u16) -> Server {
        Server::start(move |_, _| status_response(status)).await
    }

    pub fn hits(&self) -> u32 {
        self.hits.load(Ordering::SeqCst)
    }
}

pub fn status_response(status: u16) -> Response<Body> {
    let mut response = Response::new(Body::from(format!("status {status}")));
    *response.status_mut() = StatusCode::from_u16(status).expect("a status");
    response
}

pub fn with_retry_after(status: u16, value: &str) -> Response<Body> {
    let mut response = status_response(status);
    response
        .headers_mut()
        .insert("retry-after", value.parse().expect("a header value"));
    response
}

/// A loopback port nothing listens on: connections are refused.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}")
}

/// A client that gives up on a request after `timeout`.
pub fn reqwest_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("client")
}
