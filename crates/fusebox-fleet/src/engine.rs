//! The sync task of one fleet breaker: flushes its outcomes behind, reads the fleet's record,
//! and moves the local breaker to follow the fleet's decisions.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;

use super::store::{
    BreakerRecord, FleetChange, FleetState, FleetView, ForcedState, OutcomeDelta, StateStore,
    StoreError, SyncRequest, TrialDelta,
};
use super::{FleetMode, FleetSettings, OutagePolicy};
use fusebox_core::breaker::{Breaker, BreakerConfig, State, Totals, WeakBreaker, algorithm};

/// Longest wait between reconnection attempts during an outage, unless the sync interval
/// is longer: an instance is back in the fleet within this of the store's return, while
/// its attempts stay fewer than its syncs would have been.
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(500);

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

    fn lost(&mut self, breaker: &Breaker, error: &StoreError) -> Duration {
        let outage = match &mut self.outage {
            Some(o) => o,
            None => {
                if error.is_unavailable() {
                    tracing::warn!(
                        breaker = %self.name,
                        instance = %self.settings.instance,
                        error = %error,
                        outage_policy = %self.outage_policy,
                        "fleet store unreachable; following the outage policy until it is back"
                    );
                } else {
                    tracing::error!(
                        breaker = %self.name,
                        instance = %self.settings.instance,
                        error = %error,
                        outage_policy = %self.outage_policy,
                        "fleet record unreadable; following the outage policy until it is repaired \
                         (`fusebox reset` rewrites it)"
                    );
                }
                if let Some(link) = breaker.link() {
                    link.set_defer_trials(false);
                }
                self.following = false;
                let imposed = match self.outage_policy {
                    OutagePolicy::Local => None,
                    OutagePolicy::Reject => {
                        Some((State::ForcedOpen, "store unreachable, failing closed"))
                    }
                    // The operator's kill-switch outranks failing open.
                    OutagePolicy::Admit if self.forced == Some(ForcedState::Open) => None,
                    OutagePolicy::Admit => {
                        Some((State::Disabled, "store unreachable, failing open"))
                    }
                };
                if let Some((to, why)) = imposed {
                    breaker.adopt(to, None, Cow::Borrowed(why));
                }
                self.outage.insert(Outage {
                    attempts: 0,
                    imposed: imposed.is_some(),
                })
            }
        };
        outage.attempts = outage.attempts.saturating_add(1);
        let base = self
            .settings
            .sync_interval
            .saturating_mul(1u32 << outage.attempts.min(10))
            .min(MAX_RECONNECT_DELAY.max(self.settings.sync_interval));
        // Jitter, so a fleet that lost its store does not reconnect in lockstep.
        base.mul_f64(self.rng.random_range(0.5..=1.0))
    }

    fn reconnected(&mut self, breaker: &Breaker, view: &FleetView) {
        let Some(outage) = self.outage.take() else {
            return;
        };
        tracing::info!(
            breaker = %self.name,
            instance = %self.settings.instance,
            "fleet store reachable again; resyncing"
        );
        if outage.imposed && self.forced.is_none() && view.record.forced.is_none() {
            // Straight to the fleet's state: through CLOSED, an instance back while the
            // fleet is open would admit calls for a moment. A forced state in the record is
            // applied next, from the imposed one.
            let (to, open_for) = match view.record.state {
                FleetState::Closed => (State::Closed, None),
                FleetState::Open => (
                    State::Open,
                    Some(Duration::from_millis(view.cooldown_remaining_ms())),
                ),
                FleetState::HalfOpen => (State::HalfOpen, None),
            };
            if to != State::Closed
                && let Some(link) = breaker.link()
            {
                // The fleet's trials, not local ones, from the first call on.
                link.set_defer_trials(true);
            }
            breaker.adopt(to, open_for, Cow::Borrowed("store reachable again"));
        }
        // Start again from the store's word. The version of the record last seen stays, so
        // the next look tells whether the fleet moved on meanwhile (then its state replaces
        // whatever this instance decided alone) and the forced state the fleet set stays
        // remembered, so the next look lifts or re-applies it. Peers' totals are taken anew.
        self.seen_totals = None;
    }

    async fn apply(&mut self, breaker: &Breaker, mut view: FleetView) -> Duration {
        // Bounded: each round either settles or follows a transition made in it.
        for _ in 0..4 {
            match self.apply_once(breaker, &view).await {
                Next::Wait(delay) => return delay,
                Next::Again(newer) => view = *newer,
                Next::Lost(error) => return self.lost(breaker, &error),
            }
        }
        self.settings.sync_interval
    }

    async fn apply_once(&mut self, breaker: &Breaker, view: &FleetView) -> Next {
        let interval = self.settings.sync_interval;
        let record = &view.record;
        let link = breaker.link();

        if self.apply_forced(breaker, record.forced) {
            self.seen = Some(Version::of(record));
            return Next::Wait(interval);
        }
        if self.mode == FleetMode::Pooled {
            self.ingest_peers(breaker, view);
        }
        // The record moved since the last look (the first look counts as a move).
        let first = self.seen.is_none();
        let moved = self.seen != Some(Version::of(record));
        self.seen = Some(Version::of(record));
        let (state, _) = breaker.settled_state();
        if matches!(state, State::ForcedOpen | State::Disabled) {
            return Next::Wait(interval); // forced by hand in this process: left alone
        }

        match record.state {
            FleetState::Open | FleetState::HalfOpen => {
                self.following = true;
                if let Some(link) = link {
                    link.set_defer_trials(true);
                }
                if record.state == FleetState::HalfOpen
                    && let Some(next) = self.judge_trials(view).await
                {
                    return next;
                }
                let left = Duration::from_millis(view.cooldown_remaining_ms());
                if record.state == FleetState::Open && !left.is_zero() {
                    if state != State::Open || moved {
                        breaker.adopt(
                            State::Open,
                            Some(left),
                            Cow::Borrowed("opened by the fleet"),
                        );
                    }
                    return Next::Wait(left.min(interval));
                }
                if state != State::HalfOpen {
                    breaker.adopt(State::HalfOpen, None, Cow::Borrowed("fleet trials begin"));
                }
                self.claim(breaker, view).await
            }
            FleetState::Closed => {
                if self.following {
                    self.following = false;
                    if let Some(link) = link {
                        link.set_defer_trials(false);
                    }
                    if state != State::Closed {
                        breaker.adopt(State::Closed, None, Cow::Borrowed("closed by the fleet"));
                    }
                    return Next::Wait(interval);
                }
                if moved && !first && state != State::Closed {
                    // Closed fleet-wide since the last look (a reset, trials that passed
                    // while this instance was cut off, a store that lost the record): the
                    // fleet's newer word wins over what this instance judged before.
                    breaker.adopt(State::Closed, None, Cow::Borrowed("closed fleet-wide"));
                    return Next::Wait(interval);
                }
                let wants_open = match self.mode {
                    FleetMode::Pooled | FleetMode::Any => {
                        matches!(state, State::Open | State::HalfOpen)
                    }
                    FleetMode::Quorum { .. } => self
                        .mode
                        .opens_with(view.open_votes(), view.live_instances()),
                };
                if !wants_open {
                    return Next::Wait(interval);
                }
                let reason = match self.mode {
                    FleetMode::Quorum { .. } => format!(
                        "{} of {} live instances open",
                        view.open_votes(),
                        view.live_instances()
                    ),
                    _ => format!("tripped on {}", self.settings.instance),
                };
                let change = self.open_change(record.trips);
                self.change(record.generation, change, &reason).await
            }
        }
    }

    /// Applies or lifts an operator's forced state; true while one holds.
    fn apply_forced(&mut self, breaker: &Breaker, forced: Option<ForcedState>) -> bool {
        match (forced, self.forced) {
            (Some(f), current) => {
                let (to, why) = match f {
                    ForcedState::Open => (State::ForcedOpen, "forced open fleet-wide"),
                    ForcedState::Closed => (State::Disabled, "forced closed fleet-wide"),
                };
                // Re-applied when the local state drifted too: an outage that failed
                // closed leaves ForcedOpen where the fleet said Disabled.
                if current != Some(f) || breaker.settled_state().0 != to {
                    breaker.adopt(to, None, Cow::Borrowed(why));
                    self.forced = Some(f);
                    self.following = false;
                    if let Some(link) = breaker.link() {
                        link.set_defer_trials(false);
                    }
                }
                true
            }
            (None, Some(_)) => {
                self.forced = None;
                breaker.adopt(State::Closed, None, Cow::Borrowed("forced state lifted"));
                false
            }
            (None, None) => false,
        }
    }

    /// Takes into the local window what peers reported since the last look: the growth of
    /// the fleet's totals less the growth of this instance's own, both as the store applied
    /// them, so the cost does not grow with the fleet. Only an answer that holds this
    /// instance's own entry (a sync's) is a look; others are left for the next sync, whose
    /// totals hold everything meanwhile.
    fn ingest_peers(&mut self, breaker: &Breaker, view: &FleetView) {
        let me = &self.settings.instance;
        let Some(own) = view.instances.iter().find(|i| &i.id == me) else {
            return;
        };
        let fleet = view.totals();
        let now = SeenTotals {
            fleet: OutcomeDelta {
                successes: fleet.successes,
                failures: fleet.failures,
                slow: fleet.slow,
            },
            own: OutcomeDelta {
                successes: own.successes,
                failures: own.failures,
                slow: own.slow,
            },
        };
        // The first look (after a start or an outage) only takes note: the totals hold
        // history this window has no use for. Afterwards, whatever peers add is new,
        // including everything a peer that appeared since then has reported.
        if let Some(before) = self.seen_totals {
            let peers = grown(grown(now.fleet, before.fleet), grown(now.own, before.own));
            breaker.ingest(peers.successes, peers.failures, peers.slow);
        }
        self.seen_totals = Some(now);
    }

    /// Closes or reopens the fleet when its trials have decided; `None` while pending. The
    /// verdict is the breaker's own close rule, judged on the fleet's counts and clock.
    async fn judge_trials(&mut self, view: &FleetView) -> Option<Next> {
        let record = &view.record;
        let rule = self.config.close_rule();
        let (successes, failures) = (record.trial_successes, record.trial_failures);
        let change = match algorithm::after_trial(rule, successes, failures) {
            Some((State::Closed, _)) => (
                FleetChange::Closed,
                format!("{successes} of {} fleet trials succeeded", rule.trials),
            ),
            Some(_) => (
                self.open_change(record.trips),
                format!("{failures} fleet trials failed"),
            ),
            None => {
                let nanos = |ms: u64| ms.saturating_mul(1_000_000);
                let since = nanos(record.changed_ms);
                algorithm::due(&self.config, State::HalfOpen, 0, since, nanos(view.now_ms))?;
                (
                    self.open_change(record.trips),
                    "fleet half-open lasted too long".to_owned(),
                )
            }
        };
        Some(self.change(record.generation, change.0, &change.1).await)
    }

    /// Opening the fleet after its `trips`-th trip, with the cooldown that trip earns.
    fn open_change(&mut self, trips: u32) -> FleetChange {
        let cooldown = self
            .config
            .cooldown()
            .draw(trips.saturating_add(1), &mut self.rng);
        // The fleet refused longer cooldowns when the breaker was built; the clamp keeps a
        // jittered draw inside the store's span too.
        FleetChange::Open {
            cooldown_ms: millis(cooldown).clamp(1, super::MAX_STORE_SPAN_MS),
        }
    }

    async fn change(&mut self, expected: u64, change: FleetChange, reason: &str) -> Next {
        let store = Arc::clone(&self.store);
        match self
            .call(store.transition(&self.name, expected, change, reason))
            .await
        {
            Ok(cas) => {
                if cas.won {
                    tracing::info!(
                        breaker = %self.name,
                        instance = %self.settings.instance,
                        to = change.target().as_str(),
                        generation = cas.view.record.generation,
                        reason,
                        "fleet state changed"
                    );
                }
                // Won or lost, the record now says what the fleet decided.
                Next::Again(Box::new(cas.view))
            }
            Err(e) => Next::failed(e, self.settings.sync_interval),
        }
    }

    /// Claims trial slots for a local half-open episode, or gives back idle ones.
    async fn claim(&mut self, breaker: &Breaker, view: &FleetView) -> Next {
        let interval = self.settings.sync_interval;
        let (state, local_generation) = breaker.settled_state();
        if state != State::HalfOpen {
            return Next::Wait(interval);
        }
        let Some(link) = breaker.link() else {
            return Next::Wait(interval);
        };
        let fleet_generation = view.record.generation;
        let same_episode = view.record.state == FleetState::HalfOpen
            && self.slots.fleet_generation == fleet_generation
            && self.slots.local_generation == local_generation;
        if same_episode && self.slots.held > 0 {
            let started = breaker.trials_started(local_generation);
            let idle = started == self.slots.started_at_last_look && started < self.slots.held;
            if idle {
                // No trial started in a whole interval: let instances with traffic have them.
                self.release = self.slots.held - started;
                self.slots.held = started;
                link.set_granted(local_generation, started);
            }
            self.slots.started_at_last_look = started;
            return Next::Wait(interval);
        }
        // The first claim of an episode is eager, so a busy instance starts trials at once;
        // after that, only calls that found no slot make an instance claim again, so idle
        // instances do not keep taking slots from busy ones.
        let claimed_before = self.slots.fleet_generation == fleet_generation
            && self.slots.local_generation == local_generation;
        if claimed_before && !link.take_demand() {
            return Next::Wait(interval);
        }
        let permitted = self.config.close_rule().trials;
        let store = Arc::clone(&self.store);
        let claim = match self
            .call(store.claim_trials(&self.name, &self.settings.instance, permitted, permitted))
            .await
        {
            Ok(claim) => claim,
            Err(e) => return Next::failed(e, interval),
        };
        let generation = claim.view.record.generation;
        if claim.view.record.state == FleetState::HalfOpen {
            let held = if self.slots.fleet_generation == generation
                && self.slots.local_generation == local_generation
            {
                self.slots.held + claim.granted
            } else {
                claim.granted
            };
            self.slots = Slots {
                fleet_generation: generation,
                local_generation,
                held,
                started_at_last_look: breaker.trials_started(local_generation),
            };
            link.set_granted(local_generation, held);
        }
        let version = Version::of(&claim.view.record);
        if self.seen != Some(version) && claim.granted == 0 {
            Next::Again(Box::new(claim.view))
        } else {
            self.seen = Some(version);
            Next::Wait(interval)
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

/// What `now` adds to `before`, field by field (none where a count went back: a record
/// the store re-created).
fn grown(now: OutcomeDelta, before: OutcomeDelta) -> OutcomeDelta {
    OutcomeDelta {
        successes: now.successes.saturating_sub(before.successes),
        failures: now.failures.saturating_sub(before.failures),
        slow: now.slow.saturating_sub(before.slow),
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
