//! The sync task of one fleet breaker: flushes its outcomes behind, reads the fleet's record,
//! and moves the local breaker to follow the fleet's decisions.
//!
//! This file holds the engine's state and its round with the store; following the fleet's
//! record (`follow`), its half-open trials (`trials`) and losing the store (`outage`) each
//! have a file of their own.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

use super::store::{
    BreakerRecord, FleetView, ForcedState, OutcomeDelta, StateStore, StoreError, SyncRequest,
    TrialDelta,
};
use super::{FleetMode, FleetSettings, OutagePolicy};
use fusebox_core::breaker::{Breaker, BreakerConfig, State, Totals, WeakBreaker};

mod follow;
mod outage;
mod trials;

struct Outage {
    attempts: u32,
    /// The outage policy imposed a local state (forced open or closed) to lift on return.
    imposed: bool,
}

/// Outcome totals at one look at the fleet (pooled mode).
#[derive(Debug, Clone, Copy)]
struct SeenTotals {
    /// Reported by every instance, this one included.
    fleet: OutcomeDelta,
    /// Reported by this instance.
    own: OutcomeDelta,
}

/// The trial slots this instance holds in one fleet half-open episode.
#[derive(Debug, Clone, Copy, Default)]
struct Slots {
    fleet_generation: u64,
    local_generation: u64,
    held: u32,
    /// Trials started locally when the slots were last looked at, to spot idle slots.
    started_at_last_look: u32,
}

pub(crate) struct Engine {
    breaker: WeakBreaker,
    name: String,
    store: Arc<dyn StateStore>,
    settings: Arc<FleetSettings>,
    mode: FleetMode,
    mode_label: String,
    /// What the breaker does while the store is unreachable.
    outage_policy: OutagePolicy,
    config: BreakerConfig,
    /// The breaker's revision `config` was copied from.
    revision: usize,
    rng: SmallRng,
    /// This engine's run, fresh at every start (see [`SyncRequest::incarnation`]).
    incarnation: u64,
    seq: u64,
    /// A flush the store has not acknowledged: resent as is, with its sequence number.
    unacked: Option<SyncRequest>,
    /// Own totals already put into a flush.
    flushed: Totals,
    /// Trial slots to hand back with the next flush.
    release: u32,
    /// Pooled mode: the fleet's totals and this instance's own, as the store had applied
    /// them at the last look; `None` until a first look since the start or the last outage.
    seen_totals: Option<SeenTotals>,
    /// The version of the record last acted on. Kept across outages: a record that moved
    /// meanwhile (or a store that lost it) outranks what the instance did while cut off.
    seen: Option<Version>,
    /// The local state follows a fleet-wide OPEN or half-open episode.
    following: bool,
    /// The fleet's forced state this engine applied locally. Kept across outages: it is
    /// how a local ForcedOpen / Disabled set by the fleet is told from one set by hand, so
    /// the store's word (forced, changed, or lifted meanwhile) wins after every resync.
    forced: Option<ForcedState>,
    slots: Slots,
    outage: Option<Outage>,
}

impl Engine {
    pub(crate) fn new(
        breaker: &Breaker,
        store: Arc<dyn StateStore>,
        settings: Arc<FleetSettings>,
        mode: FleetMode,
        outage_policy: OutagePolicy,
    ) -> Engine {
        let config = breaker.config().clone();
        let rng = fusebox_core::rng::small_rng(config.seed().map(|seed| seed ^ 0x5eed_f1ee7));
        Engine {
            breaker: breaker.downgrade(),
            name: breaker.name().as_str().to_owned(),
            store,
            settings,
            mode,
            mode_label: mode.to_string(),
            outage_policy,
            config,
            revision: breaker.revision(),
            rng,
            // Never from the breaker's seed: two runs of one seeded program must still
            // differ, or the second's flushes would read as replays of the first's.
            incarnation: fusebox_core::rng::fresh_seed(),
            seq: 0,
            unacked: None,
            flushed: Totals::default(),
            release: 0,
            seen_totals: None,
            seen: None,
            following: false,
            forced: None,
            slots: Slots::default(),
            outage: None,
        }
    }

    pub(crate) async fn run(mut self, wake: Arc<Notify>) {
        let mut notices = Some(self.store.subscribe());
        if let Err(e) = self.store.prepare().await {
            // The first sync reports the outage, once.
            tracing::debug!(breaker = %self.name, error = %e, "fleet store could not be prepared");
        }
        let mut next = Instant::now();
        loop {
            // Biased: every branch leads to the same round, and a fixed order keeps a run
            // on a paused clock reproducible.
            tokio::select! {
                biased;
                _ = tokio::time::sleep_until(next) => {}
                _ = wake.notified() => {}
                notice = recv(&mut notices), if notices.is_some() => match notice {
                    Ok(n) if n.breaker != self.name => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        notices = None;
                        continue;
                    }
                },
            }
            let Some(breaker) = self.breaker.upgrade() else {
                return; // every clone of the breaker is gone
            };
            let delay = self.step(&breaker).await;
            next = Instant::now() + delay;
        }
    }

    /// One round with the store; returns how long to wait before the next.
    async fn step(&mut self, breaker: &Breaker) -> Duration {
        if breaker.revision() != self.revision {
            // Reconfigured: the fleet's decisions follow the breaker's new rules.
            self.revision = breaker.revision();
            self.config = breaker.config().clone();
        }
        let request = self.next_request(breaker);
        match self.call(self.store.sync(&request)).await {
            Ok(view) => {
                self.unacked = None;
                self.reconnected(breaker, &view);
                self.apply(breaker, view).await
            }
            Err(e) => {
                self.unacked = Some(request);
                self.lost(breaker, &e)
            }
        }
    }

    async fn call<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.settings.store_timeout, op).await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer within {:?}",
                self.settings.store_timeout
            ))),
        }
    }

    fn next_request(&mut self, breaker: &Breaker) -> SyncRequest {
        let (state, _) = breaker.settled_state();
        // No vote from a state judged while cut off until a look shows the fleet did not
        // move on meanwhile: the reconnecting flush must not lend a stale vote to a quorum.
        let local_open = matches!(state, State::Open | State::HalfOpen)
            && !self.following
            && self.outage.is_none();
        if let Some(mut pending) = self.unacked.take() {
            // Same sequence number and deltas: applied at most once whatever happened to
            // the first attempt. Only the lease and the verdict are refreshed.
            pending.local_open = local_open;
            return pending;
        }
        let totals = breaker.own_totals();
        let outcomes = OutcomeDelta {
            successes: totals.successes - self.flushed.successes,
            failures: totals.failures - self.flushed.failures,
            slow: totals.slow - self.flushed.slow,
        };
        self.flushed = totals;
        let (successes, failures) = breaker.link().map(|l| l.take_trials()).unwrap_or_default();
        self.seq += 1;
        SyncRequest {
            breaker: self.name.clone(),
            instance: self.settings.instance.clone(),
            lease_ttl_ms: millis(self.settings.lease_ttl),
            incarnation: self.incarnation,
            seq: self.seq,
            outcomes,
            trials: TrialDelta {
                generation: self.slots.fleet_generation,
                successes,
                failures,
                release: std::mem::take(&mut self.release),
            },
            local_open,
            mode: self.mode_label.clone(),
        }
    }
}

/// One version of a fleet record: its generation, and when it last changed by the store's
/// clock, so that a store that lost its records and counted generations again from zero is
/// not taken for the record last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    generation: u64,
    changed_ms: u64,
}

impl Version {
    fn of(record: &BreakerRecord) -> Version {
        Version {
            generation: record.generation,
            changed_ms: record.changed_ms,
        }
    }
}

enum Next {
    Wait(Duration),
    /// Boxed: a view is large, and most rounds wait.
    Again(Box<FleetView>),
    /// The store became unreachable in the round: an outage, as a failed sync is.
    Lost(StoreError),
}

impl Next {
    /// After a transition or claim failed: an unreachable store is an outage at once, so
    /// the outage policy applies without waiting for the next sync to time out too; any
    /// other error leaves the next sync to try again.
    fn failed(error: StoreError, interval: Duration) -> Next {
        if error.is_unavailable() {
            Next::Lost(error)
        } else {
            Next::Wait(interval)
        }
    }
}

async fn recv(
    notices: &mut Option<broadcast::Receiver<super::Notice>>,
) -> Result<super::Notice, broadcast::error::RecvError> {
    match notices {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
