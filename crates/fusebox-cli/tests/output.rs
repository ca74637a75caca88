//! What the commands print: the state calls meet, tables that fit the terminal, colour
//! only when wanted, and store flags accepted on either side of the command.

mod common;

use assert_cmd::Command;
use common::{Cli, prefix, server, text};

fn fusebox() -> Command {
    let mut c = Command::cargo_bin("fusebox").expect("binary");
    c.env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS");
    c
}

#[test]
fn each_command_lists_only_the_flags_that_apply_to_it() {
    let help = |args: &[&str]| {
        let out = fusebox().args(args).output().expect("runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let setup = help(&["pg-setup", "--help"]);
    for flag in ["--database-url", "--schema", "--yes", "--dry-run"] {
        assert!(setup.contains(flag), "{flag} missing:\n{setup}");
    }
    for flag in ["--redis-url", "--prefix", "--color"] {
        assert!(!setup.contains(flag), "pg-setup lists {flag}:\n{setup}");
    }
    for command in ["status", "instances", "open", "close", "reset", "dashboard"] {
        let page = help(&[command, "--help"]);
        for flag in ["--database-url", "--redis-url", "--schema", "--prefix"] {
            assert!(page.contains(flag), "{command}: {flag} missing:\n{page}");
        }
    }
    let page = help(&["status", "--help"]);
    assert!(
        page.contains("--color <WHEN>") && page.contains("NO_COLOR"),
        "{page}"
    );
}

#[test]
fn two_stores_named_on_either_side_of_the_command_are_refused() {
    let out = fusebox()
        .args(["--database-url", "postgres://db/app", "status"])
        .args(["--redis-url", "redis://127.0.0.1:1"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("both --database-url and --redis-url"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_forced_breaker_shows_the_state_calls_meet_in_colour_and_in_width() {
    let Some(url) = server().await else { return };
    let cli = Cli {
        url: url.clone(),
        prefix: prefix("output"),
    };
    for name in ["payments-api", "inventory-service-eu-west-1"] {
        let out = cli.run(&["open", name, "--create", "--for", "10m"]).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    // The store flags after the command work as before it.
    let run = |args: Vec<String>, env: Vec<(&'static str, &'static str)>| {
        let mut c = fusebox();
        c.args(args).envs(env);
        async move {
            tokio::task::spawn_blocking(move || c.output().expect("runs"))
                .await
                .expect("join")
        }
    };
    let after = |extra: &[&str]| {
        let mut args: Vec<String> = vec!["status".into(), "--redis-url".into(), url.clone()];
        args.extend(["--prefix".into(), cli.prefix.clone()]);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };

    let out = run(after(&["--json"]), vec![]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for breaker in json.as_array().expect("a list") {
        assert_eq!(breaker["state"], "open", "{breaker}");
        assert_eq!(breaker["fleet_state"], "closed", "{breaker}");
        assert_eq!(breaker["forced"], "open", "{breaker}");
        // Forcing is the change: its time, not the epoch.
        let changed = breaker["changed_at"].as_str().expect("a time");
        assert!(!changed.starts_with("1970"), "{breaker}");
    }

    // A pipe: no colour, one line per breaker, the state column reads open.
    let out = run(after(&[]), vec![]).await;
    let table = text(&out.stdout);
    assert!(!table.contains('\x1b'), "{table:?}");
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let state_at = lines[0].find("STATE").expect("STATE");
    for line in &lines[1..] {
        assert_eq!(line[state_at..].split(' ').next(), Some("open"), "{table}");
    }

    // Asked for colour: the state is coloured; NO_COLOR does not override an explicit ask.
    let out = run(after(&["--color", "always"]), vec![("NO_COLOR", "1")]).await;
    assert!(text(&out.stdout).contains('\x1b'), "{}", text(&out.stdout));
    let out = run(after(&["--color", "never"]), vec![]).await;
    assert!(!text(&out.stdout).contains('\x1b'));

    // A narrow terminal (COLUMNS for a pipe): every line fits, whole names, and what was
    // left out is named.
    let out = run(after(&[]), vec![("COLUMNS", "60")]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.lines().all(|l| l.chars().count() <= 60), "{table}");
    assert!(table.contains("inventory-service-eu-west-1"), "{table}");
    assert!(table.contains("(left out to fit:"), "{table}");
    assert!(table.contains("--json"), "{table}");
}

#[test]
fn with_no_store_named_the_database_libpq_chose_is_named() {
    let run = |env: &[(&str, &str)]| {
        let mut c = fusebox();
        for key in [
            "PGHOST",
            "PGPORT",
            "PGDATABASE",
            "PGUSER",
            "PGPASSWORD",
            "USER",
        ] {
            c.env_remove(key);
        }
        let out = c
            .envs(env.iter().copied())
            .args(["status"])
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .expect("runs");
        (out.status.code(), text(&out.stderr))
    };
    // Port 1 on loopback: nothing listens, so the run ends unreachable, naming the server.
    let (code, stderr) = run(&[
        ("PGHOST", "127.0.0.1"),
        ("PGPORT", "1"),
        ("PGDATABASE", "orders"),
        ("PGUSER", "ops"),
    ]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("using PostgreSQL at 127.0.0.1:1/orders (libpq's defaults)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cannot reach the store at 127.0.0.1:1/orders"),
        "{stderr}"
    );
    // No database named anywhere: PostgreSQL takes the user's name, and so does the note.
    let (_, stderr) = run(&[("PGHOST", "127.0.0.1"), ("PGPORT", "1"), ("PGUSER", "ops")]);
    assert!(
        stderr.contains("using PostgreSQL at 127.0.0.1:1/ops"),
        "{stderr}"
    );
}
