//! The in-memory store: the embedded default and the reference the other stores follow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::store::{
    BreakerRecord, Cas, Claim, FleetChange, FleetState, FleetTotals, FleetView, ForcedState,
    InstanceView, Notice, StateStore, StoreError, StoreFuture, SyncRequest, check_force_ms,
    check_span_ms,
};
use fusebox_core::clock::{Clock, UnixClock};

/// How long an expired instance stays visible (for status) before it is forgotten.
const FORGET_AFTER_MS: u64 = 10 * 60 * 1000;

#[derive(Debug, Default)]
struct Instance {
    lease_until_ms: u64,
    incarnation: u64,
    seq: u64,
    successes: u64,
    failures: u64,
    slow: u64,
    local_open: bool,
    claimed: u32,
    claimed_generation: u64,
}

#[derive(Debug, Default)]
struct Entry {
    record: BreakerRecord,
    instances: HashMap<String, Instance>,
    /// Every delta applied, from every instance: the totals a sync answers.
    successes: u64,
    failures: u64,
    slow: u64,
}

impl Entry {
    fn claims(&self, now: u64) -> impl Iterator<Item = (&String, u32)> {
        let generation = self.record.generation;
        self.instances.iter().map(move |(id, i)| {
            let held = i.lease_until_ms > now
                && i.claimed_generation == generation
                && self.record.state == FleetState::HalfOpen;
            (id, if held { i.claimed } else { 0 })
        })
    }

    fn expire_forced(&mut self, now: u64) {
        if let Some(until) = self.record.forced_until_ms
            && until <= now
        {
            self.record.forced = None;
            self.record.forced_until_ms = None;
        }
    }

    fn instance_view(&self, id: &str, i: &Instance, now: u64) -> InstanceView {
        let held = i.lease_until_ms > now
            && i.claimed_generation == self.record.generation
            && self.record.state == FleetState::HalfOpen;
        InstanceView {
            id: id.to_owned(),
            live: i.lease_until_ms > now,
            lease_remaining_ms: i.lease_until_ms.saturating_sub(now),
            local_open: i.local_open,
            successes: i.successes,
            failures: i.failures,
            slow: i.slow,
            seq: i.seq,
            trials_claimed: if held { i.claimed } else { 0 },
        }
    }

    /// Ends a forced state past its end and forgets instances gone long enough.
    fn tidy(&mut self, now: u64) {
        self.expire_forced(now);
        self.instances
            .retain(|_, i| i.lease_until_ms.saturating_add(FORGET_AFTER_MS) > now);
    }

    /// The operator's view: every instance still remembered.
    fn view(&mut self, name: &str, now: u64) -> FleetView {
        self.tidy(now);
        let mut instances: Vec<InstanceView> = self
            .instances
            .iter()
            .map(|(id, i)| self.instance_view(id, i, now))
            .collect();
        instances.sort_by(|a, b| a.id.cmp(&b.id));
        FleetView {
            name: name.to_owned(),
            now_ms: now,
            record: self.record.clone(),
            instances,
            totals: None,
        }
    }

    /// The hot path's answer: the fleet's totals and, for a sync, the flushing instance.
    fn summary(&mut self, name: &str, now: u64, own: Option<&str>) -> FleetView {
        self.tidy(now);
        let mut totals = FleetTotals {
            successes: self.successes,
            failures: self.failures,
            slow: self.slow,
            ..FleetTotals::default()
        };
        for (_, i) in self
            .instances
            .iter()
            .filter(|(_, i)| i.lease_until_ms > now)
        {
            totals.live_instances = totals.live_instances.saturating_add(1);
            totals.open_votes = totals.open_votes.saturating_add(u32::from(i.local_open));
        }
        totals.live_claims = self.claims(now).map(|(_, n)| n).sum();
        let instances = own
            .and_then(|id| {
                self.instances
                    .get(id)
                    .map(|i| self.instance_view(id, i, now))
            })
            .into_iter()
            .collect();
        FleetView {
            name: name.to_owned(),
            now_ms: now,
            record: self.record.clone(),
            instances,
            totals: Some(totals),
        }
    }

    fn change(&mut self, change: FleetChange, reason: &str, now: u64) {
        let r = &mut self.record;
        r.generation += 1;
        r.state = change.target();
        r.transitions += 1;
        r.changed_ms = now;
        r.reason = reason.to_owned();
        r.trial_successes = 0;
        r.trial_failures = 0;
        match change {
            FleetChange::Open { cooldown_ms } => {
                r.open_until_ms = now.saturating_add(cooldown_ms);
                r.trips = r.trips.saturating_add(1);
                r.opens += 1;
            }
            FleetChange::HalfOpen => {}
            FleetChange::Closed => {
                r.trips = 0;
                r.open_until_ms = 0;
            }
        }
    }
}

/// Fleet state held in this process: the embedded default, needing no setup.
///
/// Instances that share one `MemoryStore` (clones share it) form a fleet, which is how the
/// tests of fleet logic run without a server. Its clock defaults to the system's wall clock;
/// tests may pass a [`ManualClock`](fusebox_core::clock::ManualClock).
///
/// ```
/// use fusebox_fleet::{FleetChange, MemoryStore, StateStore};
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let first = store.transition("db", 0, FleetChange::Open { cooldown_ms: 1_000 }, "test").await?;
/// let second = store.transition("db", 0, FleetChange::Open { cooldown_ms: 1_000 }, "test").await?;
/// assert!(first.won && !second.won);
/// assert_eq!(second.view.record.opens, 1);
/// # Ok::<(), fusebox_fleet::StoreError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    entries: Mutex<HashMap<String, Entry>>,
    clock: Arc<dyn Clock>,
    notices: broadcast::Sender<Notice>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store on the system's wall clock.
    ///
    /// ```
    /// use fusebox_fleet::MemoryStore;
    /// let store = MemoryStore::new();
    /// let shared = store.clone(); // the same fleet
    /// # drop(shared);
    /// ```
    pub fn new() -> Self {
        Self::with_clock(UnixClock::new())
    }

    /// An empty store whose times come from `clock` (nanoseconds; kept as milliseconds).
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_fleet::MemoryStore;
    /// let store = MemoryStore::with_clock(ManualClock::new());
    /// # drop(store);
    /// ```
    pub fn with_clock(clock: impl Clock) -> Self {
        let (notices, _) = broadcast::channel(256);
        MemoryStore {
            inner: Arc::new(Inner {
                entries: Mutex::new(HashMap::new()),
                clock: Arc::new(clock),
                notices,
            }),
        }
    }

    fn now_ms(&self) -> u64 {
        self.inner.clock.now_nanos() / 1_000_000
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic under the lock cannot leave an entry half-updated in a way that matters
        // more than losing the whole store would.
        self.inner
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with_entry<R>(
        &self,
        breaker: &str,
        f: impl FnOnce(&mut Entry, u64) -> R,
    ) -> Result<R, StoreError> {
        if breaker.is_empty() {
            return Err(StoreError::Invalid("empty breaker name".into()));
        }
        let now = self.now_ms();
        let mut entries = self.entries();
        let entry = entries.entry(breaker.to_owned()).or_default();
        Ok(f(entry, now))
    }

    fn announce(&self, breaker: &str, generation: u64) {
        // No subscriber is fine: the periodic sync is the backstop.
        let _ = self.inner.notices.send(Notice {
            breaker: breaker.to_owned(),
            generation,
        });
    }
}

impl StateStore for MemoryStore {
    fn sync<'a>(&'a self, req: &'a SyncRequest) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            if req.instance.is_empty() {
                return Err(StoreError::Invalid("empty instance id".into()));
            }
            check_span_ms("lease_ttl_ms", req.lease_ttl_ms)?;
            self.with_entry(&req.breaker, |entry, now| {
                let generation = entry.record.generation;
                let half_open = entry.record.state == FleetState::HalfOpen;
                let inst = entry.instances.entry(req.instance.clone()).or_default();
                inst.lease_until_ms = now.saturating_add(req.lease_ttl_ms);
                inst.local_open = req.local_open;
                let mut trials = (0, 0);
                if req.incarnation != inst.incarnation {
                    // A restart under this id: its sequence starts again, and the slots
                    // its previous run claimed went with that run.
                    inst.incarnation = req.incarnation;
                    inst.seq = 0;
                    inst.claimed = 0;
                }
                if req.seq > inst.seq {
                    let d = req.outcomes;
                    inst.seq = req.seq;
                    inst.successes = inst.successes.saturating_add(d.successes);
                    inst.failures = inst.failures.saturating_add(d.failures);
                    inst.slow = inst.slow.saturating_add(d.slow);
                    entry.successes = entry.successes.saturating_add(d.successes);
                    entry.failures = entry.failures.saturating_add(d.failures);
                    entry.slow = entry.slow.saturating_add(d.slow);
                    if half_open && req.trials.generation == generation {
                        trials = (req.trials.successes, req.trials.failures);
                        if inst.claimed_generation == generation {
                            inst.claimed = inst.claimed.saturating_sub(req.trials.release);
                        }
                    }
                }
                entry.record.trial_successes += trials.0;
                entry.record.trial_failures += trials.1;
                entry.record.mode.clone_from(&req.mode);
                entry.summary(&req.breaker, now, Some(&req.instance))
            })
        })
    }

    fn transition<'a>(
        &'a self,
        breaker: &'a str,
        expected_generation: u64,
        change: FleetChange,
        reason: &'a str,
    ) -> StoreFuture<'a, Cas> {
        Box::pin(async move {
            change.check()?;
            let cas = self.with_entry(breaker, |entry, now| {
                entry.expire_forced(now);
                let won = entry.record.generation == expected_generation;
                if won {
                    entry.change(change, reason, now);
                }
                Cas {
                    won,
                    view: entry.summary(breaker, now, None),
                }
            })?;
            if cas.won {
                self.announce(breaker, cas.view.record.generation);
            }
            Ok(cas)
        })
    }

    fn claim_trials<'a>(
        &'a self,
        breaker: &'a str,
        instance: &'a str,
        want: u32,
        permitted: u32,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let (claim, started) = self.with_entry(breaker, |entry, now| {
                let mut started = false;
                if entry.record.state == FleetState::Open
                    && now >= entry.record.open_until_ms
                    && entry.record.forced.is_none()
                {
                    entry.change(FleetChange::HalfOpen, "cooldown elapsed", now);
                    started = true;
                }
                let mut granted = 0;
                if entry.record.state == FleetState::HalfOpen && entry.record.forced.is_none() {
                    let held: u32 = entry.claims(now).map(|(_, n)| n).sum();
                    granted = want.min(permitted.saturating_sub(held));
                    let generation = entry.record.generation;
                    let inst = entry.instances.entry(instance.to_owned()).or_default();
                    if inst.claimed_generation != generation {
                        inst.claimed_generation = generation;
                        inst.claimed = 0;
                    }
                    inst.claimed += granted;
                }
                let view = entry.summary(breaker, now, None);
                (Claim { granted, view }, started)
            })?;
            if started {
                self.announce(breaker, claim.view.record.generation);
            }
            Ok(claim)
        })
    }

    fn force<'a>(
        &'a self,
        breaker: &'a str,
        forced: Option<ForcedState>,
        for_ms: Option<u64>,
    ) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            check_force_ms(for_ms)?;
            let view = self.with_entry(breaker, |entry, now| {
                match forced {
                    Some(state) => {
                        entry.record.forced = Some(state);
                        entry.record.forced_until_ms = for_ms.map(|ms| now.saturating_add(ms));
                        entry.record.generation += 1;
                        entry.record.changed_ms = now;
                        entry.record.reason = format!("forced {}", state.as_str());
                    }
                    None => {
                        entry.record.forced = None;
                        entry.record.forced_until_ms = None;
                        entry.change(FleetChange::Closed, "reset", now);
                    }
                }
                entry.view(breaker, now)
            })?;
            self.announce(breaker, view.record.generation);
            Ok(view)
        })
    }

    fn view<'a>(&'a self, breaker: &'a str) -> StoreFuture<'a, Option<FleetView>> {
        Box::pin(async move {
            let now = self.now_ms();
            let mut entries = self.entries();
            Ok(entries.get_mut(breaker).map(|e| e.view(breaker, now)))
        })
    }

    fn breakers(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let entries = self.entries();
            let mut names: Vec<String> = entries.keys().cloned().collect();
            names.sort();
            Ok(names)
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.inner.notices.subscribe()
    }
}
