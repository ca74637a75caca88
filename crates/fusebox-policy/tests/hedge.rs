//! Hedged requests through a stack, on paused tokio time: when hedges fire and who wins,
//! how many attempts start, what the budget allows, how failures end a call, that losers
//! are dropped, and that the percentile delay follows the latencies it sees.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox_core::Error;
use fusebox_core::budget::{BudgetConfig, RetryBudget};
use fusebox_policy::TokioClock;
use fusebox_policy::policy::{Hedge, HedgeEvent};
use fusebox_policy::stack::Stack;
use tokio::time::{Instant, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Counts the attempts dropped before they finished.
struct DropGuard<'a> {
    dropped: &'a AtomicU32,
    finished: bool,
}

impl Drop for DropGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_first_attempt_loses_to_the_hedge() {
    let hedge = Hedge::builder("search").delay(ms(50)).build().unwrap();
    let stack = Stack::new().hedge(hedge.clone());
    let attempts = AtomicU32::new(0);
    let started = Instant::now();
    let answer = stack
        .call(|| async {
            let n = attempts.fetch_add(1, Ordering::Relaxed);
            sleep(if n == 0 { ms(2_000) } else { ms(10) }).await;
            Ok::<_, ()>(n)
        })
        .await
        .unwrap();
    assert_eq!(answer, 1, "the hedge answered");
    assert_eq!(
        started.elapsed(),
        ms(60),
        "delay + the hedge's latency, not 2 s"
    );
    let stats = hedge.stats();
    assert_eq!(
        (stats.hedges_sent, stats.hedge_wins, stats.losers_cancelled),
        (1, 1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_fast_first_attempt_sends_no_hedge() {
    let hedge = Hedge::builder("search").delay(ms(50)).build().unwrap();
    let stack = Stack::new().hedge(hedge.clone());
    let attempts = AtomicU32::new(0);
    for _ in 0..10 {
        let started = Instant::now();
        stack
            .call(|| async {
                attempts.fetch_add(1, Ordering::Relaxed);
                sleep(ms(49)).await;
                Ok::<_, ()>(())
            })
            .await
            .unwrap();
        assert_eq!(started.elapsed(), ms(49));
    }
    assert_eq!(attempts.load(Ordering::Relaxed), 10);
    assert_eq!(hedge.stats().hedges_sent, 0);
}

#[tokio::test(start_paused = true)]
async fn hedges_start_one_delay_apart_up_to_the_maximum() {
    let hedge = Hedge::builder("search")
        .delay(ms(100))
        .max_hedged_attempts(3)
        .build()
        .unwrap();
    let stack = Stack::new().hedge(hedge.clone());
    let starts = Mutex::new(Vec::new());
    let origin = Instant::now();
    let answer = stack
        .call(|| async {
            let n = {
                let mut starts = starts.lock().unwrap();
                starts.push(origin.elapsed());
                starts.len()
            };
            // Every attempt is slow; each later one a little less, so the last one wins.
            sleep(ms(1_000 - 150 * (n as u64 - 1))).await;
            Ok::<_, ()>(n)
        })
        .await
        .unwrap();
    let starts = starts.into_inner().unwrap();
    assert_eq!(starts, [ms(0), ms(100), ms(200), ms(300)], "1 + 3 attempts");
    // The fourth attempt answers at 300 + 550 ms, before the first would (1 s).
    assert_eq!(origin.elapsed(), ms(850));
    assert_eq!(answer, 4);
    let stats = hedge.stats();
    assert_eq!(
        (stats.hedges_sent, stats.hedge_wins, stats.losers_cancelled),
        (3, 1, 3)
    );
}

#[tokio::test(start_paused = true)]
async fn zero_delay_races_every_attempt_from_the_start() {
    let hedge = Hedge::builder("search")
        .delay(Duration::ZERO)
        .max_hedged_attempts(2)
        .build()
        .unwrap();
    let stack = Stack::new().hedge(hedge.clone());
    let attempts = AtomicU32::new(0);
    let origin = Instant::now();
    let answer = stack
        .call(|| async {
            let n = attempts.fetch_add(1, Ordering::Relaxed);
            sleep(ms([300, 100, 200][n as usize])).await;
            Ok::<_, ()>(n)
        })
        .await
        .unwrap();
    assert_eq!((answer, origin.elapsed()), (1, ms(100)));
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_budget_sends_no_hedge() {
    // No floor and a ratio of 0.5: two calls earn one hedge.
    let budget = RetryBudget::new(
        BudgetConfig::builder()
            .ratio(0.5)
            .min_retries_per_second(0.0)
            .build()
            .unwrap(),
    );
    let refused = Arc::new(AtomicU32::new(0));
    let heard = refused.clone();
    let hedge = Hedge::builder("search")
        .delay(ms(10))
        .budget(budget)
        .on_event(move |_, event| {
            if event == HedgeEvent::RefusedByBudget {
                heard.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap();
    let stack = Stack::new().hedge(hedge.clone());
    let attempts = AtomicU32::new(0);
    let mut elapsed = Vec::new();
    for _ in 0..4 {
        let origin = Instant::now();
        stack
            .call(|| async {
                attempts.fetch_add(1, Ordering::Relaxed);
                sleep(ms(100)).await;
                Ok::<_, ()>(())
            })
            .await
            .unwrap();
        elapsed.push(origin.elapsed());
    }
    // Call 1 deposits 0.5: no hedge. Call 2 brings it to 1: hedged. Then the same again.
    assert_eq!(attempts.load(Ordering::Relaxed), 4 + 2);
    let stats = hedge.stats();
    assert_eq!((stats.hedges_sent, stats.refused_by_budget), (2, 2));
    assert_eq!(refused.load(Ordering::Relaxed), 2);
    // A hedge started at 10 ms answers at 110 ms: the first attempt wins every call.
    assert!(elapsed.iter().all(|e| *e == ms(100)), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn a_failed_attempt_waits_for_the_others() {
    let hedge = Hedge::builder("search").delay(ms(10)).build().unwrap();
    let stack = Stack::new().hedge(hedge);
    let attempts = AtomicU32::new(0);
    let origin = Instant::now();
    // The first attempt fails at 20 ms, while the hedge is in flight: its success counts.
    let answer = stack
        .call(|| async {
            if attempts.fetch_add(1, Ordering::Relaxed) == 0 {
                sleep(ms(20)).await;
                Err("reset")
            } else {
                sleep(ms(30)).await;
                Ok("hedge")
            }
        })
        .await;
    assert_eq!(answer.unwrap(), "hedge");
    assert_eq!(origin.elapsed(), ms(40));
}

#[tokio::test(start_paused = true)]
async fn when_every_attempt_fails_the_last_failure_is_returned() {
    let hedge = Hedge::builder("search")
        .delay(ms(10))
        .max_hedged_attempts(2)
        .build()
        .unwrap();
    let stack = Stack::new().hedge(hedge);
    let attempts = AtomicU32::new(0);
    let origin = Instant::now();
    let result = stack
        .call(|| async {
            let n = attempts.fetch_add(1, Ordering::Relaxed);
            // Attempt 0 fails at 100 ms, attempt 1 at 60 ms, attempt 2 at 120 ms.
            sleep(ms([100, 50, 100][n as usize])).await;
            Err::<(), _>(n)
        })
        .await;
    assert!(matches!(result, Err(Error::Inner(2))), "{result:?}");
    assert_eq!(origin.elapsed(), ms(120));
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
}

#[tokio::test(start_paused = true)]
async fn an_early_failure_with_nothing_in_flight_ends_the_call() {
    let hedge = Hedge::builder("search").delay(ms(50)).build().unwrap();
    let stack = Stack::new().hedge(hedge.clone());
    let attempts = AtomicU32::new(0);
    let origin = Instant::now();
    let result = stack
        .call(|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            sleep(ms(5)).await;
            Err::<(), _>("refused")
        })
        .await;
    assert!(matches!(result, Err(Error::Inner("refused"))));
    assert_eq!(origin.elapsed(), ms(5));
    assert_eq!(
        attempts.load(Ordering::Relaxed),
        1,
        "hedging is not retrying"
    );
    assert_eq!(hedge.stats().hedges_sent, 0);
}

#[tokio::test(start_paused = true)]
async fn losers_are_dropped_as_soon_as_one_attempt_succeeds() {
    let hedge = Hedge::builder("search")
        .delay(ms(10))
        .max_hedged_attempts(3)
        .build()
        .unwrap();
    let stack = Stack::new().hedge(hedge.clone());
    let attempts = AtomicU32::new(0);
    let dropped = AtomicU32::new(0);
    let answer = stack
        .call(|| async {
            let n = attempts.fetch_add(1, Ordering::Relaxed);
            let mut guard = DropGuard {
                dropped: &dropped,
                finished: false,
            };
            // Attempt 2 (started at 20 ms) answers at 25 ms; 0, 1 and 3 would take longer.
            sleep(ms(if n == 2 { 5 } else { 1_000 })).await;
            guard.finished = true;
            Ok::<_, ()>(n)
        })
        .await
        .unwrap();
    assert_eq!(answer, 2);
    // Attempt 3 was never started (due at 30 ms); attempts 0 and 1 were dropped unfinished
    // before the call returned.
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
    assert_eq!(dropped.load(Ordering::Relaxed), 2);
    let stats = hedge.stats();
    assert_eq!((stats.hedge_wins, stats.losers_cancelled), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn the_percentile_delay_follows_observed_latencies() {
    let hedge = Hedge::builder("search")
        .percentile_delay(0.9)
        .min_samples(10)
        .fallback_delay(ms(500))
        .latency_window(Duration::from_secs(10))
        .clock(TokioClock::new())
        .build()
        .unwrap();
    let stack = Stack::new().hedge(hedge.clone());
    assert_eq!(
        hedge.delay(),
        ms(500),
        "the fallback until 10 latencies are known"
    );

    // Latencies of 10, 20, ... 100 ms: the p90 is 90 ms.
    for i in 1..=10 {
        stack
            .call(|| async move {
                sleep(ms(10 * i)).await;
                Ok::<_, ()>(())
            })
            .await
            .unwrap();
    }
    sleep(Duration::from_secs(1)).await; // past the delay's refresh period
    let p90 = hedge.delay();
    assert!(p90 >= ms(90) && p90 <= ms(90) * 17 / 16, "{p90:?}");
    assert_eq!(hedge.stats().hedges_sent, 0);

    // The dependency slows down to 300 ms; a window later the delay has followed.
    for _ in 0..40 {
        stack
            .call(|| async {
                sleep(ms(300)).await;
                Ok::<_, ()>(())
            })
            .await
            .unwrap();
    }
    sleep(Duration::from_secs(1)).await;
    let slow = hedge.delay();
    assert!(slow >= ms(300) && slow <= ms(300) * 17 / 16, "{slow:?}");
}

#[tokio::test(start_paused = true)]
async fn a_hedge_inside_a_timeout_counts_as_one_call() {
    // The timeout outside bounds the whole hedged call, hedges included.
    let hedge = Hedge::builder("search").delay(ms(10)).build().unwrap();
    let stack = Stack::new().timeout(ms(50)).unwrap().hedge(hedge.clone());
    let result = stack
        .call(|| async {
            sleep(ms(1_000)).await;
            Ok::<_, ()>(())
        })
        .await;
    assert!(matches!(result, Err(Error::Timeout(_))), "{result:?}");
    assert_eq!(hedge.stats().hedges_sent, 1);
}

#[test]
fn the_builder_names_the_bad_field() {
    let field = |b: fusebox_policy::policy::HedgeBuilder| b.build().unwrap_err().field();
    assert_eq!(
        field(Hedge::builder("a").max_hedged_attempts(0)),
        Some("max_hedged_attempts")
    );
    assert_eq!(
        field(Hedge::builder("a").max_hedged_attempts(11)),
        Some("max_hedged_attempts")
    );
    assert!(Hedge::builder("a").max_hedged_attempts(10).build().is_ok());
    for bad in [0.0, 1.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(
            field(Hedge::builder("a").percentile_delay(bad)),
            Some("percentile")
        );
    }
    assert_eq!(
        field(Hedge::builder("a").min_samples(0)),
        Some("min_samples")
    );
    assert_eq!(
        field(Hedge::builder("a").latency_window(Duration::ZERO)),
        Some("latency_window")
    );
    // A fixed delay replaces the percentile, whose settings are then not checked.
    assert!(
        Hedge::builder("a")
            .percentile_delay(f64::NAN)
            .delay(ms(5))
            .build()
            .is_ok()
    );
}
