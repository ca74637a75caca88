//! Metrics for the policies, through the `metrics` facade: retries and give-ups of a retry
//! policy, refusals of a bulkhead or a rate limiter, drops of a throttle. Series names are in [`fusebox_core::observe::names`].

use std::sync::Once;

use fusebox_core::observe::{describe_metrics, names};
use metrics::{Label, counter};

/// Hooks a retry policy's retries and give-ups to [`names::RETRIES`] and
/// [`names::RETRY_GIVE_UPS`], labelled by the policy's name and the reason.
///
/// Name the policy first: the labels use the name the events carry.
///
/// ```
/// use fusebox_policy::observe::retry_metrics;
/// use fusebox_policy::policy::Retry;
/// let retry = retry_metrics(Retry::<u32, std::io::Error>::builder().name("fetch")).build()?;
/// assert_eq!(retry.name(), "fetch");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn retry_metrics<T, E>(
    builder: crate::policy::RetryBuilder<T, E>,
) -> crate::policy::RetryBuilder<T, E> {
    // Described at the first event, when the recorder is surely installed.
    let (retried, gave_up) = (Once::new(), Once::new());
    builder
        .on_retry(move |event| {
            retried.call_once(describe_metrics);
            let labels = [
                Label::new(names::LABEL_POLICY, event.name.label_value()),
                Label::new(names::LABEL_REASON, event.reason.as_str()),
            ];
            counter!(names::RETRIES, labels.iter()).increment(1);
        })
        .on_give_up(move |name, reason| {
            gave_up.call_once(describe_metrics);
            let labels = [
                Label::new(names::LABEL_POLICY, name.label_value()),
                Label::new(names::LABEL_REASON, give_up_reason(reason)),
            ];
            counter!(names::RETRY_GIVE_UPS, labels.iter()).increment(1);
        })
}

/// Hooks a bulkhead's refusals to [`names::BULKHEAD_REJECTIONS`], labelled by its name.
///
/// ```
/// use fusebox_policy::observe::bulkhead_metrics;
/// use fusebox_policy::policy::Bulkhead;
/// let bulkhead = bulkhead_metrics(Bulkhead::builder("db").max_concurrent(4)).build()?;
/// assert_eq!(bulkhead.available(), 4);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn bulkhead_metrics(builder: crate::policy::BulkheadBuilder) -> crate::policy::BulkheadBuilder {
    let described = Once::new();
    builder.on_full(move |full: &fusebox_core::BulkheadFull| {
        described.call_once(describe_metrics);
        counter!(
            names::BULKHEAD_REJECTIONS,
            [Label::new(names::LABEL_POLICY, full.name.label_value())].iter()
        )
        .increment(1);
    })
}

/// Hooks a rate limiter's refusals to [`names::RATE_LIMITED`], labelled by the limiter's
/// name (a keyed limiter's refusals too: keys would make one series per tenant).
///
/// ```
/// use fusebox_policy::observe::rate_limiter_metrics;
/// use fusebox_policy::policy::RateLimiter;
/// let limiter = rate_limiter_metrics(RateLimiter::builder("api").per_second(5)).build()?;
/// assert_eq!(limiter.burst(), 5);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn rate_limiter_metrics(
    builder: crate::policy::RateLimiterBuilder,
) -> crate::policy::RateLimiterBuilder {
    let described = Once::new();
    let name = builder.limiter_name();
    builder.on_limited(move |_: &fusebox_core::RateLimited| {
        described.call_once(describe_metrics);
        counter!(
            names::RATE_LIMITED,
            [Label::new(names::LABEL_POLICY, name.label_value())].iter()
        )
        .increment(1);
    })
}

/// Hooks a throttle's drops to [`names::THROTTLED`], labelled by its name.
///
/// ```
/// use fusebox_policy::observe::throttle_metrics;
/// use fusebox_policy::policy::Throttle;
/// let throttle = throttle_metrics(Throttle::builder("quotes")).build()?;
/// assert_eq!(throttle.name(), "quotes");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn throttle_metrics(builder: crate::policy::ThrottleBuilder) -> crate::policy::ThrottleBuilder {
    let described = Once::new();
    builder.on_throttled(move |throttled: &fusebox_core::Throttled| {
        described.call_once(describe_metrics);
        counter!(
            names::THROTTLED,
            [Label::new(
                names::LABEL_POLICY,
                throttled.name.label_value()
            )]
            .iter()
        )
        .increment(1);
    })
}

/// Stable lower-case name of a give-up reason, for labels and fields.
/// Hooks an adaptive concurrency limit to [`names::CONCURRENCY_LIMIT`] (the limit, each
/// time it moves) and [`names::CONCURRENCY_LIMIT_REJECTIONS`], labelled by its name.
///
/// ```
/// use fusebox_policy::observe::concurrency_limit_metrics;
/// use fusebox_policy::policy::ConcurrencyLimit;
/// let limit = concurrency_limit_metrics(ConcurrencyLimit::builder("db")).build()?;
/// assert_eq!(limit.name(), "db");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn concurrency_limit_metrics(
    builder: crate::policy::ConcurrencyLimitBuilder,
) -> crate::policy::ConcurrencyLimitBuilder {
    let (moved, refused) = (Once::new(), Once::new());
    builder
        .on_limit_change(move |name, limit| {
            moved.call_once(describe_metrics);
            metrics::gauge!(
                names::CONCURRENCY_LIMIT,
                [Label::new(names::LABEL_POLICY, name.label_value())].iter()
            )
            .set(f64::from(limit));
        })
        .on_refused(move |refusal: &fusebox_core::LimitExceeded| {
            refused.call_once(describe_metrics);
            counter!(
                names::CONCURRENCY_LIMIT_REJECTIONS,
                [Label::new(names::LABEL_POLICY, refusal.name.label_value())].iter()
            )
            .increment(1);
        })
}

/// Hooks an outlier detector to [`names::OUTLIER_EJECTIONS`] (labelled by its name and the
/// rule that found the endpoint) and [`names::OUTLIER_EJECTED`] (endpoints out now),
/// labelled by its name, not by endpoint.
///
/// ```
/// use fusebox_policy::observe::outlier_metrics;
/// use fusebox_policy::policy::OutlierDetector;
/// let detector = outlier_metrics(OutlierDetector::<String>::builder("replicas")).build()?;
/// assert_eq!(detector.name(), "replicas");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn outlier_metrics<K>(
    builder: crate::policy::OutlierDetectorBuilder<K>,
) -> crate::policy::OutlierDetectorBuilder<K> {
    use crate::policy::OutlierEvent;
    let described = Once::new();
    let name = builder.detector_name();
    builder.on_event(move |event| {
        described.call_once(describe_metrics);
        let policy = Label::new(names::LABEL_POLICY, name.label_value());
        let ejected_now = match event {
            OutlierEvent::Ejected {
                reason,
                ejected_now,
                ..
            } => {
                let labels = [
                    policy.clone(),
                    Label::new(names::LABEL_REASON, reason.as_str()),
                ];
                counter!(names::OUTLIER_EJECTIONS, labels.iter()).increment(1);
                *ejected_now
            }
            OutlierEvent::Returned { ejected_now, .. } => *ejected_now,
            _ => return,
        };
        metrics::gauge!(names::OUTLIER_EJECTED, [policy].iter()).set(ejected_now as f64);
    })
}

/// Hooks a chaos policy to [`names::CHAOS_FAULTS`] and [`names::CHAOS_DELAYS`], labelled
/// by its name.
///
/// ```
/// use fusebox_policy::observe::chaos_metrics;
/// use fusebox_policy::policy::Chaos;
/// let chaos = chaos_metrics(Chaos::<()>::builder("payments")).build()?;
/// assert_eq!(chaos.name(), "payments");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn chaos_metrics<E>(builder: crate::policy::ChaosBuilder<E>) -> crate::policy::ChaosBuilder<E> {
    let described = Once::new();
    let name = builder.chaos_name();
    builder.on_injection(move |injection| {
        described.call_once(describe_metrics);
        let labels = [Label::new(names::LABEL_POLICY, name.label_value())];
        if injection.fault {
            counter!(names::CHAOS_FAULTS, labels.iter()).increment(1);
        }
        if injection.delay.is_some() {
            counter!(names::CHAOS_DELAYS, labels.iter()).increment(1);
        }
    })
}

/// Hooks a hedge's events to [`names::HEDGES`], [`names::HEDGE_WINS`],
/// [`names::HEDGE_LOSERS_CANCELLED`] and [`names::HEDGES_REFUSED`], labelled by its name.
///
/// ```
/// use fusebox_policy::observe::hedge_metrics;
/// use fusebox_policy::policy::Hedge;
/// let hedge = hedge_metrics(Hedge::builder("search")).build()?;
/// assert_eq!(hedge.name(), "search");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn hedge_metrics(builder: crate::policy::HedgeBuilder) -> crate::policy::HedgeBuilder {
    use crate::policy::HedgeEvent;
    let described = Once::new();
    builder.on_event(move |name, event| {
        described.call_once(describe_metrics);
        let (series, count) = match event {
            HedgeEvent::Sent { .. } => (names::HEDGES, 1),
            HedgeEvent::Won { .. } => (names::HEDGE_WINS, 1),
            HedgeEvent::LosersCancelled { count } => (names::HEDGE_LOSERS_CANCELLED, count),
            HedgeEvent::RefusedByBudget => (names::HEDGES_REFUSED, 1),
        };
        counter!(
            series,
            [Label::new(names::LABEL_POLICY, name.label_value())].iter()
        )
        .increment(u64::from(count));
    })
}

fn give_up_reason(reason: crate::policy::GiveUpReason) -> &'static str {
    use crate::policy::GiveUpReason;
    match reason {
        GiveUpReason::MaxRetries => "max_retries",
        GiveUpReason::Exhausted => "exhausted",
        GiveUpReason::RetryAfterTooLong => "retry_after_too_long",
        GiveUpReason::BudgetExhausted => "budget_exhausted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use std::future::Future;
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

    #[tokio::test(start_paused = true)]
    async fn retries_give_ups_and_bulkhead_rejections_are_published() {
        use crate::policy::{Bulkhead, Retry};
        use fusebox_core::backoff::Backoff;

        let recorder = DebuggingRecorder::new();
        let retry = retry_metrics(
            Retry::<(), &str>::builder()
                .name("fetch")
                .max_retries(2)
                .backoff(Backoff::fixed(Duration::from_millis(10)).build().unwrap()),
        )
        .build()
        .unwrap();
        let bulkhead = bulkhead_metrics(Bulkhead::builder("pool").max_concurrent(1))
            .build()
            .unwrap();
        let _held = bulkhead.try_enter().unwrap();
        // The recorder is thread-local while the closure runs: drive the futures by hand.
        let mut attempts = retry.attempts();
        metrics::with_local_recorder(&recorder, || {
            while attempts
                .next_delay(&Err(fusebox_core::Error::Inner("busy")))
                .is_some()
            {}
            let refused = bulkhead.enter();
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            let mut refused = std::pin::pin!(refused);
            assert!(matches!(
                refused.as_mut().poll(&mut cx),
                std::task::Poll::Ready(Err(_))
            ));
        });
        let rows = collect(&recorder);
        assert_eq!(
            counter_value(&rows, "fusebox_retries_total{policy=fetch,reason=error}"),
            Some(2)
        );
        assert_eq!(
            counter_value(
                &rows,
                "fusebox_retry_give_ups_total{policy=fetch,reason=max_retries}"
            ),
            Some(1)
        );
        assert_eq!(
            counter_value(&rows, "fusebox_bulkhead_rejections_total{policy=pool}"),
            Some(1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_limit_moves_and_refusals_are_published() {
        use crate::policy::ConcurrencyLimit;

        let recorder = DebuggingRecorder::new();
        let limit = concurrency_limit_metrics(
            ConcurrencyLimit::builder("db")
                .initial_limit(2)
                .window(Duration::from_nanos(1), 1),
        )
        .build()
        .unwrap();
        // The first call opens the first window; the next one, later, closes it.
        limit.try_acquire().unwrap().success();
        tokio::time::advance(Duration::from_millis(1)).await;
        metrics::with_local_recorder(&recorder, || {
            let held = limit.try_acquire().unwrap();
            let second = limit.try_acquire().unwrap();
            second.dropped(); // AIMD backs off: 2 × 0.9 → 1
            assert!(limit.try_acquire().is_err());
            drop(held);
        });
        let rows = collect(&recorder);
        assert_eq!(
            counter_value(
                &rows,
                "fusebox_concurrency_limit_rejections_total{policy=db}"
            ),
            Some(1)
        );
        let gauge = rows
            .iter()
            .find(|(k, _)| k == "fusebox_concurrency_limit{policy=db}")
            .map(|(_, v)| v);
        assert!(
            matches!(gauge, Some(DebugValue::Gauge(g)) if g.into_inner() == 1.0),
            "{gauge:?}"
        );
    }

    #[test]
    fn outlier_ejections_and_the_ejected_gauge_are_published() {
        use crate::policy::OutlierDetector;
        use fusebox_core::Outcome;
        use fusebox_core::clock::ManualClock;

        let recorder = DebuggingRecorder::new();
        let clock = ManualClock::new();
        let detector = outlier_metrics(
            OutlierDetector::<&str>::builder("replicas")
                .consecutive_failures(2)
                .base_ejection_time(Duration::from_secs(10))
                .clock(clock.clone()),
        )
        .build()
        .unwrap();
        let gauge = |rows: &[(String, DebugValue)]| {
            rows.iter()
                .find(|(k, _)| k == "fusebox_outlier_ejected{policy=replicas}")
                .and_then(|(_, v)| match v {
                    DebugValue::Gauge(g) => Some(g.into_inner()),
                    _ => None,
                })
        };
        metrics::with_local_recorder(&recorder, || {
            detector.record(&"b", Outcome::Success);
            detector.record(&"a", Outcome::Failure);
            detector.record(&"a", Outcome::Failure);
        });
        let rows = collect(&recorder);
        assert_eq!(
            counter_value(
                &rows,
                "fusebox_outlier_ejections_total{policy=replicas,reason=consecutive_failures}"
            ),
            Some(1)
        );
        assert_eq!(gauge(&rows), Some(1.0));
        clock.advance(Duration::from_secs(10));
        metrics::with_local_recorder(&recorder, || assert!(detector.ejected().is_empty()));
        assert_eq!(gauge(&collect(&recorder)), Some(0.0));
    }

    #[test]
    fn chaos_faults_and_delays_are_published() {
        use crate::policy::{Chaos, Latency};

        let recorder = DebuggingRecorder::new();
        let chaos = chaos_metrics(
            Chaos::builder("payments")
                .enabled(true)
                .seed(1)
                .fault(1.0, || ())
                .latency(1.0, Latency::Fixed(Duration::from_millis(5))),
        )
        .build()
        .unwrap();
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..3 {
                chaos.decide();
            }
        });
        let rows = collect(&recorder);
        assert_eq!(
            counter_value(&rows, "fusebox_chaos_faults_total{policy=payments}"),
            Some(3)
        );
        assert_eq!(
            counter_value(&rows, "fusebox_chaos_delays_total{policy=payments}"),
            Some(3)
        );
    }

    #[test]
    fn hedges_wins_losers_and_refusals_are_published() {
        use crate::policy::Hedge;
        use fusebox_core::budget::{BudgetConfig, RetryBudget};

        let recorder = DebuggingRecorder::new();
        let hedge = hedge_metrics(Hedge::builder("search").max_hedged_attempts(2))
            .build()
            .unwrap();
        let no_budget = RetryBudget::new(
            BudgetConfig::builder()
                .ratio(0.0)
                .min_retries_per_second(0.0)
                .build()
                .unwrap(),
        );
        let starved = hedge_metrics(Hedge::builder("starved").budget(no_budget))
            .build()
            .unwrap();
        metrics::with_local_recorder(&recorder, || {
            // Two hedges; the second wins over the first attempt and the first hedge.
            let first = hedge.begin_call();
            hedge.try_hedge(1).unwrap();
            let second = hedge.try_hedge(2).unwrap();
            hedge.settle(2, second, Some(first), 2);
            let _ = starved.begin_call();
            assert!(starved.try_hedge(1).is_none());
        });
        let rows = collect(&recorder);
        let count = |key: &str| counter_value(&rows, key);
        assert_eq!(count("fusebox_hedges_total{policy=search}"), Some(2));
        assert_eq!(count("fusebox_hedge_wins_total{policy=search}"), Some(1));
        assert_eq!(
            count("fusebox_hedge_losers_cancelled_total{policy=search}"),
            Some(2)
        );
        assert_eq!(
            count("fusebox_hedges_refused_total{policy=starved}"),
            Some(1)
        );
        assert_eq!(count("fusebox_hedges_total{policy=starved}"), None);
    }
}
