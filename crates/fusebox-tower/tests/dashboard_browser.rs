//! The dashboard page in a real headless Chromium, driven through chromedriver: a breaker
//! driven open shows as OPEN on the page within 2 s, and a screenshot is kept in
//! `target/test-artifacts/dashboard.png`.
//!
//! The browser is `$FUSEBOX_CHROMIUM` or `chromium` on the path, the driver
//! `$FUSEBOX_CHROMEDRIVER` or `chromedriver` (`scripts/browser` installs both). Without them
//! the test reports that it skipped, and fails under `CI=true`.
#![cfg(feature = "dashboard")]

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use fusebox_core::Breaker;
use fusebox_tower::dashboard::{BreakerReading, Dashboard, LocalSource, Source, SourceError};
use futures_util::FutureExt;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

/// How long the page may take to show a breaker's new state.
const SHOWS_WITHIN: Duration = Duration::from_secs(2);
/// Bounds on the parts that wait for the browser itself.
const BROWSER_START: Duration = Duration::from_secs(20);
const PAGE_READY: Duration = Duration::from_secs(10);

/// A name written to break out of text into markup, if the page ever used it as markup.
const HOSTILE: &str = "<img src=x onerror=\"window.pwned=1\">payments</b>";

/// The process's breakers, behind a switch that plays an unreachable store.
struct Switchable {
    local: Arc<LocalSource>,
    down: AtomicBool,
}

impl Source for Switchable {
    async fn read(&self) -> Result<Vec<BreakerReading>, SourceError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(SourceError::new("store unreachable: connection refused"));
        }
        Ok(self.local.readings())
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

fn tool(var: &str, name: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => on_path(name),
    }
}

/// The browser and its driver, or `None` (a skip) when they are absent outside CI.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let found =
        tool("FUSEBOX_CHROMIUM", "chromium").zip(tool("FUSEBOX_CHROMEDRIVER", "chromedriver"));
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium and chromedriver are required under CI=true (scripts/browser installs them)"
        );
        eprintln!("SKIPPED: chromium or chromedriver not found (run scripts/browser)");
    }
    found
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("test-artifacts")
}

async fn connect(driver: &str, chromium: &Path) -> Client {
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let started = Instant::now();
    loop {
        let attempt = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(driver)
            .await;
        match attempt {
            Ok(client) => return client,
            Err(e) if started.elapsed() < BROWSER_START => {
                // The driver is still starting.
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no browser session within {BROWSER_START:?}: {e}"),
        }
    }
}

/// The state badge's text of the breaker card named `name`, if the card is on the page.
async fn shown_state(client: &Client, name: &str) -> Option<String> {
    let script = "var name = arguments[0];\
        var card = Array.from(document.querySelectorAll('[data-breaker]'))\
        .find(function (c) { return c.getAttribute('data-breaker') === name; });\
        return card ? card.querySelector('.state').textContent : null;";
    let shown = client.execute(script, vec![json!(name)]).await.unwrap();
    shown.as_str().map(str::to_owned)
}

/// Polls the page until the card shows `state`; how long it took.
async fn until_shown(client: &Client, name: &str, state: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if shown_state(client, name).await.as_deref() == Some(state) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{name} did not show {state} within {limit:?} (shows {:?})",
            shown_state(client, name).await
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether the error banner shows, its text, and how many cards are marked stale.
async fn banner(client: &Client) -> Value {
    client
        .execute(
            "var b = document.getElementById('banner');\
             return [b.classList.contains('shown') && b.offsetHeight > 0, b.textContent,\
                document.querySelectorAll('.card.stale').length];",
            vec![],
        )
        .await
        .unwrap()
}

/// Polls until the banner shows (or hides); how long it took.
async fn until_banner(client: &Client, shown: bool) -> Duration {
    let started = Instant::now();
    loop {
        let now = banner(client).await;
        if now[0] == shown {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < SHOWS_WITHIN,
            "banner {now}, wanted shown={shown}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Keeps a screenshot of the page in `target/test-artifacts`.
async fn screenshot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let dir = artifacts();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &png).unwrap();
    println!("screenshot: {} ({} bytes)", path.display(), png.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_driven_open_shows_open_in_chromium_within_two_seconds() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let source = Arc::new(LocalSource::new());
    let checkout = source
        .build(
            Breaker::builder("checkout-api")
                .consecutive_failures(5)
                .count_window(50)
                .failure_rate(0.9),
        )
        .unwrap();
    let search = source
        .build(
            Breaker::builder("search")
                .count_window(30)
                .failure_rate(0.6),
        )
        .unwrap();
    source.add(&Breaker::builder(HOSTILE).build().unwrap());
    let switchable = Arc::new(Switchable {
        local: source.clone(),
        down: AtomicBool::new(false),
    });
    let router = Dashboard::builder()
        .interval(Duration::from_millis(250))
        .title("browser test")
        .build(switchable.clone())
        .unwrap()
        .router()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let port = free_port();
    let mut driver = tokio::process::Command::new(&chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver starts");
    let client = connect(&format!("http://127.0.0.1:{port}"), &chromium).await;

    let outcome = async {
        client.goto(&url).await.unwrap();
        until_shown(&client, "checkout-api", "CLOSED", PAGE_READY).await;
        // Some traffic, so the sparklines and rates have something to draw.
        for round in 0..8 {
            for i in 0..20 {
                let _ = search.call_sync(|| {
                    if (i + round) % 3 == 0 {
                        Err(())
                    } else {
                        Ok(())
                    }
                });
                let _ = checkout.call_sync(|| Ok::<_, ()>(()));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }

        for _ in 0..5 {
            let _ = checkout.call_sync(|| Err::<(), _>("upstream 503"));
        }
        assert_eq!(checkout.state(), fusebox_core::State::Open);
        let latency = until_shown(&client, "checkout-api", "OPEN", SHOWS_WITHIN).await;
        println!("dashboard showed OPEN {latency:?} after the breaker opened");
        for _ in 0..10 {
            assert!(checkout.call_sync(|| Ok::<_, ()>(())).is_err());
        }

        // The hostile name shows as text, and nothing in it ran.
        let hostile = client
            .execute(
                "var names = Array.from(document.querySelectorAll('.card .name'))\
                    .map(function (n) { return n.textContent; });\
                 return [names, document.querySelectorAll('main img').length, \
                    typeof window.pwned];",
                vec![],
            )
            .await
            .unwrap();
        assert!(
            hostile[0].as_array().unwrap().contains(&json!(HOSTILE)),
            "{hostile}"
        );
        assert_eq!(hostile[1], 0, "{hostile}");
        assert_eq!(hostile[2], "undefined", "{hostile}");

        // The transitions log shows the trip, and the rejections are counted.
        let deadline = Instant::now() + SHOWS_WITHIN;
        loop {
            let log = client
                .execute(
                    "return Array.from(document.querySelectorAll('#transitions tr'))\
                        .map(function (r) { return r.textContent; });",
                    vec![],
                )
                .await
                .unwrap();
            let rejections = client
                .execute(
                    "var c = document.querySelector('[data-breaker=\"checkout-api\"] dd.rejections');\
                     return c ? c.textContent : null;",
                    vec![],
                )
                .await
                .unwrap();
            let logged = log.as_array().unwrap().iter().any(|row| {
                let row = row.as_str().unwrap_or_default();
                row.contains("checkout-api")
                    && row.contains("OPEN")
                    && row.contains("5 consecutive failures")
            });
            if logged && rejections.as_str().is_some_and(|r| r.starts_with("10")) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "log {log}, rejections {rejections}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        screenshot(&client, "dashboard.png").await;

        // The source fails: the page says so over the last readings, then recovers.
        switchable.down.store(true, Ordering::SeqCst);
        let latency = until_banner(&client, true).await;
        println!("dashboard showed the outage after {latency:?}");
        let shown = banner(&client).await;
        assert!(
            shown[1]
                .as_str()
                .unwrap()
                .contains("store unreachable: connection refused"),
            "{shown}"
        );
        assert_eq!(shown[2], 3, "every card stays, marked stale: {shown}");
        assert_eq!(
            shown_state(&client, "checkout-api").await.as_deref(),
            Some("OPEN")
        );
        screenshot(&client, "dashboard-outage.png").await;
        switchable.down.store(false, Ordering::SeqCst);
        until_banner(&client, false).await;
        assert_eq!(banner(&client).await[2], 0, "no card stale once back");
    };
    // The page is checked with a bound of its own; the whole run is bounded too, and the
    // session is closed whatever happened.
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        AssertUnwindSafe(outcome).catch_unwind(),
    )
    .await;
    let _ = client.close().await;
    let _ = driver.kill().await;
    server.abort();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        Err(_) => panic!("the browser test took longer than 60s"),
    }
}
