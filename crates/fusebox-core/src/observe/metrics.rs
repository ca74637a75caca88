//! Metrics through the `metrics` facade, attached explicitly: nothing here runs unless a
//! listener or hook is installed, so an uninstrumented breaker pays nothing.

use std::sync::OnceLock;

use metrics::{
    Counter, Histogram, Label, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};

use crate::breaker::{BreakerListener, Name, OutcomeEvent, Rejected, State, Transition};
use crate::outcome::Outcome;

use super::names;

/// Publishes a breaker's calls, state and transitions through the `metrics` facade (see
/// [`names`] for what is published).
///
/// Attach it with [`BreakerBuilder::listener`](crate::breaker::BreakerBuilder::listener).
/// It asks for every outcome, so an instrumented breaker reads the clock once more per call
/// to time it; breakers without it are untouched. Durations are read on the breaker's clock:
/// the default [`MonotonicClock`](crate::clock::MonotonicClock) ticks every few
/// milliseconds, so give calls that take less a
/// [`PreciseClock`](crate::clock::PreciseClock).
///
/// The listener registers its breaker's series with the recorder once, on the first call,
/// and then only adds to them: install the recorder (a Prometheus exporter, say) before the
/// breaker's first call. Give each breaker its own listener; one shared by several breakers
/// works, but looks the other breakers' series up on every call.
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// use fusebox_core::observe::MetricsListener;
/// use std::sync::Arc;
///
/// let breaker = Breaker::builder("payments")
///     .listener(Arc::new(MetricsListener::new()))
///     .build()?;
/// breaker.try_acquire()?.success(); // fusebox_calls_total{breaker="payments",outcome="success"}
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MetricsListener {
    series: OnceLock<Series>,
}

/// The per-call series of one breaker, registered once.
#[derive(Debug)]
struct Series {
    name: Name,
    success: Counter,
    failure: Counter,
    ignored: Counter,
    rejected: Counter,
    shadow_rejected: Counter,
    slow: Counter,
    duration: Histogram,
}

impl Series {
    fn register(name: &Name) -> Self {
        describe_metrics();
        let calls = |outcome: &'static str| {
            let labels = [
                breaker_label(name),
                Label::new(names::LABEL_OUTCOME, outcome),
            ];
            counter!(names::CALLS, labels.iter())
        };
        Series {
            name: name.clone(),
            success: calls("success"),
            failure: calls("failure"),
            ignored: calls("ignored"),
            rejected: calls("rejected"),
            shadow_rejected: counter!(names::SHADOW_REJECTIONS, [breaker_label(name)].iter()),
            slow: counter!(names::SLOW_CALLS, [breaker_label(name)].iter()),
            duration: histogram!(names::CALL_DURATION, [breaker_label(name)].iter()),
        }
    }

    fn calls(&self, outcome: Outcome) -> &Counter {
        match outcome {
            Outcome::Success => &self.success,
            Outcome::Failure => &self.failure,
            Outcome::Ignored => &self.ignored,
        }
    }
}

impl MetricsListener {
    /// A listener publishing to whatever recorder is installed.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerListener;
    /// use fusebox_core::observe::MetricsListener;
    /// assert!(MetricsListener::new().wants_outcomes());
    /// ```
    pub fn new() -> Self {
        MetricsListener::default()
    }

    /// Runs `f` on `name`'s series: the cached ones for the first breaker seen, freshly
    /// looked up for any other.
    fn with_series(&self, name: &Name, f: impl FnOnce(&Series)) {
        let cached = self.series.get_or_init(|| Series::register(name));
        if cached.name == *name {
            f(cached)
        } else {
            f(&Series::register(name))
        }
    }
}

fn breaker_label(name: &Name) -> Label {
    Label::new(names::LABEL_BREAKER, name.label_value())
}

/// The value of the [`names::BREAKER_STATE`] gauge for `state`.
///
/// ```
/// use fusebox_core::breaker::State;
/// use fusebox_core::observe::state_gauge_value;
/// assert_eq!(state_gauge_value(State::Closed), 0.0);
/// assert_eq!(state_gauge_value(State::Disabled), 4.0);
/// ```
pub fn state_gauge_value(state: State) -> f64 {
    match state {
        State::Closed => 0.0,
        State::Open => 1.0,
        State::HalfOpen => 2.0,
        State::ForcedOpen => 3.0,
        State::Disabled => 4.0,
    }
}

/// Sets a breaker's state gauge and its rate gauges ([`names::FAILURE_RATE`],
/// [`names::SLOW_RATE`]; NaN while not judged) now. The listener updates the state on every
/// transition; call this at start-up so a breaker that never changed state is visible too,
/// and before each scrape (or on a timer) for current rates.
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// use fusebox_core::observe::publish_state;
/// let breaker = Breaker::builder("search").build()?;
/// publish_state(&breaker); // fusebox_breaker_state{breaker="search"} 0
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn publish_state(breaker: &crate::breaker::Breaker) {
    describe_metrics();
    let snapshot = breaker.snapshot();
    let label = [breaker_label(breaker.name())];
    gauge!(names::BREAKER_STATE, label.iter()).set(state_gauge_value(snapshot.state));
    gauge!(names::FAILURE_RATE, label.iter()).set(snapshot.failure_rate.unwrap_or(f64::NAN));
    gauge!(names::SLOW_RATE, label.iter()).set(snapshot.slow_rate.unwrap_or(f64::NAN));
}

impl BreakerListener for MetricsListener {
    fn on_transition(&self, t: &Transition) {
        let labels = [
            breaker_label(&t.name),
            Label::new(names::LABEL_FROM, t.from.as_str()),
            Label::new(names::LABEL_TO, t.to.as_str()),
        ];
        counter!(names::TRANSITIONS, labels.iter()).increment(1);
        gauge!(names::BREAKER_STATE, [breaker_label(&t.name)].iter()).set(state_gauge_value(t.to));
    }

    fn on_rejection(&self, rejected: &Rejected) {
        self.with_series(rejected.name(), |s| s.rejected.increment(1));
    }

    fn on_shadow_rejection(&self, would_reject: &Rejected) {
        self.with_series(would_reject.name(), |s| s.shadow_rejected.increment(1));
    }

    fn wants_outcomes(&self) -> bool {
        true
    }

    fn on_outcome(&self, event: &OutcomeEvent) {
        self.with_series(&event.name, |s| {
            s.calls(event.outcome).increment(1);
            if event.slow {
                s.slow.increment(1);
            }
            s.duration.record(event.duration.as_secs_f64());
        });
    }
}

/// Describes every series fusebox publishes to the installed recorder: its type, its unit
/// and a help text (the `# HELP` line of a Prometheus scrape).
///
/// The listener and the hooks that publish the series call it themselves the first time
/// they publish (a breaker's [`MetricsListener`] at its first call, [`publish_state`], the
/// retry and bulkhead hooks at their first event, a mode controller at its first change),
/// so descriptions reach the recorder installed by then. Call it once after installing a
/// recorder to have every description from the start, even of series not yet published.
///
/// ```
/// use metrics_util::debugging::DebuggingRecorder;
/// let recorder = DebuggingRecorder::new();
/// let snapshotter = recorder.snapshotter();
/// metrics::with_local_recorder(&recorder, || {
///     fusebox_core::observe::describe_metrics();
///     metrics::counter!(fusebox_core::observe::names::CALLS).increment(1);
/// });
/// let described = snapshotter.snapshot().into_vec();
/// let (_, unit, description, _) = &described[0];
/// assert_eq!(*unit, Some(metrics::Unit::Count));
/// assert!(description.as_ref().is_some_and(|d| d.contains("by outcome")));
/// ```
pub fn describe_metrics() {
    describe_counter!(
        names::CALLS,
        Unit::Count,
        "Calls through a circuit breaker, by outcome: success, failure, ignored or rejected."
    );
    describe_counter!(
        names::SLOW_CALLS,
        Unit::Count,
        "Calls that took at least the breaker's slow-call threshold (also counted by outcome)."
    );
    describe_histogram!(
        names::CALL_DURATION,
        Unit::Seconds,
        "Time from a breaker's admission of a call to its recorded outcome."
    );
    describe_gauge!(
        names::BREAKER_STATE,
        "State of a circuit breaker: 0 closed, 1 open, 2 half_open, 3 forced_open, 4 disabled."
    );
    describe_gauge!(
        names::FAILURE_RATE,
        "Failure rate over a breaker's window, as last published (NaN until judged)."
    );
    describe_gauge!(
        names::SLOW_RATE,
        "Slow-call rate over a breaker's window, as last published (NaN until judged)."
    );
    describe_counter!(
        names::TRANSITIONS,
        Unit::Count,
        "State changes of a circuit breaker, by from and to state."
    );
    describe_counter!(
        names::SHADOW_REJECTIONS,
        Unit::Count,
        "Calls a breaker in shadow mode would have rejected, and let through."
    );
    describe_counter!(
        names::RETRIES,
        Unit::Count,
        "Retries started by a retry policy, by reason (error, value, timeout...)."
    );
    describe_counter!(
        names::RETRY_GIVE_UPS,
        Unit::Count,
        "Retryable results returned without retrying, by reason (max_retries, exhausted, retry_after_too_long, budget_exhausted)."
    );
    describe_counter!(
        names::BULKHEAD_REJECTIONS,
        Unit::Count,
        "Calls refused by a full bulkhead."
    );
    describe_counter!(
        names::RATE_LIMITED,
        Unit::Count,
        "Calls refused by a rate limiter, labelled by the limiter (not by key)."
    );
    describe_counter!(
        names::THROTTLED,
        Unit::Count,
        "Calls dropped locally by adaptive client-side throttling."
    );
    describe_gauge!(
        names::MODE,
        "Index of a degradation controller's current mode (0 = normal)."
    );
    describe_gauge!(
        names::MODE_DEGRADED,
        "1 while a degradation controller is in any mode but the first, else 0."
    );
    describe_counter!(
        names::MODE_TRANSITIONS,
        Unit::Count,
        "Mode changes of a degradation controller, by from and to mode."
    );
    describe_gauge!(
        names::CONCURRENCY_LIMIT,
        "Current limit of an adaptive concurrency limit, as last measured."
    );
    describe_counter!(
        names::CONCURRENCY_LIMIT_REJECTIONS,
        Unit::Count,
        "Calls refused by an adaptive concurrency limit."
    );
    describe_counter!(
        names::OUTLIER_EJECTIONS,
        Unit::Count,
        "Endpoints ejected by an outlier detector, by the rule that found them."
    );
    describe_gauge!(
        names::OUTLIER_EJECTED,
        "Endpoints an outlier detector holds out of rotation now."
    );
    describe_counter!(
        names::CHAOS_FAULTS,
        Unit::Count,
        "Faults a chaos policy injected on purpose."
    );
    describe_counter!(
        names::CHAOS_DELAYS,
        Unit::Count,
        "Delays a chaos policy injected on purpose."
    );
    describe_counter!(
        names::HEDGES,
        Unit::Count,
        "Hedged attempts started: a call sent again because it was slower than the hedge delay."
    );
    describe_counter!(
        names::HEDGE_WINS,
        Unit::Count,
        "Calls a hedged attempt answered before the first attempt."
    );
    describe_counter!(
        names::HEDGE_LOSERS_CANCELLED,
        Unit::Count,
        "Attempts dropped in flight because another attempt of the same call succeeded."
    );
    describe_counter!(
        names::HEDGES_REFUSED,
        Unit::Count,
        "Hedges not sent because the retry budget refused them."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::Breaker;
    use crate::clock::ManualClock;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use std::sync::Arc;
    use std::time::Duration;

    /// Every metric as `name{label=value,...}` with its value, sorted.
    fn collect(recorder: &DebuggingRecorder) -> Vec<(String, DebugValue)> {
        let mut rows: Vec<_> = recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key();
                let mut labels: Vec<_> = key
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                labels.sort();
                (format!("{}{{{}}}", key.name(), labels.join(",")), value)
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    fn counter_value(rows: &[(String, DebugValue)], key: &str) -> Option<u64> {
        rows.iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| match v {
                DebugValue::Counter(n) => Some(*n),
                _ => None,
            })
    }

    #[test]
    fn breaker_calls_states_and_transitions_are_published() {
        let recorder = DebuggingRecorder::new();
        let clock = ManualClock::new();
        metrics::with_local_recorder(&recorder, || {
            let b = Breaker::builder("db")
                .consecutive_failures(2)
                .slow_calls(Duration::from_secs(1), 1.0)
                .clock(clock.clone())
                .listener(Arc::new(MetricsListener::new()))
                .build()
                .unwrap();
            let permit = b.try_acquire().unwrap();
            clock.advance(Duration::from_millis(1500));
            permit.success();
            b.try_acquire().unwrap().ignore();
            b.record_failure();
            b.record_failure();
            assert!(b.try_acquire().is_err());
        });
        let rows = collect(&recorder);
        let calls = |outcome: &str| {
            counter_value(
                &rows,
                &format!("fusebox_calls_total{{breaker=db,outcome={outcome}}}"),
            )
        };
        assert_eq!(calls("success"), Some(1));
        assert_eq!(calls("ignored"), Some(1));
        assert_eq!(calls("failure"), Some(2));
        assert_eq!(calls("rejected"), Some(1));
        assert_eq!(
            counter_value(&rows, "fusebox_slow_calls_total{breaker=db}"),
            Some(1)
        );
        assert_eq!(
            counter_value(
                &rows,
                "fusebox_breaker_transitions_total{breaker=db,from=closed,to=open}"
            ),
            Some(1)
        );
        let state = rows
            .iter()
            .find(|(k, _)| k == "fusebox_breaker_state{breaker=db}")
            .map(|(_, v)| v);
        assert_eq!(state, Some(&DebugValue::Gauge(1.0.into())));
        let durations = rows
            .iter()
            .find(|(k, _)| k == "fusebox_call_duration_seconds{breaker=db}")
            .map(|(_, v)| v);
        let Some(DebugValue::Histogram(values)) = durations else {
            panic!("no duration histogram: {rows:?}");
        };
        assert_eq!(values.len(), 4);
        assert_eq!(values[0].into_inner(), 1.5);
    }

    #[test]
    fn shadow_rejections_have_their_own_counter() {
        let recorder = DebuggingRecorder::new();
        metrics::with_local_recorder(&recorder, || {
            let b = Breaker::builder("shadowed")
                .consecutive_failures(1)
                .shadow(true)
                .listener(Arc::new(MetricsListener::new()))
                .build()
                .unwrap();
            b.record_failure();
            b.try_acquire().unwrap().success();
            b.try_acquire().unwrap().success();
        });
        let rows = collect(&recorder);
        assert_eq!(
            counter_value(
                &rows,
                "fusebox_breaker_shadow_rejections_total{breaker=shadowed}"
            ),
            Some(2)
        );
        assert_eq!(
            counter_value(
                &rows,
                "fusebox_calls_total{breaker=shadowed,outcome=rejected}"
            ),
            Some(0)
        );
    }

    #[test]
    fn a_listener_shared_by_two_breakers_keeps_their_series_apart() {
        let recorder = DebuggingRecorder::new();
        metrics::with_local_recorder(&recorder, || {
            let shared = Arc::new(MetricsListener::new());
            let a = Breaker::builder("a")
                .listener(shared.clone())
                .build()
                .unwrap();
            let b = Breaker::builder("b").listener(shared).build().unwrap();
            a.record_success();
            b.record_failure();
            b.record_failure();
            a.record_success();
        });
        let rows = collect(&recorder);
        let a = "fusebox_calls_total{breaker=a,outcome=success}";
        let b = "fusebox_calls_total{breaker=b,outcome=failure}";
        assert_eq!(counter_value(&rows, a), Some(2));
        assert_eq!(counter_value(&rows, b), Some(2));
    }
}
