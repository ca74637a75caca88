//! A schema set up by an earlier release is upgraded in place: the instances it holds keep
//! their counts, and a store of this build refuses it until it is upgraded.

mod common;

use fusebox_fleet::{OutcomeDelta, StateStore, StoreError, SyncRequest};
use fusebox_postgres::{PostgresStore, SCHEMA_VERSION};

/// Writes the schema as version 1 left it, with one instance that has flushed twice.
async fn version_one(url: &str, schema: &str) {
    let client = common::admin(url).await.expect("connect");
    let quoted = format!("\"{schema}\"");
    let v1 = include_str!("../migrations/0001_fleet.sql")
        .replace("__SCHEMA__", &quoted)
        .replace("__CHANNEL__", &format!("fusebox_{schema}"));
    client
        .batch_execute(&format!(
            "BEGIN;
             CREATE SCHEMA {quoted};
             CREATE TABLE {quoted}.fusebox_migrations (
                 version integer PRIMARY KEY, description text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now());
             {v1}
             INSERT INTO {quoted}.fusebox_migrations (version, description) VALUES (1, 'v1');
             SELECT * FROM {quoted}.sync('dep', 'a', 60000, 1, 4, 1, 0, 0, 0, 0, 0, false, 'pooled');
             SELECT * FROM {quoted}.sync('dep', 'a', 60000, 2, 3, 0, 0, 0, 0, 0, 0, false, 'pooled');
             COMMIT;"
        ))
        .await
        .expect("version 1 written");
}

fn flush(incarnation: u64, seq: u64, successes: u64) -> SyncRequest {
    SyncRequest {
        breaker: "dep".into(),
        instance: "a".into(),
        lease_ttl_ms: 60_000,
        incarnation,
        seq,
        outcomes: OutcomeDelta {
            successes,
            ..Default::default()
        },
        mode: "pooled".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_version_one_schema_is_upgraded_in_place() {
    let Some(url) = common::server().await else {
        return;
    };
    let schema = common::fresh_schema("upgrade");
    version_one(&url, &schema).await;

    let strict = PostgresStore::builder(&url)
        .schema(&schema)
        .pool_size(1)
        .build()
        .expect("valid store settings");
    match strict.prepare().await {
        Err(StoreError::NotSetUp(message)) => assert!(
            message.contains("at version 1") && message.contains("pg-setup"),
            "unexpected refusal: {message}"
        ),
        other => panic!("a version 1 schema was accepted as is: {other:?}"),
    }

    let store = common::store(&url, &schema);
    let report = store.setup().await.expect("upgrade");
    assert_eq!(report.previous_version, 1);
    assert_eq!(report.applied, vec![2, 3]);
    assert_eq!(
        store.schema_version().await.expect("version"),
        Some(SCHEMA_VERSION)
    );
    store.prepare().await.expect("prepared after the upgrade");

    // The counts written under version 1 are kept; the instance's next run counts from its
    // first flush.
    let view = store.sync(&flush(42, 1, 5)).await.expect("sync");
    let a = &view.instances[0];
    assert_eq!((a.successes, a.failures, a.seq), (12, 1, 1));
    let resent = store.sync(&flush(42, 1, 5)).await.expect("sync");
    assert_eq!(
        resent.instances[0].successes, 12,
        "a resent flush counted twice"
    );
    // An incarnation past i64::MAX is kept and compared exactly.
    let high = store.sync(&flush(u64::MAX, 1, 1)).await.expect("sync");
    assert_eq!(high.instances[0].successes, 13);
    let again = store.sync(&flush(u64::MAX, 1, 1)).await.expect("sync");
    assert_eq!(
        again.instances[0].successes, 13,
        "a resent flush counted twice"
    );

    // A build from before the upgrade, still running during a rolling upgrade, keeps
    // flushing through the old signature, as one run.
    let client = common::admin(&url).await.expect("connect");
    let old_flush = format!(
        "SELECT successes, seq FROM \"{schema}\".sync('dep', 'b', 60000, 1, 2, 0, 0, 0, 0, 0, 0, false, 'pooled') WHERE instance = 'b'"
    );
    for _ in 0..2 {
        let row = client.query_one(&old_flush, &[]).await.expect("old flush");
        let (successes, seq): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(
            (successes, seq),
            (2, 1),
            "an old build's resent flush counted twice"
        );
    }
}
