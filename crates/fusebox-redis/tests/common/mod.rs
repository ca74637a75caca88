//! Helpers shared by the Redis tests.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `REDIS_URL` (default redis://127.0.0.1:6379) if a server answers there. Otherwise `None`
/// (the test skips) — except under CI=true, where a missing server fails the test.
pub fn redis_url_or_skip() -> Option<String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    if ping(&url) {
        return Some(url);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("Redis is unreachable at {url}; CI needs it (scripts/test starts it)");
    }
    eprintln!("skipping: Redis is unreachable at {url}");
    None
}

/// The seed nodes in `REDIS_CLUSTER_URLS` (comma-separated; default 127.0.0.1 ports
/// 7001-7003, as scripts/services starts them) if every one answers and sees the cluster as
/// ok. Otherwise `None` (the test skips) — except under CI=true, where it fails the test.
pub fn redis_cluster_urls_or_skip() -> Option<Vec<String>> {
    let list = std::env::var("REDIS_CLUSTER_URLS").unwrap_or_else(|_| {
        "redis://127.0.0.1:7001,redis://127.0.0.1:7002,redis://127.0.0.1:7003".into()
    });
    let urls: Vec<String> = list
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    if !urls.is_empty() && urls.iter().all(|u| cluster_ok(u)) {
        return Some(urls);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("Redis Cluster is not ok at {list}; CI needs it (scripts/test starts it)");
    }
    eprintln!("skipping: Redis Cluster is not ok at {list}");
    None
}

/// Whether the node at `url` answers and reports `cluster_state:ok`.
pub fn cluster_ok(url: &str) -> bool {
    query(&host_port(url), "CLUSTER INFO").contains("cluster_state:ok")
}

fn host_port(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let hostport = rest.split('/').next().unwrap_or(rest);
    if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:6379")
    }
}

/// Whether a Redis server answers PING at `url`.
pub fn ping(url: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(host_port(url)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// Sends one command (inline protocol) and returns the raw reply.
pub fn command(port: u16, cmd: &str) -> String {
    let reply = query(&format!("127.0.0.1:{port}"), cmd);
    assert!(!reply.is_empty(), "no reply to {cmd:?} on port {port}");
    reply
}

/// Sends one command (inline protocol) to `addr` and returns the raw reply; empty when the
/// server cannot be reached.
pub fn query(addr: &str, cmd: &str) -> String {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return String::new();
    };
    if stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .and_then(|()| stream.write_all(format!("{cmd}\r\n").as_bytes()))
        .is_err()
    {
        return String::new();
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    // Replies here are small; read until the server pauses.
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
            }
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A redis-server of the test's own, on a free port, killed on drop.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    /// Starts a server, or returns `None` (skip) when `redis-server` is not installed and
    /// CI is not "true".
    pub fn start() -> Option<OwnRedis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut server = OwnRedis { port, child: None };
        if !server.spawn() {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("redis-server could not be started; CI needs it");
            }
            eprintln!("skipping: redis-server could not be started");
            return None;
        }
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            return false;
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ping(&self.url()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Kills the server at once (SIGKILL): its data is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "redis-server restarts");
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server: requests hang, then are served.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .expect("kill runs");
            assert!(status.success());
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}
