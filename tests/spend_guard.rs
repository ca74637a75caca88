//! The cost guard end to end: windows, warnings and breaches, spikes, unknown costs, the bound
//! on concurrent bursts, and the guard in a pipeline and behind a tower layer.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use fusebox::breaker::Breaker;
use fusebox::clock::ManualClock;
use fusebox::error::{CostRejected, Error};
use fusebox::guard::{
    CostBaseline, CostEventKind, CostGuard, CostPolicy, CostPolicyBuilder, CostRejectReason,
    CostWindow, EwmaConfig, SpikeCheck, UnknownCost,
};
use fusebox::pipeline::Pipeline;
use fusebox::policy::{Fallback, Retry};

const HOUR: Duration = Duration::from_secs(3600);
/// 2024-01-01 00:00:00 UTC, a Monday.
const MONDAY: Duration = Duration::from_secs(1_704_067_200);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn guard(policy: CostPolicyBuilder, clock: &ManualClock) -> CostGuard {
    CostGuard::builder("llm", policy.build().unwrap())
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// Whether a call would be admitted now; the permit is released unused.
fn admits(g: &CostGuard) -> bool {
    g.try_acquire().map(|permit| permit.cancel()).is_ok()
}

fn spend(g: &CostGuard, cost: f64) {
    g.try_acquire().unwrap().record_cost(cost);
}

fn events_of(
    guard_policy: CostPolicyBuilder,
    clock: &ManualClock,
) -> (CostGuard, Arc<Mutex<Vec<CostEventKind>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let guard = CostGuard::builder("llm", guard_policy.build().unwrap())
        .clock(clock.clone())
        .on_event(move |e| log.lock().unwrap().push(e.kind))
        .build()
        .unwrap();
    (guard, seen)
}

#[test]
fn rolling_window_accumulates_and_forgets_bucket_by_bucket() {
    let clock = ManualClock::new();
    let window = CostWindow::Rolling {
        span: secs(60),
        buckets: 6,
    };
    let g = guard(CostPolicy::builder(100.0).window(window), &clock);
    for cost in [12.5, 7.5, 30.0] {
        g.try_acquire().unwrap().record_cost(cost);
        clock.advance(secs(10));
    }
    assert_eq!(g.status().spent, 50.0);
    clock.set(secs(59));
    assert_eq!(g.status().spent, 50.0);
    clock.set(secs(60));
    assert_eq!(g.status().spent, 37.5);
    clock.set(secs(70));
    assert_eq!(g.status().spent, 30.0);
    clock.set(secs(80));
    assert_eq!(g.status().spent, 0.0);
}

#[test]
fn calendar_hour_and_day_roll_over_on_utc_boundaries() {
    let clock = ManualClock::new();
    clock.set(MONDAY + 9 * HOUR + secs(3599)); // 09:59:59
    let hourly = guard(
        CostPolicy::builder(10.0).window(CostWindow::CalendarHour),
        &clock,
    );
    let daily = guard(
        CostPolicy::builder(10.0).window(CostWindow::CalendarDay),
        &clock,
    );
    for g in [&hourly, &daily] {
        g.try_acquire().unwrap().record_cost(10.0);
        assert!(g.try_acquire().is_err());
    }
    let refused = daily.try_acquire().unwrap_err();
    assert_eq!(refused.retry_after, Some(14 * HOUR + secs(1)));

    clock.advance(secs(1)); // 10:00:00: a new hour, the same day
    assert_eq!(hourly.status().spent, 0.0);
    spend(&hourly, 1.0);
    assert_eq!(daily.status().spent, 10.0);
    assert!(daily.try_acquire().is_err());

    clock.set(MONDAY + 24 * HOUR); // Tuesday 00:00:00
    assert_eq!(daily.status().spent, 0.0);
    assert_eq!(
        daily.status().period_start_nanos,
        (MONDAY + 24 * HOUR).as_nanos() as u64
    );
    assert!(admits(&daily));
}

#[test]
fn warning_at_920_of_1000_then_breach_at_the_limit() {
    let clock = ManualClock::new();
    let (g, seen) = events_of(CostPolicy::builder(1000.0).warning_ratio(0.9), &clock);

    g.try_acquire().unwrap().record_cost(920.0);
    let status = g.status();
    assert_eq!(status.budget.usage_ratio, 0.92);
    assert_eq!(status.budget.remaining, 80.0);
    assert!(status.budget.is_warning && !status.budget.is_breached);

    let permit = g.try_acquire().unwrap();
    assert!(permit.warning(), "admitted with a warning");
    permit.record_cost(79.0);
    g.try_acquire().unwrap().record_cost(1.0);

    let refused = g.try_acquire().unwrap_err();
    assert_eq!(refused.reason, CostRejectReason::BudgetBreached);
    assert_eq!((refused.spent, refused.limit), (1000.0, 1000.0));
    assert_eq!(
        *seen.lock().unwrap(),
        [CostEventKind::Warning, CostEventKind::Breach]
    );
}

#[test]
fn the_reference_series_trips_the_spike_rule() {
    let clock = ManualClock::new();
    clock.set(MONDAY);
    let policy = CostPolicy::builder(10_000.0)
        .window(CostWindow::CalendarHour)
        .baseline(CostBaseline::Recent {
            check: SpikeCheck::default(),
            periods: 3,
        });
    let (g, seen) = events_of(policy, &clock);
    for spend in [120.0, 125.0, 118.0] {
        // Spend arrives in several calls; the hour's total is what counts.
        g.try_acquire().unwrap().record_cost(spend / 2.0);
        g.try_acquire().unwrap().record_cost(spend / 2.0);
        clock.advance(HOUR);
    }
    spend(&g, 181.5); // exactly the threshold: not a spike yet
    spend(&g, 78.5); // 260 in the hour
    let refused = g.try_acquire().unwrap_err();
    assert_eq!(
        refused.reason,
        CostRejectReason::Spike {
            latest: 260.0,
            threshold: 181.5
        }
    );
    assert_eq!(refused.retry_after, Some(HOUR));
    assert_eq!(*seen.lock().unwrap(), [CostEventKind::Spike]);

    // The next hour starts empty and is judged against 125, 118 and 260.
    clock.advance(HOUR);
    let reading = g.status().baseline.unwrap();
    assert_eq!(reading.baseline(), 167.66666666666666);
    assert!(admits(&g));
}

#[test]
fn ewma_baseline_seeded_from_a_global_average_does_not_alarm_at_cold_start() {
    let clock = ManualClock::new();
    let policy = CostPolicy::builder(1e6)
        .window(CostWindow::CalendarHour)
        .baseline(CostBaseline::Ewma {
            config: EwmaConfig::default(),
            seed: 100.0,
        });
    let g = guard(policy, &clock);
    // 250 in the first hour is under 3 x the seed; 0.9 x 100 + 0.1 x 250 = 115 after it.
    g.try_acquire().unwrap().record_cost(250.0);
    assert!(!g.status().baseline.unwrap().is_spike());
    clock.advance(HOUR);
    assert_eq!(g.status().baseline.unwrap().baseline(), 115.0);
    g.try_acquire().unwrap().record_cost(346.0);
    let refused = g.try_acquire().unwrap_err();
    assert_eq!(
        refused.reason,
        CostRejectReason::Spike {
            latest: 346.0,
            threshold: 345.0
        }
    );
}

#[test]
fn unknown_costs_follow_the_configured_policy() {
    let clock = ManualClock::new();
    let ignore = guard(
        CostPolicy::builder(10.0).unknown_cost(UnknownCost::Ignore),
        &clock,
    );
    let assume = guard(
        CostPolicy::builder(10.0).unknown_cost(UnknownCost::Assume(4.0)),
        &clock,
    );
    let estimate = guard(CostPolicy::builder(10.0).estimated_cost(1.5), &clock);
    for g in [&ignore, &assume, &estimate] {
        g.try_acquire().unwrap().record_unknown(); // the extractor said None
        g.try_acquire().unwrap().record_cost(f64::NAN); // an invalid number
        drop(g.try_acquire().unwrap()); // cancelled mid-call
        assert_eq!(g.status().unknown_costs, 3);
    }
    assert_eq!(ignore.status().spent, 0.0);
    assert_eq!(assume.status().spent, 12.0);
    assert!(assume.try_acquire().is_err());
    assert_eq!(estimate.status().spent, 4.5);
}

#[test]
fn failing_closed_refuses_until_the_window_ends_or_an_operator_clears_it() {
    let clock = ManualClock::new();
    clock.set(MONDAY);
    let policy = CostPolicy::builder(10.0)
        .window(CostWindow::CalendarHour)
        .unknown_cost(UnknownCost::Reject);
    let g = guard(policy, &clock);
    g.try_acquire().unwrap().record_cost(1.0);
    clock.advance(secs(600));
    g.try_acquire().unwrap().record_unknown();

    let refused = g.try_acquire().unwrap_err();
    assert_eq!(refused.reason, CostRejectReason::UnknownCost);
    assert_eq!(refused.retry_after, Some(secs(3000)));

    // The next hour is a fresh window whose total is known again.
    clock.advance(secs(3000));
    g.try_acquire().unwrap().record_unknown();
    assert!(g.try_acquire().is_err());
    // Or an operator checks the bill, records the cost and lifts the block.
    g.record_cost(2.0).unwrap();
    assert!(g.clear_unknown());
    assert_eq!(g.status().spent, 2.0);
    assert!(admits(&g));
}

#[test]
fn invalid_settings_and_clocks_are_typed_errors_naming_the_field() {
    let err = CostPolicy::builder(f64::NAN).build().unwrap_err();
    assert_eq!(err.field(), Some("limit"));
    let err = CostPolicy::builder(1.0)
        .estimated_cost(-1.0)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("estimated_cost"));
    let daily = CostPolicy::builder(1.0).build().unwrap();
    let err = CostGuard::builder("llm", daily)
        .clock(fusebox::clock::PreciseClock)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("clock"));
    let g = guard(CostPolicy::builder(1.0), &ManualClock::new());
    assert_eq!(g.record_cost(-3.0).unwrap_err().field(), Some("cost"));
}

/// Every thread takes a permit before any records its cost: the worst case for a guard
/// that would only count costs once known.
fn simultaneous_burst(estimate: f64, threads: usize) -> (u32, f64) {
    let clock = ManualClock::new();
    let g = guard(CostPolicy::builder(100.0).estimated_cost(estimate), &clock);
    g.record_cost(99.5).unwrap();
    let admitted = Arc::new(AtomicU32::new(0));
    let all_asked = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (g, admitted, all_asked) = (g.clone(), admitted.clone(), all_asked.clone());
            thread::spawn(move || {
                let permit = g.try_acquire_owned();
                all_asked.wait();
                if let Ok(permit) = permit {
                    admitted.fetch_add(1, Ordering::Relaxed);
                    permit.record_cost(1.0);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    (admitted.load(Ordering::Relaxed), g.status().spent)
}

#[test]
fn a_burst_overshoots_by_at_most_concurrency_times_cost_without_an_estimate() {
    let (admitted, spent) = simultaneous_burst(0.0, 8);
    assert_eq!(admitted, 8);
    assert_eq!(spent, 107.5);
    assert!(spent < 100.0 + 8.0 * 1.0);
}

#[test]
fn a_burst_overshoots_by_less_than_one_estimate_with_reservations() {
    let (admitted, spent) = simultaneous_burst(1.0, 8);
    assert_eq!(admitted, 1);
    assert_eq!(spent, 100.5);
    assert!(spent < 100.0 + 1.0);
}

#[test]
fn many_threads_never_push_spend_past_limit_plus_one_estimate() {
    let clock = ManualClock::new();
    let g = guard(CostPolicy::builder(500.0).estimated_cost(0.75), &clock);
    let admitted = Arc::new(AtomicU32::new(0));
    let workers: Vec<_> = (0..8)
        .map(|i| {
            let (g, admitted) = (g.clone(), admitted.clone());
            thread::spawn(move || {
                for n in 0..400u32 {
                    if let Ok(permit) = g.try_acquire() {
                        admitted.fetch_add(1, Ordering::Relaxed);
                        // Costs vary, never above the estimate.
                        permit.record_cost(f64::from((n + i) % 4 + 1) * 0.1875);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let status = g.status();
    // Some call was refused (3200 calls cost far more than 500), and a refusal means spend
    // plus at most 8 reservations of 0.75 had reached 500.
    assert!(
        status.spent >= 494.0,
        "the budget was used up: {}",
        status.spent
    );
    assert!(
        status.spent < 500.0 + 0.75,
        "overshoot {}",
        status.spent - 500.0
    );
    assert_eq!((status.reserved, status.in_flight), (0.0, 0));
    assert!(admitted.load(Ordering::Relaxed) < 8 * 400);
}

#[derive(Debug, Clone)]
struct Reply {
    tokens: u32,
}

/// The price of the simulated model: 2 units per thousand tokens.
fn reply_cost<E>(result: &Result<Reply, Error<E>>) -> Option<f64> {
    match result {
        Ok(reply) => Some(f64::from(reply.tokens) * 0.002),
        Err(Error::Inner(_)) => Some(0.5), // a failed request still bills its prompt
        Err(Error::Timeout(_)) => None,    // it may have been billed, or not
        Err(_) => Some(0.0),
    }
}

#[tokio::test(start_paused = true)]
async fn in_a_pipeline_every_attempt_is_costed_and_inner_refusals_are_free() {
    let clock = ManualClock::new();
    let g = guard(CostPolicy::builder(10.0).estimated_cost(2.0), &clock);
    let breaker = Breaker::builder("model")
        .consecutive_failures(3)
        .clock(clock.clone())
        .build()
        .unwrap();
    let pipeline = Pipeline::builder()
        .fallback(
            Fallback::value(Reply { tokens: 0 }).when(|e| e.stopped_by() == Some("cost_guard")),
        )
        .retry(Retry::builder().max_retries(2).build().unwrap())
        .cost_guard(g.clone(), reply_cost)
        .breaker(breaker.clone())
        .build()
        .unwrap();

    // Two attempts, each admitted and costed: a failure (0.5), then 1000 tokens (2.0).
    let attempts = AtomicU32::new(0);
    let reply = pipeline
        .call(|| async {
            if attempts.fetch_add(1, Ordering::Relaxed) == 0 {
                Err(std::io::Error::other("overloaded"))
            } else {
                Ok(Reply { tokens: 1000 })
            }
        })
        .await
        .unwrap();
    assert_eq!(reply.tokens, 1000);
    assert_eq!(attempts.load(Ordering::Relaxed), 2);
    assert_eq!(g.status().spent, 2.5);

    // Attempts refused by the breaker further in never reach the model: nothing is counted,
    // not even an unknown cost, and the reservation is released.
    breaker.force_open();
    let r = pipeline
        .call(|| async { Ok::<_, std::io::Error>(Reply { tokens: 1 }) })
        .await;
    assert!(matches!(r, Err(Error::Rejected(_))));
    let status = g.status();
    assert_eq!(
        (status.spent, status.reserved, status.unknown_costs),
        (2.5, 0.0, 0)
    );
    breaker.reset();

    // Spend the rest; the fallback answers the cost guard's refusal.
    pipeline
        .call(|| async { Ok::<_, std::io::Error>(Reply { tokens: 4000 }) })
        .await
        .unwrap();
    assert_eq!(g.status().spent, 10.5);
    let fallback = pipeline
        .call(|| async { Ok::<_, std::io::Error>(Reply { tokens: 1 }) })
        .await
        .unwrap();
    assert_eq!(fallback.tokens, 0);
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_without_fallback_returns_the_typed_refusal() {
    let clock = ManualClock::new();
    let g = guard(CostPolicy::builder(1.0), &clock);
    let pipeline = Pipeline::builder()
        .cost_guard(g.clone(), reply_cost)
        .build()
        .unwrap();
    pipeline
        .call(|| async { Ok::<_, std::io::Error>(Reply { tokens: 500 }) })
        .await
        .unwrap();
    let err = pipeline
        .call(|| async { Ok::<_, std::io::Error>(Reply { tokens: 500 }) })
        .await
        .unwrap_err();
    assert_eq!(err.stopped_by(), Some("cost_guard"));
    let rejected: &CostRejected = err.cost_rejection().unwrap();
    assert_eq!(rejected.reason, CostRejectReason::BudgetBreached);
}

mod tower_layer {
    use super::*;
    use fusebox::tower::cost::CostGuardLayer;
    use fusebox::tower::{BoxError, classify_error};
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};
    use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

    fn token_cost(result: &Result<u32, BoxError>) -> Option<f64> {
        result
            .as_ref()
            .ok()
            .map(|tokens| f64::from(*tokens) * 0.002)
    }

    #[tokio::test]
    async fn the_layer_costs_responses_and_refuses_with_a_typed_error() {
        let clock = ManualClock::new();
        let g = guard(CostPolicy::builder(3.0), &clock);
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        let model = service_fn(move |prompt: String| {
            seen.fetch_add(1, Ordering::Relaxed);
            async move { Ok::<u32, BoxError>(prompt.len() as u32 * 250) }
        });
        let svc = ServiceBuilder::new()
            .layer(CostGuardLayer::new(g.clone(), token_cost))
            .service(model);

        let tokens = svc.clone().oneshot("hello".to_string()).await.unwrap();
        assert_eq!(tokens, 1250);
        assert_eq!(g.status().spent, 2.5);
        svc.clone().oneshot("hi".to_string()).await.unwrap();
        assert_eq!(g.status().spent, 3.5);

        let err = svc.oneshot("again".to_string()).await.unwrap_err();
        assert!(err.is::<CostRejected>());
        assert_eq!(calls.load(Ordering::Relaxed), 2, "the model was not called");
        let Error::CostRejected(rejected) = classify_error(err) else {
            panic!("expected a cost refusal");
        };
        assert_eq!(rejected.reason, CostRejectReason::BudgetBreached);
    }

    #[test]
    fn a_dropped_response_future_counts_an_unknown_cost() {
        let g = guard(
            CostPolicy::builder(3.0).unknown_cost(UnknownCost::Assume(0.5)),
            &ManualClock::new(),
        );
        let never = service_fn(|_: ()| std::future::pending::<Result<u32, BoxError>>());
        let mut svc = CostGuardLayer::new(g.clone(), token_cost).layer(never);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(svc.poll_ready(&mut cx).is_ready());
        {
            let mut call = pin!(svc.call(()));
            assert!(call.as_mut().poll(&mut cx).is_pending());
            assert_eq!(g.status().in_flight, 1);
        }
        let status = g.status();
        assert_eq!(
            (status.in_flight, status.unknown_costs, status.spent),
            (0, 1, 0.5)
        );
    }
}
