//! Hostile names on a real Redis: breaker names, instance ids, modes and reasons holding
//! newlines, escape sequences and bidi overrides are shown escaped by every command, one
//! table row per breaker, and never reach the terminal raw.

use fusebox_fleet::{FleetChange, StateStore, SyncRequest};
use fusebox_redis::RedisStore;

mod common;

use common::{Cli, prefix, server, text};

impl Cli {
    /// Runs the command, and fails if a raw control character reached its output.
    async fn checked(&self, args: &[&str]) -> std::process::Output {
        let out = self.run(args).await;
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let raw = raw_controls(&text(bytes));
            assert!(
                raw.is_empty(),
                "{args:?}: raw {raw:?} on {stream}: {:?}",
                text(bytes)
            );
        }
        out
    }
}

/// Characters that must never reach a terminal from a name: controls other than the
/// output's own line breaks, and the bidi controls that reorder a line.
fn raw_controls(s: &str) -> Vec<char> {
    s.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

const NAME: &str = "pay\nments\x1b[31m\u{202e}lap\u{9b}2J";
const NAME_SHOWN: &str = "pay\\nments\\e[31m\\u{202e}lap\\u{9b}2J";
const INSTANCE: &str = "host-1\n\x1b]0;owned\x07\u{2066}";
const INSTANCE_SHOWN: &str = "host-1\\n\\e]0;owned\\u{7}\\u{2066}";
const MODE: &str = "pooled\r\x1b[5m";
const MODE_SHOWN: &str = "pooled\\r\\e[5m";
const REASON: &str = "tripped\n\x1b[2J";

/// Registers `instance` on `breaker` with a lease that outlives the test.
async fn register(store: &RedisStore, breaker: &str, instance: &str, mode: &str) {
    store
        .sync(&SyncRequest {
            breaker: breaker.to_owned(),
            instance: instance.to_owned(),
            lease_ttl_ms: 120_000,
            seq: 1,
            mode: mode.to_owned(),
            ..Default::default()
        })
        .await
        .expect("sync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_are_shown_escaped_everywhere() {
    let Some(url) = server().await else { return };
    let cli = Cli {
        url: url.clone(),
        prefix: prefix("hostile"),
    };
    let store = RedisStore::builder(url.as_str())
        .prefix(&cli.prefix)
        .build()
        .expect("store");
    register(&store, NAME, INSTANCE, MODE).await;
    register(&store, NAME, "plain-2", MODE).await;
    register(&store, "db", "plain-1", "pooled").await;
    let view = store.view(NAME).await.expect("view").expect("record");
    let cas = store
        .transition(
            NAME,
            view.record.generation,
            FleetChange::Open {
                cooldown_ms: 60_000,
            },
            REASON,
        )
        .await
        .expect("transition");
    assert!(cas.won);

    // status: one header and one row per breaker, the hostile one escaped.
    let out = cli.checked(&["status"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("BREAKER "), "{table}");
    let row = lines
        .iter()
        .find(|l| l.starts_with(&format!("{NAME_SHOWN} ")))
        .unwrap_or_else(|| panic!("no row for the hostile breaker: {table}"));
    assert!(row.ends_with(MODE_SHOWN), "{row}");
    assert!(lines.iter().any(|l| l.starts_with("db ")), "{table}");
    // Columns line up: every row has its state where the header says.
    let state_at = lines[0].find("STATE").expect("STATE");
    for line in &lines[1..] {
        let state = line.get(state_at..).and_then(|s| s.split(' ').next());
        assert!(matches!(state, Some("open" | "closed")), "{table}");
    }

    // status --json: the same text, losslessly, with nothing raw in the document.
    let out = cli.checked(&["status", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let hostile = json
        .as_array()
        .and_then(|a| a.iter().find(|b| b["name"] == NAME))
        .unwrap_or_else(|| panic!("the name does not round-trip: {json}"));
    assert_eq!(hostile["mode"], MODE);
    assert_eq!(hostile["reason"], REASON);

    // instances: a heading, a header and one row per instance.
    let out = cli.checked(&["instances", NAME]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 4, "{listing}");
    assert!(
        lines[0].starts_with(&format!("{NAME_SHOWN}: fleet open")),
        "{listing}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{INSTANCE_SHOWN} ")) && l.contains("yes")),
        "{listing}"
    );
    assert!(lines.iter().any(|l| l.starts_with("plain-2 ")), "{listing}");

    let out = cli.checked(&["instances", NAME, "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["name"], NAME);
    assert!(
        json["instances"]
            .as_array()
            .is_some_and(|a| a.iter().any(|i| i["id"] == INSTANCE)),
        "{json}"
    );

    // Not found: the name asked for and the known names, escaped, on one line.
    for args in [
        &["instances", "nope\x1b[2J\n"][..],
        &["open", "nope\x1b[2J\n"],
        &["reset", "nope\x1b[2J\n"],
    ] {
        let out = cli.checked(args).await;
        assert_eq!(
            out.status.code(),
            Some(6),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("no breaker named \"nope\\e[2J\\n\""), "{err}");
        assert!(err.contains(NAME_SHOWN) && err.contains("known: "), "{err}");
    }

    // Confirmations.
    for args in [
        &["open", NAME, "--for", "1m"][..],
        &["close", NAME],
        &["reset", NAME],
    ] {
        let out = cli.checked(args).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let said = text(&out.stdout);
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(said.starts_with(&format!("{NAME_SHOWN}: ")), "{said}");
    }

    // A refused argument is quoted escaped too.
    let out = cli.checked(&["open", NAME, "--for", "1\x1b[2J\n"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("'1\\e[2J\\n'"),
        "{}",
        text(&out.stderr)
    );
}
