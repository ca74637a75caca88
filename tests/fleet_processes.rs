//! Two real OS processes share a pooled breaker through Redis: one sees failures, both
//! reject within two sync intervals, and both recover together. Each process is the
//! `distributed` example in worker mode, which prints `<unix ms> <state>` on every change.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

const SYNC_MS: u128 = 100;

fn redis_url() -> Option<String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let hostport = url
        .split("://")
        .nth(1)
        .and_then(|r| r.rsplit('@').next())
        .and_then(|r| r.split('/').next())
        .unwrap_or("127.0.0.1:6379")
        .to_owned();
    if std::net::TcpStream::connect(&hostport).is_ok() {
        return Some(url);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("Redis is unreachable at {url}; CI needs it");
    }
    eprintln!("skipping: Redis is unreachable at {url}");
    None
}

/// The example binary, built beside this test by `cargo test`.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    dir.join("examples")
        .join(format!("distributed{}", std::env::consts::EXE_SUFFIX))
}

fn run(url: &str, instance: &str, prefix: &str, fail_ms: u64) -> std::process::Child {
    Command::new(example())
        .args(["worker", instance, prefix, &fail_ms.to_string(), "4000"])
        .env("REDIS_URL", url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the distributed example runs (cargo test builds it)")
}

fn transitions(child: std::process::Child) -> Vec<(u128, String)> {
    let output = child.wait_with_output().expect("worker exits");
    assert!(
        output.status.success(),
        "worker failed: {:?}",
        output.status
    );
    BufReader::new(&output.stdout[..])
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| {
            let (t, s) = l.split_once(' ')?;
            Some((t.parse().ok()?, s.to_owned()))
        })
        .collect()
}

fn first(seen: &[(u128, String)], state: &str) -> u128 {
    seen.iter()
        .find(|(_, s)| s == state)
        .map(|(t, _)| *t)
        .unwrap_or_else(|| panic!("never {state}: {seen:?}"))
}

#[test]
fn two_processes_trip_and_recover_together() {
    let Some(url) = redis_url() else { return };
    let prefix = format!("fusebox-procs-{}", std::process::id());
    let sick = run(&url, "sick", &prefix, 1500);
    let healthy = run(&url, "healthy", &prefix, 0);
    let (sick, healthy) = (transitions(sick), transitions(healthy));
    eprintln!("sick: {sick:?}\nhealthy: {healthy:?}");

    let opened = first(&sick, "open").min(first(&healthy, "open"));
    let last_to_open = first(&sick, "open").max(first(&healthy, "open"));
    assert!(
        last_to_open - opened <= 2 * SYNC_MS,
        "the second process opened {} ms after the first",
        last_to_open - opened
    );
    // Both end closed, and closed within two sync intervals of each other.
    let closed_at = |seen: &[(u128, String)]| {
        let (t, s) = seen.last().expect("some state");
        assert_eq!(s, "closed", "ends closed: {seen:?}");
        *t
    };
    let (a, b) = (closed_at(&sick), closed_at(&healthy));
    assert!(
        a.abs_diff(b) <= 2 * SYNC_MS,
        "recovered {} ms apart",
        a.abs_diff(b)
    );
}
