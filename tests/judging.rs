//! When the trip rules are judged: after every outcome that could make one fire, a success
//! included. A rate rule fires on the call that brings its window to the minimum, whatever
//! that call's outcome, and on the call that finds older successes gone from a time window.
//! The concurrent breaker and the sans-IO machine agree on each case.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox::Outcome;
use fusebox::breaker::{
    Breaker, BreakerBuilder, BreakerListener, Machine, OutcomeEvent, State, TransitionReason,
    TripReason,
};
use fusebox::clock::ManualClock;

const MS: u64 = 1_000_000;

/// Runs `calls` (outcome, duration in ms) through a breaker on a manual clock and through a
/// machine, and returns both states after each call.
fn run(builder: impl Fn() -> BreakerBuilder, calls: &[(Outcome, u64)]) -> Vec<(State, State)> {
    let clock = ManualClock::new();
    let breaker = builder().clock(clock.clone()).build().expect("valid");
    let mut machine = Machine::new("m", builder().build_config().expect("valid"));
    let mut now = 0;
    let mut out = Vec::new();
    for &(outcome, ms) in calls {
        let permit = breaker.try_acquire();
        let ticket = machine.acquire(now);
        clock.advance(Duration::from_millis(ms));
        now += ms * MS;
        if let Ok(permit) = permit {
            permit.record(outcome);
        }
        if let Ok(ticket) = ticket {
            machine.record(ticket, outcome, now);
        }
        out.push((breaker.state(), machine.state(now)));
    }
    out
}

fn states(calls: &[(State, State)]) -> Vec<State> {
    calls
        .iter()
        .map(|&(breaker, machine)| {
            assert_eq!(breaker, machine, "the breaker and the machine disagree");
            breaker
        })
        .collect()
}

use Outcome::{Failure as F, Success as S};
use State::{Closed as C, Open as O};

#[test]
fn a_success_that_reaches_the_minimum_at_the_threshold_trips() {
    let b = || {
        Breaker::builder("rate")
            .count_window(4)
            .failure_rate(0.5)
            .min_calls(4)
    };
    let after = run(b, &[(F, 1), (F, 1), (S, 1), (S, 1)]);
    assert_eq!(states(&after), [C, C, C, O]);
}

#[test]
fn a_success_below_the_threshold_does_not_trip() {
    let b = || {
        Breaker::builder("rate")
            .count_window(4)
            .failure_rate(0.5)
            .min_calls(4)
    };
    let after = run(b, &[(F, 1), (S, 1), (S, 1), (S, 1), (S, 1)]);
    assert_eq!(states(&after), [C, C, C, C, C]);
}

#[test]
fn a_fast_success_that_reaches_the_minimum_at_the_slow_rate_trips() {
    let b = || {
        Breaker::builder("slow")
            .count_window(4)
            .min_calls(4)
            .slow_calls(Duration::from_millis(100), 0.5)
    };
    let after = run(b, &[(S, 150), (S, 150), (S, 5), (S, 5)]);
    assert_eq!(states(&after), [C, C, C, O]);
}

#[test]
fn the_trip_names_the_rate_and_the_calls_it_was_judged_on() {
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let sink = reasons.clone();
    let b = Breaker::builder("reason")
        .count_window(4)
        .failure_rate(0.5)
        .min_calls(4)
        .clock(ManualClock::new())
        .on_transition(move |t| sink.lock().unwrap().push(t.reason.clone()))
        .build()
        .expect("valid");
    b.record_failure();
    b.record_failure();
    b.record_success();
    b.record_success();
    let reasons = reasons.lock().unwrap();
    assert!(
        matches!(
            reasons.as_slice(),
            [TransitionReason::Tripped(TripReason::FailureRate {
                calls: 4,
                ..
            })]
        ),
        "{reasons:?}"
    );
}

#[test]
fn a_success_after_older_successes_left_the_time_window_trips() {
    // 10 s in 10 buckets. Four successes at 0 s, two failures at 5 s (2 of 6: 33 %), then a
    // success at 11.5 s, when the first bucket has left the window: 2 of 3, 67 %.
    let b = || {
        Breaker::builder("time")
            .time_window(Duration::from_secs(10), 10)
            .failure_rate(0.5)
            .min_calls(3)
    };
    let calls = [
        (S, 0),
        (S, 0),
        (S, 0),
        (S, 0),
        (F, 5_000),
        (F, 0),
        (S, 6_500),
    ];
    let after = run(b, &calls);
    assert_eq!(states(&after), [C, C, C, C, C, C, O]);
}

#[test]
fn consecutive_rules_still_ignore_successes() {
    let b = || Breaker::builder("run").consecutive_failures(2);
    let after = run(b, &[(F, 1), (S, 1), (F, 1), (S, 1)]);
    assert_eq!(states(&after), [C, C, C, C]);
}

/// One judged trial, three allowed in flight at once: the trials race.
fn racing(clock: &ManualClock) -> Breaker {
    Breaker::builder("race")
        .half_open_trials(1, 1)
        .half_open_concurrency(3)
        .cooldown(Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .expect("valid")
}

#[test]
fn racing_trials_close_on_the_first_success() {
    // "Three trials in flight, close on the first success": the first result decides and
    // the trials still in flight are not counted.
    let clock = ManualClock::new();
    let b = racing(&clock);
    let mut m = Machine::new("race", b.config().clone());
    b.trip("drill");
    m.trip("drill", 0);
    clock.advance(Duration::from_secs(1));
    let now = 1_000 * MS;
    let trials: Vec<_> = (0..3).map(|_| b.try_acquire().expect("a trial")).collect();
    let tickets: Vec<_> = (0..3).map(|_| m.acquire(now).expect("a trial")).collect();
    assert!(
        b.try_acquire().is_err() && m.acquire(now).is_err(),
        "a fourth trial"
    );
    let mut trials = trials.into_iter();
    let mut tickets = tickets.into_iter();
    trials.next().unwrap().success();
    m.record(tickets.next().unwrap(), S, now);
    assert_eq!((b.state(), m.state(now)), (C, C));
    // The late trials say nothing about the closed breaker.
    for t in trials {
        t.failure();
    }
    for t in tickets {
        m.record(t, F, now);
    }
    assert_eq!((b.state(), m.state(now)), (C, C));
    assert_eq!(b.snapshot().window.failures, 0);
}

#[test]
fn racing_trials_reopen_on_the_first_failure() {
    let clock = ManualClock::new();
    let b = racing(&clock);
    b.trip("drill");
    clock.advance(Duration::from_secs(1));
    let trials: Vec<_> = (0..3).map(|_| b.try_acquire().expect("a trial")).collect();
    let mut trials = trials.into_iter();
    trials.next().unwrap().failure();
    assert_eq!(b.state(), O);
    trials.next().unwrap().success(); // late: not counted
    assert_eq!(b.state(), O);
}

#[test]
fn a_duration_measured_by_the_caller_decides_slowness() {
    // The breaker's clock says every call took no time at all; the caller knows better.
    let clock = ManualClock::new();
    struct Durations(Mutex<Vec<Duration>>);
    impl BreakerListener for Durations {
        fn wants_outcomes(&self) -> bool {
            true
        }
        fn on_outcome(&self, e: &OutcomeEvent) {
            self.0.lock().unwrap().push(e.duration);
        }
    }
    let durations = Arc::new(Durations(Mutex::new(Vec::new())));
    let b = Breaker::builder("measured")
        .count_window(4)
        .min_calls(4)
        .slow_calls(Duration::from_millis(100), 0.5)
        .clock(clock.clone())
        .listener(durations.clone())
        .build()
        .expect("valid");
    for ms in [150, 100, 99, 5] {
        b.try_acquire()
            .expect("closed")
            .record_measured(S, Duration::from_millis(ms));
    }
    assert_eq!(b.snapshot().window.slow_calls, 2);
    assert_eq!(b.state(), O, "2 of 4 slow at a 50 % slow-call rule");
    assert_eq!(
        *durations.0.lock().unwrap(),
        [150, 100, 99, 5].map(Duration::from_millis)
    );
}
