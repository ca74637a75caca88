use std::time::Duration;

use super::*;
use fusebox_core::breaker::{Breaker, State};
use fusebox_core::clock::ManualClock;
use fusebox_policy::policy::Bulkhead;

fn check<O: Into<CheckOutcome> + Send + 'static>(
    name: &'static str,
    after: Duration,
    outcome: impl Fn() -> O + Send + Sync + 'static,
) -> HealthCheckBuilder {
    let outcome = std::sync::Arc::new(outcome);
    HealthCheck::builder(name, move || {
        let outcome = outcome.clone();
        async move {
            tokio::time::sleep(after).await;
            outcome()
        }
    })
}

#[tokio::test(start_paused = true)]
async fn checks_run_side_by_side_each_within_its_timeout() {
    let registry = HealthRegistry::new();
    let second = Duration::from_secs(1);
    for name in ["a", "b", "c"] {
        registry
            .add_check(check(name, second, CheckOutcome::healthy).build().unwrap())
            .unwrap();
    }
    let slow = check("slow", second * 10, CheckOutcome::healthy)
        .timeout(second * 2)
        .build()
        .unwrap();
    registry.add_check(slow).unwrap();

    let started = tokio::time::Instant::now();
    let report = registry.report().await;
    // Three 1 s checks and one cut at 2 s: 2 s in all, not 5.
    assert_eq!(started.elapsed(), second * 2);
    let statuses: Vec<_> = report.components.iter().map(|c| c.status).collect();
    use HealthStatus::*;
    assert_eq!(statuses, [Healthy, Healthy, Healthy, Unhealthy]);
    assert_eq!(
        report.components[3].detail.as_deref(),
        Some("timed out after 2s")
    );
    assert_eq!(report.components[0].elapsed_ms, Some(1000));
    assert_eq!(report.status, Degraded);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_check_is_unhealthy_and_the_report_survives() {
    let registry = HealthRegistry::new();
    let panics = HealthCheck::builder("boom", || async {
        if true {
            panic!("the check itself is broken");
        }
        Ok::<(), String>(())
    })
    .critical()
    .build()
    .unwrap();
    registry.add_check(panics).unwrap();
    let report = registry.report().await;
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert_eq!(
        report.components[0].detail.as_deref(),
        Some("the check panicked")
    );
}

#[tokio::test(start_paused = true)]
async fn only_a_critical_failure_makes_the_report_unhealthy() {
    let registry = HealthRegistry::new();
    registry
        .add_check(
            check("cache", Duration::ZERO, || Err::<(), _>("evicted"))
                .build()
                .unwrap(),
        )
        .unwrap();
    let report = registry.report().await;
    assert_eq!(report.status, HealthStatus::Degraded);
    assert_eq!(report.failed_components, 1);
    assert_eq!(report.components[0].detail.as_deref(), Some("evicted"));

    registry
        .add_check(
            check("db", Duration::ZERO, || Err::<(), _>("refused"))
                .critical()
                .build()
                .unwrap(),
        )
        .unwrap();
    let report = registry.report().await;
    assert_eq!(report.status, HealthStatus::Unhealthy);
    assert_eq!(report.failed_components, 2);
}

#[tokio::test]
async fn breakers_bulkheads_and_retries_report_what_they_know() {
    let clock = ManualClock::new();
    let breaker = Breaker::builder("api")
        .consecutive_failures(1)
        .cooldown(Duration::from_secs(10))
        .clock(clock.clone())
        .build()
        .unwrap();
    let bulkhead = Bulkhead::builder("pool").max_concurrent(1).build().unwrap();
    let stats = RetryStats::with_clock(clock.clone());
    let registry = HealthRegistry::new();
    registry.add_breaker(&breaker).unwrap();
    registry.add_bulkhead(&bulkhead).unwrap();
    registry.add_retry("fetch", &stats).unwrap();
    assert_eq!(registry.report().await.status, HealthStatus::Healthy);

    breaker.record_failure();
    let _slot = bulkhead.try_enter().unwrap();
    stats.record_retry();
    stats.record_retry();
    stats.record_give_up();
    let report = registry.report().await;
    assert_eq!(report.status, HealthStatus::Degraded);
    assert_eq!(
        (report.failed_components, report.degraded_components),
        (1, 1)
    );
    assert_eq!(report.open_breakers, 1);
    assert_eq!(report.worst_breaker_state(), State::Open);
    assert_eq!(
        (report.retries_last_hour, report.give_ups_last_hour),
        (2, 1)
    );
    assert_eq!(
        report.components[0].detail.as_deref(),
        Some("open; trial calls in 10s")
    );
    assert_eq!(
        report.components[1].detail.as_deref(),
        Some("0 of 1 slots free")
    );

    clock.advance(Duration::from_secs(10));
    let report = registry.report().await;
    assert_eq!(report.components[0].state, Some(State::HalfOpen));
    assert_eq!(report.components[0].status, HealthStatus::Degraded);
}

#[test]
fn registration_rejects_duplicate_and_empty_names() {
    let registry = HealthRegistry::new();
    registry.add_retry("x", &RetryStats::new()).unwrap();
    let breaker = Breaker::builder("x").build().unwrap();
    assert_eq!(
        registry.add_breaker(&breaker).unwrap_err().to_string(),
        "invalid `name`: `x` is already registered"
    );
    assert!(registry.add_retry("", &RetryStats::new()).is_err());
}

#[cfg(feature = "serde")]
#[tokio::test]
async fn the_report_is_json() {
    let registry = HealthRegistry::new();
    let breaker = Breaker::builder("db").build().unwrap();
    registry.add_critical_breaker(&breaker).unwrap();
    breaker.force_open();
    let json = serde_json::to_value(registry.report().await).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "status": "unhealthy",
            "failed_components": 1,
            "degraded_components": 0,
            "open_breakers": 1,
            "retries_last_hour": 0,
            "give_ups_last_hour": 0,
            "components": [{
                "name": "db",
                "kind": "breaker",
                "status": "unhealthy",
                "critical": true,
                "state": "forced_open",
                "detail": "forced open by an operator",
            }],
        })
    );
}
