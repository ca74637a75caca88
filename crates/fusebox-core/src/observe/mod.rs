//! Observability: metric names, a metrics listener, and a tracing span per call.
//!
//! Nothing here is on by default. A breaker publishes metrics only once a
//! [`MetricsListener`] is attached (feature `metrics`); a call gets a span only when it goes
//! through [`traced`] or [`traced_sync`]. Transitions, retries and rejections are `tracing`
//! events whatever you attach, with these stable fields:
//!
//! | event | level | fields |
//! | --- | --- | --- |
//! | `circuit breaker state changed` | INFO | `breaker`, `from`, `to`, `reason`, `generation`, `calls`, `failures`, `slow_calls` |
//! | `call rejected` | TRACE | `breaker`, `state` |
//! | `retrying` | DEBUG | `policy`, `attempt`, `delay_ms`, `reason` |
//! | `not retrying` | DEBUG | `policy`, `reason` |
//! | `bulkhead full` | DEBUG | `bulkhead` |
//! | `mode changed` | WARN | `controller`, `from`, `to`, `reason`, `manual` |
//! | span `fusebox.call` | DEBUG | `breaker`, `outcome` (`success`, `failure`, `rejected`) |
//!
//! ```
//! use fusebox_core::breaker::Breaker;
//! use fusebox_core::observe;
//!
//! let breaker = Breaker::builder("inventory").build()?;
//! let stock = observe::traced_sync(&breaker, || Ok::<_, std::io::Error>(12))?;
//! assert_eq!(stock, 12);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "metrics")]
mod metrics;
pub mod names;

#[cfg(feature = "metrics")]
pub use metrics::{MetricsListener, describe_metrics, publish_state, state_gauge_value};

use std::future::Future;

use tracing::Instrument;
use tracing::field::Empty;

use crate::breaker::Breaker;
use crate::error::Error;

/// The span of one protected call: `fusebox.call` at DEBUG, with the breaker's name and an
/// `outcome` field filled in when the call ends. Disabled unless a subscriber wants DEBUG
/// spans from fusebox; [`traced`] and [`traced_sync`] do not even build it while no
/// subscriber wants DEBUG at all.
///
/// ```
/// let span = fusebox_core::observe::call_span("payments");
/// assert!(span.is_disabled()); // no subscriber installed
/// ```
#[inline]
pub fn call_span(breaker: &str) -> tracing::Span {
    tracing::debug_span!("fusebox.call", breaker, outcome = Empty)
}

fn record_outcome<T, E>(span: &tracing::Span, result: &Result<T, Error<E>>) {
    if span.is_disabled() {
        return;
    }
    let outcome = match result {
        Ok(_) => "success",
        Err(Error::Rejected(_)) => "rejected",
        Err(_) => "failure",
    };
    span.record("outcome", outcome);
}

/// [`Breaker::call`] inside a [`call_span`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_core::breaker::Breaker;
/// use fusebox_core::observe::traced;
/// let breaker = Breaker::builder("users").build()?;
/// let name = traced(&breaker, || async { Ok::<_, std::io::Error>("ada") }).await?;
/// assert_eq!(name, "ada");
/// # Ok(())
/// # }
/// ```
pub async fn traced<F, Fut, T, E>(breaker: &Breaker, f: F) -> Result<T, Error<E>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    if !tracing::level_enabled!(tracing::Level::DEBUG) {
        return breaker.call(f).await;
    }
    let span = call_span(breaker.name());
    let result = breaker.call(f).instrument(span.clone()).await;
    record_outcome(&span, &result);
    result
}

/// [`Breaker::call_sync`] inside a [`call_span`].
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// use fusebox_core::observe::traced_sync;
/// let breaker = Breaker::builder("disk").build()?;
/// let r: Result<(), _> = traced_sync(&breaker, || Err("io"));
/// assert_eq!(r.unwrap_err().into_inner(), Some("io"));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[inline]
pub fn traced_sync<F, T, E>(breaker: &Breaker, f: F) -> Result<T, Error<E>>
where
    F: FnOnce() -> Result<T, E>,
{
    // One load of the global level filter: with nothing listening at DEBUG, no span at all.
    if !tracing::level_enabled!(tracing::Level::DEBUG) {
        return breaker.call_sync(f);
    }
    let span = call_span(breaker.name());
    let result = span.in_scope(|| breaker.call_sync(f));
    record_outcome(&span, &result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing::subscriber::with_default;

    /// Records the spans it sees with their fields.
    #[derive(Clone, Default)]
    struct Spans(Arc<Mutex<Vec<String>>>);

    struct Fields<'a>(&'a mut String);
    impl tracing::field::Visit for Fields<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={:?}", field.name(), value));
        }
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            self.0.push_str(&format!(" {}={}", field.name(), value));
        }
    }

    impl tracing::Subscriber for Spans {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            let mut line = span.metadata().name().to_string();
            span.record(&mut Fields(&mut line));
            let mut spans = self.0.lock().unwrap();
            spans.push(line);
            tracing::span::Id::from_u64(spans.len() as u64)
        }
        fn record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>) {
            let mut spans = self.0.lock().unwrap();
            let line = &mut spans[id.into_u64() as usize - 1];
            values.record(&mut Fields(line));
        }
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {}
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn a_call_gets_a_span_with_its_outcome() {
        let spans = Spans::default();
        let breaker = Breaker::builder("db")
            .consecutive_failures(1)
            .build()
            .unwrap();
        with_default(spans.clone(), || {
            let _ = traced_sync(&breaker, || Ok::<_, ()>(1));
            let _ = traced_sync(&breaker, || Err::<(), _>(()));
            let _ = traced_sync(&breaker, || Ok::<_, ()>(1));
        });
        let seen = spans.0.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                "fusebox.call breaker=db outcome=success",
                "fusebox.call breaker=db outcome=failure",
                "fusebox.call breaker=db outcome=rejected",
            ]
        );
    }

    #[tokio::test]
    async fn an_async_call_gets_a_span_too() {
        let spans = Spans::default();
        let breaker = Breaker::builder("api").build().unwrap();
        let _guard = tracing::subscriber::set_default(spans.clone());
        let value = traced(&breaker, || async { Ok::<_, ()>(7) }).await;
        assert_eq!(value.unwrap(), 7);
        assert_eq!(
            *spans.0.lock().unwrap(),
            ["fusebox.call breaker=api outcome=success"]
        );
    }
}
