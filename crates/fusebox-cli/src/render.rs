//! Tables and JSON for `status` and `instances`, and the `--watch` loop.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fusebox_fleet::{FleetState, FleetView, ForcedState, InstanceView, StateStore};
use serde_json::{Value, json};

use crate::store::CliError;
use crate::table::{Cell, Look, table};

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

/// `status` as a table drawn with `look`, or pretty JSON.
pub fn status(views: &[FleetView], json: bool, look: Look) -> String {
    if json {
        return json_text(serde_json::to_string_pretty(&status_json(views)).unwrap_or_default());
    }
    if views.is_empty() {
        return "no breakers yet: they appear once an instance has synced".to_owned();
    }
    let header = [
        "BREAKER",
        "STATE",
        "FORCED",
        "FAILURE RATE",
        "CALLS",
        "LIVE",
        "OPEN VOTES",
        "COOLDOWN",
        "MODE",
    ];
    let rows = views
        .iter()
        .map(|v| {
            let calls = reported_calls(v);
            let state = effective_state(v);
            vec![
                clean(&v.name).into_owned().into(),
                Cell {
                    text: state.to_string(),
                    state: Some(state),
                },
                forced(v).into(),
                // No call reported yet: no rate, rather than a reassuring 0 %.
                if calls == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.1}%", v.failure_rate() * 100.0)
                }
                .into(),
                calls.to_string().into(),
                v.live_instances().to_string().into(),
                format!("{}/{}", v.open_votes(), v.live_instances()).into(),
                match v.cooldown_remaining_ms() {
                    0 => "-".to_owned(),
                    ms => short(ms),
                }
                .into(),
                if v.record.mode.is_empty() {
                    "-".to_owned()
                } else {
                    clean(&v.record.mode).into_owned()
                }
                .into(),
            ]
        })
        .collect();
    table(&header, rows, look)
}

fn status_json(views: &[FleetView]) -> Value {
    Value::Array(
        views
            .iter()
            .map(|v| {
                let calls = reported_calls(v);
                json!({
                    "name": v.name,
                    // What calls meet; `fleet_state` is what the trip rules decided under
                    // an operator's forced state.
                    "state": effective_state(v).as_str(),
                    "fleet_state": v.record.state.as_str(),
                    "forced": v.record.forced.map(|f| f.as_str()),
                    "forced_remaining_ms": v.record.forced_until_ms.map(|u| u.saturating_sub(v.now_ms)),
                    "failure_rate": (calls > 0).then(|| v.failure_rate()),
                    "calls": calls,
                    "failures": v.totals().failures,
                    "live_instances": v.live_instances(),
                    "open_votes": v.open_votes(),
                    "cooldown_remaining_ms": v.cooldown_remaining_ms(),
                    "generation": v.record.generation,
                    "trips": v.record.trips,
                    "opens": v.record.opens,
                    "transitions": v.record.transitions,
                    "mode": v.record.mode,
                    "reason": v.record.reason,
                    // A breaker that never changed state has no time of change.
                    "changed_at": (v.record.changed_ms > 0).then(|| timestamp(v.record.changed_ms)),
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

/// `instances NAME` as a table drawn with `look`, or pretty JSON.
pub fn instances(view: &FleetView, json: bool, look: Look) -> String {
    if json {
        let list: Vec<Value> = view.instances.iter().map(instance_json).collect();
        return json_text(
            serde_json::to_string_pretty(&json!({ "name": view.name, "instances": list }))
                .unwrap_or_default(),
        );
    }
    if view.instances.is_empty() {
        return format!("{}: no instance has reported recently", clean(&view.name));
    }
    let header = [
        "INSTANCE",
        "LIVE",
        "LEASE",
        "VERDICT",
        "SUCCESSES",
        "FAILURES",
        "SLOW",
        "TRIALS",
    ];
    let rows = view
        .instances
        .iter()
        .map(|i| {
            let verdict = if i.local_open {
                FleetState::Open
            } else {
                FleetState::Closed
            };
            vec![
                clean(&i.id).into_owned().into(),
                if i.live { "yes" } else { "no" }.to_owned().into(),
                short(i.lease_remaining_ms).into(),
                Cell {
                    text: verdict.to_string(),
                    state: Some(verdict),
                },
                i.successes.to_string().into(),
                i.failures.to_string().into(),
                i.slow.to_string().into(),
                i.trials_claimed.to_string().into(),
            ]
        })
        .collect();
    format!(
        "{}: fleet {} ({} of {} live instances vote open)\n{}",
        clean(&view.name),
        effective_state(view),
        view.open_votes(),
        view.live_instances(),
        table(&header, rows, look)
    )
}

/// Redraws the status until Ctrl-C; store errors are shown and retried.
pub async fn watch(
    store: &dyn StateStore,
    label: &str,
    json: bool,
    interval: Duration,
    look: impl Fn() -> Look,
) -> Result<(), CliError> {
    let mut out = std::io::stdout();
    loop {
        let frame = collect(store).await;
        let text = if json {
            match frame {
                Ok(views) => json_text(status_json(&views).to_string()),
                Err(e) => json_text(json!({ "error": e.to_string() }).to_string()),
            }
        } else {
            let body = match frame {
                // Measured each frame: the terminal may have been resized.
                Ok(views) => status(&views, false, look()),
                Err(e) => format!("{e} (retrying)"),
            };
            // Home, clear, redraw: a live table.
            format!(
                "\x1b[H\x1b[2J{}, every {}, {} (Ctrl-C to quit)\n\n{body}",
                clean(label),
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

/// Text from the store or the command line, safe to print: a name holding an escape
/// sequence could restyle or clear the terminal, a newline could forge a table row, a bidi
/// override could reorder what the operator reads. Each such character is shown as an
/// escape instead (`\n`, `\e`, `\u{202e}`); other text, any script, is left alone.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hostile) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x1b' => out.push_str("\\e"),
            c if hostile(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// C0, DEL and C1 controls, the bidi marks, embeddings, overrides and isolates, and the
/// Unicode line and paragraph separators (a line break to some terminals).
fn hostile(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// serde_json escapes only U+0000..U+001F, so DEL, C1 controls and bidi overrides in a name
/// would reach the terminal raw; as `\uXXXX` the document still decodes to the same text.
/// Below U+007F nothing is touched: serde has escaped those inside strings, and the rest
/// are the document's own newlines.
fn json_text(doc: String) -> String {
    let raw = |c: char| u32::from(c) >= 0x7f && hostile(c);
    if !doc.chars().any(raw) {
        return doc;
    }
    let mut out = String::with_capacity(doc.len() + 16);
    for c in doc.chars() {
        if raw(c) {
            // Every such character is in the Basic Multilingual Plane: one escape each.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
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

/// The state calls meet: an operator's forced state over what the trip rules decided.
fn effective_state(v: &FleetView) -> FleetState {
    match v.record.forced {
        Some(ForcedState::Open) => FleetState::Open,
        Some(ForcedState::Closed) => FleetState::Closed,
        None => v.record.state,
    }
}

/// Calls the fleet's instances have reported, in all: until there is one, the fleet has no
/// failure rate.
fn reported_calls(v: &FleetView) -> u64 {
    let t = v.totals();
    t.successes.saturating_add(t.failures)
}

#[cfg(test)]
mod tests;
