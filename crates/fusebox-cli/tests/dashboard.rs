//! `fusebox dashboard` on a real Redis: the page and its event stream show the fleet's
//! breakers live, an outage of the store shows on the stream and passes, Ctrl-C stops it,
//! and bad addresses are refused with the CLI's exit codes.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, ChildStdout};
use tokio::task::JoinHandle;

mod common;

use common::{Cli, address, prefix, server, text};

/// A TCP relay in front of Redis that can play an outage: while down it drops every
/// connection it holds and every new one.
struct Relay {
    address: String,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::new()));
        let (up2, links2) = (up.clone(), links.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees its connection closed
                }
                let target = target.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                links2.lock().unwrap().push(link);
            }
        });
        Relay {
            address,
            up,
            links,
            accept,
        }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.down();
        self.accept.abort();
    }
}

fn dashboard(url: &str, prefix: &str, args: &[&str]) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("fusebox"));
    c.env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .args(["--redis-url", url, "--prefix", prefix, "dashboard"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// The URL the command prints when it serves.
async fn served_url(child: &mut Child) -> (String, Lines<BufReader<ChildStdout>>) {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(15), lines.next_line())
        .await
        .expect("the dashboard prints its URL")
        .unwrap()
        .expect("a line");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (url, lines)
}

/// `GET path` over HTTP/1.0, so the body ends with the connection.
async fn get(url: &str, path: &str) -> (String, String) {
    let host = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(host).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("an answer")
    .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("headers");
    (head.to_owned(), body.to_owned())
}

/// The dashboard's event stream, one frame at a time.
struct Frames(Lines<BufReader<TcpStream>>);

impl Frames {
    async fn open(url: &str) -> Frames {
        let host = url.trim_start_matches("http://").trim_end_matches('/');
        let mut stream = TcpStream::connect(host).await.unwrap();
        stream
            .write_all(format!("GET /api/events HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        Frames(BufReader::new(stream).lines())
    }

    /// The first frame satisfying `done` within `limit`.
    async fn until(&mut self, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let wait = async {
            while let Some(line) = self.0.next_line().await.unwrap() {
                if let Some(data) = line.strip_prefix("data: ") {
                    let frame: Value = serde_json::from_str(data).unwrap();
                    if done(&frame) {
                        return frame;
                    }
                }
            }
            panic!("the event stream ended");
        };
        tokio::time::timeout(limit, wait)
            .await
            .unwrap_or_else(|_| panic!("no such frame within {limit:?}"))
    }
}

fn breaker<'a>(frame: &'a Value, name: &str) -> Option<&'a Value> {
    frame["breakers"]
        .as_array()?
        .iter()
        .find(|b| b["name"] == name)
}

fn interrupt(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_fleet_live_and_rides_out_an_outage() {
    let Some(url) = server().await else { return };
    let cli = Cli {
        url: url.clone(),
        prefix: prefix("dash"),
    };
    let out = cli.run(&["open", "dep", "--create"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    let relay = Relay::start(address(&url)).await;
    let relayed = url.replacen(&address(&url), &relay.address, 1);
    let mut child = dashboard(
        &relayed,
        &cli.prefix,
        &["--listen", "127.0.0.1:0", "--interval", "100ms"],
    )
    .spawn()
    .unwrap();
    let (page_url, _stdout) = served_url(&mut child).await;

    let (head, page) = get(&page_url, "/").await;
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    assert!(page.contains("<title>fusebox dashboard</title>"));

    let (_, snapshot) = get(&page_url, "/api/snapshot").await;
    let snapshot: Value = serde_json::from_str(&snapshot).unwrap();
    assert!(snapshot["title"].as_str().unwrap().contains(&cli.prefix));

    // The forced-open breaker shows as forced open, with the fleet's instances.
    let mut frames = Frames::open(&page_url).await;
    let frame = frames
        .until(Duration::from_secs(5), |f| breaker(f, "dep").is_some())
        .await;
    let dep = breaker(&frame, "dep").unwrap();
    assert_eq!(dep["state"], "forced_open");
    assert_eq!(dep["instances"]["live"], 0);
    assert_eq!(dep["reason"], "forced open");

    // Reset from another command: the stream shows it, and logs the transition.
    let started = Instant::now();
    let out = cli.run(&["reset", "dep"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let frame = frames
        .until(Duration::from_secs(5), |f| {
            breaker(f, "dep").is_some_and(|b| b["state"] == "closed")
        })
        .await;
    println!("reset shown after {:?}", started.elapsed());
    let logged = &frame["transitions"][0];
    assert_eq!(
        (&logged["from"], &logged["to"]),
        (&"forced_open".into(), &"closed".into())
    );

    // The store goes away: the stream goes on and says so, keeping the last readings.
    relay.down();
    let frame = frames
        .until(Duration::from_secs(15), |f| !f["error"].is_null())
        .await;
    assert!(breaker(&frame, "dep").is_some());
    let error = frame["error"].as_str().unwrap();
    assert!(
        error.starts_with("cannot reach the store (redis "),
        "{error}"
    );
    assert!(error.contains(&cli.prefix), "{error}");
    println!("outage shown as {error:?}");
    relay.restore();
    let frame = frames
        .until(Duration::from_secs(20), |f| f["error"].is_null())
        .await;
    assert_eq!(breaker(&frame, "dep").unwrap()["state"], "closed");

    // Ctrl-C stops it cleanly, open streams and all.
    let interrupted = Instant::now();
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("it stops on Ctrl-C")
        .unwrap();
    assert!(status.success(), "{status:?}");
    println!("stopped {:?} after Ctrl-C", interrupted.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_addresses_and_an_unreachable_store_are_refused() {
    let out = dashboard(
        "redis://127.0.0.1:6379",
        "unused:",
        &["--listen", "nonsense"],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--listen"),
        "{}",
        text(&out.stderr)
    );

    let out = dashboard("redis://127.0.0.1:6379", "unused:", &["--interval", "1ms"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("must be from 50ms"),
        "{}",
        text(&out.stderr)
    );

    let out = dashboard(
        "redis://127.0.0.1:1",
        "unused:",
        &["--listen", "127.0.0.1:0"],
    )
    .output()
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));

    let Some(url) = server().await else { return };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let out = dashboard(&url, &prefix("dash-busy"), &["--listen", &taken])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("cannot listen on {taken}")),
        "{}",
        text(&out.stderr)
    );
}
