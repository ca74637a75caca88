//! The store contract suite on a real Redis (`REDIS_URL`, default redis://127.0.0.1:6379).
//! Each case uses its own key prefix. Under CI=true an unreachable server fails the run.

mod common;

use std::sync::Arc;
use std::time::Duration;

use fusebox_fleet::StateStore;
use fusebox_fleet::contract::Harness;
use fusebox_redis::RedisStore;

fn harness() -> Option<Harness> {
    let url = common::redis_url_or_skip()?;
    Some(Harness::new(move |namespace: &str| {
        let store = RedisStore::builder(url.as_str())
            .prefix(format!("fusebox-test:{namespace}:"))
            .idle_ttl(Duration::from_secs(600))
            .build()
            .expect("valid store settings");
        Arc::new(store) as Arc<dyn StateStore>
    }))
}

fusebox_fleet::store_contract_tests!(harness());
