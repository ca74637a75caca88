//! The engine in a fleet-wide half-open episode: the verdict on the fleet's trials, and
//! the trial slots this instance claims, holds, and gives back.

use std::sync::Arc;

use super::{Engine, Next, Slots, Version};
use crate::{FleetChange, FleetState, FleetView};
use fusebox_core::breaker::{Breaker, State, algorithm};

impl Engine {
    /// Closes or reopens the fleet when its trials have decided; `None` while pending. The
    /// verdict is the breaker's own close rule, judged on the fleet's counts and clock.
    pub(super) async fn judge_trials(&mut self, view: &FleetView) -> Option<Next> {
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

    /// Claims trial slots for a local half-open episode, or gives back idle ones.
    pub(super) async fn claim(&mut self, breaker: &Breaker, view: &FleetView) -> Next {
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
