//! The store contract suite, the same one the memory and Redis stores pass, on PostgreSQL:
//! each case on a schema of its own.

mod common;

use std::sync::Arc;

use fusebox_fleet::StateStore;
use fusebox_fleet::contract::Harness;

async fn harness() -> Option<Harness> {
    let url = common::server().await?;
    Some(Harness::new(move |namespace: &str| {
        let schema = common::schema_for(namespace);
        Arc::new(common::store(&url, &schema)) as Arc<dyn StateStore>
    }))
}

fusebox_fleet::store_contract_tests!(harness().await);
