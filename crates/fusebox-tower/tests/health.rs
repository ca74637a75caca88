//! The health handler: JSON from a registry, with a status code a load balancer reads.
#![cfg(feature = "health")]

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use fusebox_core::breaker::Breaker;
use fusebox_health::health::{HealthCheck, HealthRegistry};
use fusebox_tower::http::axum::health_handler;
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn get_health(app: &Router) -> (u16, serde_json::Value) {
    let request = http::Request::get("/health").body(Body::empty()).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test(start_paused = true)]
async fn the_handler_serves_the_report_and_answers_503_when_unhealthy() {
    let db = Breaker::builder("db").build().unwrap();
    let search = Breaker::builder("search").build().unwrap();
    let registry = HealthRegistry::new();
    registry.add_critical_breaker(&db).unwrap();
    registry.add_breaker(&search).unwrap();
    let hangs = HealthCheck::builder("ledger", std::future::pending::<Result<(), String>>)
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    registry.add_check(hangs).unwrap();
    let app = Router::new().route("/health", get(health_handler(registry)));

    let (status, json) = get_health(&app).await;
    // The hanging check is not critical: degraded, and still 200.
    assert_eq!(status, 200);
    assert_eq!(json["status"], "degraded");
    assert_eq!(json["components"][2]["detail"], "timed out after 200ms");

    search.force_open();
    let (status, json) = get_health(&app).await;
    assert_eq!((status, &json["failed_components"]), (200, &2.into()));

    db.trip("replica lost");
    let (status, json) = get_health(&app).await;
    assert_eq!(status, 503);
    assert_eq!(json["status"], "unhealthy");
    assert_eq!(json["components"][0]["state"], "open");
    assert_eq!(json["open_breakers"], 2);
}
