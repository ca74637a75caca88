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
        let text = status(&[view()], false, Look::PLAIN);
        let line = text.lines().nth(1).unwrap();
        for part in ["payments", "open (10m left)", "25.0%", "4", "1/2", "4.2s"] {
            assert!(line.contains(part), "{part:?} missing in {line:?}");
        }
    }

    #[test]
    fn status_as_json() {
        let v: Value = serde_json::from_str(&status(&[view()], true, Look::PLAIN)).unwrap();
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
        let text = status(&[hostile_view(), plain], false, Look::PLAIN);
        assert!(!text.chars().any(|c| c != '\n' && hostile(c)), "{text:?}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "one header and one row per breaker: {text}");
        assert!(lines[1].starts_with("pay\\nfake-row  open\\e[31m\\u{202e}  open"));
        assert!(lines[1].ends_with("pooled\\r\\u{9b}"), "{}", lines[1]);
        // Widths come from the escaped text: the next column starts at one place.
        let state_at = lines[0].find("STATE").unwrap();
        assert_eq!(lines[1][state_at..].split(' ').next(), Some("open"));
        assert_eq!(lines[2][state_at..].split(' ').next(), Some("open"));

        let text = instances(&hostile_view(), false, Look::PLAIN);
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
            instances(&empty, false, Look::PLAIN),
            "pay\\nfake-row  open\\e[31m\\u{202e}: no instance has reported recently"
        );
    }

    #[test]
    fn json_keeps_the_text_and_no_raw_control_reaches_the_terminal() {
        let view = hostile_view();
        for doc in [
            status(std::slice::from_ref(&view), true, Look::PLAIN),
            instances(&view, true, Look::PLAIN),
        ] {
            assert!(!doc.chars().any(|c| c != '\n' && hostile(c)), "{doc:?}");
            let v: Value = serde_json::from_str(&doc).unwrap();
            let v = if v.is_array() { v[0].clone() } else { v };
            assert_eq!(v["name"], view.name.as_str());
            assert_eq!(v["instances"][0]["id"], view.instances[0].id.as_str());
        }
        let doc = status(std::slice::from_ref(&view), true, Look::PLAIN);
        let v: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(v[0]["mode"], view.record.mode.as_str());
        assert_eq!(v[0]["reason"], view.record.reason.as_str());
        assert!(doc.contains("\\u202e") && doc.contains("\\u009b"), "{doc}");
        // Compact documents too (the --watch --json lines).
        let line = json_text(status_json(&[view]).to_string());
        assert!(!line.chars().any(hostile), "{line:?}");
    }

    #[test]
    fn the_state_shown_is_the_one_calls_meet() {
        // Forced open over a fleet the trip rules keep closed.
        let mut v = view();
        v.record.state = FleetState::Closed;
        let text = status(std::slice::from_ref(&v), false, Look::PLAIN);
        let line = text.lines().nth(1).unwrap();
        let header = text.lines().next().unwrap();
        let at = |column: &str| header.find(column).unwrap();
        assert_eq!(
            line[at("STATE")..].split(' ').next(),
            Some("open"),
            "{text}"
        );
        assert!(
            line[at("FORCED")..].starts_with("open (10m left)"),
            "{text}"
        );
        let json: Value = serde_json::from_str(&status(&[v.clone()], true, Look::PLAIN)).unwrap();
        assert_eq!(json[0]["state"], "open");
        assert_eq!(json[0]["fleet_state"], "closed");
        assert!(instances(&v, false, Look::PLAIN).starts_with("payments: fleet open"));

        // Forced closed over an open fleet.
        v.record.state = FleetState::Open;
        v.record.forced = Some(ForcedState::Closed);
        let json: Value = serde_json::from_str(&status(&[v.clone()], true, Look::PLAIN)).unwrap();
        assert_eq!(json[0]["state"], "closed");
        assert_eq!(json[0]["fleet_state"], "open");

        // Nothing forced: the fleet's own state.
        v.record.forced = None;
        v.record.state = FleetState::HalfOpen;
        let json: Value = serde_json::from_str(&status(&[v], true, Look::PLAIN)).unwrap();
        assert_eq!(json[0]["state"], "half_open");
        assert_eq!(json[0]["fleet_state"], "half_open");
    }

    #[test]
    fn a_breaker_that_never_changed_has_no_time_of_change() {
        let mut v = view();
        v.record.changed_ms = 0;
        let json: Value = serde_json::from_str(&status(&[v.clone()], true, Look::PLAIN)).unwrap();
        assert_eq!(json[0]["changed_at"], Value::Null);
        v.record.changed_ms = 1_700_000_000_000;
        let json: Value = serde_json::from_str(&status(&[v], true, Look::PLAIN)).unwrap();
        assert_eq!(json[0]["changed_at"], "2023-11-14T22:13:20Z");
    }

    fn many() -> Vec<FleetView> {
        ["payments-api", "search", "inventory-service-eu-west-1"]
            .into_iter()
            .map(|name| FleetView {
                name: name.into(),
                ..view()
            })
            .collect()
    }

    #[test]
    fn a_narrow_terminal_gets_a_narrow_table_with_whole_words() {
        let wide = status(&many(), false, Look::PLAIN);
        assert!(wide.lines().any(|l| l.chars().count() > 100), "{wide}");
        for width in [100_u16, 80, 60] {
            let look = Look {
                width: Some(width),
                colour: false,
            };
            let text = status(&many(), false, look);
            for line in text.lines() {
                assert!(
                    line.chars().count() <= usize::from(width),
                    "{width}: {line:?}\n{text}"
                );
            }
            // Wrapping happens inside cells at spaces: every word of the headers, names
            // and values shown is still whole on some line; a column left out is named.
            let whole = |word: &str| {
                text.lines()
                    .any(|l| l.split_whitespace().any(|w| w == word))
            };
            for word in [
                "BREAKER",
                "STATE",
                "FORCED",
                "FAILURE",
                "RATE",
                "payments-api",
                "search",
                "inventory-service-eu-west-1",
                "25.0%",
                "(10m",
                "left)",
            ] {
                assert!(whole(word), "{width}: {word:?} was split\n{text}");
            }
            let note = text
                .split("(left out")
                .nth(1)
                .unwrap_or("")
                .replace('\n', " ");
            for column in ["CALLS", "LIVE", "OPEN VOTES", "COOLDOWN", "MODE"] {
                assert!(
                    whole(column.split(' ').next().unwrap()) || note.contains(column),
                    "{width}: {column} neither shown nor named\n{text}"
                );
            }
        }
        // Wide enough for everything: nothing left out, one line per breaker.
        let text = status(
            &many(),
            false,
            Look {
                width: Some(200),
                colour: false,
            },
        );
        assert_eq!(text, wide);
        // Narrower than the name itself: the name wraps, nothing panics.
        for width in [0_u16, 1, 10, 20] {
            let look = Look {
                width: Some(width),
                colour: false,
            };
            assert!(status(&many(), false, look).contains("(left"));
            let _ = instances(&view(), false, look);
        }
    }

    #[test]
    fn colour_marks_states_only_when_asked() {
        let plain = status(&many(), false, Look::PLAIN);
        assert!(!plain.contains('\x1b'), "{plain}");
        let coloured = status(
            &many(),
            false,
            Look {
                width: None,
                colour: true,
            },
        );
        // Red for open, and the names themselves untouched.
        assert!(
            coloured.contains("\x1b[38;5;9mopen") || coloured.contains("\x1b[31mopen"),
            "{coloured:?}"
        );
        assert!(
            coloured
                .lines()
                .nth(1)
                .unwrap()
                .starts_with("payments-api  "),
            "{coloured:?}"
        );
        let text = instances(
            &view(),
            false,
            Look {
                width: None,
                colour: true,
            },
        );
        assert!(text.contains('\x1b'), "{text:?}");
    }

    #[test]
    fn durations() {
        assert_eq!(short(850), "850ms");
        assert_eq!(short(4_200), "4.2s");
        assert_eq!(short(598_000), "9m 58s");
    }
}
