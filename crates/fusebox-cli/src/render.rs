//! Tables and JSON for `status` and `instances`, and the `--watch` loop.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fusebox_fleet::{FleetView, InstanceView, StateStore};
use serde_json::{Value, json};

use crate::store::CliError;

/// Every breaker's view, by name.
pub async fn collect(store: &dyn StateStore) -> Result<Vec<FleetView>, CliError> {
    let names = store.breakers().await.map_err(CliError::from)?;
    let mut views = Vec::with_capacity(names.len());
    for name in names {
        // A breaker removed between the two reads is simply left out.
        if let Some(view) = store.view(&name).await.map_err(CliError::from)? {
            views.push(view);
        }
    }
    Ok(views)
}

/// `status` as a table or pretty JSON.
pub fn status(views: &[FleetView], json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(&status_json(views)).unwrap_or_default();
    }
    if views.is_empty() {
        return "no breakers yet: they appear once an instance has synced".to_owned();
    }
    let mut rows = vec![row(&[
        "BREAKER",
        "STATE",
        "FORCED",
        "FAILURE RATE",
        "CALLS",
        "LIVE",
        "OPEN VOTES",
        "COOLDOWN",
        "MODE",
    ])];
    for v in views {
        let calls: u64 = v.instances.iter().map(|i| i.successes + i.failures).sum();
        rows.push(vec![
            v.name.clone(),
            v.record.state.to_string(),
            forced(v),
            format!("{:.1}%", v.failure_rate() * 100.0),
            calls.to_string(),
            v.live_instances().to_string(),
            format!("{}/{}", v.open_votes(), v.live_instances()),
            match v.cooldown_remaining_ms() {
                0 => "-".to_owned(),
                ms => short(ms),
            },
            if v.record.mode.is_empty() {
                "-".to_owned()
            } else {
                v.record.mode.clone()
            },
        ]);
    }
    table(&rows)
}

fn status_json(views: &[FleetView]) -> Value {
    Value::Array(
        views
            .iter()
            .map(|v| {
                let calls: u64 = v.instances.iter().map(|i| i.successes + i.failures).sum();
                let failures: u64 = v.instances.iter().map(|i| i.failures).sum();
                json!({
                    "name": v.name,
                    "state": v.record.state.as_str(),
                    "forced": v.record.forced.map(|f| f.as_str()),
                    "forced_remaining_ms": v.record.forced_until_ms.map(|u| u.saturating_sub(v.now_ms)),
                    "failure_rate": v.failure_rate(),
                    "calls": calls,
                    "failures": failures,
                    "live_instances": v.live_instances(),
                    "open_votes": v.open_votes(),
                    "cooldown_remaining_ms": v.cooldown_remaining_ms(),
                    "generation": v.record.generation,
                    "trips": v.record.trips,
                    "opens": v.record.opens,
                    "transitions": v.record.transitions,
                    "mode": v.record.mode,
                    "reason": v.record.reason,
                    "changed_at": timestamp(v.record.changed_ms),
                    "instances": v.instances.iter().map(instance_json).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

fn instance_json(i: &InstanceView) -> Value {
    json!({
        "id": i.id,
        "live": i.live,
        "lease_remaining_ms": i.lease_remaining_ms,
        "local_open": i.local_open,
        "successes": i.successes,
        "failures": i.failures,
        "slow": i.slow,
        "trials_claimed": i.trials_claimed,
    })
}

/// `instances NAME` as a table or pretty JSON.
pub fn instances(view: &FleetView, json: bool) -> String {
    if json {
        let list: Vec<Value> = view.instances.iter().map(instance_json).collect();
        return serde_json::to_string_pretty(&json!({ "name": view.name, "instances": list }))
            .unwrap_or_default();
    }
    if view.instances.is_empty() {
        return format!("{}: no instance has reported recently", view.name);
    }
    let mut rows = vec![row(&[
        "INSTANCE",
        "LIVE",
        "LEASE",
        "VERDICT",
        "SUCCESSES",
        "FAILURES",
        "SLOW",
        "TRIALS",
    ])];
    for i in &view.instances {
        rows.push(vec![
            i.id.clone(),
            if i.live { "yes" } else { "no" }.to_owned(),
            short(i.lease_remaining_ms),
            if i.local_open { "open" } else { "closed" }.to_owned(),
            i.successes.to_string(),
            i.failures.to_string(),
            i.slow.to_string(),
            i.trials_claimed.to_string(),
        ]);
    }
    format!(
        "{}: fleet {} ({} of {} live instances vote open)\n{}",
        view.name,
        view.record.state,
        view.open_votes(),
        view.live_instances(),
        table(&rows)
    )
}

/// Redraws the status until Ctrl-C; store errors are shown and retried.
pub async fn watch(
    store: &dyn StateStore,
    label: &str,
    json: bool,
    interval: Duration,
) -> Result<(), CliError> {
    let mut out = std::io::stdout();
    loop {
        let frame = collect(store).await;
        let text = if json {
            match frame {
                Ok(views) => status_json(&views).to_string(),
                Err(e) => json!({ "error": e.to_string() }).to_string(),
            }
        } else {
            let body = match frame {
                Ok(views) => status(&views, false),
                Err(e) => format!("{e} (retrying)"),
            };
            // Home, clear, redraw: a live table.
            format!(
                "\x1b[H\x1b[2J{label}, every {}, {} (Ctrl-C to quit)\n\n{body}",
                humantime::format_duration(interval),
                humantime::format_rfc3339_seconds(SystemTime::now())
            )
        };
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() {
            return Ok(()); // the reader went away (a closed pipe)
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

fn forced(v: &FleetView) -> String {
    match (v.record.forced, v.record.forced_until_ms) {
        (None, _) => "-".to_owned(),
        (Some(f), None) => f.as_str().to_owned(),
        (Some(f), Some(until)) => {
            format!(
                "{} ({} left)",
                f.as_str(),
                short(until.saturating_sub(v.now_ms))
            )
        }
    }
}

/// Milliseconds since the epoch as RFC 3339 (UTC, seconds).
/// Times past the calendar's four-digit years (which no store writes since durations are
/// bounded, but a damaged record might hold) are shown as such instead of formatted.
pub fn timestamp(ms: u64) -> String {
    // 9999-12-31T23:59:59Z, the last instant RFC 3339 can write.
    const LAST_RFC3339_MS: u64 = 253_402_300_799_000;
    if ms > LAST_RFC3339_MS {
        return format!("after 9999-12-31 ({ms} ms since the epoch)");
    }
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// "850ms", "4.2s", "9m 58s".
fn short(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        humantime::format_duration(Duration::from_secs(ms / 1000)).to_string()
    }
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, cell)| format!("{cell:<width$}", width = widths[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fusebox_fleet::{FleetState, ForcedState};

    fn view() -> FleetView {
        let mut v = FleetView {
            name: "payments".into(),
            now_ms: 10_000,
            ..Default::default()
        };
        v.record.state = FleetState::Open;
        v.record.open_until_ms = 14_200;
        v.record.forced = Some(ForcedState::Open);
        v.record.forced_until_ms = Some(610_000);
        v.instances = vec![
            InstanceView {
                id: "a".into(),
                live: true,
                local_open: true,
                successes: 3,
                failures: 1,
                ..Default::default()
            },
            InstanceView {
                id: "b".into(),
                live: true,
                ..Default::default()
            },
        ];
        v
    }

    #[test]
    fn status_table() {
        let text = status(&[view()], false);
        let line = text.lines().nth(1).unwrap();
        for part in ["payments", "open (10m left)", "25.0%", "4", "1/2", "4.2s"] {
            assert!(line.contains(part), "{part:?} missing in {line:?}");
        }
    }

    #[test]
    fn status_as_json() {
        let v: Value = serde_json::from_str(&status(&[view()], true)).unwrap();
        assert_eq!(v[0]["open_votes"], 1);
        assert_eq!(v[0]["cooldown_remaining_ms"], 4200);
        assert_eq!(v[0]["forced"], "open");
        assert_eq!(v[0]["instances"][1]["id"], "b");
    }

    #[test]
    fn durations() {
        assert_eq!(short(850), "850ms");
        assert_eq!(short(4_200), "4.2s");
        assert_eq!(short(598_000), "9m 58s");
    }
}
