//! Loom models of the lock-free parts: every interleaving of a few threads is explored.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p fusebox-core --lib --release loom`.

use super::window::{CountWindow, Mark};
use super::{Breaker, State};
use crate::clock::ManualClock;
use loom::sync::atomic::{AtomicU32, Ordering};
use loom::thread;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

fn half_open_breaker(successes: u32, trials: u32, concurrency: u32) -> Breaker {
    let clock = ManualClock::new();
    let b = Breaker::builder("loom")
        .consecutive_failures(1)
        .cooldown(Duration::from_millis(1))
        .half_open_trials(successes, trials)
        .half_open_concurrency(concurrency)
        .seed(1)
        .clock(clock.clone())
        .build()
        .expect("valid config");
    b.record_failure();
    clock.advance(Duration::from_millis(1));
    assert_eq!(b.state(), State::HalfOpen);
    b
}

#[test]
fn loom_half_open_never_exceeds_concurrency() {
    loom::model(|| {
        let b = half_open_breaker(2, 2, 1);
        let in_flight = Arc::new(AtomicU32::new(0));
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let (b, in_flight) = (b.clone(), in_flight.clone());
                thread::spawn(move || {
                    if let Ok(permit) = b.try_acquire() {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 1, "two trials in flight with a limit of one");
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        drop(permit); // cancelled: frees the slot
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(b.trials_in_flight(), 0);
        assert_eq!(b.state(), State::HalfOpen);
    });
}

#[test]
fn loom_trial_outcomes_close_exactly_once() {
    loom::model(|| {
        let transitions = Arc::new(AtomicUsize::new(0));
        let seen = transitions.clone();
        let clock = ManualClock::new();
        let b = Breaker::builder("loom")
            .consecutive_failures(1)
            .cooldown(Duration::from_millis(1))
            .half_open_trials(2, 2)
            .seed(1)
            .clock(clock.clone())
            .on_transition(move |_| {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
            .build()
            .expect("valid config");
        b.record_failure();
        clock.advance(Duration::from_millis(1));
        let first = b.try_acquire_owned().expect("trial");
        let second = b.try_acquire_owned().expect("trial");
        let h1 = thread::spawn(move || first.success());
        let h2 = thread::spawn(move || second.success());
        // Second and third transitions: OPEN -> HALF_OPEN happened above.
        h1.join().unwrap();
        h2.join().unwrap();
        assert_eq!(b.state(), State::Closed);
        assert_eq!(transitions.load(std::sync::atomic::Ordering::SeqCst), 3);
    });
}

#[test]
fn loom_concurrent_trips_report_one_transition() {
    loom::model(|| {
        let transitions = Arc::new(AtomicUsize::new(0));
        let seen = transitions.clone();
        let b = Breaker::builder("loom")
            .consecutive_failures(2)
            .seed(1)
            .clock(ManualClock::new())
            .on_transition(move |_| {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
            .build()
            .expect("valid config");
        let p1 = b.try_acquire_owned().expect("closed");
        let p2 = b.try_acquire_owned().expect("closed");
        let p3 = b.try_acquire_owned().expect("closed");
        let h1 = thread::spawn(move || {
            p1.failure();
            p2.failure();
        });
        let h2 = thread::spawn(move || p3.failure());
        h1.join().unwrap();
        h2.join().unwrap();
        assert_eq!(b.state(), State::Open);
        assert_eq!(transitions.load(std::sync::atomic::Ordering::SeqCst), 1);
    });
}

#[test]
fn loom_count_window_counts_match_slots() {
    loom::model(|| {
        let w = Arc::new(CountWindow::new(1));
        let handles: Vec<_> = [true, false]
            .into_iter()
            .map(|failure| {
                let w = w.clone();
                thread::spawn(move || {
                    w.record(Mark {
                        failure,
                        slow: false,
                    })
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(w.stats(), w.scanned());
        assert_eq!(w.stats().calls, 1);
    });
}
