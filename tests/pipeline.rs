//! Retry, timeout, bulkhead, fallback and pipelines, under `tokio::time::pause`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox::Error;
use fusebox::backoff::Backoff;
use fusebox::breaker::{Breaker, State};
use fusebox::budget::{BudgetConfig, RetryBudget};
use fusebox::clock::{ManualClock, TokioClock};
use fusebox::pipeline::Pipeline;
use fusebox::policy::{Bulkhead, Fallback, GiveUpReason, Retry, RetryDecision, RetryReason};
use tokio::time::Instant;

mod support;
use support::{ApiError, api, failing_breaker, ms, quick_retry, roomy_bulkhead};

#[tokio::test(start_paused = true)]
async fn retry_sleeps_exactly_the_backoff_sequence() {
    let backoff = Backoff::exponential(ms(100), ms(1000))
        .factor(2.0)
        .build()
        .unwrap();
    let expected: Vec<Duration> = backoff.iter().take(5).collect();
    assert_eq!(expected, [ms(100), ms(200), ms(400), ms(800), ms(1000)]);
    let retry = Retry::<(), ApiError>::builder()
        .max_retries(5)
        .backoff(backoff)
        .build()
        .unwrap();
    let attempts = Mutex::new(Vec::new());
    let r = retry
        .call(|| async {
            attempts.lock().unwrap().push(Instant::now());
            Err(api(500))
        })
        .await;
    assert_eq!(r.unwrap_err().into_inner(), Some(api(500)));
    let at = attempts.into_inner().unwrap();
    assert_eq!(at.len(), 6, "1 attempt + 5 retries");
    let slept: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(slept, expected);
}

#[tokio::test(start_paused = true)]
async fn retry_stops_at_max_elapsed() {
    let retry = Retry::<(), ApiError>::builder()
        .max_retries(100)
        .backoff(Backoff::fixed(ms(300)).build().unwrap())
        .max_elapsed(ms(1000))
        .clock(TokioClock::new())
        .build()
        .unwrap();
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    let _ = retry
        .call(|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            Err(api(500))
        })
        .await;
    // Attempts at 0, 300, 600, 900 ms; a fifth would start at 1200 ms.
    assert_eq!(attempts.load(Ordering::Relaxed), 4);
    assert_eq!(start.elapsed(), ms(900));
}

#[tokio::test(start_paused = true)]
async fn should_handle_predicate_and_ok_values() {
    // Parity: max_retries, a backoff and a should-handle predicate.
    let attempts = AtomicU32::new(0);
    let retry = Retry::<u16, ApiError>::builder()
        .max_retries(2)
        .backoff(Backoff::fixed(ms(10)).build().unwrap())
        .retry_on(|e: &ApiError| e.status >= 500)
        .build()
        .unwrap();
    let r = retry
        .call(|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            Err::<u16, _>(api(404))
        })
        .await;
    assert!(r.is_err());
    assert_eq!(attempts.load(Ordering::Relaxed), 1, "a 404 is not retried");

    // A 503 that arrives as an Ok value is retried too.
    let retry = Retry::<u16, ApiError>::builder()
        .max_retries(3)
        .backoff(Backoff::fixed(ms(10)).build().unwrap())
        .retry_if(|r| match r {
            Ok(503) | Err(_) => RetryDecision::Retry,
            _ => RetryDecision::Stop,
        })
        .build()
        .unwrap();
    let statuses = Mutex::new(vec![200u16, 503, 503]);
    let r = retry
        .call(|| async { Ok::<_, ApiError>(statuses.lock().unwrap().pop().unwrap()) })
        .await;
    assert_eq!(r.unwrap(), 200);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_within_the_maximum() {
    let retry = Retry::<(), ApiError>::builder()
        .max_retries(1)
        .backoff(Backoff::fixed(ms(10)).build().unwrap())
        .max_retry_after(Duration::from_secs(5))
        .honor_retry_after()
        .build()
        .unwrap();
    let start = Instant::now();
    let attempts = AtomicU32::new(0);
    let _ = retry
        .call(|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            Err(ApiError {
                status: 429,
                retry_after: Some(Duration::from_secs(2)),
            })
        })
        .await;
    assert_eq!(attempts.load(Ordering::Relaxed), 2);
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "waited what the server asked"
    );

    // A hint beyond the maximum stops retrying at once.
    let gave_up = Arc::new(Mutex::new(Vec::new()));
    let sink = gave_up.clone();
    let retry = Retry::<(), ApiError>::builder()
        .max_retries(3)
        .max_retry_after(Duration::from_secs(5))
        .honor_retry_after()
        .on_give_up(move |_, reason| sink.lock().unwrap().push(reason))
        .build()
        .unwrap();
    let start = Instant::now();
    let _ = retry
        .call(|| async {
            Err(ApiError {
                status: 503,
                retry_after: Some(Duration::from_secs(120)),
            })
        })
        .await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(*gave_up.lock().unwrap(), [GiveUpReason::RetryAfterTooLong]);
}

#[tokio::test(start_paused = true)]
async fn retry_events_and_cancellation() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let retry = Retry::<(), ApiError>::builder()
        .name("orders")
        .max_retries(10)
        .backoff(Backoff::fixed(ms(100)).build().unwrap())
        .on_retry(move |e| sink.lock().unwrap().push((e.attempt, e.delay, e.reason)))
        .build()
        .unwrap();
    let attempts = AtomicU32::new(0);
    let call = retry.call(|| async {
        attempts.fetch_add(1, Ordering::Relaxed);
        Err(api(500))
    });
    // Dropping the future after 250 ms stops the retrying.
    assert!(tokio::time::timeout(ms(250), call).await.is_err());
    let made = attempts.load(Ordering::Relaxed);
    assert_eq!(made, 3, "attempts at 0, 100 and 200 ms");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(attempts.load(Ordering::Relaxed), made);
    // Retries are reported when scheduled, before their delay: the fourth attempt was
    // announced at 200 ms and cancelled while waiting.
    assert_eq!(
        *events.lock().unwrap(),
        [
            (2, ms(100), RetryReason::Error),
            (3, ms(100), RetryReason::Error),
            (4, ms(100), RetryReason::Error)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn budget_caps_retries_against_a_dead_dependency() {
    let budget = RetryBudget::new(
        BudgetConfig::builder()
            .ratio(0.1)
            .min_retries_per_second(1.0)
            .window(Duration::from_secs(10))
            .build()
            .unwrap(),
    );
    let retry = Retry::<(), ApiError>::builder()
        .max_retries(3)
        .backoff(Backoff::fixed(ms(1)).build().unwrap())
        .budget(budget)
        .clock(TokioClock::new())
        .build()
        .unwrap();
    let attempts = AtomicU32::new(0);
    for _ in 0..10_000 {
        let _ = retry
            .call(|| async {
                attempts.fetch_add(1, Ordering::Relaxed);
                Err(api(500))
            })
            .await;
    }
    let retries = attempts.load(Ordering::Relaxed) - 10_000;
    // Without a budget: 30,000 retries. With it: 10 % of first attempts plus the floor.
    let bound = (0.1 * 10_000.0 + 1.0 * 10.0) as u32;
    assert!(retries <= bound, "{retries} retries > budget {bound}");
    assert!(
        retries >= 900,
        "the budget should still allow retries, got {retries}"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_outside_the_breaker_stops_at_the_first_rejection() {
    let breaker = failing_breaker(3);
    let pipeline = Pipeline::builder()
        .retry(quick_retry(2))
        .breaker(breaker.clone())
        .build()
        .unwrap();
    support::retry_outside_the_breaker_stops_at_the_first_rejection(&pipeline, &breaker).await;
}

#[tokio::test(start_paused = true)]
async fn retry_inside_the_breaker_counts_one_outcome_per_call() {
    let breaker = failing_breaker(3);
    let pipeline = Pipeline::builder()
        .breaker(breaker.clone())
        .retry(quick_retry(2))
        .build()
        .unwrap();
    support::retry_inside_the_breaker_counts_one_outcome_per_call(&pipeline, &breaker).await;
}

#[tokio::test(start_paused = true)]
async fn timeout_per_attempt_inside_retry_and_overall_outside() {
    let per_attempt = Pipeline::builder()
        .retry(quick_retry(2))
        .timeout(ms(100))
        .build()
        .unwrap();
    let overall = Pipeline::builder()
        .timeout(ms(250))
        .retry(quick_retry(10))
        .timeout(ms(100))
        .build()
        .unwrap();
    support::timeout_per_attempt_inside_retry_and_overall_outside(&per_attempt, &overall).await;
}

#[tokio::test(start_paused = true)]
async fn bulkhead_queue_and_rejection() {
    let bulkhead = Bulkhead::builder("db")
        .max_concurrent(1)
        .max_queued(1)
        .build()
        .unwrap();
    let pipeline: Pipeline<u32, ApiError> = Pipeline::builder().bulkhead(bulkhead).build().unwrap();
    let work = |n: u32| async move {
        tokio::time::sleep(ms(100)).await;
        Ok::<_, ApiError>(n)
    };
    let (a, b, c) = tokio::join!(
        pipeline.call(|| work(1)),
        pipeline.call(|| work(2)),
        pipeline.call(|| work(3)),
    );
    assert_eq!(a.unwrap(), 1);
    assert_eq!(b.unwrap(), 2, "the second call waited in the queue");
    let full = c.unwrap_err();
    assert!(matches!(&full, Error::BulkheadFull(f) if f.name == "db" && f.max_concurrent == 1));
}

#[tokio::test(start_paused = true)]
async fn bulkhead_max_wait_and_cancelled_waiter_leaves_the_queue() {
    let bulkhead = Bulkhead::builder("q")
        .max_concurrent(1)
        .max_queued(1)
        .max_wait(ms(50))
        .build()
        .unwrap();
    let held = bulkhead.try_enter().unwrap();
    let r = bulkhead.call(|| async { Ok::<_, ()>(()) }).await;
    assert_eq!(
        r.unwrap_err().stopped_by(),
        Some("bulkhead"),
        "waited 50 ms, then gave up"
    );
    // A waiter dropped mid-wait frees its queue place.
    let waiting = bulkhead.call(|| async { Ok::<_, ()>(()) });
    assert!(tokio::time::timeout(ms(10), waiting).await.is_err());
    drop(held);
    assert!(bulkhead.call(|| async { Ok::<_, ()>(()) }).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn fallback_answers_rejections_and_chosen_errors() {
    let breaker = failing_breaker(1);
    let pipeline = Pipeline::builder()
        .fallback(Fallback::value(String::from("cached")).on_rejected())
        .breaker(breaker.clone())
        .build()
        .unwrap();
    let r = pipeline.call(|| async { Err::<String, _>(api(500)) }).await;
    assert_eq!(
        r.unwrap_err().into_inner(),
        Some(api(500)),
        "not a rejection: passes through"
    );
    let r = pipeline
        .call(|| async { Ok::<_, ApiError>("fresh".into()) })
        .await;
    assert_eq!(r.unwrap(), "cached", "open breaker: fallback answers");

    let from_fn: Pipeline<String, ApiError> = Pipeline::builder()
        .fallback(Fallback::from_fn(|e: Error<ApiError>| async move {
            Ok(format!(
                "degraded after {}",
                e.into_inner().map_or(0, |e| e.status)
            ))
        }))
        .build()
        .unwrap();
    let r = from_fn.call(|| async { Err(api(502)) }).await;
    assert_eq!(r.unwrap(), "degraded after 502");
}

#[tokio::test(start_paused = true)]
async fn safety_net_of_retry_and_fractional_breaker() {
    // Parity: a safety net of (retry(max 2), protector(2/5)), retry outside.
    let breaker = Breaker::builder("protector")
        .failures_in_last(2, 5)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let net = Pipeline::builder()
        .retry(quick_retry(2))
        .breaker(breaker.clone())
        .build()
        .unwrap();
    let attempts = AtomicU32::new(0);
    let flaky = || async {
        // Fails once, then works: the retry absorbs it.
        if attempts.fetch_add(1, Ordering::Relaxed) == 0 {
            Err(api(500))
        } else {
            Ok(())
        }
    };
    net.call(flaky).await.unwrap();
    assert_eq!(breaker.state(), State::Closed, "1 failure of 2 attempts");
    let _ = net.call(|| async { Err::<(), _>(api(500)) }).await;
    assert_eq!(
        breaker.state(),
        State::Open,
        "second failure in the last 5 trips it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_is_shared_across_tasks() {
    let pipeline: Pipeline<u32, ApiError> = Pipeline::builder()
        .retry(quick_retry(1))
        .breaker(Breaker::builder("shared").build().unwrap())
        .bulkhead(roomy_bulkhead("shared"))
        .build()
        .unwrap();
    support::shared_across_tasks(|i| {
        let p = pipeline.clone();
        tokio::spawn(async move { p.call(|| async move { Ok::<_, ApiError>(i) }).await })
    })
    .await;
}

#[test]
fn invalid_settings_name_the_field() {
    let e = Pipeline::<(), ()>::builder()
        .timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), Some("timeout"));
    let e = Bulkhead::builder("b")
        .max_concurrent(0)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), Some("max_concurrent"));
    let e = Retry::<(), ()>::builder()
        .max_elapsed(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(e.field(), Some("max_elapsed"));
    let mut b = Pipeline::<(), ()>::builder();
    for _ in 0..7 {
        b = b.timeout(ms(1));
    }
    assert_eq!(b.build().unwrap_err().field(), Some("pipeline"));
}

#[tokio::test(start_paused = true)]
async fn dropping_a_waiting_call_releases_permits_and_slots_and_stops_retrying() {
    let (breaker, bulkhead) = support::breaker_and_bulkhead_to_drop();
    let pipeline: Pipeline<(), ApiError> = Pipeline::builder()
        .retry(quick_retry(5))
        .breaker(breaker.clone())
        .bulkhead(bulkhead.clone())
        .build()
        .unwrap();
    support::dropping_a_waiting_call_releases_permits_and_slots_and_stops_retrying(
        &pipeline, &breaker, &bulkhead,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn zero_delay_retries_pass_the_breaker_each_time() {
    let breaker = failing_breaker(10);
    let pipeline = Pipeline::builder()
        .retry(
            Retry::builder()
                .max_retries(3)
                .backoff(Backoff::fixed(Duration::ZERO).build().unwrap())
                .build()
                .unwrap(),
        )
        .breaker(breaker.clone())
        .build()
        .unwrap();
    let attempts = AtomicU32::new(0);
    let r = pipeline
        .call(|| async {
            match attempts.fetch_add(1, Ordering::Relaxed) {
                0..=2 => Err(api(503)),
                n => Ok(n),
            }
        })
        .await;
    assert_eq!(r.unwrap(), 3);
    // Three failures and a success, each through the breaker: the success reset the run.
    assert_eq!(breaker.snapshot().consecutive_failures, 0);
    assert_eq!(attempts.load(Ordering::Relaxed), 4);
}

#[tokio::test(start_paused = true)]
async fn an_outer_timeout_bounds_a_fallback_handler_and_a_waiting_bulkhead() {
    // The fallback's handler runs inside the outer timeout.
    let pipeline: Pipeline<u32, ApiError> = Pipeline::builder()
        .timeout(ms(100))
        .fallback(Fallback::from_fn(|_| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(0)
        }))
        .build()
        .unwrap();
    let start = Instant::now();
    let r = pipeline.call(|| async { Err(api(500)) }).await;
    assert_eq!(r.unwrap_err().stopped_by(), Some("timeout"));
    assert_eq!(start.elapsed(), ms(100));

    // A call waiting in a bulkhead's queue gives up at the timeout and leaves the queue.
    let bulkhead = Bulkhead::builder("q")
        .max_concurrent(1)
        .max_queued(1)
        .build()
        .unwrap();
    let pipeline: Pipeline<u32, ApiError> = Pipeline::builder()
        .timeout(ms(100))
        .bulkhead(bulkhead.clone())
        .build()
        .unwrap();
    let held = bulkhead.try_enter().unwrap();
    let r = pipeline.call(|| async { Ok(1) }).await;
    assert_eq!(r.unwrap_err().stopped_by(), Some("timeout"));
    drop(held);
    assert_eq!(pipeline.call(|| async { Ok(2) }).await.unwrap(), 2);
    let (a, b) = tokio::join!(
        pipeline.call(|| async {
            tokio::time::sleep(ms(50)).await;
            Ok(3)
        }),
        pipeline.call(|| async { Ok(4) }),
    );
    assert_eq!(
        (a.unwrap(), b.unwrap()),
        (3, 4),
        "the queue place was freed"
    );
}

#[tokio::test(start_paused = true)]
async fn nested_timeouts_the_inner_one_fires_first_and_is_retried() {
    let attempts = AtomicU32::new(0);
    let pipeline: Pipeline<u32, ApiError> = Pipeline::builder()
        .timeout(ms(1_000))
        .retry(quick_retry(1))
        .timeout(ms(100))
        .build()
        .unwrap();
    let start = Instant::now();
    let r = pipeline
        .call(|| async {
            let n = attempts.fetch_add(1, Ordering::Relaxed);
            if n == 0 {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Ok(n)
        })
        .await;
    assert_eq!(r.unwrap(), 1);
    assert_eq!(
        start.elapsed(),
        ms(110),
        "100 ms timeout, 10 ms backoff, then at once"
    );
}

#[test]
fn jitter_differs_between_unseeded_calls_and_repeats_with_a_seed() {
    use fusebox::backoff::Jitter;
    let failed: Result<(), Error<()>> = Err(Error::Inner(()));
    let unseeded = Retry::<(), ()>::builder().build().unwrap(); // full jitter by default
    let mut firsts: Vec<_> = (0..20)
        .map(|_| unseeded.attempts().next_delay(&failed))
        .collect();
    firsts.dedup();
    assert!(firsts.len() > 1, "every call drew the same delay");

    let backoff = Backoff::exponential(ms(100), Duration::from_secs(10))
        .jitter(Jitter::Full)
        .build()
        .unwrap();
    let seeded = Retry::<(), ()>::builder()
        .max_retries(3)
        .backoff(backoff.clone())
        .seed(7)
        .build()
        .unwrap();
    for _ in 0..2 {
        let mut attempts = seeded.attempts();
        let drawn: Vec<_> = (0..3).map_while(|_| attempts.next_delay(&failed)).collect();
        assert_eq!(drawn, backoff.seeded(7).take(3).collect::<Vec<_>>());
    }
}

/// A call's future carries the policies' states inline (at most six, 32 bytes each) and only
/// a pointer to its timer: a retry + breaker call around a small closure stays within 256
/// bytes, which an executor moves in one short copy.
#[test]
fn a_call_future_stays_small() {
    let pipeline = Pipeline::<u64, ApiError>::builder()
        .timeout(ms(100))
        .retry(Retry::builder().build().unwrap())
        .breaker(Breaker::builder("size").build().unwrap())
        .build()
        .unwrap();
    let op = || async { Ok::<u64, ApiError>(1) };
    let size = size_of_val(&pipeline.call(op));
    assert!(size <= 256, "a pipeline call's future is {size} bytes");
}

#[tokio::test(start_paused = true)]
async fn a_concurrency_limit_in_a_pipeline_frees_its_place_when_a_timeout_cancels_the_call() {
    use fusebox::policy::ConcurrencyLimit;
    let limit = ConcurrencyLimit::builder("db")
        .min_limit(1)
        .initial_limit(1)
        .build()
        .unwrap();
    let pipeline = Pipeline::<(), ()>::builder()
        .timeout(Duration::from_millis(50))
        .concurrency_limit(limit.clone())
        .build()
        .unwrap();
    let slow = pipeline.call(|| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(())
    });
    let err = slow.await.unwrap_err();
    assert_eq!(err.stopped_by(), Some("timeout"));
    assert_eq!(limit.in_flight(), 0, "the timeout gave the place back");
    assert!(pipeline.call(|| async { Ok(()) }).await.is_ok());
}

#[test]
fn a_waiting_rate_limiter_is_refused_by_a_pipeline() {
    use fusebox::policy::{RateLimitMode, RateLimiter};
    let waiting = RateLimiter::builder("api")
        .per_second(10)
        .mode(RateLimitMode::Wait {
            max_wait: Duration::from_secs(1),
        })
        .build()
        .unwrap();
    let err = Pipeline::<(), ()>::builder()
        .rate_limit(waiting)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("rate_limit"));
}

#[tokio::test(start_paused = true)]
async fn a_hedged_pipeline_drops_its_racing_attempts_when_a_timeout_cancels_the_call() {
    use fusebox::policy::Hedge;
    use std::sync::atomic::AtomicUsize;

    /// Counts the attempts dropped before they finished.
    struct Dropped<'a>(&'a AtomicUsize);
    impl Drop for Dropped<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    let hedge = Hedge::builder("h")
        .delay(Duration::from_millis(20))
        .max_hedged_attempts(2)
        .build()
        .unwrap();
    let pipeline = Pipeline::<(), ()>::builder()
        .timeout(Duration::from_millis(100))
        .hedge(hedge.clone())
        .build()
        .unwrap();
    let (started, dropped) = (AtomicU32::new(0), AtomicUsize::new(0));
    let err = pipeline
        .call(|| async {
            started.fetch_add(1, Ordering::Relaxed);
            let _guard = Dropped(&dropped);
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok(())
        })
        .await
        .unwrap_err();
    assert_eq!(err.stopped_by(), Some("timeout"));
    assert_eq!(
        started.load(Ordering::Relaxed),
        3,
        "the first attempt and two hedges"
    );
    assert_eq!(dropped.load(Ordering::Relaxed), 3, "all three cancelled");
    assert_eq!(hedge.stats().hedges_sent, 2);
}

#[tokio::test(start_paused = true)]
async fn a_hedged_pipeline_returns_the_last_failure_once_every_attempt_failed() {
    use fusebox::policy::Hedge;
    let hedge = Hedge::builder("h")
        .delay(Duration::from_millis(10))
        .max_hedged_attempts(1)
        .build()
        .unwrap();
    let pipeline = Pipeline::<u32, u32>::builder()
        .hedge(hedge.clone())
        .build()
        .unwrap();
    let n = AtomicU32::new(0);
    let started = Instant::now();
    let err = pipeline
        .call(|| async {
            let i = n.fetch_add(1, Ordering::Relaxed);
            // The first fails late, the hedge early: the call waits for both.
            tokio::time::sleep(Duration::from_millis(if i == 0 { 50 } else { 5 })).await;
            Err(i)
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.into_inner(),
        Some(0),
        "the last failure: the first attempt's"
    );
    assert_eq!(started.elapsed(), Duration::from_millis(50));
}

#[test]
fn a_hedge_with_policies_inside_it_is_refused_by_a_pipeline() {
    use fusebox::policy::Hedge;
    let err = Pipeline::<(), ()>::builder()
        .hedge(Hedge::builder("h").build().unwrap())
        .timeout(Duration::from_millis(10))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("hedge"));
}
