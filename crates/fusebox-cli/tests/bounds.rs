//! Durations and records at the edges, on a real Redis: an out-of-range `--for` is refused
//! before anything is written, no value panics the command, and a damaged record is
//! reported and repaired by `reset` instead of wedging the fleet.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;

use common::{Cli, address, prefix, server, text};

/// Sends one command as a RESP array and returns the raw reply.
async fn redis_command(url: &str, args: &[&str]) -> String {
    let mut stream = tokio::net::TcpStream::connect(address(url))
        .await
        .expect("connect");
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(out.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
        .await
        .expect("a reply")
        .expect("read");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

impl Cli {
    async fn forced(&self) -> serde_json::Value {
        let out = self.run(&["status", "--json"]).await;
        assert!(out.status.success(), "status: {}", text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        json[0]["forced"].clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_durations_are_refused_before_anything_is_written() {
    let Some(url) = server().await else { return };
    let cli = Cli {
        url,
        prefix: prefix("for"),
    };
    let out = cli.run(&["open", "dep", "--create", "--for", "1m"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli.run(&["reset", "dep"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    for (value, says) in [
        ("3000000000000h", "at most"),
        ("99999999h", "at most"),
        ("11years", "at most"),
        ("500us", "at least 1ms"),
        ("0s", "at least 1ms"),
    ] {
        for verb in ["open", "close"] {
            let out = cli.run(&[verb, "dep", "--for", value]).await;
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{verb} --for {value}: {err}");
            assert!(err.contains(says), "{verb} --for {value}: {err}");
            assert_eq!(
                cli.forced().await,
                serde_json::Value::Null,
                "{verb} --for {value} wrote the record"
            );
        }
    }

    // The longest accepted duration is written and read back, and shown without a panic.
    let out = cli.run(&["open", "dep", "--for", "3650days"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("until 20"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(cli.forced().await, "open");
    // Fractions of a millisecond round up: the force never ends sooner than asked.
    let out = cli.run(&["close", "dep", "--for", "1ms 500us"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli.run(&["reset", "dep"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_record_is_reported_and_reset_repairs_it() {
    let Some(url) = server().await else { return };
    let cli = Cli {
        url: url.clone(),
        prefix: prefix("damaged"),
    };
    let out = cli.run(&["open", "dep", "--create"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // What an overflowed expiry left behind before durations were bounded.
    let key = format!("{}{{dep}}", cli.prefix);
    let reply = redis_command(
        &url,
        &["HSET", &key, "forced_until", "-9223372036854775808"],
    )
    .await;
    assert!(reply.starts_with(':'), "HSET: {reply}");

    let out = cli.run(&["status"]).await;
    assert!(
        !out.status.success(),
        "a damaged record must not read as fine"
    );
    assert_ne!(
        out.status.code(),
        Some(101),
        "panicked: {}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("field 8"),
        "the error names the field: {}",
        text(&out.stderr)
    );

    let out = cli.run(&["reset", "dep"]).await;
    assert!(out.status.success(), "reset repairs: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("unreadable"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(cli.forced().await, serde_json::Value::Null);
    let out = cli.run(&["open", "dep", "--for", "10m"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(cli.forced().await, "open");
}
