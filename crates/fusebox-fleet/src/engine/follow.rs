//! The engine following the fleet's record: forced states, peers' outcomes taken into
//! the local window, and the transitions an instance asks the store to make.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use super::{Engine, Next, SeenTotals, Version, millis};
use crate::{FleetChange, FleetMode, FleetState, FleetView, ForcedState, OutcomeDelta};
use fusebox_core::breaker::{Breaker, State};

impl Engine {
    pub(super) async fn apply(&mut self, breaker: &Breaker, mut view: FleetView) -> Duration {
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

    /// Opening the fleet after its `trips`-th trip, with the cooldown that trip earns.
    pub(super) fn open_change(&mut self, trips: u32) -> FleetChange {
        let cooldown = self
            .config
            .cooldown()
            .draw(trips.saturating_add(1), &mut self.rng);
        // The fleet refused longer cooldowns when the breaker was built; the clamp keeps a
        // jittered draw inside the store's span too.
        FleetChange::Open {
            cooldown_ms: millis(cooldown).clamp(1, crate::MAX_STORE_SPAN_MS),
        }
    }

    pub(super) async fn change(
        &mut self,
        expected: u64,
        change: FleetChange,
        reason: &str,
    ) -> Next {
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
