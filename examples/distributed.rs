//! Fleet-wide breakers: three instances of a service share one breaker through Redis.
//!
//! ```text
//! cargo run --example distributed                     # Redis at REDIS_URL or 127.0.0.1:6379
//! cargo run --example distributed -- --store postgres # PostgreSQL at DATABASE_URL
//! ```
//!
//! The story, in four acts, under quorum mode (at least 2 instances, and half of them):
//! 1. one instance's own network path fails: it opens alone, the other two keep serving;
//! 2. the dependency really goes down: a second instance trips and the fleet opens;
//! 3. the dependency comes back: after the cooldown, the fleet sends it exactly the
//!    permitted number of trial calls, not that number per instance;
//! 4. the trials pass and every instance closes.
//!
//! `distributed [--store S] worker ...` runs one instance as its own process (used by the
//! tests that spawn two real processes); see `worker` below.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fusebox::breaker::{Breaker, State};
use fusebox::fleet::{Fleet, FleetMode, StateStore};
use fusebox_postgres::PostgresStore;
use fusebox_redis::RedisStore;

const SYNC: Duration = Duration::from_millis(100);

/// A dependency reached over each instance's own network path.
struct Dependency {
    up: AtomicBool,
}

struct Instance {
    name: &'static str,
    breaker: Breaker,
    path_ok: AtomicBool,
}

impl Instance {
    /// One call through the breaker: `Some(ok)` when it reached the dependency.
    fn call(&self, dependency: &Dependency) -> Option<bool> {
        let permit = self.breaker.try_acquire().ok()?;
        let ok = dependency.up.load(Ordering::SeqCst) && self.path_ok.load(Ordering::SeqCst);
        if ok {
            permit.success();
        } else {
            permit.failure();
        }
        Some(ok)
    }
}

fn states(instances: &[Instance]) -> String {
    instances
        .iter()
        .map(|i| format!("{}={}", i.name, i.breaker.state()))
        .collect::<Vec<_>>()
        .join("  ")
}

async fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Where the fleet's state lives.
#[derive(Clone, Copy)]
enum Backend {
    Redis,
    Postgres,
}

impl Backend {
    fn url(self) -> String {
        let (var, default) = match self {
            Backend::Redis => ("REDIS_URL", "redis://127.0.0.1:6379"),
            Backend::Postgres => ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
        };
        std::env::var(var).unwrap_or_else(|_| default.into())
    }

    /// A store handle on `namespace`: a key prefix on Redis, a schema on PostgreSQL (set
    /// up on first use, as `fusebox pg-setup` would).
    fn store(self, url: &str, namespace: &str) -> Result<Arc<dyn StateStore>, String> {
        Ok(match self {
            Backend::Redis => Arc::new(
                RedisStore::builder(url)
                    .prefix(format!("{namespace}:"))
                    .build()
                    .map_err(|e| e.to_string())?,
            ),
            Backend::Postgres => Arc::new(
                PostgresStore::builder(url)
                    .schema(namespace)
                    .setup_on_prepare(true)
                    .build()
                    .map_err(|e| e.to_string())?,
            ),
        })
    }
}

async fn check_reachable(store: &Arc<dyn StateStore>, url: &str) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(3), store.prepare()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("the store at {url} is unreachable: {e}")),
        Err(_) => Err(format!("the store at {url} did not answer within 3 s")),
    }
}

async fn demo(backend: Backend) -> Result<(), String> {
    let url = backend.url();
    let url = url.as_str();
    let namespace = "fusebox_demo";
    check_reachable(&backend.store(url, namespace)?, url).await?;
    let mode = FleetMode::quorum(2, 0.5).map_err(|e| e.to_string())?;
    // One breaker per run, so runs never see each other's state.
    let name = format!("inventory-{}", std::process::id());
    println!("three instances share breaker `{name}` through {url} ({mode})\n");

    let mut instances = Vec::new();
    for instance in ["a", "b", "c"] {
        let fleet = Fleet::builder(backend.store(url, namespace)?)
            .instance_id(instance)
            .sync_interval(SYNC)
            .build()
            .map_err(|e| e.to_string())?;
        let breaker = fleet
            .breaker(
                Breaker::builder(name.clone())
                    .consecutive_failures(3)
                    .cooldown(Duration::from_millis(800))
                    .half_open_trials(2, 2),
                mode,
            )
            .map_err(|e| e.to_string())?;
        instances.push(Instance {
            name: instance,
            breaker,
            path_ok: AtomicBool::new(true),
        });
    }
    let dependency = Dependency {
        up: AtomicBool::new(true),
    };
    tokio::time::sleep(SYNC * 3).await; // every instance holds a lease

    println!("1. instance a's own network path fails");
    instances[0].path_ok.store(false, Ordering::SeqCst);
    for _ in 0..3 {
        instances[0].call(&dependency);
    }
    tokio::time::sleep(SYNC * 5).await;
    let served = instances[1..]
        .iter()
        .filter(|i| i.call(&dependency) == Some(true))
        .count();
    println!("   {}", states(&instances));
    println!("   a is open alone; b and c still served {served} of 2 calls\n");
    if instances[1].breaker.state() != State::Closed || served != 2 {
        return Err("one sick instance cut the fleet off".into());
    }

    println!("2. the dependency goes down for everyone");
    dependency.up.store(false, Ordering::SeqCst);
    for _ in 0..3 {
        instances[1].call(&dependency);
    }
    let start = Instant::now();
    let all_open = wait_for(SYNC * 20, || {
        instances.iter().all(|i| i.breaker.state() == State::Open)
    })
    .await;
    println!("   {}", states(&instances));
    if !all_open {
        return Err("the fleet did not open on quorum".into());
    }
    println!(
        "   b tripped too: 2 of 3 instances open is a quorum; c opened {:?} later\n",
        start.elapsed()
    );

    println!("3. the dependency recovers; the fleet probes it after the cooldown");
    dependency.up.store(true, Ordering::SeqCst);
    instances[0].path_ok.store(true, Ordering::SeqCst);
    let trials = AtomicU32::new(0);
    let closed = wait_for(Duration::from_secs(10), || {
        for i in &instances {
            if let Ok(permit) = i.breaker.try_acquire() {
                if permit.is_trial() {
                    trials.fetch_add(1, Ordering::SeqCst);
                }
                permit.success(); // the dependency is back
            }
        }
        instances.iter().all(|i| i.breaker.state() == State::Closed)
    })
    .await;
    println!(
        "   the dependency saw {} trial calls from 3 instances (2 permitted fleet-wide)\n",
        trials.load(Ordering::SeqCst)
    );

    println!("4. the trials passed");
    println!("   {}", states(&instances));
    if !closed {
        return Err("the fleet did not close after its trials".into());
    }
    let served = instances
        .iter()
        .filter(|i| i.call(&dependency) == Some(true))
        .count();
    println!("   every instance serves again ({served} of 3 calls)");
    Ok(())
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// One instance as a process: `worker <instance> <namespace> <fail_for_ms> <run_ms>`. Calls a
/// dependency every 5 ms that fails for this instance during the first `fail_for_ms`;
/// prints `<unix ms> <state>` on every state change.
async fn worker(backend: Backend, args: &[String]) -> Result<(), String> {
    let [instance, namespace, fail_for, run_for] = args else {
        return Err(
            "usage: distributed [--store S] worker <instance> <namespace> <fail_for_ms> <run_ms>"
                .into(),
        );
    };
    let url = backend.url();
    let url = url.as_str();
    let parse = |s: &String| {
        s.parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|e| format!("{s:?}: {e}"))
    };
    let (fail_for, run_for) = (parse(fail_for)?, parse(run_for)?);
    let store = backend.store(url, namespace)?;
    check_reachable(&store, url).await?;
    let fleet = Fleet::builder(store)
        .instance_id(instance.as_str())
        .sync_interval(SYNC)
        .build()
        .map_err(|e| e.to_string())?;
    let breaker = fleet
        .breaker(
            Breaker::builder("shared")
                .failures_in_last(5, 10)
                .cooldown(Duration::from_millis(500))
                .half_open_trials(1, 1),
            FleetMode::Pooled,
        )
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < run_for {
        if let Ok(permit) = breaker.try_acquire() {
            if start.elapsed() < fail_for {
                permit.failure();
            } else {
                permit.success();
            }
        }
        let state = breaker.state();
        if last != Some(state) {
            println!("{} {state}", unix_ms());
            last = Some(state);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut backend = Backend::Redis;
    if args.first().map(String::as_str) == Some("--store") {
        backend = match args.get(1).map(String::as_str) {
            Some("redis") => Backend::Redis,
            Some("postgres") => Backend::Postgres,
            other => {
                eprintln!("error: --store takes `redis` or `postgres`, not {other:?}");
                return ExitCode::FAILURE;
            }
        };
        args.drain(..2);
    }
    let result = match args.first().map(String::as_str) {
        Some("worker") => worker(backend, &args[1..]).await,
        None => demo(backend).await,
        Some(other) => Err(format!("unknown argument {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
