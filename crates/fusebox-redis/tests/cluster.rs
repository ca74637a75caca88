//! The store contract suite on a Redis Cluster (`REDIS_CLUSTER_URLS`, default the three
//! local masters scripts/services starts on ports 7001-7003), plus the slot layout as the
//! cluster itself computes it. Each case uses its own key prefix. Under CI=true a cluster
//! that is not ok fails the run.

mod common;

use std::sync::Arc;
use std::time::Duration;

use fusebox_fleet::contract::Harness;
use fusebox_fleet::{FleetChange, OutcomeDelta, StateStore, SyncRequest};
use fusebox_redis::RedisStore;

fn harness() -> Option<Harness> {
    let seeds = common::redis_cluster_urls_or_skip()?;
    Some(Harness::new(move |namespace: &str| {
        let store = cluster_store(&seeds, namespace);
        Arc::new(store) as Arc<dyn StateStore>
    }))
}

fn cluster_store(seeds: &[String], namespace: &str) -> RedisStore {
    RedisStore::cluster_builder(seeds.iter().cloned())
        .prefix(format!("fusebox-test:{namespace}:"))
        .idle_ttl(Duration::from_secs(600))
        .build()
        .expect("valid store settings")
}

fusebox_fleet::store_contract_tests!(harness());

fn unique(case: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{case}-{}-{nanos}", std::process::id())
}

/// The cluster's own `CLUSTER KEYSLOT` of `key`.
fn server_slot(seed: &str, key: &str) -> i64 {
    let client = redis::Client::open(seed).expect("seed URL");
    let mut con = client.get_connection().expect("a seed node answers");
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(&mut con)
        .expect("CLUSTER KEYSLOT")
}

/// The server agrees that every key of a hostile breaker, and every lease key of a hostile
/// instance, is in the slot of the breaker's hash, and a flush of each works (a key of
/// another slot would fail the script with CROSSSLOT or a non-local key error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breakers_keys_share_one_slot_on_the_server() {
    let Some(seeds) = common::redis_cluster_urls_or_skip() else {
        return;
    };
    let store = cluster_store(&seeds, &unique("slots"));
    let names = ["a}:lease:y", "{a}", "}{", "{}", "%7B", "x{y}z", "plain"];
    let mut slots = std::collections::HashSet::new();
    for name in names {
        let base = store.breaker_key(name);
        let slot = server_slot(&seeds[0], &base);
        for suffix in [":leases", ":open", ":claims", ":lease:y}", ":lease:{i}"] {
            let key = format!("{base}{suffix}");
            assert_eq!(server_slot(&seeds[0], &key), slot, "{name:?}: {key:?}");
        }
        slots.insert(slot);
        for instance in ["y}", "{i}"] {
            let request = SyncRequest {
                breaker: name.to_owned(),
                instance: instance.to_owned(),
                lease_ttl_ms: 60_000,
                seq: 1,
                outcomes: OutcomeDelta {
                    successes: 1,
                    ..OutcomeDelta::default()
                },
                ..SyncRequest::default()
            };
            let view = store
                .sync(&request)
                .await
                .unwrap_or_else(|e| panic!("sync of {name:?} by {instance:?}: {e}"));
            assert_eq!(view.name, name);
        }
        let view = store.view(name).await.expect("view").expect("a record");
        assert_eq!(view.live_instances(), 2, "{name:?}");
    }
    assert!(slots.len() > 1, "every breaker in one slot: {slots:?}");
    let mut expected: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    expected.sort();
    assert_eq!(store.breakers().await.expect("breakers"), expected);
}

/// A cluster none of whose seeds answers is a store outage, reported promptly (the fleet
/// then falls back to its outage policy), never a protocol error or a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let store = RedisStore::cluster_builder([format!("redis://127.0.0.1:{port}")])
        .response_timeout(Duration::from_millis(300))
        .build()
        .expect("valid settings");
    let started = std::time::Instant::now();
    let err = store.prepare().await.expect_err("nothing answers");
    assert!(err.is_unavailable(), "{err}");
    let request = SyncRequest {
        breaker: "dep".into(),
        instance: "i0".into(),
        lease_ttl_ms: 1_000,
        seq: 1,
        ..SyncRequest::default()
    };
    let err = store.sync(&request).await.expect_err("nothing answers");
    assert!(err.is_unavailable(), "{err}");
    let err = store.breakers().await.expect_err("nothing answers");
    assert!(err.is_unavailable(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
}

/// The master serving each slot range, as `(first, last, port)`.
fn masters(seed: &str) -> Vec<(i64, i64, i64)> {
    let client = redis::Client::open(seed).expect("seed URL");
    let mut con = client.get_connection().expect("a seed node answers");
    let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query(&mut con)
        .expect("CLUSTER SLOTS");
    ranges
        .iter()
        .map(|range| {
            let redis::Value::Array(fields) = range else {
                panic!("a slot range: {range:?}");
            };
            let int = |v: &redis::Value| match v {
                redis::Value::Int(n) => *n,
                other => panic!("a number: {other:?}"),
            };
            let redis::Value::Array(master) = &fields[2] else {
                panic!("a master: {:?}", fields[2]);
            };
            (int(&fields[0]), int(&fields[1]), int(&master[1]))
        })
        .collect()
}

/// One subscription hears transitions of breakers served by every master: scripts publish
/// with classic PUBLISH, which the cluster carries to all nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_subscription_hears_breakers_on_every_master() {
    let Some(seeds) = common::redis_cluster_urls_or_skip() else {
        return;
    };
    let namespace = unique("spread");
    let listener = cluster_store(&seeds, &namespace);
    let writer = cluster_store(&seeds, &namespace);
    let masters = masters(&seeds[0]);
    let port_of = |name: &str| {
        let slot = server_slot(&seeds[0], &writer.breaker_key(name));
        masters
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|m| m.2)
            .expect("every slot is served")
    };
    // One breaker per master.
    let mut names: Vec<(String, i64)> = Vec::new();
    for n in 0..200 {
        let name = format!("dep-{n}");
        let port = port_of(&name);
        if names.iter().all(|(_, p)| *p != port) {
            names.push((name, port));
        }
    }
    let ports: std::collections::HashSet<i64> = masters.iter().map(|m| m.2).collect();
    assert_eq!(names.len(), ports.len(), "a breaker on every master");
    let mut notices = listener.subscribe();
    let mut unheard: Vec<String> = names.into_iter().map(|(name, _)| name).collect();
    let started = std::time::Instant::now();
    // The subscription connects in the background: announce again until heard.
    while !unheard.is_empty() && started.elapsed() < Duration::from_secs(10) {
        for name in &unheard {
            let generation = writer
                .view(name)
                .await
                .expect("view")
                .map_or(0, |v| v.record.generation);
            writer
                .transition(name, generation, FleetChange::Closed, "test")
                .await
                .expect("transition");
        }
        while let Ok(Ok(notice)) =
            tokio::time::timeout(Duration::from_millis(200), notices.recv()).await
        {
            unheard.retain(|name| *name != notice.breaker);
        }
    }
    assert!(unheard.is_empty(), "never heard of {unheard:?}");
}
