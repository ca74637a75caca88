//! Shared by the CLI tests that need a real Redis: its URL, the skip-or-fail rule, and the
//! command run against one key prefix.

#![allow(dead_code)]

pub fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// `host:port` of a Redis URL, credentials and database left out.
pub fn address(url: &str) -> String {
    let rest = url.trim_start_matches("redis://");
    let rest = rest.rsplit('@').next().unwrap_or_default();
    rest.split('/').next().unwrap_or_default().to_owned()
}

/// The server's URL; `None` (skip) when unreachable, a failure under CI=true.
pub async fn server() -> Option<String> {
    let url = redis_url();
    match tokio::net::TcpStream::connect(address(&url)).await {
        Ok(_) => Some(url),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Redis is unreachable at {url} ({e}); under CI=true the CLI tests must run")
        }
        Err(e) => {
            eprintln!("skipping: Redis is unreachable at {url} ({e})");
            None
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The `fusebox` command on one Redis and one key prefix.
pub struct Cli {
    pub url: String,
    pub prefix: String,
}

impl Cli {
    /// Runs the command with `args`, off the runtime's threads; the store comes from the
    /// arguments only, never from the environment.
    pub async fn run(&self, args: &[&str]) -> std::process::Output {
        let mut c = assert_cmd::Command::cargo_bin("fusebox").expect("binary");
        c.env_remove("DATABASE_URL")
            .env_remove("REDIS_URL")
            .args(["--redis-url", &self.url, "--prefix", &self.prefix])
            .args(args);
        tokio::task::spawn_blocking(move || c.output().expect("runs"))
            .await
            .expect("join")
    }
}

/// A key prefix no other test or run uses.
pub fn prefix(case: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!("fbc-{case}-{}-{nanos:x}:", std::process::id())
}
