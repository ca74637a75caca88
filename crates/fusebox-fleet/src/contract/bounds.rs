//! Contract cases for the values a store is asked to write: every span is range-checked
//! before anything is written, and stores agree on what they refuse.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{Harness, namespace, request};
use crate::{FleetChange, ForcedState, MAX_STORE_SPAN_MS, StoreError};

/// Extreme spans and a seeded spread over every magnitude of `u64`.
fn spans() -> Vec<u64> {
    let mut out = vec![
        0,
        1,
        999,
        MAX_STORE_SPAN_MS - 1,
        MAX_STORE_SPAN_MS,
        MAX_STORE_SPAN_MS + 1,
        1 << 53,
        i64::MAX as u64,
        i64::MAX as u64 + 1,
        u64::MAX - 1,
        u64::MAX,
        // `fusebox open --for 3000000000000h`, `--for 99999999h`
        3_000_000_000_000 * 3_600_000,
        99_999_999 * 3_600_000,
    ];
    let mut rng = SmallRng::seed_from_u64(0xb0_0d5);
    for _ in 0..24 {
        let bits = rng.random_range(0..64u32);
        out.push(rng.random::<u64>() >> bits);
    }
    out
}

fn in_range(ms: u64) -> bool {
    (1..=MAX_STORE_SPAN_MS).contains(&ms)
}

fn refused<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str, ms: u64) {
    match result {
        Err(StoreError::Invalid(_)) => {}
        other => panic!("{what} of {ms} ms: expected a refusal, got {other:?}"),
    }
}

/// Forced durations, open cooldowns and lease times: a value within 1 ms (0 for a
/// cooldown) to [`MAX_STORE_SPAN_MS`] is written and read back intact; any other is refused with
/// [`StoreError::Invalid`] and leaves the record as it was, so no value can wedge a fleet.
pub async fn spans_are_range_checked(h: &Harness) {
    let store = h.store(&namespace("spans")).await;
    store.sync(&request("a", 1, 1, 0)).await.expect("sync");
    let mut seq = 1;
    for ms in spans() {
        let before = store.view("dep").await.expect("view").expect("record");
        let forced = store.force("dep", Some(ForcedState::Open), Some(ms)).await;
        if in_range(ms) {
            let view = forced.unwrap_or_else(|e| panic!("force for {ms} ms: {e}"));
            let until = view
                .record
                .forced_until_ms
                .expect("a timed force has an end");
            assert!(
                until >= view.now_ms && until - view.now_ms <= ms,
                "force for {ms} ms ends at {until} (now {})",
                view.now_ms
            );
            store.force("dep", None, None).await.expect("reset");
        } else {
            refused(forced, "a force", ms);
            let after = store.view("dep").await.expect("view").expect("record");
            assert_eq!(after.record.generation, before.record.generation);
            assert_eq!(after.record.forced, None, "a refused force was written");
        }

        let generation = store
            .view("dep")
            .await
            .expect("view")
            .expect("record")
            .record
            .generation;
        let change = FleetChange::Open { cooldown_ms: ms };
        let cas = store.transition("dep", generation, change, "test").await;
        // A zero cooldown opens with trials allowed at once.
        if ms == 0 || in_range(ms) {
            let cas = cas.unwrap_or_else(|e| panic!("open for {ms} ms: {e}"));
            assert!(cas.won);
            assert!(cas.view.cooldown_remaining_ms() <= ms);
            store.force("dep", None, None).await.expect("reset");
        } else {
            refused(cas, "a cooldown", ms);
        }

        seq += 1;
        let mut req = request("a", seq, 1, 0);
        req.lease_ttl_ms = ms;
        let synced = store.sync(&req).await;
        if in_range(ms) {
            synced.unwrap_or_else(|e| panic!("lease for {ms} ms: {e}"));
        } else {
            refused(synced, "a lease", ms);
            seq -= 1; // the refused flush was not applied
        }
        // Whatever was refused, the record still reads.
        store.view("dep").await.expect("the record still reads");
    }
}

/// The shortest force, 1 ms, ends by itself in every store (a zero would mean "forever" in
/// one store and "over at once" in another, so it is refused).
pub async fn shortest_force_ends(h: &Harness) {
    let store = h.store(&namespace("short-force")).await;
    store.sync(&request("a", 1, 1, 0)).await.expect("sync");
    refused(
        store.force("dep", Some(ForcedState::Open), Some(0)).await,
        "a force",
        0,
    );
    let view = store
        .force("dep", Some(ForcedState::Open), Some(1))
        .await
        .expect("force for 1 ms");
    assert_eq!(view.record.forced, Some(ForcedState::Open));
    let ended = super::wait_until(std::time::Duration::from_secs(5), || async {
        let v = store.view("dep").await.expect("view").expect("record");
        v.record.forced.is_none()
    })
    .await;
    assert!(ended.is_some(), "a 1 ms force did not end");
}
