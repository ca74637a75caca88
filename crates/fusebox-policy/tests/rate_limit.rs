//! The rate limiter: quota and burst, both modes, keys, validation, and its place in a stack.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fusebox_core::Error;
use fusebox_core::breaker::Breaker;
use fusebox_core::clock::ManualClock;
use fusebox_policy::TokioClock;
use fusebox_policy::policy::{RateLimitMode, RateLimiter};
use fusebox_policy::stack::Stack;
use proptest::prelude::*;
use tokio::time::Instant;

const MS: fn(u64) -> Duration = Duration::from_millis;

#[test]
fn reject_mode_admits_the_burst_then_says_when_the_next_permit_is_free() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::builder("api")
        .per_second(10)
        .burst(3)
        .clock(clock.clone())
        .build()
        .unwrap();
    for _ in 0..3 {
        limiter.try_acquire().unwrap();
    }
    let refused = limiter.try_acquire().unwrap_err();
    assert_eq!(refused.name, "api");
    assert_eq!(refused.retry_after, MS(100));
    clock.advance(MS(40));
    assert_eq!(limiter.try_acquire().unwrap_err().retry_after, MS(60));
    clock.advance(MS(60));
    limiter.try_acquire().unwrap();
    assert!(limiter.try_acquire().is_err());
}

#[tokio::test(start_paused = true)]
async fn wait_mode_sleeps_until_the_permit_is_free() {
    let limiter = RateLimiter::builder("api")
        .per_second(4)
        .burst(1)
        .max_wait(Duration::from_secs(1))
        .clock(TokioClock::new())
        .build()
        .unwrap();
    let start = Instant::now();
    for _ in 0..4 {
        limiter
            .call(|| async { Ok::<_, ()>(()) })
            .await
            .expect("a permit within the wait");
    }
    // The first permit is free at once; each of the next three a quarter second later.
    assert_eq!(start.elapsed(), MS(750));
}

#[tokio::test(start_paused = true)]
async fn wait_mode_refuses_at_once_when_the_permit_is_past_the_bound() {
    let limiter = RateLimiter::builder("api")
        .per_second(1)
        .max_wait(MS(300))
        .clock(TokioClock::new())
        .build()
        .unwrap();
    limiter.acquire().await.unwrap();
    let start = Instant::now();
    let refused = limiter.acquire().await.unwrap_err();
    assert_eq!(refused.retry_after, Duration::from_secs(1));
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "waiting would not have helped"
    );
}

#[tokio::test(start_paused = true)]
async fn waiters_that_lose_the_race_for_a_permit_keep_within_their_bound() {
    let limiter = RateLimiter::builder("api")
        .per_second(10)
        .burst(1)
        .max_wait(MS(150))
        .clock(TokioClock::new())
        .build()
        .unwrap();
    limiter.acquire().await.unwrap();
    let tasks: Vec<_> = (0..3)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                (limiter.acquire().await, start.elapsed())
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        let (result, waited) = task.await.unwrap();
        assert!(waited <= MS(150), "waited {waited:?}");
        admitted += u32::from(result.is_ok());
    }
    // Permits at 100 ms (and 200 ms, past every bound): one waiter gets one.
    assert_eq!(admitted, 1);
}

#[test]
fn keyed_limiter_keeps_a_quota_per_key_and_names_the_key() {
    let clock = ManualClock::new();
    let limiter = RateLimiter::builder("tenants")
        .per_second(2)
        .clock(clock.clone())
        .build_keyed::<String>()
        .unwrap();
    let (acme, initech) = ("acme".to_string(), "initech".to_string());
    limiter.try_acquire(&acme).unwrap();
    limiter.try_acquire(&acme).unwrap();
    let refused = limiter.try_acquire(&acme).unwrap_err();
    assert_eq!(refused.name, "tenants/acme");
    assert_eq!(refused.retry_after, MS(500));
    limiter.try_acquire(&initech).unwrap();
    assert_eq!(limiter.keys(), 2);
    clock.advance(Duration::from_secs(5));
    limiter.forget_idle();
    assert_eq!(limiter.keys(), 0);
}

#[tokio::test]
async fn keyed_call_refuses_with_rate_limited() {
    let limiter = RateLimiter::builder("hosts")
        .per_second(1)
        .build_keyed::<&str>()
        .unwrap();
    limiter
        .call(&"a", || async { Ok::<_, ()>(()) })
        .await
        .unwrap();
    let refused = limiter.call(&"a", || async { Ok::<_, ()>(()) }).await;
    assert!(matches!(refused, Err(Error::RateLimited(ref r)) if r.name == "hosts/a"));
}

#[test]
fn builder_names_the_field_it_refuses() {
    let field = |b: fusebox_policy::policy::RateLimiterBuilder| b.build().unwrap_err().field();
    assert_eq!(
        field(RateLimiter::builder("x").per_second(0)),
        Some("permits")
    );
    assert_eq!(
        field(RateLimiter::builder("x").per_second(1 << 40)),
        Some("permits")
    );
    assert_eq!(
        field(RateLimiter::builder("x").quota(5, Duration::ZERO)),
        Some("per")
    );
    assert_eq!(
        field(RateLimiter::builder("x").quota(u32::MAX.into(), Duration::from_nanos(1))),
        Some("per")
    );
    assert_eq!(field(RateLimiter::builder("x").burst(0)), Some("burst"));
    assert_eq!(
        field(RateLimiter::builder("x").burst(u64::MAX)),
        Some("burst")
    );
    assert_eq!(
        field(RateLimiter::builder("x").max_wait(Duration::MAX)),
        Some("max_wait")
    );
    let keyed = RateLimiter::builder("x").per_second(0).build_keyed::<u8>();
    assert_eq!(keyed.unwrap_err().field(), Some("permits"));
}

#[tokio::test]
async fn refusals_reach_the_listener_and_the_mode_is_reported() {
    let refused = Arc::new(AtomicU32::new(0));
    let seen = refused.clone();
    let limiter = RateLimiter::builder("api")
        .per_second(1)
        .on_limited(move |limited| {
            assert_eq!(limited.name, "api");
            seen.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    assert_eq!(limiter.mode(), RateLimitMode::Reject);
    limiter.call(|| async { Ok::<_, ()>(()) }).await.unwrap();
    for _ in 0..3 {
        assert!(limiter.call(|| async { Ok::<_, ()>(()) }).await.is_err());
    }
    assert_eq!(refused.load(Ordering::Relaxed), 3);
}

#[tokio::test]
async fn in_a_stack_the_limiter_outside_the_breaker_spares_it_the_refusals() {
    let breaker = Breaker::builder("db")
        .consecutive_failures(1)
        .build()
        .unwrap();
    let limiter = RateLimiter::builder("db-rate")
        .per_second(1)
        .build()
        .unwrap();
    let stack = Stack::new().policy(limiter).breaker(breaker.clone());
    assert_eq!(stack.call(|| async { Ok::<_, ()>(1) }).await.unwrap(), 1);
    let refused = stack.call(|| async { Ok::<_, ()>(2) }).await.unwrap_err();
    assert_eq!(refused.stopped_by(), Some("rate_limit"));
    assert!(refused.is_refusal());
    // The refused call never reached the breaker, so it is still closed and admits.
    assert!(breaker.try_acquire().is_ok());
}

proptest! {
    /// In any window of length `w`, the limiter admits at most `burst + w / interval` calls,
    /// whatever the arrival pattern.
    #[test]
    fn never_admits_more_than_burst_plus_the_quota_in_any_window(
        per_second in 1u64..50,
        burst in 1u64..8,
        gaps in proptest::collection::vec(0u64..200, 1..200),
    ) {
        let clock = ManualClock::new();
        let limiter = RateLimiter::builder("p")
            .per_second(per_second)
            .burst(burst)
            .clock(clock.clone())
            .build()
            .unwrap();
        let interval = limiter.interval().as_nanos();
        let mut admitted_at = Vec::new();
        let mut now = 0u128;
        for gap in gaps {
            clock.advance(MS(gap));
            now += MS(gap).as_nanos();
            if limiter.try_acquire().is_ok() {
                admitted_at.push(now);
            }
        }
        for (i, start) in admitted_at.iter().enumerate() {
            for (j, end) in admitted_at.iter().enumerate().skip(i) {
                let in_window = (j - i + 1) as u128;
                let allowed = u128::from(burst) + (end - start) / interval;
                prop_assert!(in_window <= allowed, "{in_window} calls in {} ns", end - start);
            }
        }
    }
}
