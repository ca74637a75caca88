//! Serving a health report over HTTP (feature `health`).

use std::future::Future;
use std::pin::Pin;

use axum_core::response::{IntoResponse, Response};
use fusebox_health::health::{HealthRegistry, HealthReport, HealthStatus};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};

/// A health report as a response: JSON, `200 OK` when healthy or degraded (the service
/// still answers), `503 Service Unavailable` when unhealthy, never cached.
///
/// ```
/// use axum_core::response::IntoResponse;
/// use fusebox_health::health::{ComponentHealth, ComponentKind, HealthReport, HealthStatus};
/// use fusebox_tower::http::axum::HealthResponse;
///
/// let mut db = ComponentHealth::new("db", ComponentKind::Check, HealthStatus::Unhealthy);
/// db.critical = true;
/// let response = HealthResponse(HealthReport::from_components(vec![db])).into_response();
/// assert_eq!(response.status(), 503);
/// assert_eq!(response.headers()["content-type"], "application/json");
/// ```
#[derive(Debug, Clone)]
pub struct HealthResponse(pub HealthReport);

impl IntoResponse for HealthResponse {
    fn into_response(self) -> Response {
        let status = match self.0.status {
            HealthStatus::Healthy | HealthStatus::Degraded => StatusCode::OK,
            HealthStatus::Unhealthy => StatusCode::SERVICE_UNAVAILABLE,
        };
        match serde_json::to_vec(&self.0) {
            Ok(body) => (
                status,
                [
                    (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                    (CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
                body,
            )
                .into_response(),
            Err(e) => {
                tracing::error!(error = %e, "health report did not serialize");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// The future of [`health_handler`]'s handler.
pub type HealthFuture = Pin<Box<dyn Future<Output = Response> + Send>>;

/// An axum handler that builds a report from `registry` on each request and answers with a
/// [`HealthResponse`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use axum::{Router, routing::get};
/// use fusebox_core::breaker::Breaker;
/// use fusebox_health::health::HealthRegistry;
/// use fusebox_tower::http::axum::health_handler;
/// use tower::ServiceExt;
///
/// let registry = HealthRegistry::new();
/// registry.add_critical_breaker(&Breaker::builder("db").build()?)?;
/// let app: Router = Router::new().route("/health", get(health_handler(registry)));
///
/// let request = http::Request::get("/health").body(axum::body::Body::empty())?;
/// let response = app.oneshot(request).await?;
/// assert_eq!(response.status(), 200);
/// # Ok(())
/// # }
/// ```
pub fn health_handler(
    registry: HealthRegistry,
) -> impl Fn() -> HealthFuture + Clone + Send + Sync + 'static {
    move || {
        let registry = registry.clone();
        Box::pin(async move { HealthResponse(registry.report().await).into_response() })
    }
}
