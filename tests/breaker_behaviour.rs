//! Behaviour of the concurrent breaker, driven by a manual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox::breaker::{
    Breaker, BreakerSettings, Cooldown, LoggedOutcome, State, TransitionReason, TripReason,
    WindowStats,
};
use fusebox::clock::ManualClock;
use fusebox::{ConfigError, Outcome};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

type Log = Arc<Mutex<Vec<(State, State, TransitionReason)>>>;

fn recorder() -> (
    Log,
    impl Fn(&fusebox::breaker::Transition) + Send + Sync + 'static,
) {
    let log: Log = Arc::default();
    let sink = log.clone();
    (log, move |t: &fusebox::breaker::Transition| {
        sink.lock().unwrap().push((t.from, t.to, t.reason.clone()))
    })
}

fn states(log: &Log) -> Vec<(State, State)> {
    log.lock()
        .unwrap()
        .iter()
        .map(|(f, t, _)| (*f, *t))
        .collect()
}

#[test]
fn consecutive_failures_trip_and_success_resets() {
    let clock = ManualClock::new();
    let b = Breaker::builder("c")
        .consecutive_failures(3)
        .clock(clock.clone())
        .build()
        .unwrap();
    b.record_failure();
    b.record_failure();
    b.record_success(); // resets the run
    b.record_failure();
    b.record_failure();
    assert_eq!(b.state(), State::Closed);
    b.record_failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn three_of_the_last_ten() {
    let clock = ManualClock::new();
    let (log, on) = recorder();
    let b = Breaker::builder("k-of-n")
        .failures_in_last(3, 10)
        .clock(clock.clone())
        .on_transition(on)
        .build()
        .unwrap();
    // Two failures spread over ten calls never trip.
    for i in 0..30 {
        let p = b.try_acquire().unwrap();
        if i % 5 == 0 { p.failure() } else { p.success() }
    }
    assert_eq!(b.state(), State::Closed);
    // A third failure within the last ten calls does.
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
    let log = log.lock().unwrap();
    assert!(matches!(
        &log[0].2,
        TransitionReason::Tripped(TripReason::FailureCount {
            failures: 3,
            calls: 10,
            threshold: 3
        })
    ));
}

#[test]
fn plain_rate_over_last_n_waits_for_min_calls() {
    let b = Breaker::builder("rate")
        .count_window(10)
        .failure_rate(0.5)
        .min_calls(6)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    for _ in 0..5 {
        b.record_failure();
    }
    assert_eq!(b.state(), State::Closed, "5 calls < min_calls");
    b.record_failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn time_window_remembers_a_call_for_its_whole_span() {
    let clock = ManualClock::new();
    let b = Breaker::builder("span")
        .time_window(secs(60), 10)
        .failure_rate(0.5)
        .min_calls(100)
        .clock(clock.clone())
        .build()
        .unwrap();
    clock.advance(Duration::from_millis(5_999)); // late in the first bucket
    b.record_failure();
    clock.advance(secs(60)); // exactly the span later
    assert_eq!(b.snapshot().window.failures, 1, "forgotten before its span");
    clock.advance(Duration::from_millis(1)); // the bucket after it is a whole span old
    assert_eq!(
        b.snapshot().window.failures,
        0,
        "kept past span + one bucket"
    );
}

#[test]
fn time_window_forgets_old_failures() {
    let clock = ManualClock::new();
    let b = Breaker::builder("time")
        .time_window(secs(60), 10)
        .failure_rate(0.5)
        .min_calls(4)
        .clock(clock.clone())
        .build()
        .unwrap();
    b.record_failure();
    b.record_failure();
    b.record_failure();
    // Six-second buckets: a call is kept for 60 s at least and leaves once the bucket after
    // it is a whole span old, at 66 s for a call made at 0 s.
    clock.advance(secs(66));
    // The old failures have left the window: 1 failure in 4 calls.
    b.record_success();
    b.record_success();
    b.record_success();
    b.record_failure();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        b.snapshot().window,
        WindowStats {
            calls: 4,
            failures: 1,
            slow_calls: 0
        }
    );
    b.record_failure();
    b.record_failure();
    assert_eq!(b.state(), State::Open, "3 of 6 within the window");
}

#[test]
fn slow_calls_trip_on_duration() {
    let clock = ManualClock::new();
    let b = Breaker::builder("slow")
        .slow_calls(Duration::from_millis(500), 0.5)
        .count_window(4)
        .clock(clock.clone())
        .build()
        .unwrap();
    for _ in 0..2 {
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_millis(100));
        p.success();
    }
    for _ in 0..2 {
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_millis(600));
        p.success(); // a slow success still counts as slow
    }
    assert_eq!(b.state(), State::Open);
    let snapshot = b.snapshot();
    assert_eq!(snapshot.window.slow_calls, 2);
    assert_eq!(snapshot.window.failures, 0);
}

#[test]
fn custom_rule_sees_window_stats() {
    let b = Breaker::builder("custom")
        .count_window(20)
        .trip_when(|s: &WindowStats| s.failures >= 2 && s.calls >= 5)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    b.record_failure();
    b.record_failure();
    assert_eq!(b.state(), State::Closed);
    b.record_success();
    b.record_success();
    b.record_failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn full_cycle_with_five_of_five_trials() {
    let clock = ManualClock::new();
    let (log, on) = recorder();
    let b = Breaker::builder("cycle")
        .consecutive_failures(2)
        .cooldown(secs(10))
        .half_open_trials(5, 5)
        .half_open_concurrency(2)
        .clock(clock.clone())
        .on_transition(on)
        .build()
        .unwrap();
    b.record_failure();
    b.record_failure();
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(rejected.retry_after(), Some(secs(10)));
    clock.advance(secs(4));
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(secs(6)));
    clock.advance(secs(6));
    // Lazily half-open, with at most two trials in flight.
    let t1 = b.try_acquire().unwrap();
    let t2 = b.try_acquire().unwrap();
    assert!(t1.is_trial() && t2.is_trial());
    assert_eq!(b.try_acquire().unwrap_err().state(), State::HalfOpen);
    t1.success();
    t2.success();
    for _ in 0..3 {
        b.try_acquire().unwrap().success();
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        states(&log),
        vec![
            (State::Closed, State::Open),
            (State::Open, State::HalfOpen),
            (State::HalfOpen, State::Closed)
        ]
    );
}

#[test]
fn failure_that_makes_close_rule_unreachable_reopens_at_once() {
    let clock = ManualClock::new();
    let b = Breaker::builder("three-of-five")
        .consecutive_failures(1)
        .cooldown(secs(1))
        .half_open_trials(3, 5)
        .half_open_concurrency(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    b.record_failure();
    clock.advance(secs(1));
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().failure();
    assert_eq!(
        b.state(),
        State::HalfOpen,
        "2 failures of 5 still allow 3 successes"
    );
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn dropped_trial_permit_frees_its_slot() {
    let clock = ManualClock::new();
    let b = Breaker::builder("cancel")
        .consecutive_failures(1)
        .cooldown(secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    b.record_failure();
    clock.advance(secs(1));
    let trial = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err(), "one trial at a time");
    drop(trial); // a cancelled call
    let snapshot = b.snapshot();
    assert_eq!(snapshot.state, State::HalfOpen);
    assert_eq!(
        (
            snapshot.trials_in_flight,
            snapshot.trial_successes,
            snapshot.trial_failures
        ),
        (0, 0, 0),
        "the dropped trial counts as nothing"
    );
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn cancelled_future_never_wedges_half_open() {
    let clock = ManualClock::new();
    let b = Breaker::builder("async-cancel")
        .consecutive_failures(1)
        .cooldown(secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    b.record_failure();
    clock.advance(secs(1));
    let slow_trial = b.call(|| async {
        tokio::time::sleep(secs(3600)).await;
        Ok::<_, ()>(())
    });
    // Give up on the trial after 10 ms: the future is dropped mid-call.
    assert!(
        tokio::time::timeout(Duration::from_millis(10), slow_trial)
            .await
            .is_err()
    );
    let r = b.call(|| async { Ok::<_, ()>(7) }).await;
    assert_eq!(r.unwrap(), 7);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn half_open_max_duration_reopens() {
    let clock = ManualClock::new();
    let b = Breaker::builder("ho-timeout")
        .consecutive_failures(1)
        .cooldown(secs(1))
        .half_open_max_duration(secs(5))
        .clock(clock.clone())
        .build()
        .unwrap();
    b.record_failure();
    clock.advance(secs(1));
    let stuck = b.try_acquire().unwrap(); // a trial that never reports
    clock.advance(secs(5));
    assert_eq!(b.state(), State::Open);
    stuck.success(); // too late: belongs to the old half-open episode
    assert_eq!(b.state(), State::Open);
}

#[test]
fn growing_cooldown_resets_after_close() {
    let clock = ManualClock::new();
    let b = Breaker::builder("grow")
        .consecutive_failures(1)
        .cooldown_growing(secs(1), secs(5), 2.0)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut cooldowns = Vec::new();
    b.record_failure();
    for _ in 0..4 {
        let left = b.snapshot().remaining_cooldown.unwrap();
        cooldowns.push(left.as_secs());
        clock.advance(left);
        b.try_acquire().unwrap().failure(); // the trial fails: reopen, longer
    }
    assert_eq!(cooldowns, [1, 2, 4, 5]);
    clock.advance(secs(5));
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
    b.record_failure();
    assert_eq!(b.snapshot().remaining_cooldown, Some(secs(1)));
}

#[test]
fn jittered_cooldown_stays_within_bounds() {
    for seed in 0..200 {
        let clock = ManualClock::new();
        let b = Breaker::builder("jitter")
            .consecutive_failures(1)
            .cooldown(secs(10))
            .cooldown_jitter(0.2)
            .seed(seed)
            .clock(clock)
            .build()
            .unwrap();
        b.record_failure();
        let left = b.snapshot().remaining_cooldown.unwrap();
        assert!(left >= secs(8) && left <= secs(12), "{left:?}");
    }
}

#[test]
fn manual_controls() {
    let clock = ManualClock::new();
    let (log, on) = recorder();
    let b = Breaker::builder("manual")
        .consecutive_failures(1)
        .clock(clock.clone())
        .on_transition(on)
        .build()
        .unwrap();
    assert!(b.force_open());
    assert!(b.try_acquire().is_err());
    clock.advance(secs(3600));
    assert_eq!(
        b.state(),
        State::ForcedOpen,
        "no cooldown ends a forced open"
    );
    assert!(b.disable());
    b.record_failure();
    b.record_failure();
    assert_eq!(b.state(), State::Disabled, "disabled never trips");
    assert_eq!(b.snapshot().consecutive_failures, 2, "but still measures");
    assert!(b.reset());
    assert_eq!(b.snapshot().consecutive_failures, 0);
    assert!(b.trip("overload signal"));
    assert_eq!(b.state(), State::Open);
    let reasons: Vec<_> = log.lock().unwrap().iter().map(|e| e.2.clone()).collect();
    assert_eq!(reasons.len(), 4);
    assert!(matches!(
        &reasons[3],
        TransitionReason::Tripped(TripReason::External { reason }) if reason == "overload signal"
    ));
}

#[test]
fn rejections_reach_listeners_and_snapshot_log() {
    let rejections = Arc::new(Mutex::new(Vec::new()));
    let sink = rejections.clone();
    let clock = ManualClock::new();
    let b = Breaker::builder("events")
        .consecutive_failures(1)
        .outcome_log(4)
        .clock(clock.clone())
        .on_rejection(move |r| sink.lock().unwrap().push(r.clone()))
        .build()
        .unwrap();
    b.try_acquire().unwrap().success();
    clock.advance(secs(1));
    b.try_acquire().unwrap().failure();
    clock.advance(secs(1));
    assert!(b.try_acquire().is_err());
    assert_eq!(rejections.lock().unwrap().len(), 1);
    let s = b.snapshot();
    let kinds: Vec<_> = s.recent.iter().map(|e| e.outcome).collect();
    // Outcomes and rejections are logged apart.
    assert_eq!(kinds, [LoggedOutcome::Success, LoggedOutcome::Failure]);
    assert_eq!(s.recent_rejections, [secs(0)]);
    assert_eq!(s.recent[0].age, secs(2));
    assert_eq!(s.since_last_failure, Some(secs(1)));
}

#[test]
fn a_flood_of_rejections_keeps_the_outcomes_that_opened_the_breaker() {
    let clock = ManualClock::new();
    let b = Breaker::builder("flood")
        .consecutive_failures(2)
        .outcome_log(4)
        .clock(clock.clone())
        .build()
        .unwrap();
    b.record_failure();
    b.record_failure();
    for _ in 0..100 {
        clock.advance(Duration::from_millis(10));
        assert!(b.try_acquire().is_err());
    }
    let s = b.snapshot();
    let kinds: Vec<_> = s.recent.iter().map(|e| e.outcome).collect();
    assert_eq!(kinds, [LoggedOutcome::Failure, LoggedOutcome::Failure]);
    assert_eq!(s.recent[1].age, secs(1));
    // The last 4 rejections, oldest first.
    assert_eq!(
        s.recent_rejections,
        [30, 20, 10, 0].map(Duration::from_millis)
    );
}

#[test]
fn outcomes_from_before_a_transition_are_not_counted() {
    let clock = ManualClock::new();
    let b = Breaker::builder("stale")
        .consecutive_failures(2)
        .clock(clock)
        .build()
        .unwrap();
    let early = b.try_acquire().unwrap();
    b.record_failure();
    b.record_failure();
    assert_eq!(b.state(), State::Open);
    b.reset();
    early.failure(); // admitted two transitions ago
    assert_eq!(b.snapshot().consecutive_failures, 0);
}

#[test]
fn ignored_outcomes_do_not_count() {
    let b = Breaker::builder("ignored")
        .failures_in_last(1, 10)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    b.try_acquire().unwrap().record(Outcome::Ignored);
    assert_eq!(b.snapshot().window.calls, 0);
    let r: Result<(), fusebox::Error<&str>> =
        b.call_sync_with(&|_: &Result<(), &str>| Outcome::Ignored, || Err("404"));
    assert!(r.is_err());
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn caller_error_stays_intact() {
    #[derive(Debug, PartialEq)]
    struct MyError(u32);
    let b = Breaker::builder("errors")
        .consecutive_failures(1)
        .build()
        .unwrap();
    let e = b.call_sync(|| Err::<(), _>(MyError(7))).unwrap_err();
    assert_eq!(e.into_inner(), Some(MyError(7)));
    let e = b.call_sync(|| Err::<(), _>(MyError(8))).unwrap_err();
    let rejected = e.rejection().expect("rejected");
    assert_eq!(rejected.name(), "errors");
    assert_eq!(rejected.state(), State::Open);
}

#[test]
fn state_changes_reported_exactly_once_across_clones() {
    let (log, on) = recorder();
    let b = Breaker::builder("clones")
        .consecutive_failures(1)
        .clock(ManualClock::new())
        .on_transition(on)
        .build()
        .unwrap();
    let c = b.clone();
    let p1 = b.try_acquire().unwrap();
    let p2 = c.try_acquire().unwrap();
    p1.failure();
    p2.failure(); // admitted in the same CLOSED generation, but the breaker already opened
    assert_eq!(states(&log), vec![(State::Closed, State::Open)]);
    assert_eq!(c.snapshot().generation, 1);
}

#[test]
fn validation_names_the_field() {
    fn field(r: Result<Breaker, ConfigError>) -> &'static str {
        r.unwrap_err().field().unwrap()
    }
    let b = || Breaker::builder("v");
    assert_eq!(
        field(b().failures_in_last(11, 10).build()),
        "failures_in_window"
    );
    assert_eq!(
        field(b().failures_in_last(0, 10).build()),
        "failures_in_window"
    );
    assert_eq!(
        field(b().count_window(0).failure_rate(0.5).build()),
        "window_calls"
    );
    assert_eq!(field(b().failure_rate(f64::NAN).build()), "failure_rate");
    assert_eq!(field(b().failure_rate(1.5).build()), "failure_rate");
    assert_eq!(field(b().failure_rate(-0.1).build()), "failure_rate");
    assert_eq!(
        field(
            b().time_window(Duration::ZERO, 10)
                .failure_rate(0.5)
                .build()
        ),
        "window_span"
    );
    assert_eq!(
        field(b().time_window(secs(1), 0).failure_rate(0.5).build()),
        "window_buckets"
    );
    assert_eq!(
        field(b().consecutive_failures(0).build()),
        "consecutive_failures"
    );
    assert_eq!(
        field(b().half_open_trials(6, 5).build()),
        "half_open_successes"
    );
    assert_eq!(
        field(b().half_open_trials(0, 5).build()),
        "half_open_successes"
    );
    // Above the trials is a race (the first results decide); above 10,000, a flood.
    assert!(
        b().half_open_trials(2, 3)
            .half_open_concurrency(4)
            .build()
            .is_ok()
    );
    assert_eq!(
        field(
            b().half_open_trials(2, 3)
                .half_open_concurrency(10_001)
                .build()
        ),
        "half_open_concurrency"
    );
    assert_eq!(
        field(b().half_open_concurrency(0).build()),
        "half_open_concurrency"
    );
    assert_eq!(field(b().cooldown(Duration::ZERO).build()), "cooldown");
    assert_eq!(field(b().cooldown_jitter(1.5).build()), "cooldown_jitter");
    assert_eq!(
        field(b().cooldown_jitter(f64::INFINITY).build()),
        "cooldown_jitter"
    );
    assert_eq!(
        field(b().cooldown_growing(secs(10), secs(1), 2.0).build()),
        "cooldown_max"
    );
    assert_eq!(
        field(b().cooldown_growing(secs(1), secs(10), 0.5).build()),
        "cooldown_factor"
    );
    assert_eq!(
        field(b().cooldown_growing(secs(1), secs(10), f64::NAN).build()),
        "cooldown_factor"
    );
    assert_eq!(
        field(b().slow_calls(Duration::ZERO, 0.5).build()),
        "slow_call_threshold"
    );
    assert_eq!(
        field(b().slow_calls(secs(1), 0.0).build()),
        "slow_call_rate"
    );
    assert_eq!(
        field(b().count_window(10).failure_rate(0.5).min_calls(11).build()),
        "min_calls"
    );
    assert_eq!(
        field(b().half_open_max_duration(Duration::ZERO).build()),
        "half_open_max_duration"
    );
    assert_eq!(field(b().outcome_log(10_000_000).build()), "outcome_log");
    assert_eq!(field(Breaker::builder("").build()), "name");
    let both = b()
        .count_window(10)
        .time_window(secs(10), 10)
        .failure_rate(0.5)
        .build()
        .unwrap_err();
    assert!(matches!(both, ConfigError::Conflict { .. }), "{both}");
}

#[test]
fn settings_struct_builds_the_same_breaker() {
    let settings = BreakerSettings {
        failures_in_window: Some(3),
        window_calls: Some(10),
        cooldown: Some(secs(5)),
        cooldown_max: Some(secs(60)),
        half_open_successes: Some(3),
        half_open_trials: Some(5),
        ..Default::default()
    };
    let b = Breaker::builder("s").settings(settings).build().unwrap();
    let c = b.config();
    assert_eq!(c.failures_in_window(), Some(3));
    assert_eq!(
        c.consecutive_failures(),
        None,
        "a window rule replaces the default"
    );
    assert_eq!(c.close_rule().trials, 5);
    assert!(
        matches!(c.cooldown(), Cooldown::Growing { factor, max, .. } if factor == 2.0 && max == secs(60))
    );
}

#[test]
fn a_rejection_reads_back_what_it_was_built_with() {
    let r = fusebox::Rejected::new("db", State::Open, Some(Duration::from_millis(1_500)));
    assert_eq!(r.name(), "db");
    assert_eq!(r.state(), State::Open);
    assert_eq!(r.retry_after(), Some(Duration::from_millis(1_500)));
    assert_eq!(
        format!("{r:?}"),
        r#"Rejected { name: "db", state: Open, retry_after: Some(1.5s) }"#
    );
    assert_eq!(
        r.to_string(),
        "circuit breaker `db` is open; retry after 1.5s"
    );
    assert_eq!(r, r.clone());
    let forced = fusebox::Rejected::new("db", State::ForcedOpen, None);
    assert_eq!(
        (forced.state(), forced.retry_after()),
        (State::ForcedOpen, None)
    );
    assert_ne!(r, forced);
    // The longest wait a rejection holds: about 584 years, not "no hint".
    let long = fusebox::Rejected::new("db", State::Open, Some(Duration::MAX));
    assert_eq!(long.retry_after(), Some(Duration::from_nanos(u64::MAX - 1)));
}
