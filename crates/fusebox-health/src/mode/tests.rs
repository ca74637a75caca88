use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::health::{ComponentHealth, ComponentKind, HealthReport, HealthStatus};
use fusebox_core::clock::ManualClock;
use fusebox_rule::Value;

const HEURISTIC_RULE: &str = r#"(state == "open" or retries_1h > 10) and failed_components < 2"#;

fn controller(clock: &ManualClock) -> (ModeController, Arc<Mutex<Vec<String>>>) {
    let entered = Arc::new(Mutex::new(Vec::new()));
    let (safe, heuristic) = (entered.clone(), entered.clone());
    let c = ModeController::builder("checkout", ["PRIMARY", "HEURISTIC", "SAFE"])
        .rule("HEURISTIC", HEURISTIC_RULE)
        .rule("SAFE", "failed_components >= 2")
        .on_enter("SAFE", move |t| {
            safe.lock().unwrap().push(format!("SAFE from {}", t.from))
        })
        .on_enter("HEURISTIC", move |t| {
            heuristic
                .lock()
                .unwrap()
                .push(format!("HEURISTIC from {}", t.from))
        })
        .clock(clock.clone())
        .build()
        .unwrap();
    (c, entered)
}

fn line(name: &str, status: HealthStatus) -> ComponentHealth {
    ComponentHealth::new(name, ComponentKind::Check, status)
}

fn open_breaker(name: &str) -> ComponentHealth {
    let mut line = ComponentHealth::new(name, ComponentKind::Breaker, HealthStatus::Unhealthy);
    line.state = Some(fusebox_core::breaker::State::Open);
    line
}

fn retries(n: u64) -> ComponentHealth {
    let mut line = ComponentHealth::new("fetch", ComponentKind::Retry, HealthStatus::Healthy);
    line.retries_last_hour = Some(n);
    line.give_ups_last_hour = Some(0);
    line
}

#[test]
fn two_failed_components_mean_safe_and_recovery_means_primary() {
    use HealthStatus::*;
    let clock = ManualClock::new();
    let (modes, entered) = controller(&clock);
    let all_well =
        HealthReport::from_components(vec![line("db", Healthy), line("search", Healthy)]);
    assert_eq!(modes.evaluate(&all_well).unwrap(), None);

    clock.advance(Duration::from_secs(5));
    let two_down =
        HealthReport::from_components(vec![line("db", Unhealthy), line("search", Unhealthy)]);
    let to_safe = modes.evaluate(&two_down).unwrap().unwrap();
    assert_eq!(
        to_safe,
        ModeTransition {
            from: "PRIMARY".into(),
            to: "SAFE".into(),
            reason: "rule `failed_components >= 2` holds".into(),
            at_nanos: 5_000_000_000,
            manual: false,
        }
    );
    assert!(modes.is_degraded());

    clock.advance(Duration::from_secs(60));
    let back = modes.evaluate(&all_well).unwrap().unwrap();
    assert_eq!((back.from.as_str(), back.to.as_str()), ("SAFE", "PRIMARY"));
    assert_eq!(back.reason, "no rule holds");
    assert_eq!(back.at_nanos, 65_000_000_000);
    assert!(!modes.is_degraded());
    assert_eq!(*entered.lock().unwrap(), ["SAFE from PRIMARY"]);
    assert_eq!(modes.transition_count(), 2);
    let log: Vec<_> = modes.history().into_iter().map(|t| t.to).collect();
    assert_eq!(log, ["SAFE", "PRIMARY"]);
}

#[test]
fn an_open_breaker_or_many_retries_mean_heuristic() {
    let clock = ManualClock::new();
    let (modes, entered) = controller(&clock);
    let breaker_open = HealthReport::from_components(vec![open_breaker("db")]);
    modes.evaluate(&breaker_open).unwrap();
    assert_eq!(modes.mode(), "HEURISTIC");

    modes
        .evaluate(&HealthReport::from_components(vec![retries(10)]))
        .unwrap();
    assert_eq!(modes.mode(), "PRIMARY");
    modes
        .evaluate(&HealthReport::from_components(vec![retries(11)]))
        .unwrap();
    assert_eq!(modes.mode(), "HEURISTIC");

    // An open breaker plus another failure: SAFE wins over HEURISTIC.
    let worse = HealthReport::from_components(vec![
        open_breaker("db"),
        line("search", HealthStatus::Unhealthy),
    ]);
    modes.evaluate(&worse).unwrap();
    assert_eq!(modes.mode(), "SAFE");
    assert_eq!(
        *entered.lock().unwrap(),
        [
            "HEURISTIC from PRIMARY",
            "HEURISTIC from PRIMARY",
            "SAFE from HEURISTIC"
        ]
    );
}

#[test]
fn an_override_pins_the_mode_and_clearing_it_restores_the_rules_choice() {
    let clock = ManualClock::new();
    let (modes, _) = controller(&clock);
    modes
        .set_override("SAFE", "operator: failover drill")
        .unwrap();
    assert!(modes.is_overridden());
    let breaker_open = HealthReport::from_components(vec![open_breaker("db")]);
    // The rules choose HEURISTIC, but the override holds.
    assert_eq!(modes.evaluate(&breaker_open).unwrap(), None);
    assert_eq!(modes.mode(), "SAFE");
    let back = modes.clear_override().unwrap();
    assert_eq!((back.to.as_str(), back.manual), ("HEURISTIC", true));
    assert_eq!(modes.clear_override(), None);
    let err = modes.set_override("PANIC", "typo").unwrap_err();
    assert_eq!(err.to_string(), "invalid `mode`: `PANIC` is not a mode");
}

#[test]
fn the_default_log_is_bounded() {
    let modes = ModeController::builder("c", ["A", "B"])
        .history(3)
        .build()
        .unwrap();
    for i in 0..5 {
        modes.set_override("B", i).unwrap();
        modes.clear_override();
    }
    assert_eq!(modes.transition_count(), 10);
    let log = modes.history();
    assert_eq!(log.len(), 3);
    assert_eq!(log[2].reason, "override cleared");
    assert_eq!(log[1].reason, "override: 4");
}

#[test]
fn build_errors_name_the_problem() {
    let err = |b: ModeControllerBuilder| b.build().unwrap_err().to_string();
    assert_eq!(
        err(ModeController::builder("c", Vec::<String>::new())),
        "invalid `modes`: needs at least one mode"
    );
    assert_eq!(
        err(ModeController::builder("c", ["A", "B"]).rule("C", "open_breakers > 0")),
        "invalid `rule`: `C` is not a mode"
    );
    assert!(
        err(ModeController::builder("c", ["A", "B"]).rule("A", "open_breakers > 0"))
            .contains("default mode")
    );
    assert!(
        err(ModeController::builder("c", ["A", "B"]).rule("B", "open_breakers >"))
            .starts_with("invalid `rule`: rule for `B`:")
    );
    assert!(
        err(ModeController::builder("c", ["A", "B"]).rule("B", r#"state > "open""#))
            .starts_with("invalid `rule`: rule for `B`:")
    );
    assert_eq!(
        err(ModeController::builder("c", ["A", "B"]).on_enter("Z", |_| {})),
        "invalid `on_enter`: `Z` is not a mode"
    );
}

#[test]
fn a_missing_variable_keeps_the_mode() {
    let schema = fusebox_rule::Schema::builder()
        .number("lag")
        .build()
        .unwrap();
    let modes = ModeController::builder("c", ["A", "B"])
        .schema(schema)
        .rule("B", "lag > 5")
        .build()
        .unwrap();
    modes.evaluate(&[("lag", Value::from(9))]).unwrap();
    let none: [(&str, Value<'_>); 0] = [];
    assert!(modes.evaluate(&none).is_err());
    assert_eq!(modes.mode(), "B");
}

#[cfg(feature = "metrics")]
#[test]
fn mode_metrics_follow_the_mode() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        let modes = ModeController::builder("api", ["A", "B", "C"])
            .build()
            .unwrap();
        modes.set_override("C", "drill").unwrap();
    });
    let mut rows: Vec<_> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels: Vec<_> = key.key().labels().map(|l| l.value().to_owned()).collect();
            (format!("{} {}", key.key().name(), labels.join(",")), value)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        rows,
        [
            ("fusebox_mode api".to_owned(), DebugValue::Gauge(2.0.into())),
            (
                "fusebox_mode_degraded api".to_owned(),
                DebugValue::Gauge(1.0.into())
            ),
            (
                "fusebox_mode_transitions_total api,A,C".to_owned(),
                DebugValue::Counter(1)
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_registry_drives_the_modes_both_ways() {
    use crate::health::{HealthCheck, HealthRegistry};
    use std::sync::atomic::{AtomicBool, Ordering};

    let failing = Arc::new(AtomicBool::new(false));
    let registry = HealthRegistry::new();
    for name in ["db", "search", "cache"] {
        let failing = failing.clone();
        let check = HealthCheck::builder(name, move || {
            let failing = failing.load(Ordering::Relaxed) && name != "cache";
            async move { if failing { Err("down") } else { Ok(()) } }
        })
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
        registry.add_check(check).unwrap();
    }
    let (modes, _) = controller(&ManualClock::new());
    assert_eq!(modes.update(&registry).await.unwrap(), None);
    failing.store(true, Ordering::Relaxed);
    modes.update(&registry).await.unwrap();
    assert_eq!(modes.mode(), "SAFE");
    failing.store(false, Ordering::Relaxed);
    modes.update(&registry).await.unwrap();
    assert_eq!(modes.mode(), "PRIMARY");
}
