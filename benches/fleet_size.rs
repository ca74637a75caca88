//! Fleet size: what one sync costs the store as one breaker's fleet grows.
//!
//! N simulated instances of one breaker (N = 10 and 1,000; not processes, N instance ids in
//! one process) each sync the way a fleet engine does: a flush with realistic outcome
//! deltas and a 500 ms lease, then the next one a 100 ms interval after the answer. Against
//! Redis and PostgreSQL, it reports per store and N:
//!
//! * `rtt`: the round trip of `StateStore::sync` as the caller sees it (mean, p50, p99),
//!   pool waits and network included;
//! * `server`: the store's own time per sync. Redis: `usec_per_call` of `evalsha` from
//!   `INFO commandstats` (reset with `CONFIG RESETSTAT` when the measurement starts).
//!   PostgreSQL: the total time of the `sync` function per call from
//!   `pg_stat_user_functions` (the store's sessions run with `track_functions = pl`; read
//!   with `psql`), so commit and network are not in it;
//! * `timeouts`: syncs without an answer within 1 s (the fleet's default store timeout),
//!   and other errors.
//!
//! Target: at 1,000 instances the server time per sync within 2x of the 10-instance
//! figure, and no timeouts, on both stores.
//!
//! Run with `cargo bench --bench fleet_size` (Redis at `REDIS_URL`, default
//! redis://127.0.0.1:6379, PostgreSQL at `DATABASE_URL`, default
//! postgres://postgres@127.0.0.1:5432/test; a store that cannot be reached is skipped).
//! `FLEET_SIZES` (default `10,1000`) and `FLEET_SECONDS` (measured seconds per run,
//! default 10) change the runs. Redis's command statistics are server-wide: run it on a
//! server nothing else is using.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fusebox::fleet::{OutcomeDelta, StateStore, SyncRequest};
use fusebox_postgres::PostgresStore;
use fusebox_redis::RedisStore;
use tokio::time::Instant;

const INTERVAL: Duration = Duration::from_millis(100);
const LEASE_TTL_MS: u64 = 500;
const STORE_TIMEOUT: Duration = Duration::from_secs(1);
const WARM_UP: Duration = Duration::from_secs(2);

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn sizes() -> Vec<usize> {
    std::env::var("FLEET_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .filter(|v: &Vec<usize>| !v.is_empty())
        .unwrap_or_else(|| vec![10, 1000])
}

fn seconds() -> Duration {
    let secs = std::env::var("FLEET_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10u64);
    Duration::from_secs(secs.max(1))
}

/// Where the measured part of a run is.
#[derive(Default)]
struct Tally {
    measuring: std::sync::atomic::AtomicBool,
    syncs: AtomicU64,
    timeouts: AtomicU64,
    errors: AtomicU64,
    latencies_us: std::sync::Mutex<Vec<u32>>,
}

/// One simulated instance: syncs like an engine, the next flush one interval after the
/// answer.
async fn instance(
    store: Arc<dyn StateStore>,
    breaker: String,
    k: usize,
    n: usize,
    until: Instant,
    tally: Arc<Tally>,
) {
    // Spread the first flushes over one interval, as instances started at random would be.
    tokio::time::sleep(INTERVAL.mul_f64(k as f64 / n as f64)).await;
    let mut seq = 0u64;
    let mut latencies = Vec::new();
    while Instant::now() < until {
        seq += 1;
        let mix = (seq as usize).wrapping_mul(31).wrapping_add(k * 7);
        let request = SyncRequest {
            breaker: breaker.clone(),
            instance: format!("instance-{k:04}"),
            lease_ttl_ms: LEASE_TTL_MS,
            incarnation: 1 + k as u64,
            seq,
            outcomes: OutcomeDelta {
                successes: 20 + (mix % 40) as u64,
                failures: (mix % 3) as u64,
                slow: u64::from(mix.is_multiple_of(5)),
            },
            local_open: k.is_multiple_of(50),
            mode: "pooled".into(),
            ..Default::default()
        };
        let start = Instant::now();
        let result = tokio::time::timeout(STORE_TIMEOUT, store.sync(&request)).await;
        let took = start.elapsed();
        if tally.measuring.load(Ordering::Relaxed) {
            tally.syncs.fetch_add(1, Ordering::Relaxed);
            match result {
                Ok(Ok(_)) => latencies.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX)),
                // The client's own response timeout (also 1 s) answers an error.
                Ok(Err(_)) if took >= STORE_TIMEOUT.mul_f64(0.95) => {
                    tally.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(_)) => {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    tally.timeouts.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        tokio::time::sleep(INTERVAL).await;
    }
    if let Ok(mut all) = tally.latencies_us.lock() {
        all.extend(latencies);
    }
}

struct Outcome {
    syncs: u64,
    timeouts: u64,
    errors: u64,
    rate: f64,
    mean_us: f64,
    p50_us: u32,
    p99_us: u32,
    server_us: Option<f64>,
}

/// Runs `n` instances against `store` and measures `span` after a warm-up; `server` is
/// called at the measurement's start (`false`) and end (`true`) and answers the server
/// time per sync at the end.
fn run(
    store: Arc<dyn StateStore>,
    breaker: &str,
    n: usize,
    span: Duration,
    mut server: impl FnMut(bool) -> Option<f64>,
) -> Outcome {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tally = Arc::new(Tally::default());
    let (server_us, elapsed) = rt.block_on(async {
        let until = Instant::now() + WARM_UP + span;
        let mut tasks = Vec::with_capacity(n);
        for k in 0..n {
            tasks.push(tokio::spawn(instance(
                Arc::clone(&store),
                breaker.to_owned(),
                k,
                n,
                until,
                Arc::clone(&tally),
            )));
        }
        tokio::time::sleep(WARM_UP).await;
        server(false);
        tally.measuring.store(true, Ordering::Relaxed);
        let start = Instant::now();
        tokio::time::sleep_until(until).await;
        tally.measuring.store(false, Ordering::Relaxed);
        let elapsed = start.elapsed();
        let server_us = server(true);
        for t in tasks {
            let _ = t.await;
        }
        (server_us, elapsed)
    });
    let mut latencies = tally
        .latencies_us
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let syncs = tally.syncs.load(Ordering::Relaxed);
    Outcome {
        syncs,
        timeouts: tally.timeouts.load(Ordering::Relaxed),
        errors: tally.errors.load(Ordering::Relaxed),
        rate: syncs as f64 / elapsed.as_secs_f64(),
        mean_us: latencies.iter().map(|&l| f64::from(l)).sum::<f64>()
            / latencies.len().max(1) as f64,
        p50_us: at(0.5),
        p99_us: at(0.99),
        server_us,
    }
}

fn report(label: &str, n: usize, o: &Outcome) {
    let server = o
        .server_us
        .map_or_else(|| "n/a".to_owned(), |us| format!("{us:.1} us"));
    eprintln!(
        "{label:<8} n={n:<5} server/sync {server:>10}  rtt mean {:>8.1} us p50 {:>7} us p99 {:>7} us  \
         syncs {:>6} ({:>7.0}/s of {:>6}/s)  timeouts {}  errors {}",
        o.mean_us,
        o.p50_us,
        o.p99_us,
        o.syncs,
        o.rate,
        n * 10,
        o.timeouts,
        o.errors
    );
}

/// A plain RESP command on its own connection, for server statistics; `None` when the URL
/// is not a plain `redis://host:port` or the server does not answer.
fn redis_command(url: &str, args: &[&str]) -> Option<String> {
    let rest = url.strip_prefix("redis://")?;
    let host_port = rest.split('/').next()?;
    if host_port.contains('@') {
        return None;
    }
    let address = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:6379")
    };
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(out.as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let read = stream.read(&mut buf).ok()?;
        if read == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..read]);
        let text = String::from_utf8_lossy(&reply);
        if let Some(body) = text.strip_prefix('$') {
            let (len, rest) = body.split_once("\r\n")?;
            if rest.len() >= len.parse::<usize>().ok()? {
                break;
            }
        } else if text.ends_with("\r\n") {
            break;
        }
    }
    Some(String::from_utf8_lossy(&reply).into_owned())
}

/// `usec_per_call` of `evalsha` since the last `CONFIG RESETSTAT`.
fn redis_server_time(url: &str, end: bool) -> Option<f64> {
    if !end {
        redis_command(url, &["CONFIG", "RESETSTAT"]);
        return None;
    }
    let info = redis_command(url, &["INFO", "commandstats"])?;
    let line = info.lines().find(|l| l.starts_with("cmdstat_evalsha:"))?;
    let field = line
        .split(',')
        .find_map(|f| f.strip_prefix("usec_per_call="))?;
    field.trim().parse().ok()
}

fn redis_store(prefix: &str) -> Option<Arc<dyn StateStore>> {
    let store = RedisStore::builder(redis_url())
        .prefix(prefix)
        .response_timeout(STORE_TIMEOUT)
        .build()
        .ok()?;
    let rt = tokio::runtime::Runtime::new().ok()?;
    rt.block_on(store.prepare()).ok()?;
    Some(Arc::new(store))
}

/// The store's sessions track their function calls, so `pg_stat_user_functions` has the
/// server time of `sync`.
fn tracked_url() -> String {
    let url = database_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-c%20track_functions%3Dpl")
}

fn postgres_store(schema: &str) -> Option<Arc<dyn StateStore>> {
    let store = PostgresStore::builder(tracked_url())
        .schema(schema)
        .setup_on_prepare(true)
        .build()
        .ok()?;
    let rt = tokio::runtime::Runtime::new().ok()?;
    rt.block_on(store.prepare()).ok()?;
    Some(Arc::new(store))
}

/// Calls and total milliseconds of the schema's `sync` functions, read with `psql`.
fn pg_function_stats(schema: &str) -> Option<(f64, f64)> {
    let sql = format!(
        "SELECT coalesce(sum(calls), 0), coalesce(sum(total_time), 0) \
         FROM pg_stat_user_functions WHERE schemaname = '{schema}' AND funcname IN ('sync', 'sync_v3')"
    );
    let out = std::process::Command::new("psql")
        .args([database_url().as_str(), "-Atc", sql.as_str()])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (calls, total) = text.trim().split_once('|')?;
    Some((calls.parse().ok()?, total.parse().ok()?))
}

fn main() {
    // `cargo bench` passes `--bench`; a filter-less harness has nothing else to read.
    let span = seconds();
    let run_id = format!("{}-{:x}", std::process::id(), rand_suffix());
    let redis_prefix = format!("fusebox-fleet-size:{run_id}:");
    let redis = redis_store(&redis_prefix);
    if redis.is_none() {
        eprintln!("Redis unreachable: the redis runs are skipped");
    }
    let schema = format!("fusebox_fleet_size_{}", std::process::id());
    let postgres = postgres_store(&schema);
    if postgres.is_none() {
        eprintln!("PostgreSQL unreachable: the postgres runs are skipped");
    }
    let mut figures: Vec<(&str, usize, Outcome)> = Vec::new();
    for n in sizes() {
        // A breaker of its own per run, so each starts with no instance.
        let breaker = format!("fleet-{n}");
        if let Some(store) = &redis {
            let url = redis_url();
            let o = run(Arc::clone(store), &breaker, n, span, |end| {
                redis_server_time(&url, end)
            });
            report("redis", n, &o);
            figures.push(("redis", n, o));
        }
        if let Some(store) = &postgres {
            let mut before = None;
            let o = run(Arc::clone(store), &breaker, n, span, |end| {
                if !end {
                    before = pg_function_stats(&schema);
                    return None;
                }
                // Sessions report their statistics at most once a second.
                std::thread::sleep(Duration::from_millis(1_200));
                let (c1, t1) = pg_function_stats(&schema)?;
                let (c0, t0) = before?;
                (c1 > c0).then(|| (t1 - t0) * 1000.0 / (c1 - c0))
            });
            report("postgres", n, &o);
            figures.push(("postgres", n, o));
        }
    }
    for store in ["redis", "postgres"] {
        let of = |n: usize| {
            figures
                .iter()
                .find(|(s, m, _)| *s == store && *m == n)
                .and_then(|(_, _, o)| o.server_us)
        };
        if let (Some(small), Some(large)) = (of(10), of(1000)) {
            eprintln!(
                "{store}: server time per sync at 1000 instances is {:.2}x the 10-instance figure",
                large / small
            );
        }
    }
    if postgres.is_some() {
        let _ = std::process::Command::new("psql")
            .args([
                database_url().as_str(),
                "-qAtc",
                &format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"),
            ])
            .output();
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos().into())
        .unwrap_or(0)
}
