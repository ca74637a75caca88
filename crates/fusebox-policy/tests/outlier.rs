//! Outlier ejection on paused time: runs of failures and failure rates eject, ejections
//! lengthen when repeated and end on time, and the cap on ejected endpoints holds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox_core::Outcome;
use fusebox_policy::TokioClock;
use fusebox_policy::policy::{
    EjectionReason, OutlierDetector, OutlierDetectorBuilder, OutlierEvent,
};

const BASE: Duration = Duration::from_secs(30);

fn builder() -> OutlierDetectorBuilder<u32> {
    OutlierDetector::builder("replicas")
        .consecutive_failures(5)
        .base_ejection_time(BASE)
        .max_ejection_time(Duration::from_secs(300))
        .max_ejection_percent(50)
        .clock(TokioClock::new())
}

fn fail(detector: &OutlierDetector<u32>, key: u32, times: u32) {
    for _ in 0..times {
        if let Ok(permit) = detector.admit(&key) {
            permit.failure();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn five_consecutive_failures_eject_and_a_success_restarts_the_count() {
    let detector = builder().build().unwrap();
    detector.available(&[1, 2]);
    fail(&detector, 1, 4);
    detector.admit(&1).unwrap().success();
    fail(&detector, 1, 4);
    assert!(!detector.is_ejected(&1), "4 failures since the success");
    fail(&detector, 1, 1);
    assert!(detector.is_ejected(&1));
    let refused = detector.admit(&1).unwrap_err();
    assert_eq!(refused.name, "1");
    assert_eq!(refused.retry_after, BASE);
    assert!(
        detector.admit(&2).is_ok(),
        "the other endpoint keeps serving"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_rate_over_the_window_ejects() {
    let detector = builder()
        .no_consecutive_failures()
        .failure_rate(0.5, 10)
        .failure_rate_window(Duration::from_secs(10))
        .build()
        .unwrap();
    detector.available(&[1, 2]);
    // Alternating: never two failures in a row, but half the calls fail.
    for i in 0..9 {
        let permit = detector.admit(&1).unwrap();
        if i % 2 == 0 {
            permit.success();
        } else {
            permit.failure();
        }
    }
    assert!(!detector.is_ejected(&1), "9 calls: under min_calls");
    detector.admit(&1).unwrap().failure(); // 5 of 10
    assert!(detector.is_ejected(&1));

    // 4 of 10 stays in.
    tokio::time::advance(BASE).await;
    for i in 0..10 {
        let permit = detector.admit(&2).unwrap();
        if i % 5 < 2 {
            permit.failure();
        } else {
            permit.success();
        }
    }
    assert!(!detector.is_ejected(&2));
}

#[tokio::test(start_paused = true)]
async fn the_second_ejection_lasts_twice_as_long_and_each_ends_on_time() {
    let detector = builder().build().unwrap();
    detector.available(&[1, 2]);
    fail(&detector, 1, 5);
    tokio::time::advance(BASE - Duration::from_millis(1)).await;
    assert!(detector.is_ejected(&1));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(detector.admit(&1).is_ok(), "back after the base time");

    // Counts were cleared on return: four more failures do not eject, the fifth does.
    fail(&detector, 1, 4);
    assert!(!detector.is_ejected(&1));
    fail(&detector, 1, 1);
    assert_eq!(detector.admit(&1).unwrap_err().retry_after, 2 * BASE);
    tokio::time::advance(2 * BASE - Duration::from_millis(1)).await;
    assert!(detector.is_ejected(&1));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(!detector.is_ejected(&1));

    // Two base intervals back in: the count decayed from 2 to 0, a new ejection is short.
    tokio::time::advance(2 * BASE).await;
    fail(&detector, 1, 5);
    assert_eq!(detector.admit(&1).unwrap_err().retry_after, BASE);
}

#[tokio::test(start_paused = true)]
async fn ejections_are_capped_at_the_max_ejection_time() {
    let detector = builder()
        .max_ejection_time(Duration::from_secs(70))
        .build()
        .unwrap();
    detector.available(&[1, 2]);
    let mut lengths = Vec::new();
    for _ in 0..4 {
        fail(&detector, 1, 5);
        let left = detector.admit(&1).unwrap_err().retry_after;
        lengths.push(left.as_secs());
        tokio::time::advance(left).await;
    }
    assert_eq!(lengths, [30, 60, 70, 70]);
}

#[tokio::test(start_paused = true)]
async fn at_most_half_of_ten_endpoints_are_ejected() {
    let detector = builder().build().unwrap();
    let endpoints: Vec<u32> = (0..10).collect();
    assert_eq!(detector.available(&endpoints).len(), 10);

    for key in 0..5 {
        fail(&detector, key, 5);
    }
    assert_eq!(detector.ejected().len(), 5);
    assert_eq!(detector.available(&endpoints).len(), 5);

    // Three more endpoints fail as badly: the cap keeps them in.
    for key in 5..8 {
        fail(&detector, key, 20);
    }
    let mut ejected = detector.ejected();
    ejected.sort_unstable();
    assert_eq!(ejected, [0, 1, 2, 3, 4]);
    for key in 5..10 {
        assert!(detector.admit(&key).is_ok(), "endpoint {key} kept in");
    }

    // Once the first five return, the next failures of the kept ones eject them.
    tokio::time::advance(BASE).await;
    for key in 5..8 {
        fail(&detector, key, 1);
    }
    let mut ejected = detector.ejected();
    ejected.sort_unstable();
    assert_eq!(ejected, [5, 6, 7]);
}

#[tokio::test(start_paused = true)]
async fn listeners_hear_ejections_kept_outliers_and_returns() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let detector = builder()
        .consecutive_failures(1)
        .on_event(move |event| {
            let line = match event {
                OutlierEvent::Ejected {
                    key,
                    reason,
                    ejected_for,
                    ejections,
                    ejected_now,
                } => {
                    assert_eq!(*reason, EjectionReason::ConsecutiveFailures);
                    format!(
                        "ejected {key} for {}s (#{ejections}, {ejected_now} out)",
                        ejected_for.as_secs()
                    )
                }
                OutlierEvent::Kept { key, .. } => format!("kept {key}"),
                OutlierEvent::Returned { key, ejected_now } => {
                    format!("returned {key} ({ejected_now} out)")
                }
                _ => "other".to_string(),
            };
            seen.lock().unwrap().push(line);
        })
        .build()
        .unwrap();
    detector.available(&[1, 2]);
    fail(&detector, 1, 1);
    fail(&detector, 2, 1);
    tokio::time::advance(BASE).await;
    detector.record(&1, Outcome::Success);
    assert_eq!(
        *events.lock().unwrap(),
        [
            "ejected 1 for 30s (#1, 1 out)",
            "kept 2",
            "returned 1 (0 out)"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn call_counts_errors_as_failures() {
    let detector = builder().consecutive_failures(2).build().unwrap();
    detector.available(&[1, 2]);
    for _ in 0..2 {
        let result = detector.call(&1, || async { Err::<(), _>("reset") }).await;
        assert!(matches!(result, Err(fusebox_core::Error::Inner("reset"))));
    }
    let refused = detector.call(&1, || async { Ok::<_, ()>(()) }).await;
    assert_eq!(refused.unwrap_err().stopped_by(), Some("outlier_ejection"));
}

#[test]
fn settings_are_validated_naming_the_field() {
    let field = |b: OutlierDetectorBuilder<u32>| b.build().unwrap_err().field();
    assert_eq!(
        field(OutlierDetector::builder("a").failure_rate(1.5, 5)),
        Some("failure_rate")
    );
    assert_eq!(
        field(OutlierDetector::builder("a").failure_rate(-0.1, 5)),
        Some("failure_rate")
    );
    assert_eq!(
        field(OutlierDetector::builder("a").max_ejection_time(Duration::from_secs(29))),
        Some("max_ejection_time")
    );
    assert!(
        OutlierDetector::<u32>::builder("a")
            .max_ejection_percent(0)
            .build()
            .is_ok()
    );
}
