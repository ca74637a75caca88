//! Contract case for hostile names: breaker names and instance ids are opaque text, and
//! two that differ never share state, whatever characters they hold.

use super::{Harness, namespace, request};
use crate::ForcedState;

/// Names that spell key separators, escapes, control characters and each other's keys.
const HOSTILE: [&str; 9] = [
    "a",
    "a}:lease:y",
    "a%7D:lease:y",
    "{a}",
    "a}",
    "line\nbreak",
    "\u{1b}[31mred",
    "pipe|1 space",
    "i:dep",
];

/// Every hostile name keeps its own record, instances and forced state.
pub async fn names_are_opaque(h: &Harness) {
    let store = h.store(&namespace("names")).await;
    // Breaker `a`'s instance `y}` has the lease a naive layout would give breaker
    // `a}:lease:y` as its record.
    let instance_of = |breaker: &str| if breaker == "a" { "y}" } else { "x|1\n" };
    for (n, name) in HOSTILE.iter().enumerate() {
        let mut flush = request(instance_of(name), 1, n as u64 + 1, 0);
        flush.breaker = (*name).to_owned();
        let view = store
            .sync(&flush)
            .await
            .unwrap_or_else(|e| panic!("sync of {name:?}: {e}"));
        assert_eq!(view.name, *name);
    }
    for (n, name) in HOSTILE.iter().enumerate() {
        let view = store
            .view(name)
            .await
            .unwrap_or_else(|e| panic!("view of {name:?}: {e}"))
            .unwrap_or_else(|| panic!("{name:?} is unknown"));
        let seen: Vec<(&str, u64)> = view
            .instances
            .iter()
            .map(|i| (i.id.as_str(), i.successes))
            .collect();
        assert_eq!(
            seen,
            vec![(instance_of(name), n as u64 + 1)],
            "{name:?} shares state with another name"
        );
    }
    let mut listed = store.breakers().await.expect("breakers");
    listed.sort();
    let mut expected: Vec<String> = HOSTILE.iter().map(|n| (*n).to_owned()).collect();
    expected.sort();
    assert_eq!(listed, expected);

    store
        .force("a}:lease:y", Some(ForcedState::Open), None)
        .await
        .expect("force");
    for name in HOSTILE {
        let view = store.view(name).await.expect("view").expect("record");
        let expected = (name == "a}:lease:y").then_some(ForcedState::Open);
        assert_eq!(
            view.record.forced, expected,
            "forcing one name reached {name:?}"
        );
    }
}
