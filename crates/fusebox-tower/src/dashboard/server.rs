//! The sampling task and the routes: the page, the JSON snapshot and the event stream.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use futures_util::{FutureExt, Stream, stream};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::DashboardBuilder;
use super::sampler::Sampler;
use super::source::{Source, SourceError};

const PAGE: &str = include_str!("page.html");

/// Everything the page needs comes from this page and its own address: no script, style,
/// font or image from elsewhere, no framing by other sites, and no script but the page's own
/// (named by its hash), so even markup slipped into the page could not run one.
static PAGE_POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let policy = format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'unsafe-inline'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'",
        script_hash(PAGE)
    );
    HeaderValue::from_str(&policy).unwrap_or(HeaderValue::from_static("default-src 'none'"))
});

/// The base64 SHA-256 of the page's inline script, as a Content-Security-Policy names it.
fn script_hash(page: &str) -> String {
    let script = page
        .split_once("<script>")
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .map_or("", |(script, _)| script);
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()))
}

#[derive(Clone)]
struct Shared {
    frames: watch::Receiver<Arc<str>>,
}

pub(super) fn router<S: Source>(
    runtime: &tokio::runtime::Handle,
    source: Arc<S>,
    settings: DashboardBuilder,
) -> Router {
    let first = frame_text(
        &Sampler::new(settings.history, settings.transitions),
        &settings,
    );
    let (sender, frames) = watch::channel(first);
    runtime.spawn(sample(source, settings, sender));
    Router::new()
        .route("/", get(page))
        .route("/api/snapshot", get(snapshot))
        .route("/api/events", get(events))
        .with_state(Shared { frames })
}

fn frame_text(sampler: &Sampler, settings: &DashboardBuilder) -> Arc<str> {
    let mut frame = sampler.frame(settings.interval);
    if let Value::Object(fields) = &mut frame {
        fields.insert("title".into(), Value::from(settings.title.as_str()));
    }
    Arc::from(frame.to_string())
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Reads the source once per interval and publishes each frame, until nobody can receive.
async fn sample<S: Source>(
    source: Arc<S>,
    settings: DashboardBuilder,
    sender: watch::Sender<Arc<str>>,
) {
    let start = Instant::now();
    let mut sampler = Sampler::new(settings.history, settings.transitions);
    let mut ticks = tokio::time::interval(settings.interval);
    // A slow read delays the next sample rather than bunching samples up behind it.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = sender.closed() => return,
            _ = ticks.tick() => {}
        }
        // A panicking source shows as an error, and the next interval tries again.
        let read = AssertUnwindSafe(tokio::time::timeout(settings.read_timeout, source.read()))
            .catch_unwind();
        let read = tokio::select! {
            () = sender.closed() => return,
            read = read => match read {
                Ok(Ok(result)) => result,
                Ok(Err(_)) => Err(SourceError::new(format!(
                    "no answer within {}ms",
                    settings.read_timeout.as_millis()
                ))),
                Err(_) => Err(SourceError::new("the dashboard's source panicked")),
            },
        };
        sampler.ingest(start.elapsed(), wall_ms(), read);
        sender.send_replace(frame_text(&sampler, &settings));
    }
}

async fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (header::CONTENT_SECURITY_POLICY, PAGE_POLICY.clone()),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
        ],
        PAGE,
    )
        .into_response()
}

async fn snapshot(State(shared): State<Shared>) -> Response {
    let frame = shared.frames.borrow().clone();
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        frame.to_string(),
    )
        .into_response()
}

/// The current frame at once, then each new one. A slow client skips frames rather than
/// queueing them: only the newest is kept.
async fn events(
    State(shared): State<Shared>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let frames = stream::unfold((shared.frames, true), |(mut frames, first)| async move {
        if !first {
            // The sampling task is gone: the stream ends and the page reconnects.
            frames.changed().await.ok()?;
        }
        let frame = frames.borrow_and_update().clone();
        let event = Event::default().event("frame").data(&*frame);
        Some((Ok(event), (frames, false)))
    });
    Sse::new(frames).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_page_script_by_its_hash() {
        let hash = script_hash("<p><script>alert(1)</script>");
        // sha256("alert(1)"), base64.
        assert_eq!(hash, "bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=");
        let policy = PAGE_POLICY.to_str().unwrap();
        assert!(policy.contains(&format!("script-src 'sha256-{}'", script_hash(PAGE))));
        assert!(!policy.contains("script-src 'unsafe-inline'"));
        assert_eq!(PAGE.matches("<script>").count(), 1, "one inline script");
    }
}
