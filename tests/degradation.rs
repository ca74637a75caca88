//! Progressive degradation end to end: breakers feed a health registry, rules over its report
//! choose the mode, and recovery brings the service back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox::breaker::{Breaker, State};
use fusebox::clock::ManualClock;
use fusebox::health::{HealthRegistry, HealthStatus, RetryStats};
use fusebox::mode::ModeController;

fn breaker(name: &'static str, clock: &ManualClock) -> Breaker {
    Breaker::builder(name)
        .consecutive_failures(2)
        .cooldown(Duration::from_secs(30))
        .clock(clock.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn two_failed_components_mean_safe_and_recovery_means_primary() {
    let clock = ManualClock::new();
    let (payments, search) = (breaker("payments", &clock), breaker("search", &clock));
    let retries = RetryStats::with_clock(clock.clone());
    let registry = HealthRegistry::new();
    registry.add_breaker(&payments).unwrap();
    registry.add_breaker(&search).unwrap();
    registry.add_retry("fetch", &retries).unwrap();

    let entered = Arc::new(Mutex::new(Vec::new()));
    let log = entered.clone();
    let modes = ModeController::builder("checkout", ["PRIMARY", "HEURISTIC", "SAFE"])
        .rule(
            "HEURISTIC",
            r#"(state == "open" or retries_1h > 10) and failed_components < 2"#,
        )
        .rule("SAFE", "failed_components >= 2")
        .on_change(move |t| log.lock().unwrap().push(format!("{} -> {}", t.from, t.to)))
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(modes.update(&registry).await.unwrap(), None);

    // Many retries in the hour, nothing down yet: HEURISTIC.
    for _ in 0..11 {
        retries.record_retry();
    }
    modes.update(&registry).await.unwrap();
    assert_eq!(modes.mode(), "HEURISTIC");

    // Both dependencies fail: two failed components, SAFE.
    for b in [&payments, &search] {
        b.record_failure();
        b.record_failure();
        assert_eq!(b.state(), State::Open);
    }
    let report = registry.report().await;
    assert_eq!(report.failed_components, 2);
    assert_eq!(report.status, HealthStatus::Degraded);
    modes.evaluate(&report).unwrap();
    assert_eq!(modes.mode(), "SAFE");

    // An hour later the cooldowns are long over and the retries forgotten; a trial call
    // closes each breaker, and the rules fall back to PRIMARY.
    clock.advance(Duration::from_secs(3600));
    for b in [&payments, &search] {
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), State::Closed);
    }
    let back = modes.update(&registry).await.unwrap().unwrap();
    assert_eq!((back.from.as_str(), back.to.as_str()), ("SAFE", "PRIMARY"));
    assert_eq!(back.at_nanos, 3_600_000_000_000);
    assert_eq!(
        *entered.lock().unwrap(),
        [
            "PRIMARY -> HEURISTIC",
            "HEURISTIC -> SAFE",
            "SAFE -> PRIMARY"
        ]
    );
    assert_eq!(modes.transition_count(), 3);
}
