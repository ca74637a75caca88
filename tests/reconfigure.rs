//! Reconfiguring live breakers: what is kept, what resets, what is judged at once, what is
//! refused; the concurrent breaker and the sans-IO machine agree through reconfigurations.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use fusebox::Outcome;
use fusebox::breaker::algorithm::WindowChange;
use fusebox::breaker::{Breaker, BreakerBuilder, BreakerSettings, Machine, State};
use fusebox::clock::ManualClock;
use proptest::prelude::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn record(breaker: &Breaker, outcomes: &[Outcome]) {
    for &outcome in outcomes {
        breaker.try_acquire().expect("admitted").record(outcome);
    }
}

const F: Outcome = Outcome::Failure;
const S: Outcome = Outcome::Success;

#[test]
fn a_lowered_window_threshold_is_judged_on_the_kept_counts() {
    let breaker = Breaker::builder("db")
        .failures_in_last(4, 10)
        .build()
        .unwrap();
    record(&breaker, &[F, S, F, S, F, S]);
    assert_eq!(breaker.snapshot().window.failures, 3);

    let done = breaker
        .reconfigure(
            Breaker::builder("db")
                .failures_in_last(3, 10)
                .build_config()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(done.window, WindowChange::Kept);
    assert_eq!(
        done.state,
        State::Open,
        "3 kept failures reach the new threshold of 3"
    );
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_raised_threshold_keeps_counting_where_it_was() {
    let breaker = Breaker::builder("db")
        .consecutive_failures(3)
        .build()
        .unwrap();
    record(&breaker, &[F, F]);
    breaker
        .reconfigure(
            Breaker::builder("db")
                .consecutive_failures(4)
                .build_config()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        breaker.snapshot().consecutive_failures,
        2,
        "the run is kept"
    );
    record(&breaker, &[F]);
    assert_eq!(breaker.state(), State::Closed, "3 of a new 4");
    record(&breaker, &[F]);
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_resized_window_starts_empty_but_the_run_of_failures_is_kept() {
    let breaker = Breaker::builder("db")
        .consecutive_failures(5)
        .failures_in_last(4, 10)
        .build()
        .unwrap();
    record(&breaker, &[F, F, F]);
    let done = breaker
        .reconfigure(
            Breaker::builder("db")
                .consecutive_failures(5)
                .failures_in_last(4, 20)
                .build_config()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(done.window, WindowChange::Replaced);
    let snapshot = breaker.snapshot();
    assert_eq!(
        (snapshot.window.calls, snapshot.consecutive_failures),
        (0, 3)
    );
    record(&breaker, &[F]);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "1 failure in the new window, a run of 4"
    );
    record(&breaker, &[F]);
    assert_eq!(breaker.state(), State::Open, "the kept run reaches 5");
}

#[test]
fn a_time_window_of_the_same_span_keeps_its_counts() {
    let clock = ManualClock::new();
    let build = |rate: f64| {
        Breaker::builder("db")
            .time_window(secs(60), 6)
            .failure_rate(rate)
            .min_calls(4)
    };
    let breaker = build(0.9).clock(clock.clone()).build().unwrap();
    record(&breaker, &[F, S, F, S]);
    clock.advance(secs(5));
    let done = breaker
        .reconfigure(build(0.5).build_config().unwrap())
        .unwrap();
    assert_eq!((done.window, done.state), (WindowChange::Kept, State::Open));
}

#[test]
fn a_rate_rule_added_later_starts_a_window() {
    let breaker = Breaker::builder("db")
        .consecutive_failures(10)
        .build()
        .unwrap();
    record(&breaker, &[F, F]);
    let done = breaker
        .reconfigure(
            Breaker::builder("db")
                .consecutive_failures(10)
                .count_window(4)
                .failure_rate(0.5)
                .build_config()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(
        (done.window, done.state),
        (WindowChange::Started, State::Closed)
    );
    record(&breaker, &[S, F, S]);
    assert_eq!(
        breaker.state(),
        State::Closed,
        "3 calls: below the minimum of 4"
    );
    record(&breaker, &[F]);
    assert_eq!(breaker.state(), State::Open, "2 of 4 failed");
}

#[test]
fn a_half_open_breaker_judges_its_finished_trials_under_the_new_close_rule() {
    let clock = ManualClock::new();
    let build = |successes, trials| {
        Breaker::builder("db")
            .consecutive_failures(1)
            .cooldown(secs(1))
            .half_open_trials(successes, trials)
    };
    let breaker = build(3, 3).clock(clock.clone()).build().unwrap();
    breaker.trip("drill");
    clock.advance(secs(1));
    record(&breaker, &[S, S]);
    assert_eq!(breaker.state(), State::HalfOpen, "2 of 3 so far");
    let done = breaker
        .reconfigure(build(2, 3).build_config().unwrap())
        .unwrap();
    assert_eq!(done.state, State::Closed, "2 of 3 now closes");
}

#[test]
fn an_open_breaker_keeps_its_cooldown_and_the_next_trip_uses_the_new_one() {
    let clock = ManualClock::new();
    let build = |cooldown| {
        Breaker::builder("db")
            .consecutive_failures(1)
            .cooldown(secs(cooldown))
    };
    let breaker = build(60).clock(clock.clone()).build().unwrap();
    record(&breaker, &[F]);
    breaker
        .reconfigure(build(5).build_config().unwrap())
        .unwrap();
    clock.advance(secs(59));
    assert_eq!(breaker.state(), State::Open, "the drawn 60 s is kept");
    clock.advance(secs(1));
    assert_eq!(breaker.state(), State::HalfOpen);
    record(&breaker, &[F]); // the trial fails: a new trip
    assert_eq!(breaker.snapshot().remaining_cooldown, Some(secs(5)));
}

#[test]
fn a_refused_configuration_names_its_field_and_changes_nothing() {
    let clock = ManualClock::new();
    let breaker = Breaker::builder("db")
        .failures_in_last(3, 10)
        .outcome_log(8)
        .seed(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    record(&breaker, &[F, F]);
    let before = breaker.snapshot();

    let base = || Breaker::builder("db").failures_in_last(1, 10).seed(1);
    let log = base().outcome_log(16).build_config().unwrap();
    assert_eq!(
        breaker.reconfigure(log).unwrap_err().field(),
        Some("outcome_log")
    );
    let seed = base().outcome_log(8).seed(2).build_config().unwrap();
    assert_eq!(breaker.reconfigure(seed).unwrap_err().field(), Some("seed"));
    for (settings, field) in [
        (
            BreakerSettings {
                failure_rate: Some(f64::NAN),
                ..Default::default()
            },
            "failure_rate",
        ),
        (
            BreakerSettings {
                window_calls: Some(0),
                ..Default::default()
            },
            "window_calls",
        ),
        (
            BreakerSettings {
                cooldown: Some(Duration::ZERO),
                ..Default::default()
            },
            "cooldown",
        ),
        (
            BreakerSettings {
                failures_in_window: Some(11),
                window_calls: Some(10),
                ..Default::default()
            },
            "failures_in_window",
        ),
    ] {
        let err = breaker.reconfigure_settings(&settings).unwrap_err();
        assert_eq!(err.field(), Some(field), "{err}");
    }

    assert_eq!(breaker.revision(), 0);
    assert_eq!(breaker.config().failures_in_window(), Some(3));
    let after = breaker.snapshot();
    assert_eq!((after.state, after.window), (before.state, before.window));
}

#[test]
fn settings_leave_what_only_a_build_sets_as_built() {
    let breaker = Breaker::builder("db")
        .outcome_log(8)
        .seed(9)
        .trip_when(|stats| stats.failures >= 2)
        .build()
        .unwrap();
    let reloaded = BreakerSettings {
        window_calls: Some(10),
        consecutive_failures: Some(7),
        ..Default::default()
    };
    breaker.reconfigure_settings(&reloaded).unwrap();
    let config = breaker.config();
    assert_eq!((config.outcome_log(), config.seed()), (8, Some(9)));
    assert_eq!(config.consecutive_failures(), Some(7));
    record(&breaker, &[F, F]);
    assert_eq!(
        breaker.state(),
        State::Open,
        "the rule given in code is kept"
    );
}

#[test]
fn shadow_mode_can_be_lifted_and_enforcement_begins_at_once() {
    let build = |shadow| {
        Breaker::builder("db")
            .consecutive_failures(1)
            .cooldown(secs(60))
            .shadow(shadow)
    };
    let breaker = build(true).build().unwrap();
    record(&breaker, &[F]);
    assert!(breaker.try_acquire().is_ok(), "shadow: let through");
    assert_eq!(breaker.snapshot().shadow_rejections, 1);
    breaker
        .reconfigure(build(false).build_config().unwrap())
        .unwrap();
    assert!(breaker.try_acquire().is_err(), "enforced now");
    breaker
        .reconfigure(build(true).build_config().unwrap())
        .unwrap();
    assert!(breaker.try_acquire().is_ok(), "and back to shadow");
}

#[test]
fn a_call_admitted_before_a_slow_rule_was_added_is_not_counted_slow() {
    let clock = ManualClock::new();
    let breaker = Breaker::builder("db")
        .consecutive_failures(5)
        .clock(clock.clone())
        .build()
        .unwrap();
    let permit = breaker.try_acquire().unwrap(); // not timed: no rule needs it
    clock.advance(secs(1_000));
    breaker
        .reconfigure(
            Breaker::builder("db")
                .consecutive_failures(5)
                .count_window(1)
                .min_calls(1)
                .slow_calls(Duration::from_millis(100), 1.0)
                .build_config()
                .unwrap(),
        )
        .unwrap();
    permit.success();
    assert_eq!(
        breaker.snapshot().window.slow_calls,
        0,
        "its duration is unknown"
    );
    assert_eq!(breaker.state(), State::Closed);

    let timed = breaker.try_acquire().unwrap();
    clock.advance(Duration::from_millis(150));
    timed.success();
    assert_eq!(
        breaker.state(),
        State::Open,
        "a call timed from its start is slow"
    );
}

#[test]
fn clones_and_permits_in_flight_follow_the_new_configuration() {
    let breaker = Breaker::builder("db")
        .consecutive_failures(3)
        .build()
        .unwrap();
    let clone = breaker.clone();
    let permit = breaker.try_acquire().unwrap();
    clone
        .reconfigure(
            Breaker::builder("db")
                .consecutive_failures(1)
                .build_config()
                .unwrap(),
        )
        .unwrap();
    assert_eq!(breaker.config().consecutive_failures(), Some(1));
    permit.failure();
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn calls_racing_reconfigurations_never_lose_the_state_machine() {
    let breaker = Breaker::builder("db")
        .consecutive_failures(1_000_000)
        .build()
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let (breaker, stop, calls) = (breaker.clone(), Arc::clone(&stop), Arc::clone(&calls));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.success();
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let windows = [10, 20, 10, 50];
    for round in 0..400 {
        // Every reconfiguration lands among calls: wait until some ran since the last.
        let seen = calls.load(Ordering::Relaxed);
        while calls.load(Ordering::Relaxed) == seen {
            std::thread::yield_now();
        }
        let config = Breaker::builder("db")
            .consecutive_failures(1_000_000)
            .failures_in_last(5, windows[round % windows.len()])
            .build_config()
            .unwrap();
        breaker.reconfigure(config).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.join().unwrap();
    }
    assert!(calls.load(Ordering::Relaxed) >= 400);
    assert_eq!(breaker.revision(), 400);
    assert_eq!(breaker.state(), State::Closed, "successes alone never trip");
    // The last window (50 calls) is the one recording now.
    record(&breaker, &[F, F, F, F, F]);
    assert_eq!(breaker.state(), State::Open);
}

#[derive(Debug, Clone)]
enum Step {
    Fail,
    Succeed,
    Advance(u64),
    Reconfigure(u32, u32, u64, u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Fail),
        3 => Just(Step::Succeed),
        2 => (1u64..40).prop_map(Step::Advance),
        1 => (1u32..5, 2u32..8, 1u64..30, 1u32..3)
            .prop_map(|(k, n, cooldown, successes)| Step::Reconfigure(k, n, cooldown, successes)),
    ]
}

fn builder(k: u32, n: u32, cooldown: u64, successes: u32) -> BreakerBuilder {
    Breaker::builder("twin")
        .consecutive_failures(k + 1)
        .failures_in_last(k.min(n), n)
        .cooldown(secs(cooldown))
        .half_open_trials(successes, 2)
        .seed(3)
}

proptest! {
    /// The concurrent breaker and the sans-IO machine agree, step for step, on every
    /// sequence of calls, waits and reconfigurations.
    #[test]
    fn breaker_and_machine_agree_through_reconfigurations(
        steps in proptest::collection::vec(step(), 1..80),
    ) {
        let clock = ManualClock::new();
        let breaker = builder(3, 5, 10, 2).clock(clock.clone()).build().expect("valid");
        let mut machine = Machine::new("twin", builder(3, 5, 10, 2).build_config().expect("valid"));
        let mut now = 0u64;
        for step in steps {
            match step {
                Step::Fail | Step::Succeed => {
                    let outcome = if matches!(step, Step::Fail) { F } else { S };
                    let shell = breaker.try_acquire();
                    let pure = machine.acquire(now);
                    prop_assert_eq!(shell.is_ok(), pure.is_ok());
                    if let (Ok(permit), Ok(ticket)) = (shell, pure) {
                        permit.record(outcome);
                        machine.record(ticket, outcome, now);
                    }
                }
                Step::Advance(s) => {
                    clock.advance(secs(s));
                    now += s * 1_000_000_000;
                }
                Step::Reconfigure(k, n, cooldown, successes) => {
                    let config = || builder(k, n, cooldown, successes).build_config().expect("valid");
                    let shell = breaker.reconfigure(config()).expect("accepted");
                    let pure = machine.reconfigure(config(), now).expect("accepted");
                    prop_assert_eq!(shell.window, pure.window);
                    prop_assert_eq!(shell.state, pure.state);
                }
            }
            prop_assert_eq!(breaker.state(), machine.state(now));
            prop_assert_eq!(breaker.snapshot().consecutive_failures, machine.consecutive_failures());
        }
    }
}
