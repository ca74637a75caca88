//! Invariants under real contention: the half-open trial limit holds, no recorded outcome is
//! lost, and every state change is reported exactly once, in order.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use fusebox::breaker::{Breaker, State};
use fusebox::clock::ManualClock;

const THREADS: usize = 4;

fn run_threads(f: impl Fn(usize) + Send + Sync + 'static) {
    let f = Arc::new(f);
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let f = f.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn half_open_never_admits_more_trials_than_configured() {
    let clock = ManualClock::new();
    let breaker = Breaker::builder("trials")
        .consecutive_failures(1)
        .cooldown(Duration::from_millis(1))
        .half_open_trials(3, 3)
        .half_open_concurrency(2)
        .clock(clock.clone())
        .build()
        .unwrap();
    breaker.record_failure();
    clock.advance(Duration::from_millis(1));
    assert_eq!(breaker.state(), State::HalfOpen);

    let in_flight = Arc::new(AtomicU32::new(0));
    let max_seen = Arc::new(AtomicU32::new(0));
    let admitted = Arc::new(AtomicU64::new(0));
    let b = breaker.clone();
    let (inf, max, adm) = (in_flight.clone(), max_seen.clone(), admitted.clone());
    run_threads(move |_| {
        for i in 0..20_000u32 {
            if let Ok(permit) = b.try_acquire() {
                assert!(permit.is_trial());
                let now = inf.fetch_add(1, Ordering::SeqCst) + 1;
                max.fetch_max(now, Ordering::SeqCst);
                adm.fetch_add(1, Ordering::Relaxed);
                std::hint::spin_loop();
                inf.fetch_sub(1, Ordering::SeqCst);
                // Never decide: cancelled or ignored trials keep the breaker half-open.
                if i % 2 == 0 {
                    drop(permit);
                } else {
                    permit.ignore();
                }
            }
        }
    });
    assert!(
        max_seen.load(Ordering::SeqCst) <= 2,
        "more than 2 trials in flight"
    );
    assert!(admitted.load(Ordering::Relaxed) > 0);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(
        breaker.snapshot().trials_in_flight,
        0,
        "every slot was released"
    );
}

#[test]
fn decided_trials_never_exceed_the_close_rule() {
    // 3 of 5 with all 5 allowed at once: whatever the interleaving, at most 5 trials are
    // admitted per half-open episode and the episode ends closed or open.
    for round in 0..200 {
        let clock = ManualClock::new();
        let breaker = Breaker::builder("episode")
            .consecutive_failures(1)
            .cooldown(Duration::from_millis(1))
            .half_open_trials(3, 5)
            .clock(clock.clone())
            .build()
            .unwrap();
        breaker.record_failure();
        clock.advance(Duration::from_millis(1));
        let admitted = Arc::new(AtomicU32::new(0));
        let b = breaker.clone();
        let adm = admitted.clone();
        run_threads(move |t| {
            for i in 0..4 {
                if let Ok(p) = b.try_acquire() {
                    if p.is_trial() {
                        adm.fetch_add(1, Ordering::SeqCst);
                        if (t + i + round) % 3 == 0 {
                            p.failure()
                        } else {
                            p.success()
                        }
                    } else {
                        p.success();
                    }
                }
            }
        });
        assert!(admitted.load(Ordering::SeqCst) <= 5, "round {round}");
    }
}

#[test]
fn no_recorded_outcome_is_lost() {
    // Time-based window (striped) and count-based window, never tripping.
    let time = Breaker::builder("time")
        .time_window(Duration::from_secs(60), 10)
        .failure_rate(1.0)
        .min_calls(u32::MAX)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let count = Breaker::builder("count")
        .count_window(100_000)
        .failure_rate(1.0)
        .min_calls(100_000)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let (t, c) = (time.clone(), count.clone());
    run_threads(move |i| {
        for n in 0..25_000usize {
            let fail = (n + i) % 4 == 0;
            for b in [&t, &c] {
                let p = b.try_acquire().unwrap();
                if fail { p.failure() } else { p.success() }
            }
        }
    });
    for b in [&time, &count] {
        let s = b.snapshot();
        assert_eq!(s.state, State::Closed);
        assert_eq!(s.window.calls, 100_000, "{}", b.name());
        assert_eq!(s.window.failures, 25_000, "{}", b.name());
    }
}

#[test]
fn every_state_change_is_reported_exactly_once_in_order() {
    let clock = ManualClock::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(AtomicU64::new(0));
    let (sink, counter) = (events.clone(), seen.clone());
    let breaker = Breaker::builder("churn")
        .failures_in_last(2, 4)
        .cooldown(Duration::from_micros(50))
        .half_open_trials(2, 3)
        .clock(clock.clone())
        .on_transition(move |t| {
            sink.lock().unwrap().push((t.generation, t.from, t.to));
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    let b = breaker.clone();
    let (clock2, seen2) = (clock.clone(), seen.clone());
    run_threads(move |i| {
        // Work until the breaker has changed state a few hundred times (bounded).
        for n in 0..5_000_000usize {
            if seen2.load(Ordering::Relaxed) >= 400 {
                break;
            }
            if n % 64 == 0 {
                clock2.advance(Duration::from_micros(10));
            }
            if let Ok(p) = b.try_acquire() {
                if (n * 7 + i) % 5 < 2 {
                    p.failure()
                } else {
                    p.success()
                }
            }
        }
    });

    let mut events = events.lock().unwrap().clone();
    assert!(
        events.len() >= 400,
        "the scenario should churn, saw {}",
        events.len()
    );
    events.sort_by_key(|e| e.0);
    let generations: Vec<u64> = events.iter().map(|e| e.0).collect();
    let expected: Vec<u64> = (1..=events.len() as u64).collect();
    assert_eq!(
        generations, expected,
        "no duplicate and no missing transition"
    );
    let mut state = State::Closed;
    for (generation, from, to) in &events {
        assert_eq!(
            *from, state,
            "transition {generation} starts where the last ended"
        );
        state = *to;
    }
    assert_eq!(breaker.snapshot().generation, events.len() as u64);
}
