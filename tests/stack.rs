//! Typed policy stacks: the documented order semantics, sharing, cancellation, custom
//! policies, and a differential test that runs random stacks and random call scripts through
//! a `Stack` and a `Pipeline` of the same policies and requires the same results, attempts,
//! timings and breaker states.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fusebox::backoff::Backoff;
use fusebox::breaker::{Breaker, State};
use fusebox::clock::{ManualClock, TokioClock};
use fusebox::guard::{CostGuard, CostPolicy};
use fusebox::pipeline::Pipeline;
use fusebox::policy::{
    Bulkhead, Chaos, ClassifiedThrottle, ConcurrencyLimit, Fallback, Hedge, Latency,
    OutlierDetector, OutlierEndpoint, RateLimiter, Retry, Throttle, Timeout,
};
use fusebox::stack::{Policy, Stack};
use fusebox::{Error, Outcome};
use proptest::prelude::*;
use tokio::time::Instant;

mod support;
use support::{ApiError, api, failing_breaker, ms, quick_retry, roomy_bulkhead};

fn timeout(n: u64) -> Timeout {
    Timeout::new(ms(n)).unwrap()
}

#[tokio::test(start_paused = true)]
async fn retry_outside_the_breaker_stops_at_the_first_rejection() {
    let breaker = failing_breaker(3);
    let stack = Stack::new().retry(quick_retry(2)).breaker(breaker.clone());
    support::retry_outside_the_breaker_stops_at_the_first_rejection(&stack, &breaker).await;
}

#[tokio::test(start_paused = true)]
async fn retry_inside_the_breaker_counts_one_outcome_per_call() {
    let breaker = failing_breaker(3);
    let stack = Stack::new().breaker(breaker.clone()).retry(quick_retry(2));
    support::retry_inside_the_breaker_counts_one_outcome_per_call(&stack, &breaker).await;
}

#[tokio::test(start_paused = true)]
async fn timeout_per_attempt_inside_retry_and_overall_outside() {
    let per_attempt = Stack::new().retry(quick_retry(2)).timeout(ms(100)).unwrap();
    let overall = Stack::new()
        .timeout(ms(250))
        .unwrap()
        .retry(quick_retry(10))
        .timeout(ms(100))
        .unwrap();
    support::timeout_per_attempt_inside_retry_and_overall_outside(&per_attempt, &overall).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_is_cloned_into_spawned_tasks() {
    let stack = Stack::new()
        .retry(quick_retry(1))
        .breaker(Breaker::builder("shared").build().unwrap())
        .bulkhead(roomy_bulkhead("shared"));
    fn shareable<S: Clone + Send + Sync + 'static>(_: &S) {}
    shareable(&stack);
    // Each call's future is Send: it runs on either worker.
    support::shared_across_tasks(|i| {
        let s = stack.clone();
        tokio::spawn(async move { s.call(|| async move { Ok::<_, ApiError>(i) }).await })
    })
    .await;
    assert_eq!(stack.innermost().available(), 4, "every slot came back");
}

#[tokio::test(start_paused = true)]
async fn dropping_a_waiting_call_releases_permits_and_slots_and_stops_retrying() {
    let (breaker, bulkhead) = support::breaker_and_bulkhead_to_drop();
    let stack = Stack::new()
        .retry(quick_retry(5))
        .breaker(breaker.clone())
        .bulkhead(bulkhead.clone());
    support::dropping_a_waiting_call_releases_permits_and_slots_and_stops_retrying(
        &stack, &breaker, &bulkhead,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn fallback_answers_rejections_and_a_cost_guard_skips_refused_calls() {
    let breaker = failing_breaker(1);
    let guard = CostGuard::builder("llm", CostPolicy::builder(10.0).build().unwrap())
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let stack = Stack::new()
        .fallback(Fallback::value(0u32).on_rejected())
        .cost_guard(guard.clone(), |r: &Result<u32, Error<u16>>| {
            Some(r.as_ref().map_or(0.5, |tokens| f64::from(*tokens) / 100.0))
        })
        .breaker(breaker.clone());
    assert_eq!(stack.call(|| async { Ok(200) }).await.unwrap(), 200);
    assert_eq!(guard.status().spent, 2.0);
    let failed = stack.call(|| async { Err(503) }).await;
    assert_eq!(
        failed.unwrap_err().into_inner(),
        Some(503),
        "not a rejection"
    );
    assert_eq!(guard.status().spent, 2.5, "a failed call is billed");
    assert_eq!(breaker.state(), State::Open);
    let answered = stack.call(|| async { Ok(100) }).await;
    assert_eq!(answered.unwrap(), 0, "rejected, answered by the fallback");
    assert_eq!(guard.status().spent, 2.5, "a rejected call costs nothing");
}

#[tokio::test]
async fn breaker_with_reads_ok_values_as_failures() {
    let breaker = failing_breaker(2);
    let stack = Stack::new().breaker_with(breaker.clone(), |r: &Result<u16, Error<()>>| match r {
        Ok(503) | Err(_) => Outcome::Failure,
        Ok(_) => Outcome::Success,
    });
    assert_eq!(stack.call(|| async { Ok(503) }).await.unwrap(), 503);
    assert_eq!(stack.call(|| async { Ok(503) }).await.unwrap(), 503);
    assert_eq!(breaker.state(), State::Open);
    assert!(
        stack
            .call(|| async { Ok(200) })
            .await
            .unwrap_err()
            .is_rejected()
    );
}

/// A custom policy: answers every attempt with a 503 of its own while a flag is set.
struct KillSwitch(std::sync::atomic::AtomicBool);

impl<T> Policy<T, ApiError> for KillSwitch {
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<ApiError>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<ApiError>>>,
    {
        let off = self.0.load(Ordering::Relaxed);
        async move {
            if off {
                return Err(Error::Inner(api(503)));
            }
            attempt().await
        }
    }
}

#[tokio::test(start_paused = true)]
async fn custom_policies_and_nested_stacks_sit_among_the_built_in_ones() {
    let inner = Stack::new()
        .breaker(failing_breaker(5))
        .policy(KillSwitch(false.into()));
    let attempts = AtomicU32::new(0);
    let stack = Stack::new().retry(quick_retry(2)).policy(inner);
    let r = stack
        .call(|| async {
            match attempts.fetch_add(1, Ordering::Relaxed) {
                0 => Err(api(500)),
                n => Ok(n),
            }
        })
        .await;
    assert_eq!(r.unwrap(), 1, "retried through the nested stack");
    stack
        .innermost()
        .innermost()
        .0
        .store(true, Ordering::Relaxed);
    let r = stack.call(|| async { Ok::<u32, ApiError>(7) }).await;
    assert_eq!(r.unwrap_err().into_inner(), Some(api(503)));
    assert_eq!(
        attempts.load(Ordering::Relaxed),
        2,
        "switched off: never called"
    );
}

/// Each policy keeps only what it needs across an await: a retry + breaker call around a
/// small closure is well under half the size of a dynamic pipeline's.
#[test]
fn a_call_future_stays_small() {
    let stack = Stack::new()
        .retry(Retry::<u64, u16>::builder().build().unwrap())
        .breaker(Breaker::builder("size").build().unwrap());
    let op = || async { Ok::<u64, u16>(1) };
    let size = size_of_val(&stack.call(op));
    assert!(
        size <= 128,
        "a retry + breaker call's future is {size} bytes"
    );
    let with_timeout = stack.timeout(ms(100)).unwrap();
    let size = size_of_val(&with_timeout.call(op));
    assert!(size <= 192, "with a timeout, {size} bytes");
}

// The differential test: the same policies, in the same order, as a `Stack` and as a
// `Pipeline`, against the same scripted dependency.

/// One policy of a generated stack.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Retry { retries: u32, delay_ms: u64 },
    Breaker { threshold: u32 },
    Timeout { ms: u64 },
    Bulkhead,
    FallbackOnRejected,
    FallbackOnAny,
    RateLimit { burst: u32 },
    Throttle { seed: u64 },
    Limit { initial: u32 },
    Chaos { seed: u64 },
    Outlier { failures: u32 },
    Hedge { delay_ms: u64, max: u32 },
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (0..3u32, 0..3u64).prop_map(|(retries, d)| Kind::Retry {
            retries,
            delay_ms: d * 10
        }),
        (1..4u32).prop_map(|threshold| Kind::Breaker { threshold }),
        (1..4u64).prop_map(|n| Kind::Timeout { ms: n * 40 }),
        Just(Kind::Bulkhead),
        Just(Kind::FallbackOnRejected),
        Just(Kind::FallbackOnAny),
        (1..4u32).prop_map(|burst| Kind::RateLimit { burst }),
        (0..4u64).prop_map(|seed| Kind::Throttle { seed }),
        (1..3u32).prop_map(|initial| Kind::Limit { initial }),
        (0..4u64).prop_map(|seed| Kind::Chaos { seed }),
        (1..3u32).prop_map(|failures| Kind::Outlier { failures }),
        (0..4u64, 1..3u32).prop_map(|(d, max)| Kind::Hedge {
            delay_ms: d * 15,
            max
        }),
    ]
}

/// What a pipeline's throttle reads by default: the caller's errors and timeouts are
/// refusals by the dependency.
fn refused(result: &Result<u32, Error<u16>>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(Error::Inner(_)) | Err(Error::Timeout(_)) => Outcome::Failure,
        Err(_) => Outcome::Ignored,
    }
}

type Classify = fn(&Result<u32, Error<u16>>) -> Outcome;

/// What one attempt does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Ok,
    Fail,
    /// Succeeds after this long.
    Slow(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Ok),
        Just(Step::Fail),
        (1..5u64).prop_map(|n| Step::Slow(n * 25)),
    ]
}

/// A built policy, the same for both sides (each side gets its own instances).
enum Built {
    Retry(Retry<u32, u16>),
    Breaker(Breaker),
    Timeout(Timeout),
    Bulkhead(Bulkhead),
    Fallback(Fallback<u32, u16>),
    RateLimit(RateLimiter),
    Throttle(ClassifiedThrottle<Classify>),
    Limit(ConcurrencyLimit),
    Chaos(Chaos<u16>),
    Outlier(OutlierEndpoint<&'static str>),
    Hedge(Hedge),
    Pass,
}

fn build(kind: Option<Kind>) -> Built {
    match kind {
        None => Built::Pass,
        Some(Kind::Retry { retries, delay_ms }) => Built::Retry(
            Retry::builder()
                .max_retries(retries)
                .backoff(Backoff::fixed(ms(delay_ms)).build().unwrap())
                .build()
                .unwrap(),
        ),
        Some(Kind::Breaker { threshold }) => Built::Breaker(failing_breaker(threshold)),
        Some(Kind::Timeout { ms: n }) => Built::Timeout(timeout(n)),
        Some(Kind::Bulkhead) => {
            Built::Bulkhead(Bulkhead::builder("b").max_concurrent(1).build().unwrap())
        }
        Some(Kind::FallbackOnRejected) => Built::Fallback(Fallback::value(999).on_rejected()),
        Some(Kind::FallbackOnAny) => Built::Fallback(Fallback::value(998)),
        Some(Kind::RateLimit { burst }) => Built::RateLimit(
            RateLimiter::builder("r")
                .quota(1, ms(100))
                .burst(u64::from(burst))
                .clock(TokioClock::new())
                .build()
                .unwrap(),
        ),
        Some(Kind::Throttle { seed }) => Built::Throttle(
            Throttle::builder("t")
                .seed(seed)
                .clock(TokioClock::new())
                .build()
                .unwrap()
                .classified(refused as Classify),
        ),
        Some(Kind::Chaos { seed }) => Built::Chaos(
            Chaos::builder("c")
                .enabled(true)
                .seed(seed)
                .fault(0.3, || 503)
                .latency(0.3, Latency::Fixed(ms(20)))
                .build()
                .unwrap(),
        ),
        Some(Kind::Outlier { failures }) => {
            let detector = OutlierDetector::builder("o")
                .consecutive_failures(failures)
                .max_ejection_percent(50)
                .clock(TokioClock::new())
                .build()
                .unwrap();
            // Two endpoints known, so one may be ejected.
            detector.record(&"peer", Outcome::Success);
            Built::Outlier(detector.endpoint("this"))
        }
        Some(Kind::Hedge { delay_ms, max }) => Built::Hedge(
            Hedge::builder("h")
                .delay(ms(delay_ms))
                .max_hedged_attempts(max)
                .build()
                .unwrap(),
        ),
        Some(Kind::Limit { initial }) => Built::Limit(
            ConcurrencyLimit::builder("l")
                .min_limit(1)
                .initial_limit(initial)
                .build()
                .unwrap(),
        ),
    }
}

/// Lets one stack type hold any generated shape: each layer runs the built-in policy it
/// holds, through its `Policy` impl.
impl Policy<u32, u16> for Built {
    // An `async fn` implements the trait's method too.
    async fn run<F, Fut>(&self, attempt: F) -> Result<u32, Error<u16>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<u32, Error<u16>>>,
    {
        match self {
            Built::Retry(p) => p.run(attempt).await,
            Built::Breaker(p) => p.run(attempt).await,
            Built::Timeout(p) => p.run(attempt).await,
            Built::Bulkhead(p) => p.run(attempt).await,
            Built::Fallback(p) => p.run(attempt).await,
            Built::RateLimit(p) => p.run(attempt).await,
            Built::Throttle(p) => p.run(attempt).await,
            Built::Limit(p) => p.run(attempt).await,
            Built::Chaos(p) => p.run(attempt).await,
            Built::Outlier(p) => p.run(attempt).await,
            Built::Hedge(p) => p.run(attempt).await,
            Built::Pass => attempt().await,
        }
    }
}

/// What a side saw of one call.
#[derive(Debug, PartialEq)]
struct Seen {
    result: Result<u32, String>,
    attempts: u32,
    elapsed: Duration,
}

/// Runs `calls` through `run_call`, each call's attempts following the script in turn.
async fn run_script<'s, C, Fut>(
    script: &'s [Step],
    counter: &'s AtomicU32,
    calls: usize,
    run_call: C,
) -> Vec<Seen>
where
    C: Fn(&'s [Step], &'s AtomicU32) -> Fut,
    Fut: Future<Output = Result<u32, Error<u16>>> + 's,
{
    let mut seen = Vec::new();
    for _ in 0..calls {
        let before = counter.load(Ordering::Relaxed);
        let start = Instant::now();
        let result = run_call(script, counter).await;
        seen.push(Seen {
            result: result.map_err(|e| format!("{e:?}")),
            attempts: counter.load(Ordering::Relaxed) - before,
            elapsed: start.elapsed(),
        });
    }
    seen
}

async fn attempt(script: &[Step], counter: &AtomicU32) -> Result<u32, u16> {
    let n = counter.fetch_add(1, Ordering::Relaxed);
    match script[n as usize % script.len()] {
        Step::Ok => Ok(n),
        Step::Fail => Err(500),
        Step::Slow(d) => {
            tokio::time::sleep(ms(d)).await;
            Ok(n)
        }
    }
}

fn breaker_states(built: &[Built]) -> Vec<(State, u32)> {
    built
        .iter()
        .filter_map(|b| match b {
            Built::Breaker(b) => Some((b.state(), b.snapshot().consecutive_failures)),
            _ => None,
        })
        .collect()
}

/// A pipeline hedges only its innermost policy: a hedge with any policy after it is dropped
/// from the generated shape.
fn innermost_hedge_only(kinds: &[Option<Kind>; 4]) -> [Option<Kind>; 4] {
    let mut kinds = *kinds;
    for i in 0..kinds.len() {
        let inside = kinds[i + 1..].iter().any(Option::is_some);
        if matches!(kinds[i], Some(Kind::Hedge { .. })) && inside {
            kinds[i] = None;
        }
    }
    kinds
}

fn differential(kinds: &[Option<Kind>; 4], script: &[Step], calls: usize) {
    let kinds = &innermost_hedge_only(kinds);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let [a, b, c, d] = kinds.map(build);
        let stack_states = Stack::new().policy(a).policy(b).policy(c).policy(d);
        let counter = AtomicU32::new(0);
        let stack_seen = run_script(script, &counter, calls, |script, counter| {
            stack_states.call(move || attempt(script, counter))
        })
        .await;

        let built: Vec<Built> = kinds.iter().copied().map(build).collect();
        let mut builder = Pipeline::builder();
        for b in &built {
            builder = match b {
                Built::Retry(p) => builder.retry(p.clone()),
                Built::Breaker(p) => builder.breaker(p.clone()),
                Built::Timeout(p) => builder.timeout(p.duration()),
                Built::Bulkhead(p) => builder.bulkhead(p.clone()),
                Built::Fallback(p) => builder.fallback(p.clone()),
                Built::RateLimit(p) => builder.rate_limit(p.clone()),
                Built::Throttle(p) => builder.throttle(p.throttle().clone()),
                Built::Limit(p) => builder.concurrency_limit(p.clone()),
                Built::Chaos(p) => builder.chaos(p.clone()),
                Built::Outlier(p) => builder.outlier(p.clone()),
                Built::Hedge(p) => builder.hedge(p.clone()),
                Built::Pass => builder,
            };
        }
        let pipeline = builder.build().unwrap();
        let counter = AtomicU32::new(0);
        let pipeline_seen = run_script(script, &counter, calls, |script, counter| {
            pipeline.call(move || attempt(script, counter))
        })
        .await;

        assert_eq!(stack_seen, pipeline_seen, "stack vs pipeline");
        let stack_built = [
            stack_states.outer().outer().outer().inner(),
            stack_states.outer().outer().inner(),
            stack_states.outer().inner(),
            stack_states.innermost(),
        ];
        let stack_breakers: Vec<_> = stack_built
            .iter()
            .filter_map(|b| match b {
                Built::Breaker(b) => Some((b.state(), b.snapshot().consecutive_failures)),
                _ => None,
            })
            .collect();
        assert_eq!(stack_breakers, breaker_states(&built), "breaker states");
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_stack_and_a_pipeline_of_the_same_policies_agree(
        kinds in prop::array::uniform4(prop::option::weighted(0.8, kind())),
        script in prop::collection::vec(step(), 1..8),
        calls in 1..6usize,
    ) {
        differential(&kinds, &script, calls);
    }
}

#[test]
fn the_differential_test_sees_a_difference_in_order() {
    // The comparison must be able to fail: the same policies in another order differ.
    let retry_outside = [
        Some(Kind::Retry {
            retries: 2,
            delay_ms: 10,
        }),
        Some(Kind::Breaker { threshold: 3 }),
        None,
        None,
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let script = [Step::Fail];
    let seen = |kinds: [Option<Kind>; 4]| {
        rt.block_on(async {
            let [a, b, c, d] = kinds.map(build);
            let stack = Stack::new().policy(a).policy(b).policy(c).policy(d);
            let counter = AtomicU32::new(0);
            run_script(&script, &counter, 2, |script, counter| {
                stack.call(move || attempt(script, counter))
            })
            .await
        })
    };
    let outside = seen(retry_outside);
    let inside = seen([retry_outside[1], retry_outside[0], None, None]);
    assert_eq!(
        outside.iter().map(|s| s.attempts).collect::<Vec<_>>(),
        [3, 0]
    );
    assert_eq!(
        inside.iter().map(|s| s.attempts).collect::<Vec<_>>(),
        [3, 3]
    );
    differential(&retry_outside, &script, 2);
}
