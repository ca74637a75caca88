//! The engine while its store is out of reach: the outage policy imposed on the local
//! breaker, the backoff between reconnection attempts, and the resync once the store
//! answers again.

use std::borrow::Cow;
use std::time::Duration;

use rand::Rng;

use super::{Engine, Outage};
use crate::{FleetState, FleetView, ForcedState, OutagePolicy, StoreError};
use fusebox_core::breaker::{Breaker, State};

/// Longest wait between reconnection attempts during an outage, unless the sync interval
/// is longer: an instance is back in the fleet within this of the store's return, while
/// its attempts stay fewer than its syncs would have been.
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(500);

impl Engine {
    pub(super) fn lost(&mut self, breaker: &Breaker, error: &StoreError) -> Duration {
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

    pub(super) fn reconnected(&mut self, breaker: &Breaker, view: &FleetView) {
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
}
