//! Shadow mode: a breaker that decides exactly as an enforcing one, and lets through what
//! that one would reject, counting and reporting it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox::breaker::{BreakerListener, Rejected};
use fusebox::clock::ManualClock;
use fusebox::{Breaker, Outcome, Stack, State};
use proptest::prelude::*;

fn twins(clock: &ManualClock, trips_after: u32) -> (Breaker, Breaker) {
    let build = |shadow: bool| {
        Breaker::builder("twin")
            .consecutive_failures(trips_after)
            .failures_in_last(3, 6)
            .cooldown(Duration::from_secs(10))
            .half_open_trials(2, 2)
            .half_open_concurrency(1)
            .shadow(shadow)
            .clock(clock.clone())
            .build()
            .expect("breaker")
    };
    (build(false), build(true))
}

#[derive(Debug, Clone)]
enum Step {
    Call(Outcome),
    /// A call left in flight until the next step (a trial occupying its slot).
    Hold(Outcome),
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let outcome = prop_oneof![
        3 => Just(Outcome::Failure),
        3 => Just(Outcome::Success),
        1 => Just(Outcome::Ignored),
    ];
    prop_oneof![
        6 => outcome.clone().prop_map(Step::Call),
        1 => outcome.prop_map(Step::Hold),
        2 => (1_u64..15_000).prop_map(Step::Wait),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Fed the same calls, a shadow breaker moves through the same states as an enforcing
    /// one, and lets through exactly the calls the enforcing one rejects.
    #[test]
    fn a_shadow_breaker_decides_as_an_enforcing_one(steps in proptest::collection::vec(step(), 1..120)) {
        let clock = ManualClock::new();
        let (enforcing, shadow) = twins(&clock, 4);
        let mut rejected = 0_u64;
        // A held call stays in flight through the next step, then is recorded.
        let mut held = None;
        for step in steps {
            let earlier = held.take();
            match step {
                Step::Wait(ms) => clock.advance(Duration::from_millis(ms)),
                Step::Call(outcome) | Step::Hold(outcome) => {
                    let hold = matches!(step, Step::Hold(_));
                    let shadow_permit = shadow.try_acquire_owned();
                    prop_assert!(shadow_permit.is_ok(), "a shadow breaker never rejects");
                    let shadow_permit = shadow_permit.unwrap();
                    match enforcing.try_acquire_owned() {
                        Ok(permit) => {
                            if hold {
                                held = Some((permit, shadow_permit, outcome));
                            } else {
                                permit.record(outcome);
                                shadow_permit.record(outcome);
                            }
                        }
                        Err(_) => {
                            rejected += 1;
                            // What the enforcing breaker never saw: recorded, and ignored.
                            shadow_permit.record(outcome);
                        }
                    }
                }
            }
            if let Some((permit, shadow_permit, outcome)) = earlier {
                permit.record(outcome);
                shadow_permit.record(outcome);
            }
            prop_assert_eq!(shadow.state(), enforcing.state());
            prop_assert_eq!(shadow.snapshot().generation, enforcing.snapshot().generation);
            prop_assert_eq!(shadow.snapshot().shadow_rejections, rejected);
        }
        prop_assert_eq!(enforcing.snapshot().shadow_rejections, 0);
    }
}

#[derive(Default)]
struct Seen {
    rejections: AtomicU32,
    shadow: Mutex<Vec<(State, Option<Duration>)>>,
}

impl BreakerListener for Seen {
    fn on_rejection(&self, _: &Rejected) {
        self.rejections.fetch_add(1, Ordering::SeqCst);
    }
    fn on_shadow_rejection(&self, would: &Rejected) {
        self.shadow
            .lock()
            .unwrap()
            .push((would.state(), would.retry_after()));
    }
}

#[test]
fn listeners_hear_what_would_have_been_rejected_and_an_operator_still_rules() {
    let clock = ManualClock::new();
    let seen = Arc::new(Seen::default());
    let b = Breaker::builder("payments")
        .consecutive_failures(2)
        .cooldown(Duration::from_secs(30))
        .shadow(true)
        .listener(seen.clone())
        .clock(clock.clone())
        .build()
        .expect("breaker");
    b.record_failure();
    b.record_failure();
    assert_eq!(b.state(), State::Open);
    clock.advance(Duration::from_secs(10));
    b.try_acquire().expect("let through").success();
    assert_eq!(
        b.state(),
        State::Open,
        "a let-through success does not close it"
    );
    assert_eq!(
        *seen.shadow.lock().unwrap(),
        [(State::Open, Some(Duration::from_secs(20)))]
    );
    assert_eq!(seen.rejections.load(Ordering::SeqCst), 0);

    // The kill-switch is a command: it rejects even in shadow mode.
    b.force_open();
    assert!(b.try_acquire().is_err());
    assert_eq!(seen.rejections.load(Ordering::SeqCst), 1);
    assert_eq!(b.snapshot().shadow_rejections, 1);
}

#[tokio::test]
async fn calls_through_a_stack_and_call_pass_while_it_would_reject() {
    let b = Breaker::builder("search")
        .consecutive_failures(1)
        .shadow(true)
        .build()
        .expect("breaker");
    let stack = Stack::new().breaker(b.clone());
    assert!(stack.call(|| async { Err::<(), _>("down") }).await.is_err());
    assert_eq!(b.state(), State::Open);
    for _ in 0..3 {
        let value = stack.call(|| async { Ok::<_, &str>(7) }).await;
        assert_eq!(value.expect("let through"), 7);
        let direct = b.call(|| async { Ok::<_, &str>(8) }).await;
        assert_eq!(direct.expect("let through"), 8);
    }
    assert_eq!(b.snapshot().shadow_rejections, 6);
    assert_eq!(b.state(), State::Open);
}
