//! Unit tests of the key layout: hash tags that keep a script call in one cluster slot
//! whatever the names, the names earlier releases wrote, and the registration period.

use super::*;
use redis::cluster_routing::Slot;

/// Breaker names and instance ids that try to end the hash tag early, open a second
/// one, or hold the escape itself.
const HOSTILE_NAMES: [&str; 18] = [
    "a",
    "a}:lease:y",
    "a%7D:lease:y",
    "{a}",
    "a}",
    "{",
    "}",
    "{}",
    "}{",
    "%",
    "%7B",
    "x{y}z",
    "{payments}:leases",
    "line\nbreak",
    "\u{1b}[31mred",
    "pipe|1 space",
    "i:dep",
    "día",
];
const HOSTILE_INSTANCES: [&str; 5] = ["i0", "y}", "{", "}{x}", "x|1\n"];

fn cluster_store(prefix: &str) -> RedisStore {
    RedisStore::cluster_builder(["redis://127.0.0.1:7001"])
        .prefix(prefix)
        .build()
        .expect("valid settings")
}

#[test]
fn every_key_of_a_script_call_shares_the_breakers_slot() {
    for prefix in ["fusebox:", "orders:eu:", "a%b:"] {
        let store = cluster_store(prefix);
        let mut slots = std::collections::HashSet::new();
        for name in HOSTILE_NAMES {
            let (keys, lease_prefix) = store.script_keys(name);
            assert_eq!(keys.len(), 4, "{name:?}: a key beside the breaker's own");
            // The tag is exactly the escaped name: no name ends it early or moves it.
            let slot = Slot::for_key(key_part(name).as_bytes());
            let leases = HOSTILE_INSTANCES.map(|id| format!("{lease_prefix}{id}"));
            for key in keys.iter().chain(&leases) {
                assert_eq!(Slot::for_key(key), slot, "{prefix:?} {name:?}: {key:?}");
            }
            slots.insert(format!("{slot:?}"));
        }
        // Breakers spread over the cluster rather than sharing one slot.
        assert!(slots.len() > HOSTILE_NAMES.len() / 2, "{slots:?}");
        let seen = store.seen_key();
        assert!(
            !seen.contains(['{', '}']),
            "the index of names has no tag: {seen:?}"
        );
    }
}

#[test]
fn standalone_keys_keep_the_names_of_earlier_releases() {
    let store = RedisStore::new("redis://127.0.0.1").expect("valid settings");
    let (keys, lease_prefix) = store.script_keys("a}:lease:y");
    assert_eq!(
        keys,
        [
            "fusebox:{a%7D:lease:y}",
            "fusebox:{a%7D:lease:y}:leases",
            "fusebox:{a%7D:lease:y}:open",
            "fusebox:{a%7D:lease:y}:claims",
            "fusebox:breakers",
        ]
    );
    assert_eq!(lease_prefix, "fusebox:{a%7D:lease:y}:lease:");
    assert_eq!(store.channel(), "fusebox:events");
}

#[test]
fn cluster_names_are_refreshed_well_within_the_idle_ttl() {
    let day = cluster_store("fusebox:");
    assert_eq!(day.register_every(), Duration::from_secs(60));
    let short = RedisStore::cluster_builder(["redis://127.0.0.1:7001"])
        .idle_ttl(Duration::from_secs(20))
        .build()
        .expect("valid settings");
    assert_eq!(short.register_every(), Duration::from_secs(5));
}
