//! The shipped Grafana dashboard queries only series fusebox publishes, and every one of them.

use std::collections::BTreeSet;

use fusebox::observe::names;

const DASHBOARD: &str = include_str!("../dashboards/fusebox.json");

/// Every PromQL expression of the dashboard: panel targets and template variable queries.
fn queries(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("expr" | "definition", serde_json::Value::String(q)) => found.push(q.clone()),
                    _ => queries(inner, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| queries(i, found)),
        _ => {}
    }
}

/// The `fusebox_…` series names a query reads.
fn series(query: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find("fusebox_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        found.push(&tail[..end]);
        rest = &tail[end..];
    }
    found
}

#[test]
fn the_dashboard_queries_exactly_the_series_fusebox_publishes() {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).expect("valid JSON");
    assert_eq!(dashboard["uid"], "fusebox-overview");
    let mut all = Vec::new();
    queries(&dashboard, &mut all);
    assert!(all.len() >= 13, "only {} queries", all.len());

    let histogram_samples = ["_bucket", "_sum", "_count"];
    let mut queried = BTreeSet::new();
    for query in &all {
        let read = series(query);
        assert!(
            !read.is_empty(),
            "a query without a fusebox series: {query}"
        );
        for name in read {
            let published = names::ALL.iter().find(|known| {
                **known == name
                    || (**known == names::CALL_DURATION
                        && histogram_samples
                            .iter()
                            .any(|s| name.strip_suffix(s) == Some(known)))
            });
            let published =
                published.unwrap_or_else(|| panic!("`{name}` is not published, in: {query}"));
            queried.insert(*published);
        }
    }
    let missing: Vec<_> = names::ALL
        .iter()
        .filter(|n| !queried.contains(*n))
        .collect();
    assert!(missing.is_empty(), "series without a panel: {missing:?}");
}

#[test]
fn every_panel_has_a_query_and_a_unique_id() {
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = BTreeSet::new();
    for panel in panels {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate id: {panel}"
        );
        if panel["type"] != "row" {
            let targets = panel["targets"].as_array().unwrap();
            assert!(
                !targets.is_empty(),
                "a panel without a query: {}",
                panel["title"]
            );
        }
    }
}
