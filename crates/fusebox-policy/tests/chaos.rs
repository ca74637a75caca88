//! Chaos on paused time: the injected share matches the rate, a seed replays the same
//! faults, delays are what the distribution says, and a disabled policy touches nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fusebox_core::Error;
use fusebox_policy::policy::{Chaos, Injection, Latency, Retry};
use fusebox_policy::stack::Stack;
use tokio::time::Instant;

const SEED: u64 = 0x5EED;

fn faulty(rate: f64, seed: u64) -> Chaos<&'static str> {
    Chaos::builder("dependency")
        .enabled(true)
        .seed(seed)
        .fault(rate, || "injected")
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_rate_of_0_3_injects_within_3_percent_of_it_over_10_000_calls() {
    let chaos = faulty(0.3, SEED);
    let mut failed = 0u32;
    for _ in 0..10_000 {
        if chaos.call(|| async { Ok(()) }).await.is_err() {
            failed += 1;
        }
    }
    let share = f64::from(failed) / 10_000.0;
    assert!((share - 0.3).abs() <= 0.03, "injected {share}");
    assert_eq!(chaos.faults_injected(), u64::from(failed));
    assert_eq!(chaos.delays_injected(), 0);
}

#[test]
fn the_same_seed_replays_the_same_faults_and_delays() {
    let build = |seed| {
        Chaos::builder("dependency")
            .enabled(true)
            .seed(seed)
            .fault(0.3, || ())
            .latency(
                0.5,
                Latency::Exponential {
                    mean: Duration::from_millis(50),
                    cap: Duration::from_secs(1),
                },
            )
            .build()
            .unwrap()
    };
    let run = |chaos: Chaos<()>| (0..1_000).map(|_| chaos.decide()).collect::<Vec<_>>();
    let first = run(build(SEED));
    assert_eq!(first, run(build(SEED)));
    assert_ne!(first, run(build(SEED + 1)));
    assert!(first.iter().any(|i| i.fault && i.delay.is_some()));
}

#[test]
fn rate_zero_never_injects_and_rate_one_always_does() {
    let never = faulty(0.0, SEED);
    let always = faulty(1.0, SEED);
    for _ in 0..10_000 {
        assert!(!never.decide().fault);
        assert!(always.decide().fault);
    }
    assert_eq!(
        (never.faults_injected(), always.faults_injected()),
        (0, 10_000)
    );
}

#[tokio::test(start_paused = true)]
async fn injected_latency_is_measured_on_paused_time() {
    let fixed = Chaos::<()>::builder("slow")
        .enabled(true)
        .seed(SEED)
        .latency(1.0, Latency::Fixed(Duration::from_millis(250)))
        .build()
        .unwrap();
    let start = Instant::now();
    for _ in 0..4 {
        fixed.call(|| async { Ok(()) }).await.unwrap();
    }
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(fixed.delays_injected(), 4);

    let (min, max) = (Duration::from_millis(100), Duration::from_millis(200));
    let uniform = Chaos::<()>::builder("jittery")
        .enabled(true)
        .seed(SEED)
        .latency(0.5, Latency::Uniform { min, max })
        .build()
        .unwrap();
    let mut delayed = 0;
    for _ in 0..200 {
        let start = Instant::now();
        uniform.call(|| async { Ok(()) }).await.unwrap();
        let took = start.elapsed();
        if took > Duration::ZERO {
            assert!((min..=max).contains(&took), "{took:?}");
            delayed += 1;
        }
    }
    assert_eq!(uniform.delays_injected(), delayed);
    assert!((70..=130).contains(&delayed), "{delayed} of 200 delayed");
}

#[tokio::test(start_paused = true)]
async fn disabled_chaos_passes_calls_through_untouched_until_switched_on() {
    let chaos = Chaos::builder("dependency")
        .seed(SEED)
        .fault(1.0, || "injected")
        .latency(1.0, Latency::Fixed(Duration::from_secs(5)))
        .build()
        .unwrap();
    let ran = AtomicU32::new(0);
    let start = Instant::now();
    for i in 0..100 {
        let answer = chaos
            .call(|| async {
                ran.fetch_add(1, Ordering::Relaxed);
                Ok::<_, &str>(i)
            })
            .await;
        assert_eq!(answer, Ok(i));
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(ran.load(Ordering::Relaxed), 100);
    assert_eq!((chaos.faults_injected(), chaos.delays_injected()), (0, 0));
    assert_eq!(chaos.decide(), Injection::NONE);

    chaos.set_enabled(true);
    assert_eq!(chaos.call(|| async { Ok(1) }).await, Err("injected"));
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(
        ran.load(Ordering::Relaxed),
        100,
        "the faulted call never ran"
    );
}

#[tokio::test(start_paused = true)]
async fn in_a_stack_a_retry_outside_chaos_recovers_from_injected_faults() {
    let heard = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&heard);
    let chaos = Chaos::builder("dependency")
        .enabled(true)
        .seed(SEED)
        .fault(0.5, || "injected")
        .on_injection(move |injection| {
            assert!(injection.fault);
            seen.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    let stack = Stack::new()
        .retry(Retry::builder().max_retries(10).build().unwrap())
        .policy(chaos.clone());
    let mut answered = 0;
    for _ in 0..50 {
        if stack.call(|| async { Ok::<_, &str>(()) }).await.is_ok() {
            answered += 1;
        }
    }
    assert_eq!(answered, 50, "every call got through within 11 attempts");
    let injected = chaos.faults_injected();
    assert!(injected > 20, "{injected} faults");
    assert_eq!(u64::from(heard.load(Ordering::Relaxed)), injected);

    let bare = Stack::new().policy(faulty(1.0, SEED));
    let failed = bare.call(|| async { Ok::<(), &str>(()) }).await;
    assert!(matches!(failed, Err(Error::Inner("injected"))));
}
