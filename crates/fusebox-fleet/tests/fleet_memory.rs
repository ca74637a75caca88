//! The store contract suite on the in-memory store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fusebox_fleet::contract::Harness;
use fusebox_fleet::{MemoryStore, StateStore};

fn harness() -> Option<Harness> {
    let stores: Arc<Mutex<HashMap<String, MemoryStore>>> = Arc::default();
    Some(Harness::new(move |namespace: &str| {
        let mut stores = stores.lock().unwrap();
        let store = stores.entry(namespace.to_owned()).or_default().clone();
        Arc::new(store) as Arc<dyn StateStore>
    }))
}

fusebox_fleet::store_contract_tests!(harness());
