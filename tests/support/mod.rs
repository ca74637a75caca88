//! Composition scenarios shared by the `Pipeline` and `Stack` tests: each test file builds
//! its own kind of stack from the same policies and hands it to the scenario, which drives
//! it and checks the documented behaviour.

// Each test file uses the scenarios that apply to it.
#![allow(dead_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fusebox::Error;
use fusebox::backoff::Backoff;
use fusebox::breaker::{Breaker, State};
use fusebox::clock::ManualClock;
use fusebox::pipeline::Pipeline;
use fusebox::policy::{Bulkhead, Retry, RetryAfterHint};
use fusebox::stack::{Policy, Stack};
use tokio::time::Instant;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub retry_after: Option<Duration>,
}

impl RetryAfterHint for ApiError {
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

pub fn api(status: u16) -> ApiError {
    ApiError {
        status,
        retry_after: None,
    }
}

/// A breaker that opens after `threshold` consecutive failures and stays open (its clock
/// never moves).
pub fn failing_breaker(threshold: u32) -> Breaker {
    Breaker::builder("downstream")
        .consecutive_failures(threshold)
        .cooldown(Duration::from_secs(60))
        .clock(ManualClock::new())
        .build()
        .unwrap()
}

/// Up to `max` retries, 10 ms apart.
pub fn quick_retry<T: 'static>(max: u32) -> Retry<T, ApiError> {
    Retry::builder()
        .max_retries(max)
        .backoff(Backoff::fixed(ms(10)).build().unwrap())
        .build()
        .unwrap()
}

/// Either kind of stack, called the same way.
pub trait Guarded<T, E> {
    fn guard<F, Fut>(&self, op: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>;
}

impl<T, E> Guarded<T, E> for Pipeline<T, E> {
    fn guard<F, Fut>(&self, op: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call(op)
    }
}

impl<T, E, P: Policy<T, E>> Guarded<T, E> for Stack<P> {
    fn guard<F, Fut>(&self, op: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call(op)
    }
}

/// `guarded` is `quick_retry(2)` outside `breaker`, a `failing_breaker(3)`.
pub async fn retry_outside_the_breaker_stops_at_the_first_rejection(
    guarded: &impl Guarded<(), ApiError>,
    breaker: &Breaker,
) {
    let attempts = AtomicU32::new(0);
    let dead = || async {
        attempts.fetch_add(1, Ordering::Relaxed);
        Err::<(), _>(api(500))
    };
    // Call 1: three attempts, the third trips the breaker; the caller's error comes back.
    let r = guarded.guard(dead).await;
    assert_eq!(r.unwrap_err().into_inner(), Some(api(500)));
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
    assert_eq!(breaker.state(), State::Open);
    // Call 2: rejected at once, not retried, the dependency untouched.
    let r = guarded.guard(dead).await;
    assert!(r.unwrap_err().is_rejected());
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
}

/// `guarded` is `breaker`, a `failing_breaker(3)`, outside `quick_retry(2)`.
pub async fn retry_inside_the_breaker_counts_one_outcome_per_call(
    guarded: &impl Guarded<(), ApiError>,
    breaker: &Breaker,
) {
    let attempts = AtomicU32::new(0);
    let dead = || async {
        attempts.fetch_add(1, Ordering::Relaxed);
        Err::<(), _>(api(500))
    };
    for call in 1..=3 {
        let _ = guarded.guard(dead).await;
        assert_eq!(attempts.load(Ordering::Relaxed), call * 3);
        assert_eq!(breaker.snapshot().consecutive_failures, call);
    }
    assert_eq!(breaker.state(), State::Open, "3 calls = 3 breaker failures");
    assert!(guarded.guard(dead).await.unwrap_err().is_rejected());
    assert_eq!(attempts.load(Ordering::Relaxed), 9);
}

/// `per_attempt` is `quick_retry(2)` outside a 100 ms timeout; `overall` is a 250 ms timeout
/// outside `quick_retry(10)` outside a 100 ms timeout.
pub async fn timeout_per_attempt_inside_retry_and_overall_outside(
    per_attempt: &impl Guarded<(), ApiError>,
    overall: &impl Guarded<(), ApiError>,
) {
    let slow = || async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok::<(), ApiError>(())
    };
    // Inside: each attempt gets 100 ms, and timed-out attempts are retried.
    let start = Instant::now();
    let r = per_attempt.guard(slow).await;
    assert!(matches!(r, Err(Error::Timeout(t)) if t.after == ms(100)));
    assert_eq!(start.elapsed(), ms(3 * 100 + 2 * 10));
    // Outside: 250 ms for everything.
    let start = Instant::now();
    let r = overall.guard(slow).await;
    assert_eq!(r.unwrap_err().stopped_by(), Some("timeout"));
    assert_eq!(start.elapsed(), ms(250));
}

/// The breaker (one half-open trial, a manual clock) and the bulkhead (one slot) of
/// [`dropping_a_waiting_call_releases_permits_and_slots_and_stops_retrying`].
pub fn breaker_and_bulkhead_to_drop() -> (Breaker, Bulkhead) {
    let breaker = Breaker::builder("drop")
        .half_open_trials(1, 1)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let bulkhead = Bulkhead::builder("drop").max_concurrent(1).build().unwrap();
    (breaker, bulkhead)
}

/// `guarded` is `quick_retry(5)` outside `breaker` outside `bulkhead`, both from
/// [`breaker_and_bulkhead_to_drop`].
pub async fn dropping_a_waiting_call_releases_permits_and_slots_and_stops_retrying(
    guarded: &impl Guarded<(), ApiError>,
    breaker: &Breaker,
    bulkhead: &Bulkhead,
) {
    let attempts = AtomicU32::new(0);
    let call = guarded.guard(|| async {
        if attempts.fetch_add(1, Ordering::Relaxed) == 0 {
            return Err(api(500));
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok(())
    });
    // The first attempt fails, the second waits on the dependency holding both.
    assert!(tokio::time::timeout(ms(50), call).await.is_err());
    assert_eq!(attempts.load(Ordering::Relaxed), 2);
    assert_eq!(bulkhead.available(), 1, "the slot is free again");
    assert_eq!(
        breaker.snapshot().consecutive_failures,
        1,
        "the cancelled attempt counts nothing"
    );
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        attempts.load(Ordering::Relaxed),
        2,
        "no retry after the drop"
    );
}

/// A bulkhead of 4 slots queueing 64.
pub fn roomy_bulkhead(name: &'static str) -> Bulkhead {
    Bulkhead::builder(name)
        .max_concurrent(4)
        .max_queued(64)
        .build()
        .unwrap()
}

/// `new_task` spawns a task that calls a clone of a stack (of `quick_retry(1)`, a breaker and
/// a bulkhead of 4 slots queueing 64) with an operation returning the value it is given.
pub async fn shared_across_tasks(
    new_task: impl Fn(u32) -> tokio::task::JoinHandle<Result<u32, Error<ApiError>>>,
) {
    let tasks: Vec<_> = (0..32u32).map(new_task).collect();
    let mut sum = 0;
    for t in tasks {
        sum += t.await.unwrap().unwrap();
    }
    assert_eq!(sum, (0..32).sum::<u32>());
}
