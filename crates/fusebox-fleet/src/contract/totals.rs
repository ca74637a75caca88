//! Contract cases for the fleet's totals a sync answers: kept by the store as flushes
//! apply, they must say what counting every instance would.

use std::time::Duration;

use super::{Harness, namespace, request, wait_until};
use crate::{FleetChange, FleetTotals, FleetView};

/// The totals counted over the instances an operator's view lists.
fn counted(view: &FleetView) -> FleetTotals {
    FleetView {
        totals: None,
        ..view.clone()
    }
    .totals()
}

/// After random flushes (resent ones, stale ones, verdicts that change, restarts), the totals
/// a sync answers equal the sums over every instance, and the sync's answer holds the
/// flushing instance as the store applied its flush.
pub async fn totals_match_the_instances(h: &Harness) {
    let store = h.store(&namespace("totals")).await;
    let ids = ["a", "b", "c", "d", "e"];
    let mut seqs = [0u64; 5];
    let mut last = None;
    for round in 0..60u64 {
        let k = rand::random_range(0..ids.len());
        // Now and then a resent flush (the same sequence number) or a restart.
        let resend = seqs[k] > 0 && rand::random_ratio(1, 6);
        let restart = rand::random_ratio(1, 20);
        if !resend {
            seqs[k] += 1;
        }
        if restart {
            seqs[k] = 1;
        }
        let mut r = request(
            ids[k],
            seqs[k],
            rand::random_range(0..50),
            rand::random_range(0..5),
        );
        r.outcomes.slow = rand::random_range(0..3);
        r.local_open = rand::random_ratio(1, 3);
        r.incarnation = if restart { round + 100 } else { 0 };
        let view = store.sync(&r).await.expect("sync");
        let own = view
            .instances
            .iter()
            .find(|i| i.id == ids[k])
            .expect("a sync's answer holds the flushing instance");
        assert!(own.live && own.seq == seqs[k], "{own:?}");
        last = Some(view);
    }
    let synced = last.expect("a sync").totals();
    let listed = store.view("dep").await.expect("view").expect("record");
    let sums = counted(&listed);
    assert_eq!(
        (synced.successes, synced.failures, synced.slow),
        (sums.successes, sums.failures, sums.slow),
        "the fleet's outcome totals differ from the sums over its instances"
    );
    assert_eq!(
        (synced.live_instances, synced.open_votes, synced.live_claims),
        (sums.live_instances, sums.open_votes, sums.live_claims),
        "live counts differ from the instances'"
    );
    assert_eq!(sums.live_instances as usize, listed.instances.len());
}

/// An instance whose lease ran out stops counting in the live instances, open votes and
/// trial slots a sync answers, within its lease and the next flush; outcomes it reported
/// stay in the totals.
pub async fn expired_instances_leave_the_totals(h: &Harness) {
    let store = h.store(&namespace("totals-expiry")).await;
    let mut short = request("short", 1, 7, 3);
    short.lease_ttl_ms = 600;
    short.local_open = true;
    store.sync(&short).await.expect("sync");
    let view = store.sync(&request("long", 1, 1, 0)).await.expect("sync");
    let t = view.totals();
    assert_eq!((t.live_instances, t.open_votes), (2, 1));
    assert_eq!((t.successes, t.failures), (8, 3));
    let cas = store
        .transition("dep", 0, FleetChange::Open { cooldown_ms: 0 }, "test")
        .await
        .expect("transition");
    assert!(cas.won);
    let claim = store
        .claim_trials("dep", "short", 2, 3)
        .await
        .expect("claim");
    assert_eq!(claim.granted, 2);
    assert_eq!(claim.view.live_claims(), 2);
    let mut seq = 1;
    let gone = wait_until(Duration::from_secs(5), || {
        seq += 1;
        let store = store.clone();
        let r = request("long", seq, 0, 0);
        async move {
            let t = store.sync(&r).await.expect("sync").totals();
            (t.live_instances, t.open_votes, t.live_claims) == (1, 0, 0)
        }
    })
    .await;
    assert!(gone.is_some(), "an expired instance still counts");
    let t = store
        .sync(&request("long", seq + 1, 0, 0))
        .await
        .expect("sync")
        .totals();
    assert_eq!(
        (t.successes, t.failures),
        (8, 3),
        "an expired instance's outcomes left the totals"
    );
    let after = store
        .claim_trials("dep", "long", 3, 3)
        .await
        .expect("claim");
    assert_eq!(after.granted, 3, "a dead instance kept its trial slots");
}
