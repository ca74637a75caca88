//! The contract suite every [`StateStore`] must pass, written once and run on the memory,
//! Redis and PostgreSQL stores (feature `contract`).
//!
//! A store crate runs it from its tests with [`store_contract_tests!`](crate::store_contract_tests),
//! giving a [`Harness`] that opens a handle on an isolated namespace (a key prefix, a
//! schema). Every case opens its own namespace, so cases run in parallel.
//!
//! The suite checks the store alone (sequence numbers, compare-and-set, leases, trial
//! claims, forced states, notices) and the fleet built on it (pooled and quorum modes,
//! fleet-wide trials, simultaneous trips, the kill-switch). Fleet cases run in real time
//! with a short sync interval and wait on conditions, never on fixed sleeps.
//!
//! ```
//! use fusebox_fleet::MemoryStore;
//! use fusebox_fleet::contract::Harness;
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//!
//! // One store per namespace; every handle on a namespace sees the same store.
//! let stores: Arc<Mutex<HashMap<String, MemoryStore>>> = Arc::default();
//! let harness = Harness::new(move |namespace: &str| {
//!     let store = stores.lock().unwrap().entry(namespace.to_owned()).or_default().clone();
//!     Arc::new(store) as Arc<dyn fusebox_fleet::StateStore>
//! });
//! # drop(harness);
//! ```

mod bounds;
mod fleet;
mod names;
mod outage;
mod restart;
mod store;
mod totals;

pub use bounds::{shortest_force_ends, spans_are_range_checked};
pub use fleet::{
    fleet_trials_are_bounded, kill_switch_reaches_every_instance,
    pooled_fleet_trips_and_recovers_together, quorum_counts_only_live_instances,
    quorum_opens_only_with_enough_instances, simultaneous_trips_make_one_open,
};
pub use names::names_are_opaque;
pub use outage::{
    Severable, a_fleet_that_moved_on_outranks_a_returning_instance,
    fail_closed_outage_gives_way_to_the_store, fail_open_outage_admits_and_resyncs,
    forced_state_lifted_during_an_outage,
};
pub use restart::{
    an_instance_restarted_under_its_id_is_counted, incarnations_start_a_new_sequence,
};
pub use store::{
    concurrent_transitions_one_wins, forced_states, leases_expire, notices_announce_transitions,
    sequence_numbers_apply_once, trial_claims_are_bounded, trials_count_for_their_episode,
};
pub use totals::{expired_instances_leave_the_totals, totals_match_the_instances};

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Fleet, FleetMode, OutcomeDelta, StateStore, SyncRequest};
use fusebox_core::breaker::{Breaker, BreakerBuilder};

type Open = dyn Fn(&str) -> Arc<dyn StateStore> + Send + Sync;

/// Opens store handles on isolated namespaces for the contract cases.
pub struct Harness {
    open: Box<Open>,
    sync_interval: Duration,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("sync_interval", &self.sync_interval)
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// A harness whose `open(namespace)` returns a handle on the store's part named
    /// `namespace`; handles opened with the same namespace must share state.
    ///
    /// ```
    /// use fusebox_fleet::{contract::Harness, MemoryStore, StateStore};
    /// use std::sync::Arc;
    /// let store = MemoryStore::new();
    /// let harness = Harness::new(move |_ns: &str| Arc::new(store.clone()) as Arc<dyn StateStore>);
    /// # drop(harness);
    /// ```
    pub fn new(open: impl Fn(&str) -> Arc<dyn StateStore> + Send + Sync + 'static) -> Self {
        Harness {
            open: Box::new(open),
            sync_interval: Duration::from_millis(100),
        }
    }

    /// The sync interval fleet cases use (default 100 ms).
    ///
    /// ```
    /// use fusebox_fleet::{contract::Harness, MemoryStore, StateStore};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// let h = Harness::new(|_: &str| Arc::new(MemoryStore::new()) as Arc<dyn StateStore>)
    ///     .sync_interval(Duration::from_millis(50));
    /// # drop(h);
    /// ```
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }

    async fn store(&self, namespace: &str) -> Arc<dyn StateStore> {
        let store = (self.open)(namespace);
        if let Err(e) = store.prepare().await {
            panic!("the store could not be prepared: {e}");
        }
        store
    }

    fn fleet(&self, store: Arc<dyn StateStore>, instance: &str) -> Fleet {
        Fleet::builder(store)
            .instance_id(instance)
            .sync_interval(self.sync_interval)
            .build()
            .expect("valid fleet settings")
    }

    async fn instances(
        &self,
        namespace: &str,
        count: usize,
        mode: FleetMode,
        builder: impl Fn() -> BreakerBuilder,
    ) -> Vec<Breaker> {
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let store = self.store(namespace).await;
            let fleet = self.fleet(store, &format!("i{i}"));
            out.push(fleet.breaker(builder(), mode).expect("fleet breaker"));
        }
        // Every instance has flushed once and holds a lease.
        let store = self.store(namespace).await;
        wait_until(self.sync_interval * 20, || async {
            let view = store.view("dep").await.ok().flatten();
            view.is_some_and(|v| v.live_instances() as usize == count)
        })
        .await
        .expect("every instance registers within 20 sync intervals");
        out
    }
}

/// Fleet cases run one at a time in a process: each runs several instances with their sync
/// tasks, and their timing bounds should measure the fleet, not a crowded machine.
async fn one_fleet_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// A namespace no other case or run uses.
fn namespace(case: &str) -> String {
    format!(
        "{case}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// Polls `condition` every few milliseconds until it holds; the time it took, or `None`
/// after `timeout`. For store crates' own tests, which wait on conditions the same way.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use fusebox_fleet::contract::wait_until;
/// use std::time::Duration;
/// assert!(wait_until(Duration::from_secs(1), || async { true }).await.is_some());
/// assert!(wait_until(Duration::from_millis(10), || async { false }).await.is_none());
/// # }
/// ```
pub async fn wait_until<F, Fut>(timeout: Duration, mut condition: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if condition().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > timeout {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn request(instance: &str, seq: u64, successes: u64, failures: u64) -> SyncRequest {
    SyncRequest {
        breaker: "dep".into(),
        instance: instance.into(),
        lease_ttl_ms: 10_000,
        seq,
        outcomes: OutcomeDelta {
            successes,
            failures,
            slow: 0,
        },
        mode: "pooled".into(),
        ..Default::default()
    }
}

fn fail(b: &Breaker) {
    if let Ok(permit) = b.try_acquire() {
        permit.failure();
    }
}

fn succeed(b: &Breaker) {
    if let Ok(permit) = b.try_acquire() {
        permit.success();
    }
}

/// Generates one `#[tokio::test]` per contract case, each with a fresh harness from
/// `$harness` (an expression evaluated per test).
///
/// ```ignore
/// fusebox_fleet::store_contract_tests!(my_harness());
/// ```
#[macro_export]
macro_rules! store_contract_tests {
    ($harness:expr) => {
        $crate::store_contract_tests!(@cases $harness;
            sequence_numbers_apply_once,
            concurrent_transitions_one_wins,
            leases_expire,
            trial_claims_are_bounded,
            trials_count_for_their_episode,
            forced_states,
            notices_announce_transitions,
            pooled_fleet_trips_and_recovers_together,
            quorum_opens_only_with_enough_instances,
            quorum_counts_only_live_instances,
            fleet_trials_are_bounded,
            simultaneous_trips_make_one_open,
            kill_switch_reaches_every_instance,
            spans_are_range_checked,
            shortest_force_ends,
            forced_state_lifted_during_an_outage,
            fail_closed_outage_gives_way_to_the_store,
            fail_open_outage_admits_and_resyncs,
            a_fleet_that_moved_on_outranks_a_returning_instance,
            incarnations_start_a_new_sequence,
            an_instance_restarted_under_its_id_is_counted,
            names_are_opaque,
            totals_match_the_instances,
            expired_instances_leave_the_totals
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(harness) = $harness else { return };
                $crate::contract::$case(&harness).await;
            }
        )*
    };
}
