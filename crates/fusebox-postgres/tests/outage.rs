//! A store outage on PostgreSQL: the test's connections are terminated with
//! `pg_terminate_backend` while calls flow. Calls keep flowing, nothing panics, the
//! breakers resync, and no outcome is counted twice.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use fusebox_core::breaker::{Breaker, State};
use fusebox_fleet::contract::wait_until;
use fusebox_fleet::{Fleet, FleetMode, ForcedState, StateStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_connections_count_nothing_twice() {
    let Some(url) = common::server().await else {
        return;
    };
    let schema = common::fresh_schema("outage");
    let app = common::app_name(&schema);
    let interval = Duration::from_millis(50);
    common::store(&url, &schema).setup().await.expect("setup");

    let mut breakers = Vec::new();
    for id in ["a", "b"] {
        let fleet = Fleet::builder(common::store(&url, &schema))
            .instance_id(id)
            .sync_interval(interval)
            .store_timeout(Duration::from_millis(500))
            .build()
            .expect("fleet");
        let breaker = fleet
            .breaker(
                Breaker::builder("dep").consecutive_failures(1_000_000),
                FleetMode::Pooled,
            )
            .expect("breaker");
        breakers.push(breaker);
    }
    // The observer's connections are not terminated (another application name).
    let reader = fusebox_postgres::PostgresStore::builder(&url)
        .schema(&schema)
        .build()
        .expect("reader");
    let registered = wait_until(Duration::from_secs(10), || async {
        let view = reader.view("dep").await.ok().flatten();
        view.is_some_and(|v| v.live_instances() == 2)
    })
    .await;
    assert!(registered.is_some(), "both instances register");

    // Instance `a` makes calls all along: two successes, then a failure.
    let (recorded, stop, worker) =
        common::spawn_calls(breakers[0].clone(), 3, Duration::from_micros(200));

    let admin = common::admin(&url).await.expect("admin connection");
    let a_total = |view: &fusebox_fleet::FleetView| {
        view.instances
            .iter()
            .find(|i| i.id == "a")
            .map_or(0, |i| i.successes + i.failures)
    };
    let mut terminated = 0;
    for _ in 0..4 {
        // Let some outcomes through first, then cut every connection of the test's stores
        // (the pools' and the LISTEN ones).
        let before = reader
            .view("dep")
            .await
            .expect("view")
            .map_or(0, |v| a_total(&v));
        let progressed = wait_until(Duration::from_secs(20), || async {
            let v = reader.view("dep").await.ok().flatten();
            v.is_some_and(|v| a_total(&v) > before + 20)
        })
        .await;
        assert!(progressed.is_some(), "flushes resume after an outage");
        terminated += terminate_connections(&admin, &app).await;
    }
    assert!(terminated >= 4, "only {terminated} connections terminated");
    stop.store(true, Ordering::Release);
    worker.await.expect("the calling task never panics");

    let successes = recorded.successes.load(Ordering::Relaxed);
    let failures = recorded.failures.load(Ordering::Relaxed);
    assert_eq!(
        recorded.rejected.load(Ordering::Relaxed),
        0,
        "calls were rejected during the outage"
    );
    assert!(successes + failures > 80);
    // Every outcome arrives once: the totals reach the recorded counts...
    let settled = wait_until(Duration::from_secs(20), || async {
        let v = reader.view("dep").await.ok().flatten();
        v.is_some_and(|v| {
            v.instances
                .iter()
                .any(|i| i.id == "a" && (i.successes, i.failures) == (successes, failures))
        })
    })
    .await;
    let view = reader.view("dep").await.expect("view").expect("record");
    assert!(
        settled.is_some(),
        "totals {:?} never matched the {successes} successes and {failures} failures recorded",
        view.instances
    );
    // ...and stay there: no resent flush adds them again.
    tokio::time::sleep(interval * 6).await;
    let view = reader.view("dep").await.expect("view").expect("record");
    let a = view.instances.iter().find(|i| i.id == "a").expect("a");
    assert_eq!((a.successes, a.failures), (successes, failures));

    // Both instances resynced: an operator's kill-switch reaches them.
    let operator = common::store(&url, &schema);
    operator
        .force("dep", Some(ForcedState::Open), None)
        .await
        .expect("force");
    let obeyed = wait_until(Duration::from_secs(10), || async {
        breakers.iter().all(|b| b.state() == State::ForcedOpen)
    })
    .await;
    assert!(
        obeyed.is_some(),
        "an instance missed the kill-switch after the outage"
    );
    operator.force("dep", None, None).await.expect("reset");
    let reset = wait_until(Duration::from_secs(10), || async {
        breakers.iter().all(|b| b.state() == State::Closed)
    })
    .await;
    assert!(reset.is_some(), "an instance missed the reset");

    drop(breakers);
    common::drop_schema(&url, &schema).await;
}

/// The LISTEN connection comes back after it is terminated: a notice after the outage is
/// heard without any sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_resume_after_the_listener_is_terminated() {
    let Some(url) = common::server().await else {
        return;
    };
    let schema = common::fresh_schema("relisten");
    let app = common::app_name(&schema);
    let listener = common::store(&url, &schema);
    listener.prepare().await.expect("setup");
    let mut notices = listener.subscribe();
    let writer = fusebox_postgres::PostgresStore::builder(&url)
        .schema(&schema)
        .build()
        .expect("writer");
    let admin = common::admin(&url).await.expect("admin connection");

    for round in 0..2 {
        // Notices from before the cut do not count.
        while notices.try_recv().is_ok() {}
        let start = tokio::time::Instant::now();
        let mut heard = false;
        while !heard && start.elapsed() < Duration::from_secs(10) {
            writer
                .force("dep", Some(ForcedState::Open), None)
                .await
                .expect("force");
            let got = tokio::time::timeout(Duration::from_millis(200), notices.recv()).await;
            heard = matches!(got, Ok(Ok(n)) if n.breaker == "dep");
        }
        assert!(heard, "no notice in round {round}");
        let killed = terminate_connections(&admin, &app).await;
        assert!(killed > 0, "the listening connection was not found");
    }
    drop(listener);
    common::drop_schema(&url, &schema).await;
}

/// Terminates every server connection reporting `app` as its application name; how many.
async fn terminate_connections(admin: &tokio_postgres::Client, app: &str) -> usize {
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[&app],
        )
        .await
        .expect("terminate")
        .len()
}
