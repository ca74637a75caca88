//! The same breaker configuration loads from TOML (feature `serde`).

use std::time::Duration;

use fusebox::breaker::{Breaker, BreakerSettings, Cooldown, WindowKind};

#[derive(serde::Deserialize)]
struct ServiceConfig {
    payments: BreakerSettings,
    search: BreakerSettings,
}

#[test]
fn loads_breakers_from_toml() {
    let text = r#"
        [payments]
        failures_in_window = 3
        window_calls = 10
        cooldown = "5s"
        cooldown_max = "2m"
        cooldown_factor = 2.0
        cooldown_jitter = 0.1
        half_open_successes = 5
        half_open_trials = 5
        half_open_concurrency = 1

        [search]
        failure_rate = 0.5
        window_span = "60s"
        window_buckets = 12
        min_calls = 20
        slow_call_threshold = "750ms"
        slow_call_rate = 0.8
        half_open_max_duration = "30s"
    "#;
    let config: ServiceConfig = toml::from_str(text).unwrap();
    let payments = Breaker::builder("payments")
        .settings(config.payments)
        .build()
        .unwrap();
    let c = payments.config();
    assert_eq!(c.window(), Some(WindowKind::Count { calls: 10 }));
    assert_eq!(c.failures_in_window(), Some(3));
    assert_eq!(c.half_open_concurrency(), 1);
    assert_eq!(
        c.cooldown(),
        Cooldown::Growing {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(120),
            factor: 2.0,
            jitter: 0.1
        }
    );
    let search = Breaker::builder("search")
        .settings(config.search)
        .build()
        .unwrap();
    let c = search.config();
    assert_eq!(
        c.window(),
        Some(WindowKind::Time {
            span: Duration::from_secs(60),
            buckets: 12
        })
    );
    assert_eq!(c.slow_calls(), Some((Duration::from_millis(750), 0.8)));
    assert_eq!(c.half_open_max_duration(), Some(Duration::from_secs(30)));
}

#[test]
fn toml_errors_are_typed() {
    // Unknown keys are refused at parse time...
    assert!(toml::from_str::<BreakerSettings>("failure_treshold = 3").is_err());
    // ...and out-of-range values at build time, naming the field.
    let settings: BreakerSettings = toml::from_str("failure_rate = 1.5").unwrap();
    let err = Breaker::builder("x")
        .settings(settings)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), Some("failure_rate"));
}

#[test]
fn settings_round_trip() {
    let settings = BreakerSettings {
        consecutive_failures: Some(4),
        cooldown: Some(Duration::from_millis(1500)),
        ..Default::default()
    };
    let text = toml::to_string(&settings).unwrap();
    let back: BreakerSettings = toml::from_str(&text).unwrap();
    assert_eq!(back, settings);
}
