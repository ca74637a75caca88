//! Tests of the tables and JSON `status` and `instances` print, and of the escaping that
//! keeps names from a store off the terminal's controls.

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
