//! A cluster subscription survives its connection being cut: the node drops every pub/sub
//! client, and notices still arrive. A test binary of its own, since the cut reaches every
//! subscriber on the cluster. Under CI=true a cluster that is not ok fails the run.

mod common;

use std::time::Duration;

use fusebox_fleet::{FleetChange, StateStore};
use fusebox_redis::RedisStore;

/// Announces transitions of `name` until `listener` hears one, for at most 10 s.
async fn heard(
    writer: &RedisStore,
    notices: &mut tokio::sync::broadcast::Receiver<fusebox_fleet::Notice>,
    name: &str,
) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let generation = writer
            .view(name)
            .await
            .expect("view")
            .map_or(0, |v| v.record.generation);
        writer
            .transition(name, generation, FleetChange::Closed, "test")
            .await
            .expect("transition");
        while let Ok(Ok(notice)) =
            tokio::time::timeout(Duration::from_millis(200), notices.recv()).await
        {
            if notice.breaker == name && notice.generation > generation {
                return true;
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_resume_after_the_subscription_is_cut() {
    let Some(seeds) = common::redis_cluster_urls_or_skip() else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let open = || {
        RedisStore::cluster_builder(seeds.iter().cloned())
            .prefix(format!("fusebox-test:resubscribe-{nanos}:"))
            .idle_ttl(Duration::from_secs(600))
            .build()
            .expect("valid store settings")
    };
    let (listener, writer) = (open(), open());
    let mut notices = listener.subscribe();
    assert!(heard(&writer, &mut notices, "dep").await, "no first notice");
    let mut cut = 0;
    for seed in &seeds {
        let client = redis::Client::open(seed.as_str()).expect("seed URL");
        let mut con = client.get_connection().expect("a seed node answers");
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query(&mut con)
            .expect("CLIENT KILL");
        cut += killed;
    }
    assert!(cut >= 1, "the subscription was not cut");
    while notices.try_recv().is_ok() {}
    assert!(
        heard(&writer, &mut notices, "dep").await,
        "no notice after the cut"
    );
}
