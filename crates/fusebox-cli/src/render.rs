//! Tables and JSON for `status` and `instances`, and the `--watch` loop.

use std::borrow::Cow;
use std::fmt::Write as _;
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
        return json_text(serde_json::to_string_pretty(&status_json(views)).unwrap_or_default());
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
        let calls = reported_calls(v);
        rows.push(vec![
            clean(&v.name).into_owned(),
            v.record.state.to_string(),
            forced(v),
            // No call reported yet: no rate, rather than a reassuring 0 %.
            if calls == 0 {
                "-".to_owned()
            } else {
                format!("{:.1}%", v.failure_rate() * 100.0)
            },
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
                clean(&v.record.mode).into_owned()
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
                let calls = reported_calls(v);
                json!({
                    "name": v.name,
                    "state": v.record.state.as_str(),
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
        return json_text(
            serde_json::to_string_pretty(&json!({ "name": view.name, "instances": list }))
                .unwrap_or_default(),
        );
    }
    if view.instances.is_empty() {
        return format!("{}: no instance has reported recently", clean(&view.name));
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
            clean(&i.id).into_owned(),
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
        clean(&view.name),
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
                Ok(views) => json_text(status_json(&views).to_string()),
                Err(e) => json_text(json!({ "error": e.to_string() }).to_string()),
            }
        } else {
            let body = match frame {
                Ok(views) => status(&views, false),
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

/// Calls the fleet's instances have reported, in all: until there is one, the fleet has no
/// failure rate.
fn reported_calls(v: &FleetView) -> u64 {
    let t = v.totals();
    t.successes.saturating_add(t.failures)
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

    fn owned(text: &str) -> String {
        match clean(text) {
            Cow::Owned(s) => s,
            Cow::Borrowed(s) => panic!("{s:?} was left as it is"),
        }
    }

    #[test]
    fn plain_and_unicode_text_is_borrowed_unchanged() {
        for text in [
            "",
            "payments-api",
            "tenant 42 / eu-west",
            "zahlungs-dienst-äöü",
            "платежи",
            "支付服务",
            "مدفوعات",
            "café 🔥 👩\u{200d}💻",
            "back\\slash \"quoted\"",
        ] {
            assert!(
                matches!(clean(text), Cow::Borrowed(s) if s == text),
                "{text:?} was changed"
            );
        }
    }

    #[test]
    fn c0_controls_are_escaped() {
        assert_eq!(owned("a\nb"), "a\\nb");
        assert_eq!(owned("a\rb"), "a\\rb");
        assert_eq!(owned("a\tb"), "a\\tb");
        assert_eq!(owned("\x1b[31mred\x1b[0m"), "\\e[31mred\\e[0m");
        assert_eq!(owned("\0\x07\x08\x1f"), "\\u{0}\\u{7}\\u{8}\\u{1f}");
    }

    #[test]
    fn del_and_c1_controls_are_escaped() {
        assert_eq!(owned("a\x7fb"), "a\\u{7f}b");
        // U+009B is a one-character CSI to terminals that read C1 controls.
        assert_eq!(owned("\u{9b}2J\u{80}\u{9f}"), "\\u{9b}2J\\u{80}\\u{9f}");
    }

    #[test]
    fn bidi_controls_and_line_separators_are_escaped() {
        assert_eq!(owned("abc\u{202e}fed"), "abc\\u{202e}fed");
        for (c, shown) in [
            ('\u{061c}', "\\u{61c}"),
            ('\u{200e}', "\\u{200e}"),
            ('\u{200f}', "\\u{200f}"),
            ('\u{202a}', "\\u{202a}"),
            ('\u{202d}', "\\u{202d}"),
            ('\u{2066}', "\\u{2066}"),
            ('\u{2067}', "\\u{2067}"),
            ('\u{2068}', "\\u{2068}"),
            ('\u{2069}', "\\u{2069}"),
            ('\u{2028}', "\\u{2028}"),
            ('\u{2029}', "\\u{2029}"),
        ] {
            assert_eq!(owned(&format!("x{c}y")), format!("x{shown}y"));
        }
        // Escaped text is printable: cleaning it again changes nothing.
        let once = owned("\u{202e}\n\x1b");
        assert!(matches!(clean(&once), Cow::Borrowed(_)));
    }

    fn hostile_view() -> FleetView {
        let mut v = view();
        v.name = "pay\nfake-row  open\x1b[31m\u{202e}".into();
        v.record.mode = "pooled\r\u{9b}".into();
        v.record.reason = "tripped\u{2066}".into();
        v.instances[0].id = "host-1\n\x1b]0;title\x07".into();
        v
    }

    #[test]
    fn hostile_names_stay_in_their_row_and_column() {
        let plain = FleetView {
            name: "db".into(),
            ..view()
        };
        let text = status(&[hostile_view(), plain], false);
        assert!(!text.chars().any(|c| c != '\n' && hostile(c)), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "one header and one row per breaker: {text}");
        assert!(lines[1].starts_with("pay\\nfake-row  open\\e[31m\\u{202e}  open"));
        assert!(lines[1].ends_with("pooled\\r\\u{9b}"), "{}", lines[1]);
        // Widths come from the escaped text: the next column starts at one place.
        let state_at = lines[0].find("STATE").unwrap();
        assert_eq!(lines[1][state_at..].split(' ').next(), Some("open"));
        assert_eq!(lines[2][state_at..].split(' ').next(), Some("open"));

        let text = instances(&hostile_view(), false);
        assert!(!text.chars().any(|c| c != '\n' && hostile(c)), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "a heading, a header and two rows: {text}");
        assert!(lines[0].starts_with("pay\\nfake-row  open\\e[31m\\u{202e}: fleet open"));
        assert!(lines[2].starts_with("host-1\\n\\e]0;title\\u{7}  yes"));
        let live_at = lines[1].find("LIVE").unwrap();
        assert_eq!(lines[3][live_at..].split(' ').next(), Some("yes"));

        let mut empty = hostile_view();
        empty.instances.clear();
        assert_eq!(
            instances(&empty, false),
            "pay\\nfake-row  open\\e[31m\\u{202e}: no instance has reported recently"
        );
    }

    #[test]
    fn json_keeps_the_text_and_no_raw_control_reaches_the_terminal() {
        let view = hostile_view();
        for doc in [
            status(std::slice::from_ref(&view), true),
            instances(&view, true),
        ] {
            assert!(!doc.chars().any(|c| c != '\n' && hostile(c)), "{doc:?}");
            let v: Value = serde_json::from_str(&doc).unwrap();
            let v = if v.is_array() { v[0].clone() } else { v };
            assert_eq!(v["name"], view.name.as_str());
            assert_eq!(v["instances"][0]["id"], view.instances[0].id.as_str());
        }
        let doc = status(std::slice::from_ref(&view), true);
        let v: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v[0]["mode"], view.record.mode.as_str());
        assert_eq!(v[0]["reason"], view.record.reason.as_str());
        assert!(doc.contains("\\u202e") && doc.contains("\\u009b"), "{doc}");
        // Compact documents too (the --watch --json lines).
        let line = json_text(status_json(&[view]).to_string());
        assert!(!line.chars().any(hostile), "{line:?}");
    }

    #[test]
    fn durations() {
        assert_eq!(short(850), "850ms");
        assert_eq!(short(4_200), "4.2s");
        assert_eq!(short(598_000), "9m 58s");
    }
}
