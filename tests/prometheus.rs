//! The Prometheus example serves real metrics: scrape it over HTTP and read the lines.

#[allow(dead_code)] // the example's `main` is not called here
#[path = "../examples/prometheus.rs"]
mod example;

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "current_thread")]
async fn the_example_endpoint_serves_fusebox_metrics() {
    let text = example::serve_and_scrape()
        .await
        .expect("served and scraped");
    let value =
        |series: &str| sample(&text, series).unwrap_or_else(|| panic!("no `{series}` in:\n{text}"));
    assert_eq!(
        value(r#"fusebox_calls_total{breaker="inventory",outcome="success"}"#),
        2.0
    );
    assert_eq!(
        value(r#"fusebox_calls_total{breaker="inventory",outcome="failure"}"#),
        3.0
    );
    assert_eq!(
        value(r#"fusebox_calls_total{breaker="inventory",outcome="rejected"}"#),
        1.0
    );
    assert_eq!(
        value(r#"fusebox_breaker_transitions_total{breaker="inventory",from="closed",to="open"}"#),
        1.0
    );
    assert_eq!(value(r#"fusebox_breaker_state{breaker="inventory"}"#), 1.0);
    assert_eq!(
        value(r#"fusebox_call_duration_seconds_count{breaker="inventory"}"#),
        5.0
    );
    assert_eq!(
        value(r#"fusebox_call_duration_seconds_bucket{breaker="inventory",le="+Inf"}"#),
        5.0
    );
    assert_eq!(
        value(r#"fusebox_retries_total{policy="inventory-retry",reason="error"}"#),
        2.0
    );
    assert_eq!(
        value(r#"fusebox_retry_give_ups_total{policy="inventory-retry",reason="max_retries"}"#),
        1.0
    );
    assert_eq!(
        value(r#"fusebox_bulkhead_rejections_total{policy="exports"}"#),
        1.0
    );
    // The open breaker and the full bulkhead: one failed component, an open state.
    assert_eq!(value(r#"fusebox_mode{controller="storefront"}"#), 1.0);
    assert_eq!(
        value(r#"fusebox_mode_degraded{controller="storefront"}"#),
        1.0
    );
    assert_eq!(
        value(
            r#"fusebox_mode_transitions_total{controller="storefront",from="PRIMARY",to="HEURISTIC"}"#
        ),
        1.0
    );
    // Every series the example publishes is described: a `# HELP` line with its meaning.
    for series in [
        "fusebox_calls_total",
        "fusebox_call_duration_seconds",
        "fusebox_breaker_state",
        "fusebox_breaker_transitions_total",
        "fusebox_retries_total",
        "fusebox_retry_give_ups_total",
        "fusebox_bulkhead_rejections_total",
        "fusebox_mode",
        "fusebox_mode_degraded",
        "fusebox_mode_transitions_total",
    ] {
        let help = format!("# HELP {series} ");
        let line = text.lines().find(|l| l.starts_with(&help));
        let line = line.unwrap_or_else(|| panic!("no `{help}` line in:\n{text}"));
        assert!(line.len() > help.len() + 10, "an empty description: {line}");
    }
    assert!(text.contains("# TYPE fusebox_calls_total counter"));
    assert!(text.contains("# TYPE fusebox_call_duration_seconds histogram"));
}
