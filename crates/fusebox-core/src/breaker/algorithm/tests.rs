//! Tests of the pure breaker algorithm: the close rule, the trip rules and their order,
//! what time alone does, entering a state, the manual transitions, and the trials.

use super::*;
use crate::breaker::Breaker;

fn rule(successes: u32, trials: u32) -> CloseRule {
    CloseRule { successes, trials }
}

#[test]
fn close_rule_fractions() {
    // 5 of 5: one failure makes it unreachable.
    assert_eq!(trial_verdict(rule(5, 5), 4, 0), TrialVerdict::Pending);
    assert_eq!(trial_verdict(rule(5, 5), 5, 0), TrialVerdict::Close);
    assert_eq!(trial_verdict(rule(5, 5), 3, 1), TrialVerdict::Reopen);
    // 3 of 5: two failures are tolerated, the third reopens.
    assert_eq!(trial_verdict(rule(3, 5), 1, 2), TrialVerdict::Pending);
    assert_eq!(trial_verdict(rule(3, 5), 3, 2), TrialVerdict::Close);
    assert_eq!(trial_verdict(rule(3, 5), 2, 3), TrialVerdict::Reopen);
}

#[test]
fn trip_rules_in_order() {
    let cfg = Breaker::builder("t")
        .failures_in_last(3, 10)
        .failure_rate(0.9)
        .build_config()
        .unwrap();
    let s = WindowStats {
        calls: 4,
        failures: 3,
        slow_calls: 0,
    };
    assert!(matches!(
        evaluate_trip(&cfg, 0, &s),
        Some(TripReason::FailureCount { failures: 3, .. })
    ));
    let s = WindowStats {
        calls: 10,
        failures: 2,
        slow_calls: 0,
    };
    assert_eq!(evaluate_trip(&cfg, 0, &s), None);
}

#[test]
fn rate_needs_min_calls() {
    let cfg = Breaker::builder("t")
        .time_window(Duration::from_secs(10), 10)
        .failure_rate(0.5)
        .min_calls(4)
        .build_config()
        .unwrap();
    let few = WindowStats {
        calls: 3,
        failures: 3,
        slow_calls: 0,
    };
    assert_eq!(evaluate_trip(&cfg, 3, &few), None);
    let enough = WindowStats {
        calls: 4,
        failures: 2,
        slow_calls: 0,
    };
    assert!(matches!(
        evaluate_trip(&cfg, 0, &enough),
        Some(TripReason::FailureRate { .. })
    ));
}

#[test]
fn time_moves_open_and_half_open_only() {
    let cfg = Breaker::builder("t")
        .half_open_max_duration(Duration::from_nanos(50))
        .build_config()
        .unwrap();
    assert_eq!(due(&cfg, State::Open, 100, 0, 99), None);
    assert_eq!(
        due(&cfg, State::Open, 100, 0, 100),
        Some((State::HalfOpen, TransitionReason::CooldownElapsed))
    );
    assert_eq!(due(&cfg, State::HalfOpen, 0, 100, 149), None);
    assert_eq!(
        due(&cfg, State::HalfOpen, 0, 100, 150),
        Some((State::Open, TransitionReason::HalfOpenTimedOut))
    );
    for state in [State::Closed, State::ForcedOpen, State::Disabled] {
        assert_eq!(due(&cfg, state, 0, 0, u64::MAX), None);
    }
}

#[test]
fn entering_a_state() {
    let five = |_| Duration::from_nanos(5);
    let open = enter(State::Open, 2, 10, None, five);
    assert_eq!((open.consecutive_trips, open.open_until), (3, Some(15)));
    let adopted = enter(State::Open, 0, 10, Some(99), five);
    assert_eq!(adopted.open_until, Some(99));
    let half = enter(State::HalfOpen, 3, 10, None, five);
    assert_eq!(
        (half.consecutive_trips, half.half_open_since),
        (3, Some(10))
    );
    let closed = enter(State::Closed, 3, 10, None, five);
    assert!(closed.clears_counts && closed.consecutive_trips == 0);
}

#[test]
fn manual_transitions() {
    assert!(!Manual::ForceOpen.allowed_from(State::ForcedOpen));
    assert!(Manual::Reset.allowed_from(State::Closed));
    assert!(!Manual::Reset.changes_state(State::Closed));
    assert!(!Manual::Trip("x".into()).allowed_from(State::Open));
    assert!(!Manual::Trip("x".into()).allowed_from(State::ForcedOpen));
    assert!(Manual::Trip("x".into()).changes_state(State::Disabled));
}

#[test]
fn trials() {
    assert!(trial_admissible(2, 3, 1, 1));
    assert!(!trial_admissible(2, 3, 2, 0)); // concurrency
    assert!(!trial_admissible(3, 3, 1, 2)); // every trial started
    assert_eq!(trial_counts(Outcome::Success, true), Some(false));
    assert_eq!(trial_counts(Outcome::Ignored, false), None);
    assert!(judges(State::Closed, false, true, false));
    assert!(!judges(State::Closed, false, false, false));
    assert!(judges(State::Closed, false, false, true));
    assert!(!judges(State::HalfOpen, true, false, false));
    assert!(!judges(State::HalfOpen, false, false, true));
}
