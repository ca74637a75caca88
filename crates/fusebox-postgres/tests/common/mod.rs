//! Shared by the PostgreSQL tests: the server's URL, the skip-or-fail rule, one schema per
//! test, and cleanup of schemas left by earlier runs.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fusebox_postgres::PostgresStore;
use tokio_postgres::NoTls;

/// Prefix of every schema the tests create; followed by the test process's id.
pub const PREFIX: &str = "fbt_";

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A connection for the test's own statements, its driver running on the current runtime.
pub async fn admin(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The server's URL when it answers. When it does not: `None` (the test skips) unless
/// CI=true, where the test fails.
pub async fn server() -> Option<String> {
    let url = database_url();
    let reached = tokio::time::timeout(Duration::from_secs(5), admin(&url)).await;
    let error = match reached {
        Ok(Ok(client)) => {
            cleanup_once(&client).await;
            return Some(url);
        }
        Ok(Err(e)) => match std::error::Error::source(&e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
        Err(_) => "no answer within 5 s".to_owned(),
    };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!(
            "PostgreSQL is unreachable at {url} ({error}); under CI=true the PostgreSQL tests must run"
        );
    }
    eprintln!("skipping: PostgreSQL is unreachable at {url} ({error}); set DATABASE_URL");
    None
}

/// A schema name for `namespace`, unique to this process: `fbt_<pid>_<namespace>`,
/// sanitized to a plain identifier and shortened with a hash when too long.
pub fn schema_for(namespace: &str) -> String {
    let clean: String = namespace
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    let full = format!("{PREFIX}{}_{clean}", std::process::id());
    if full.len() <= fusebox_postgres::MAX_SCHEMA_LEN {
        return full;
    }
    // FNV-1a of the whole name keeps shortened names distinct.
    let hash = namespace.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let keep = fusebox_postgres::MAX_SCHEMA_LEN - 9;
    format!("{}_{:08x}", &full[..keep], hash as u32)
}

/// A fresh schema name for one test.
pub fn fresh_schema(case: &str) -> String {
    schema_for(&format!("{case}_{:08x}", rand_u32()))
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() as u32
}

/// A store on `schema` that sets itself up, with connections named after the schema so a
/// test can find (and terminate) them.
pub fn store(url: &str, schema: &str) -> PostgresStore {
    PostgresStore::builder(url)
        .schema(schema)
        .pool_size(3)
        .application_name(app_name(schema))
        .setup_on_prepare(true)
        .build()
        .expect("valid store settings")
}

pub fn app_name(schema: &str) -> String {
    format!("fbt-{schema}")
}

/// Drops the schemas of test processes that are gone (once per process).
async fn cleanup_once(client: &tokio_postgres::Client) {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.swap(true, Ordering::AcqRel) {
        return;
    }
    let Ok(rows) = client
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE starts_with(nspname, $1)",
            &[&PREFIX],
        )
        .await
    else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name[PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| {
            p == std::process::id() || std::path::Path::new(&format!("/proc/{p}")).exists()
        });
        if !alive {
            let _ = client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{name}\" CASCADE"))
                .await;
        }
    }
}

/// Drops one schema (at the end of a test).
pub async fn drop_schema(url: &str, schema: &str) {
    if let Ok(client) = admin(url).await {
        let _ = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await;
    }
}

/// What a calling task made: outcomes recorded and calls rejected.
#[derive(Default)]
pub struct Recorded {
    pub successes: std::sync::atomic::AtomicU64,
    pub failures: std::sync::atomic::AtomicU64,
    pub rejected: std::sync::atomic::AtomicU64,
}

/// A task calling through `breaker` until `stop` is set: every `fail_every`-th call fails,
/// the others succeed; `pause` between calls.
pub fn spawn_calls(
    breaker: fusebox_core::breaker::Breaker,
    fail_every: u64,
    pause: Duration,
) -> (
    std::sync::Arc<Recorded>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    tokio::task::JoinHandle<()>,
) {
    use std::sync::atomic::Ordering;
    let recorded = std::sync::Arc::new(Recorded::default());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let task = {
        let (recorded, stop) = (
            std::sync::Arc::clone(&recorded),
            std::sync::Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Acquire) {
                match breaker.try_acquire() {
                    Ok(permit) if n % fail_every == fail_every - 1 => {
                        permit.failure();
                        recorded.failures.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(permit) => {
                        permit.success();
                        recorded.successes.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        recorded.rejected.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 1;
                tokio::time::sleep(pause).await;
            }
        })
    };
    (recorded, stop, task)
}
