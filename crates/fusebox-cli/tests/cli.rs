//! The `fusebox` command against a real PostgreSQL: setup, status, the kill-switch seen
//! by two running breakers, and every error path. Each test uses a schema of its own.

use std::time::Duration;

use assert_cmd::Command;
use fusebox_core::breaker::{Breaker, State};
use fusebox_fleet::{Fleet, FleetMode};
use fusebox_postgres::PostgresStore;
use tokio_postgres::NoTls;

const SYNC: Duration = Duration::from_millis(250);

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn admin(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The server's URL; `None` (skip) when unreachable, a failure under CI=true.
async fn server() -> Option<String> {
    let url = database_url();
    let error = match tokio::time::timeout(Duration::from_secs(5), admin(&url)).await {
        Ok(Ok(_)) => return Some(url),
        Ok(Err(e)) => match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
        Err(_) => "no answer within 5 s".to_owned(),
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "PostgreSQL is unreachable at {url} ({error}); under CI=true the CLI tests must run"
        );
    }
    eprintln!("skipping: PostgreSQL is unreachable at {url} ({error})");
    None
}

/// A schema for one test, dropped when the guard goes.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    fn new(url: &str, case: &str) -> Schema {
        let name = format!(
            "fbc_{}_{case}_{:06x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos()
                & 0xff_ffff
        );
        Schema {
            url: url.to_owned(),
            name,
        }
    }

    fn store(&self) -> PostgresStore {
        PostgresStore::builder(&self.url)
            .schema(&self.name)
            .pool_size(2)
            .build()
            .expect("store")
    }

    async fn exists(&self) -> bool {
        let client = admin(&self.url).await.expect("admin");
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
                &[&self.name],
            )
            .await
            .expect("query");
        row.get::<_, i64>(0) == 1
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // A blocking connection of its own: the test's runtime may be shutting down.
        let url = self.url.clone();
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let client = admin(&url).await.ok()?;
                client.batch_execute(&sql).await.ok()
            })
        })
        .join();
    }
}

/// `fusebox --database-url URL --schema S ARGS…`, environment cleared of store variables.
fn fusebox(url: &str, schema: &str) -> Command {
    let mut cmd = Command::cargo_bin("fusebox").expect("the fusebox binary");
    cmd.env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("FUSEBOX_SCHEMA")
        .args(["--database-url", url, "--schema", schema]);
    cmd
}

/// Runs the command off the runtime (the breakers' sync tasks keep running).
async fn run(mut cmd: Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("join")
}

/// Runs `fusebox` with `args` against `url` and `schema`.
async fn run_fusebox(url: &str, schema: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = fusebox(url, schema);
    cmd.args(args);
    run(cmd).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let start = tokio::time::Instant::now();
    loop {
        if condition() {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Two instances of breaker `dep` on the schema, registered in the store.
async fn two_instances(schema: &Schema) -> Vec<Breaker> {
    let mut out = Vec::new();
    for id in ["a", "b"] {
        let fleet = Fleet::builder(schema.store())
            .instance_id(id)
            .sync_interval(SYNC)
            .build()
            .expect("fleet");
        out.push(
            fleet
                .breaker(
                    Breaker::builder("dep").consecutive_failures(5),
                    FleetMode::Pooled,
                )
                .expect("breaker"),
        );
    }
    let store = schema.store();
    let start = tokio::time::Instant::now();
    loop {
        use fusebox_fleet::StateStore;
        let view = store.view("dep").await.ok().flatten();
        if view.is_some_and(|v| v.live_instances() == 2) {
            break;
        }
        assert!(start.elapsed() < SYNC * 40, "instances never registered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_setup_dry_run_yes_and_twice() {
    let Some(url) = server().await else { return };
    let schema = Schema::new(&url, "setup");

    let out = run_fusebox(&url, &schema.name, &["pg-setup", "--dry-run"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sql = text(&out.stdout);
    assert!(sql.contains(&format!("CREATE TABLE \"{}\".breakers", schema.name)));
    assert!(!schema.exists().await, "--dry-run changed the database");

    // No --yes and nothing confirms: refused, nothing changed.
    let out = run({
        let mut c = fusebox(&url, &schema.name);
        c.arg("pg-setup").write_stdin("");
        c
    })
    .await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert!(!schema.exists().await);

    let out = run_fusebox(&url, &schema.name, &["pg-setup", "--yes"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!(
        "created at version {}",
        fusebox_postgres::SCHEMA_VERSION
    )));
    assert!(schema.exists().await);

    // Twice is harmless; a typed "y" confirms.
    let out = run({
        let mut c = fusebox(&url, &schema.name);
        c.arg("pg-setup").write_stdin("y\n");
        c
    })
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!(
        "already at version {}",
        fusebox_postgres::SCHEMA_VERSION
    )));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_as_text_and_json() {
    let Some(url) = server().await else { return };
    let schema = Schema::new(&url, "status");
    schema.store().setup().await.expect("setup");
    let fleet = two_instances(&schema).await;
    for _ in 0..3 {
        fleet[0].try_acquire().expect("closed").success();
    }
    fleet[1].try_acquire().expect("closed").failure();
    let store = schema.store();
    let start = tokio::time::Instant::now();
    loop {
        use fusebox_fleet::StateStore;
        let v = store.view("dep").await.expect("view").expect("record");
        if v.instances
            .iter()
            .map(|i| i.successes + i.failures)
            .sum::<u64>()
            == 4
        {
            break;
        }
        assert!(start.elapsed() < SYNC * 40, "outcomes never flushed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let out = run_fusebox(&url, &schema.name, &["status"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let line = table
        .lines()
        .find(|l| l.starts_with("dep "))
        .expect("a row for dep");
    for part in ["closed", "25.0%", "0/2", "pooled"] {
        assert!(line.contains(part), "{part:?} missing in {line:?}");
    }

    let out = run_fusebox(&url, &schema.name, &["status", "--json"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let dep = &json[0];
    assert_eq!(dep["name"], "dep");
    assert_eq!(dep["state"], "closed");
    assert_eq!(dep["calls"], 4);
    assert_eq!(dep["failures"], 1);
    assert_eq!(dep["live_instances"], 2);
    assert_eq!(dep["open_votes"], 0);
    assert_eq!(dep["instances"].as_array().map(Vec::len), Some(2));

    let out = run_fusebox(&url, &schema.name, &["instances", "dep"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listing = text(&out.stdout);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("a ") && l.contains("yes")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("b ") && l.contains("yes")),
        "{listing}"
    );
    drop(fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_close_reset_reach_two_running_breakers() {
    let Some(url) = server().await else { return };
    let schema = Schema::new(&url, "kill");
    schema.store().setup().await.expect("setup");
    let fleet = two_instances(&schema).await;

    let steps: [(&[&str], State); 3] = [
        (&["open", "dep"], State::ForcedOpen),
        (&["close", "dep"], State::Disabled),
        (&["reset", "dep"], State::Closed),
    ];
    for (args, expected) in steps {
        let out = run_fusebox(&url, &schema.name, args).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let took = wait_until(SYNC * 20, || fleet.iter().all(|b| b.state() == expected))
            .await
            .unwrap_or_else(|| panic!("{args:?} not obeyed by both breakers"));
        assert!(
            took <= SYNC,
            "{args:?} took {took:?}, more than one sync interval"
        );
    }

    // A timed override lifts itself.
    let out = run_fusebox(&url, &schema.name, &["open", "dep", "--for", "1s"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("for 1s"));
    wait_until(SYNC * 20, || {
        fleet.iter().all(|b| b.state() == State::ForcedOpen)
    })
    .await
    .expect("timed open obeyed");
    wait_until(Duration::from_secs(10), || {
        fleet.iter().all(|b| b.state() == State::Closed)
    })
    .await
    .expect("the timed open lifts itself");
    drop(fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_has_its_exit_code() {
    let Some(url) = server().await else { return };
    let schema = Schema::new(&url, "errors");

    // Unreachable: nothing listens on port 1.
    let out = run_fusebox(
        "postgres://postgres@127.0.0.1:1/test",
        &schema.name,
        &["status"],
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot reach") && err.lines().count() == 1,
        "{err}"
    );

    // Bad URLs.
    for bad in ["postgres://h:notaport/db", "mysql://localhost/db"] {
        let out = run_fusebox(bad, &schema.name, &["status"]).await;
        assert_eq!(out.status.code(), Some(4), "{bad}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr).lines().count(), 1);
    }
    let out = run_fusebox(&url, "Not-A-Schema", &["status"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));

    // Missing tables: a schema never set up.
    for args in [&["status"][..], &["open", "dep"], &["instances", "dep"]] {
        let out = run_fusebox(&url, &schema.name, args).await;
        assert_eq!(
            out.status.code(),
            Some(5),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("fusebox pg-setup"));
    }

    // Unknown breaker.
    schema.store().setup().await.expect("setup");
    for args in [
        &["open", "nope"][..],
        &["close", "nope"],
        &["reset", "nope"],
        &["instances", "nope"],
    ] {
        let out = run_fusebox(&url, &schema.name, args).await;
        assert_eq!(
            out.status.code(),
            Some(6),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("no breaker named \"nope\""));
    }

    // A bad duration is a usage error.
    let out = run_fusebox(&url, &schema.name, &["open", "dep", "--for", "soon"]).await;
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_shows_examples_and_completions_generate() {
    for command in [
        "pg-setup",
        "status",
        "open",
        "close",
        "reset",
        "instances",
        "completions",
    ] {
        let out = Command::cargo_bin("fusebox")
            .expect("binary")
            .args([command, "--help"])
            .output()
            .expect("runs");
        assert!(out.status.success());
        assert!(
            text(&out.stdout).contains("Example"),
            "{command} --help has no example"
        );
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::cargo_bin("fusebox")
            .expect("binary")
            .args(["completions", shell])
            .output()
            .expect("runs");
        assert!(out.status.success());
        assert!(
            text(&out.stdout).contains("pg-setup"),
            "{shell} completions"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_redraws_in_place() {
    use std::io::Read;
    use std::sync::{Arc, Mutex};

    let Some(url) = server().await else { return };
    let schema = Schema::new(&url, "watch");
    schema.store().setup().await.expect("setup");
    let fleet = two_instances(&schema).await;

    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("fusebox"))
        .env_remove("REDIS_URL")
        .args(["--database-url", &url, "--schema", &schema.name])
        .args(["status", "--watch", "--interval", "100ms"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let seen = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    const CLEAR: &str = "\x1b[H\x1b[2J";
    let frames = |seen: &Arc<Mutex<Vec<u8>>>| {
        let text = text(&seen.lock().unwrap());
        (text.matches(CLEAR).count(), text)
    };
    let redrawn = wait_until(Duration::from_secs(10), || frames(&seen).0 >= 3).await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    let (count, text) = frames(&seen);
    assert!(redrawn.is_some(), "{count} frames: {text:?}");
    // The frame before the last one is complete (the last may be cut by the kill).
    let frame = text.rsplit(CLEAR).nth(1).unwrap_or_default();
    assert!(
        frame.contains("BREAKER") && frame.lines().any(|l| l.starts_with("dep ")),
        "{frame:?}"
    );
    drop(fleet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_from_the_command_line() {
    let url = std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let address = url
        .trim_start_matches("redis://")
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    if let Err(e) = tokio::net::TcpStream::connect(&address).await {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("Redis is unreachable at {url} ({e}); under CI=true the CLI tests must run");
        }
        eprintln!("skipping: Redis is unreachable at {url} ({e})");
        return;
    }
    let prefix = format!("fbc-{}-{:x}:", std::process::id(), rand_suffix());
    let redis = |args: &[&str], redis_url: &str| {
        let mut c = Command::cargo_bin("fusebox").expect("binary");
        c.env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .args(["--redis-url", redis_url, "--prefix", &prefix])
            .args(args);
        c
    };
    let out = run(redis(&["status"], &url)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no breakers yet"));
    let out = run(redis(&["open", "nope"], &url)).await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    let out = run(redis(&["open", "dep", "--create", "--for", "1m"], &url)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(redis(&["status", "--json"], &url)).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json[0]["forced"], "open");
    let out = run(redis(&["reset", "dep"], &url)).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(redis(&["status"], "redis://127.0.0.1:1")).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let out = run(redis(&["status"], "http://127.0.0.1")).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos()
}

/// The store from DATABASE_URL alone, and from libpq's PG* variables alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_from_the_environment() {
    use std::str::FromStr;
    use tokio_postgres::config::Host;

    let Some(url) = server().await else { return };
    let schema = Schema::new(&url, "env");
    schema.store().setup().await.expect("setup");
    let bare = |envs: &[(&str, String)]| {
        let mut c = Command::cargo_bin("fusebox").expect("binary");
        for key in [
            "DATABASE_URL",
            "REDIS_URL",
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGDATABASE",
        ] {
            c.env_remove(key);
        }
        c.env("FUSEBOX_SCHEMA", &schema.name).arg("status");
        for (k, v) in envs {
            c.env(k, v);
        }
        c
    };

    let out = run(bare(&[("DATABASE_URL", url.clone())])).await;
    assert!(out.status.success(), "DATABASE_URL: {}", text(&out.stderr));

    let config = tokio_postgres::Config::from_str(&url).expect("a URL the tests can read");
    let mut envs = Vec::new();
    if let Some(Host::Tcp(host)) = config.get_hosts().first() {
        envs.push(("PGHOST", host.clone()));
    }
    if let Some(port) = config.get_ports().first() {
        envs.push(("PGPORT", port.to_string()));
    }
    if let Some(user) = config.get_user() {
        envs.push(("PGUSER", user.to_owned()));
    }
    if let Some(db) = config.get_dbname() {
        envs.push(("PGDATABASE", db.to_owned()));
    }
    if let Some(pw) = config.get_password() {
        envs.push(("PGPASSWORD", String::from_utf8_lossy(pw).into_owned()));
    }
    let out = run(bare(&envs)).await;
    assert!(
        out.status.success(),
        "PG* variables {envs:?}: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("no breakers yet"));
}

/// The seed nodes of the local Redis Cluster; `None` (a skip) outside CI when it is absent.
async fn cluster_seeds() -> Option<String> {
    let seeds = std::env::var("REDIS_CLUSTER_URLS")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            "redis://127.0.0.1:7001,redis://127.0.0.1:7002,redis://127.0.0.1:7003".to_owned()
        });
    let first = seeds.split(',').next().unwrap_or_default();
    let address = first.trim_start_matches("redis://").to_owned();
    match tokio::net::TcpStream::connect(&address).await {
        Ok(_) => Some(seeds),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Redis Cluster is unreachable at {seeds} ({e}); under CI=true it must run")
        }
        Err(e) => {
            eprintln!("skipping: Redis Cluster is unreachable at {seeds} ({e})");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_store_from_the_command_line() {
    let Some(seeds) = cluster_seeds().await else {
        return;
    };
    let prefix = format!("fbcc-{}-{:x}:", std::process::id(), rand_suffix());
    let cluster = |args: &[&str]| {
        let mut c = Command::cargo_bin("fusebox").expect("binary");
        c.env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .env_remove("FUSEBOX_REDIS_CLUSTER")
            .args(args)
            .args(["--redis-cluster", &seeds, "--prefix", &prefix]);
        c
    };
    let out = run(cluster(&["status"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no breakers yet"));
    let out = run(cluster(&["open", "dep", "--create", "--for", "1m"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(cluster(&["status", "--json"])).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json[0]["name"], "dep");
    assert_eq!(json[0]["forced"], "open");
    let out = run(cluster(&["reset", "dep"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The same breaker, named through the environment.
    let mut by_env = Command::cargo_bin("fusebox").expect("binary");
    by_env
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env("FUSEBOX_REDIS_CLUSTER", &seeds)
        .args(["status", "--json", "--prefix", &prefix]);
    let out = run(by_env).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json[0]["forced"], serde_json::Value::Null);

    // Two stores named, or a stray comma, are refused before anything is opened.
    let mut both = Command::cargo_bin("fusebox").expect("binary");
    both.env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .args(["--redis-url", "redis://127.0.0.1:6379", "status"])
        .args(["--redis-cluster", &seeds]);
    let out = run(both).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("both --redis-url and --redis-cluster"),
        "{}",
        text(&out.stderr)
    );
    let mut stray = Command::cargo_bin("fusebox").expect("binary");
    stray
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .args(["status", "--redis-cluster", "redis://127.0.0.1:7001,,"]);
    let out = run(stray).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("empty seed"),
        "{}",
        text(&out.stderr)
    );
}
