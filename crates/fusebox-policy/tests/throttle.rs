//! Adaptive throttling: it sheds load against a dependency that accepts only 30 % of calls
//! and stops shedding once the dependency heals (paused time, seeded drops).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fusebox_core::clock::ManualClock;
use fusebox_core::{ErrIsFailure, Error};
use fusebox_policy::TokioClock;
use fusebox_policy::policy::{Throttle, drop_probability};
use fusebox_policy::stack::Stack;
use proptest::prelude::*;

/// A dependency that accepts the calls whose number is below `accept_percent` (mod 100).
async fn run_phase(
    stack: &Stack<
        fusebox_policy::stack::Then<
            fusebox_policy::stack::Bare,
            fusebox_policy::policy::ClassifiedThrottle<ErrIsFailure>,
        >,
    >,
    accept_percent: u32,
    calls: u32,
    reached: &AtomicU32,
) -> u32 {
    let mut dropped = 0;
    for i in 0..calls {
        let result = stack
            .call(|| async {
                reached.fetch_add(1, Ordering::Relaxed);
                if (i * 37) % 100 < accept_percent {
                    Ok(())
                } else {
                    Err("overloaded")
                }
            })
            .await;
        if matches!(result, Err(Error::Throttled(_))) {
            dropped += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    dropped
}

#[tokio::test(start_paused = true)]
async fn sheds_against_a_dependency_accepting_30_percent_and_recovers_when_it_heals() {
    let throttle = Throttle::builder("quotes")
        .window(Duration::from_secs(2), 10)
        .seed(17)
        .clock(TokioClock::new())
        .build()
        .unwrap();
    let stack = Stack::new().policy(throttle.clone().classified(ErrIsFailure));
    let reached = AtomicU32::new(0);

    // Healthy: nothing dropped.
    assert_eq!(run_phase(&stack, 100, 300, &reached).await, 0);

    // Sick, 30 % of what reaches it accepted. Dropped calls count as requests, so with k = 2
    // the throttle keeps dropping until 2 * accepts catches up with everything offered: it
    // sheds most of the load, and keeps sending a trickle to find out when it heals.
    reached.store(0, Ordering::Relaxed);
    let dropped = run_phase(&stack, 30, 1000, &reached).await;
    assert!((500..=900).contains(&dropped), "dropped {dropped} of 1000");
    assert_eq!(reached.load(Ordering::Relaxed), 1000 - dropped);
    assert!(
        reached.load(Ordering::Relaxed) >= 100,
        "still probing the dependency"
    );
    assert!(
        throttle.probability() > 0.25,
        "p = {}",
        throttle.probability()
    );

    // Healed: each window's accepted calls lower the next window's drop probability, so
    // within a few windows (10 s here, 5 windows) the throttle lets everything through.
    run_phase(&stack, 100, 1000, &reached).await;
    assert_eq!(throttle.probability(), 0.0);
    assert_eq!(run_phase(&stack, 100, 300, &reached).await, 0);
}

#[test]
fn the_same_seed_drops_the_same_calls() {
    let pattern = || {
        let throttle = Throttle::builder("x")
            .seed(5)
            .clock(ManualClock::new())
            .build()
            .unwrap();
        (0..200)
            .map(|i| {
                let admitted = throttle.admit().is_ok();
                if admitted {
                    throttle.record(i % 5 == 0);
                }
                admitted
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(pattern(), pattern());
}

#[test]
fn old_buckets_leave_the_window() {
    let clock = ManualClock::new();
    let throttle = Throttle::builder("x")
        .window(Duration::from_secs(1), 4)
        .seed(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    for _ in 0..20 {
        let _ = throttle.admit();
    }
    assert!(throttle.probability() > 0.9);
    clock.advance(Duration::from_secs(1));
    assert_eq!(throttle.probability(), 0.0);
}

#[test]
fn builder_names_the_field_it_refuses() {
    let field = |b: fusebox_policy::policy::ThrottleBuilder| b.build().unwrap_err().field();
    assert_eq!(field(Throttle::builder("x").k(-1.0)), Some("k"));
    assert_eq!(field(Throttle::builder("x").k(f64::INFINITY)), Some("k"));
    assert_eq!(
        field(Throttle::builder("x").window(Duration::from_secs(1), 0)),
        Some("buckets")
    );
    assert_eq!(
        field(Throttle::builder("x").window(Duration::from_nanos(3), 4)),
        Some("buckets")
    );
    assert_eq!(
        field(Throttle::builder("x").window(Duration::MAX, 1)),
        Some("window")
    );
}

proptest! {
    #[test]
    fn probability_stays_in_bounds_and_is_zero_while_accepts_keep_up(
        requests in 0u64..1_000_000,
        accepted_share in 0.0f64..=1.0,
        k in 0.01f64..100.0,
    ) {
        let accepts = (requests as f64 * accepted_share) as u64;
        let p = drop_probability(requests, accepts, k);
        prop_assert!((0.0..1.0).contains(&p), "p = {p}");
        if k * accepts as f64 >= requests as f64 {
            prop_assert_eq!(p, 0.0);
        }
    }
}
