//! The server goes away and comes back, as the clients see it: the stores reach
//! PostgreSQL through a proxy of the test's own that can be switched off (every connection
//! cut, new ones dropped at once) and on again. The shared server is left alone.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fusebox_core::breaker::{Breaker, State};
use fusebox_fleet::contract::wait_until;
use fusebox_fleet::{Fleet, FleetMode, ForcedState, StateStore};
use fusebox_postgres::PostgresStore;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy to the server that can be switched off and on.
struct Proxy {
    address: SocketAddr,
    on: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (on, _) = watch::channel(true);
        let switch = on.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut state = switch.subscribe();
                if !*state.borrow() {
                    continue; // off: the connection is dropped at once
                }
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = state.wait_for(|on| !*on) => {} // switched off: cut
                    }
                });
            }
        });
        Proxy { address, on }
    }

    fn set(&self, on: bool) {
        self.on.send_replace(on);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_goes_away_and_comes_back() {
    use std::str::FromStr;
    use tokio_postgres::config::Host;

    let Some(url) = common::server().await else {
        return;
    };
    let direct = tokio_postgres::Config::from_str(&url).expect("a URL the tests can read");
    let (Some(Host::Tcp(host)), Some(port)) =
        (direct.get_hosts().first(), direct.get_ports().first())
    else {
        eprintln!("skipping: the server is not on TCP");
        return;
    };
    let proxy = Proxy::start(format!("{host}:{port}")).await;
    // Host and port through the proxy (setting them on a copy would add a second host).
    let mut proxied = tokio_postgres::Config::new();
    proxied
        .host("127.0.0.1")
        .port(proxy.address.port())
        .connect_timeout(Duration::from_millis(500));
    if let Some(user) = direct.get_user() {
        proxied.user(user);
    }
    if let Some(db) = direct.get_dbname() {
        proxied.dbname(db);
    }
    if let Some(pw) = direct.get_password() {
        proxied.password(pw);
    }

    let schema = common::fresh_schema("restart");
    let operator = common::store(&url, &schema);
    operator.setup().await.expect("setup");
    let through_proxy = || {
        PostgresStore::builder_with_config(proxied.clone())
            .schema(&schema)
            .pool_size(2)
            .build()
            .expect("store")
    };

    let interval = Duration::from_millis(50);
    let mut breakers = Vec::new();
    for id in ["a", "b"] {
        let fleet = Fleet::builder(through_proxy())
            .instance_id(id)
            .sync_interval(interval)
            .store_timeout(Duration::from_millis(300))
            .build()
            .expect("fleet");
        breakers.push(
            fleet
                .breaker(
                    Breaker::builder("dep").consecutive_failures(1_000_000),
                    FleetMode::Pooled,
                )
                .expect("breaker"),
        );
    }
    let listener = through_proxy();
    let mut notices = listener.subscribe();
    let registered = wait_until(Duration::from_secs(10), || async {
        let v = operator.view("dep").await.ok().flatten();
        v.is_some_and(|v| v.live_instances() == 2)
    })
    .await;
    assert!(registered.is_some(), "both instances register");

    let (recorded, stop, worker) =
        common::spawn_calls(breakers[0].clone(), 4, Duration::from_micros(500));

    // The server goes away for a while; meanwhile an operator (on a path that still
    // works) sets the kill-switch, which the cut-off instances cannot see yet.
    tokio::time::sleep(interval * 4).await;
    proxy.set(false);
    tokio::time::sleep(Duration::from_millis(400)).await;
    operator
        .force("dep", Some(ForcedState::Open), None)
        .await
        .expect("force");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        breakers.iter().all(|b| b.state() == State::Closed),
        "an instance heard of the kill-switch while cut off"
    );
    stop.store(true, Ordering::Release);
    worker.await.expect("the calling task never panics");
    assert_eq!(
        recorded.rejected.load(Ordering::Relaxed),
        0,
        "calls were rejected while the server was away"
    );

    // Back: both resync and obey the kill-switch.
    proxy.set(true);
    let obeyed = wait_until(Duration::from_secs(15), || async {
        breakers.iter().all(|b| b.state() == State::ForcedOpen)
    })
    .await;
    assert!(
        obeyed.is_some(),
        "the instances did not resync after the server came back"
    );

    // Every outcome made while cut off arrives, once.
    let (successes, failures) = (
        recorded.successes.load(Ordering::Relaxed),
        recorded.failures.load(Ordering::Relaxed),
    );
    let settled = wait_until(Duration::from_secs(10), || async {
        let v = operator.view("dep").await.ok().flatten();
        v.is_some_and(|v| {
            v.instances
                .iter()
                .any(|i| i.id == "a" && (i.successes, i.failures) == (successes, failures))
        })
    })
    .await;
    let view = operator.view("dep").await.expect("view").expect("record");
    assert!(
        settled.is_some(),
        "totals {:?}, recorded {successes} successes and {failures} failures",
        view.instances
    );

    // The LISTEN connection is back too: a notice arrives without any sync.
    while notices.try_recv().is_ok() {}
    let start = tokio::time::Instant::now();
    let mut heard = false;
    while !heard && start.elapsed() < Duration::from_secs(10) {
        operator
            .force("dep", Some(ForcedState::Open), None)
            .await
            .expect("force");
        let got = tokio::time::timeout(Duration::from_millis(200), notices.recv()).await;
        heard = matches!(got, Ok(Ok(n)) if n.breaker == "dep");
    }
    assert!(heard, "no notice after the server came back");

    drop((breakers, listener));
    common::drop_schema(&url, &schema).await;
}
