//! A failure's server-given delay (Retry-After, gRPC retry info) sets how long the breaker
//! opens, when the breaker is built to use it; the concurrent breaker and the sans-IO
//! machine agree on every sequence.

use std::time::Duration;

use fusebox::breaker::{Breaker, BreakerBuilder, BreakerSettings, Machine, State};
use fusebox::clock::ManualClock;
use fusebox::{Classifier, Outcome};
use proptest::prelude::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn hinted(clock: &ManualClock, max: Duration) -> Breaker {
    Breaker::builder("quotes")
        .consecutive_failures(2)
        .cooldown(secs(30))
        .open_for_retry_after(max)
        .clock(clock.clone())
        .build()
        .expect("valid breaker")
}

/// Seconds the breaker stays OPEN from now, found by stepping a clone of its clock.
fn open_for(breaker: &Breaker, clock: &ManualClock) -> u64 {
    let mut waited = 0;
    while breaker.state() == State::Open {
        clock.advance(secs(1));
        waited += 1;
        assert!(waited < 100_000, "never left OPEN");
    }
    waited
}

fn fail(breaker: &Breaker, hint: Option<Duration>) {
    breaker
        .try_acquire()
        .expect("admitted")
        .failure_with_retry_after(hint);
}

#[test]
fn a_longer_hint_holds_the_breaker_open_past_its_cooldown() {
    let clock = ManualClock::new();
    let b = hinted(&clock, secs(600));
    fail(&b, None);
    fail(&b, Some(secs(120)));
    assert_eq!(open_for(&b, &clock), 120);
    assert_eq!(b.state(), State::HalfOpen);
}

#[test]
fn a_shorter_hint_ends_the_open_state_before_the_cooldown() {
    let clock = ManualClock::new();
    let b = hinted(&clock, secs(600));
    fail(&b, Some(secs(5)));
    fail(&b, None); // the trip itself carries no hint; the earlier one is still live
    assert_eq!(open_for(&b, &clock), 5);
}

#[test]
fn a_hint_beyond_the_maximum_is_cut_to_it_and_never_overflows() {
    let clock = ManualClock::new();
    let b = hinted(&clock, secs(90));
    fail(&b, None);
    fail(&b, Some(Duration::MAX));
    assert_eq!(open_for(&b, &clock), 90);
}

#[test]
fn without_a_live_hint_the_cooldown_applies() {
    let clock = ManualClock::new();
    let b = hinted(&clock, secs(600));
    fail(&b, Some(secs(3)));
    b.try_acquire().expect("admitted").success(); // ends the run
    clock.advance(secs(10)); // the hint is spent before the breaker trips
    fail(&b, None);
    assert_eq!(b.state(), State::Closed, "one failure after the success");
    fail(&b, None);
    assert_eq!(open_for(&b, &clock), 30);
}

#[test]
fn a_failed_trial_reopens_for_its_own_hint() {
    let clock = ManualClock::new();
    let b = hinted(&clock, secs(600));
    fail(&b, None);
    fail(&b, None);
    assert_eq!(open_for(&b, &clock), 30);
    let trial = b.try_acquire().expect("a trial");
    assert!(trial.is_trial());
    trial.failure_with_retry_after(Some(secs(45)));
    assert_eq!(open_for(&b, &clock), 45);
}

#[test]
fn closing_forgets_the_hint() {
    let clock = ManualClock::new();
    let b = hinted(&clock, secs(600));
    fail(&b, Some(secs(200)));
    b.reset();
    fail(&b, None);
    fail(&b, None);
    assert_eq!(open_for(&b, &clock), 30, "a reset cleared the old hint");
}

#[test]
fn a_breaker_not_built_for_hints_keeps_its_cooldown() {
    let clock = ManualClock::new();
    let b = Breaker::builder("plain")
        .consecutive_failures(1)
        .cooldown(secs(30))
        .clock(clock.clone())
        .build()
        .expect("valid breaker");
    assert_eq!(b.config().retry_after_max(), None);
    fail(&b, Some(secs(500)));
    assert_eq!(open_for(&b, &clock), 30);
}

/// A downstream error carrying the seconds a server asked for.
struct Busy;

impl Classifier<(), Option<u64>> for Busy {
    fn classify(&self, result: &Result<(), Option<u64>>) -> Outcome {
        match result {
            Ok(()) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
    fn retry_after(&self, result: &Result<(), Option<u64>>) -> Option<Duration> {
        result.as_ref().err().copied().flatten().map(secs)
    }
}

#[tokio::test]
async fn a_classifier_supplies_the_hint_through_call_with() {
    let clock = ManualClock::new();
    let b = hinted(&clock, secs(600));
    let _ = b.call_with(&Busy, || async { Err(None) }).await;
    let _ = b.call_with(&Busy, || async { Err(Some(75)) }).await;
    assert_eq!(open_for(&b, &clock), 75);
    // And through the blocking form: the failed trial reopens for its own hint.
    let _ = b.call_sync_with(&Busy, || Err(Some(12)));
    assert_eq!(open_for(&b, &clock), 12);
}

#[test]
fn the_maximum_is_validated_and_read_from_settings() {
    let error = Breaker::builder("x")
        .open_for_retry_after(Duration::ZERO)
        .build()
        .expect_err("a zero maximum");
    assert_eq!(error.field(), Some("retry_after_max"), "{error}");

    let settings: BreakerSettings =
        toml::from_str("retry_after_max = \"2m\"").expect("valid settings");
    assert_eq!(settings.retry_after_max, Some(secs(120)));
    let config = Breaker::builder("x")
        .settings(settings)
        .build_config()
        .expect("valid");
    assert_eq!(config.retry_after_max(), Some(secs(120)));
    let bad: Result<BreakerSettings, _> = toml::from_str("retry_after_max = \"-5s\"");
    assert!(bad.is_err(), "a negative duration does not parse");
}

#[derive(Debug, Clone)]
enum Step {
    Fail(Option<u64>),
    Succeed,
    Advance(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => proptest::option::of(0u64..400).prop_map(Step::Fail),
        2 => Just(Step::Succeed),
        2 => (1u64..120).prop_map(Step::Advance),
    ]
}

fn builder(max: u64) -> BreakerBuilder {
    Breaker::builder("twin")
        .consecutive_failures(2)
        .cooldown(secs(30))
        .half_open_trials(1, 1)
        .open_for_retry_after(secs(max))
        .seed(7)
}

proptest! {
    /// The concurrent breaker and the sans-IO machine agree, step for step, on every
    /// sequence of hinted and plain failures, successes and waits.
    #[test]
    fn breaker_and_machine_agree(steps in proptest::collection::vec(step(), 1..60), max in 1u64..300) {
        let clock = ManualClock::new();
        let breaker = builder(max).clock(clock.clone()).build().expect("valid");
        let mut machine = Machine::new("twin", builder(max).build_config().expect("valid"));
        let mut now = 0u64;
        for step in steps {
            match step {
                Step::Fail(hint) => {
                    let hint = hint.map(secs);
                    let shell = breaker.try_acquire();
                    let pure = machine.acquire(now);
                    prop_assert_eq!(shell.is_ok(), pure.is_ok());
                    if let (Ok(permit), Ok(ticket)) = (shell, pure) {
                        permit.failure_with_retry_after(hint);
                        machine.record_failure_with_retry_after(ticket, hint, now);
                    }
                }
                Step::Succeed => {
                    let shell = breaker.try_acquire();
                    let pure = machine.acquire(now);
                    prop_assert_eq!(shell.is_ok(), pure.is_ok());
                    if let (Ok(permit), Ok(ticket)) = (shell, pure) {
                        permit.success();
                        machine.record(ticket, Outcome::Success, now);
                    }
                }
                Step::Advance(s) => {
                    clock.advance(secs(s));
                    now += s * 1_000_000_000;
                }
            }
            prop_assert_eq!(breaker.state(), machine.state(now));
        }
    }
}
