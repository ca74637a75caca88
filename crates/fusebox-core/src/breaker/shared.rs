//! The state every clone of a breaker shares, and its slow path: admission past the
//! fast paths, recording, transitions and snapshots. Transitions interpret
//! [`algorithm`](super::algorithm); nothing here decides a rule of its own.

use std::sync::Arc;
use std::time::Duration;

use rand::rngs::SmallRng;

use super::Name;
use super::algorithm::{
    Manual, after_trial, below_minimum, due, enter, hinted_open_until, is_slow_after, judges,
    retry_after, retry_hint_until, success_may_raise_a_rate, trial_counts, trip,
};
use super::gate::{Admission, HalfOpenGate};
use super::link::FleetLink;
use super::listener::BreakerListener;
use super::reconfigure::{Flags, Tuning};
use super::rejected::Rejected;
use super::stats::{
    LoggedOutcome, OutcomeEntry, OutcomeEvent, Snapshot, State, Transition, TransitionReason,
    WindowStats,
};
use super::window::{Mark, OutcomeLog, Padded};
use super::word::{
    CLOSED, DISABLED, OPEN, PermitKey, STATE_MASK, UNTIMED, encode, generation_of, state_of,
};
use crate::clock::ClockHandle;
use crate::outcome::Outcome;
use crate::revisions::Revisions;
use crate::sync::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Mutex, Ordering};

pub(super) struct SlowPath {
    pub(super) consecutive_trips: u32,
    pub(super) rng: SmallRng,
}

pub(crate) struct Shared {
    pub(super) state: Padded<AtomicU64>,
    pub(super) consecutive: Padded<AtomicU32>,
    pub(super) gate: Padded<HalfOpenGate>,
    /// The configuration, its window and derived flags; replaced by a reconfiguration.
    pub(super) tuning: Revisions<Tuning>,
    /// The window held fewer than `min_calls` calls when last judged (or was cleared since):
    /// every success is judged until a judgement finds the minimum reached. Read only under a
    /// rule a success can make fire.
    pub(super) below_minimum: AtomicBool,
    /// The current tuning's [`Flags`], in one word beside the state: the fast paths read
    /// them first and look the tuning up only when a flag says they need it. A flag read
    /// across a reconfiguration may be a revision behind the tuning; every path that acts
    /// on one still reads the tuning's own config or window, so any mix is safe.
    pub(super) flags: AtomicU8,
    pub(super) open_until: AtomicU64,
    pub(super) half_open_since: AtomicU64,
    /// Time of the last failure plus one; 0 means never.
    pub(super) last_failure: AtomicU64,
    pub(super) log: Option<OutcomeLog>,
    /// The rejections beside the outcome log, as many.
    pub(super) rejections: Option<OutcomeLog>,
    pub(super) slow: Mutex<SlowPath>,
    pub(super) name: Name,
    pub(super) clock: ClockHandle,
    pub(super) listeners: Box<[Arc<dyn BreakerListener>]>,
    /// The link to a fleet store's sync task, when the breaker is shared by a fleet.
    pub(super) fleet: Option<Box<FleetLink>>,
    /// Some listener wants every outcome (and so every call timed).
    pub(super) reports_outcomes: bool,
    /// Calls a shadow breaker let through instead of rejecting them.
    pub(super) shadow_rejections: AtomicU64,
    /// The latest deadline a failure's server-given delay set (0: none); read when the
    /// breaker opens, if it uses such hints.
    pub(super) retry_hint_until: AtomicU64,
}

/// The code of an entry of the rejection log (any nonzero code: it holds one kind).
const REJECTION: u64 = 1;

/// A call the caller timed itself: when it was recorded, and how long it took (ns).
#[derive(Clone, Copy)]
pub(super) struct Measured {
    now: u64,
    elapsed: u64,
}

/// How long the call of `ticket` took: as the caller measured it, or since it was admitted.
#[inline(always)]
fn elapsed(ticket: PermitKey, now: u64, measured: Option<Measured>) -> u64 {
    match measured {
        Some(m) => m.elapsed,
        None => now.saturating_sub(ticket.started),
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic (plain counters), so a poisoned
    // lock is still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    #[inline]
    pub(super) fn now(&self) -> u64 {
        self.clock.now_nanos()
    }

    /// The current configuration, window and derived flags.
    #[inline(always)]
    pub(super) fn tuning(&self) -> &Tuning {
        self.tuning.current()
    }

    #[inline(always)]
    pub(super) fn flags(&self) -> Flags {
        Flags(self.flags.load(Ordering::Relaxed))
    }

    /// The ticket of a call admitted in CLOSED or DISABLED state `word`: timed only when
    /// some rule or listener needs its duration (else it starts at [`UNTIMED`]).
    #[inline(always)]
    fn closed_ticket(&self, word: u64) -> PermitKey {
        let started = if self.flags().times_calls() {
            self.now()
        } else {
            UNTIMED
        };
        PermitKey::new(generation_of(word), false, started)
    }

    /// Admits a call or refuses it, and hands the outcome to `admitted` or `rejected`, whose
    /// result is returned as is. The caller builds its final result (`Result<T, Error<E>>`
    /// for `call_sync`) right where the decision is made: a rejection is not first returned
    /// as a `Result<PermitKey, Rejected>` and then moved into the caller's error, a copy that
    /// read the rejection's narrow fields back in wide loads and stalled store-to-load
    /// forwarding.
    #[inline(always)]
    pub(super) fn admit<R>(
        &self,
        admitted: impl FnOnce(PermitKey) -> R,
        rejected: impl FnOnce(Rejected) -> R,
    ) -> R {
        let word = self.state.load(Ordering::Acquire);
        let code = word & STATE_MASK;
        let ticket = if code == CLOSED || code == DISABLED {
            self.closed_ticket(word)
        } else {
            if code == OPEN && self.flags().quiet_rejections() {
                // While a dependency is down rejections are the common path: two loads, no
                // clock read, no call into the cold path until the cooldown is over.
                let recent = self.clock.recent_nanos();
                let until = self.open_until.load(Ordering::Acquire);
                if recent < until {
                    if tracing::level_enabled!(tracing::Level::TRACE) {
                        self.trace_rejection(State::Open);
                    }
                    return rejected(Rejected::from_words(
                        self.name.clone(),
                        OPEN,
                        until - recent,
                    ));
                }
            }
            match self.acquire_slow(word) {
                Ok(ticket) => ticket,
                // In shadow mode `reject` has counted and reported it: let it through.
                Err(r) if self.shadows(r.state()) => PermitKey::unrecorded(self.now()),
                Err(r) => return rejected(r),
            }
        };
        admitted(ticket)
    }

    #[cold]
    pub(super) fn acquire_slow(&self, mut word: u64) -> Result<PermitKey, Rejected> {
        // Each pass either admits, rejects, or follows a transition; transitions out of one
        // state cannot chain forever, but bound the loop anyway.
        for _ in 0..8 {
            match state_of(word) {
                State::Closed | State::Disabled => return Ok(self.closed_ticket(word)),
                State::ForcedOpen => return Err(self.reject(State::ForcedOpen, None, None)),
                State::Open => {
                    // Rejections are the flood while a dependency is down: judge the
                    // cooldown on the recent time, and read the clock only to end it.
                    let recent = self.clock.recent_nanos();
                    let until = self.open_until.load(Ordering::Acquire);
                    match due(&self.tuning().config, State::Open, until, 0, recent) {
                        Some((to, reason)) => {
                            self.transition(word, to, reason, self.now().max(recent));
                        }
                        None => {
                            let left = retry_after(State::Open, until, recent);
                            return Err(self.reject(State::Open, left, Some(recent)));
                        }
                    }
                }
                State::HalfOpen => {
                    let generation = generation_of(word);
                    let c = &self.tuning().config;
                    let trials = match &self.fleet {
                        // The fleet counts trials: only slots it granted this instance.
                        Some(link) if link.defers_trials() => {
                            link.granted(generation).min(c.close.trials)
                        }
                        _ => c.trial_starts(),
                    };
                    match self
                        .gate
                        .try_admit(generation, c.half_open_concurrency, trials)
                    {
                        Admission::Admitted => {
                            return Ok(PermitKey::new(generation, true, self.now()));
                        }
                        Admission::Full => {
                            if let Some(link) = &self.fleet
                                && link.defers_trials()
                                && trials < c.close.trials
                            {
                                link.want_trial();
                            }
                            if !self.half_open_expired(word) {
                                return Err(self.reject(State::HalfOpen, None, None));
                            }
                        }
                        Admission::Stale => {}
                    }
                }
            }
            word = self.state.load(Ordering::Acquire);
        }
        Err(self.reject(state_of(word), None, None))
    }

    /// Reopens a half-open breaker that has gone past its maximum duration; true if it did.
    pub(super) fn half_open_expired(&self, word: u64) -> bool {
        self.tuning().config.half_open_max_nanos.is_some() && self.apply_due(word)
    }

    /// Makes the transition time has made due in state `word`, if any; true if it did
    /// (or another thread moved first).
    pub(super) fn apply_due(&self, word: u64) -> bool {
        let state = state_of(word);
        if state == State::HalfOpen && self.fleet.as_ref().is_some_and(|l| l.defers_trials()) {
            return false; // the fleet times its own episode out
        }
        if !matches!(state, State::Open | State::HalfOpen) {
            return false;
        }
        let now = self.now();
        let until = self.open_until.load(Ordering::Acquire);
        let since = self.half_open_since.load(Ordering::Acquire);
        match due(&self.tuning().config, state, until, since, now) {
            Some((to, reason)) => {
                self.transition(word, to, reason, now);
                true
            }
            None => false,
        }
    }

    /// Applies the lazy, time-driven transitions and returns the current state word.
    pub(super) fn settle(&self) -> u64 {
        let mut word = self.state.load(Ordering::Acquire);
        for _ in 0..4 {
            if !self.apply_due(word) {
                return word;
            }
            word = self.state.load(Ordering::Acquire);
        }
        word
    }

    /// Whether a rejection in `state` is only counted (shadow mode); an operator's forced
    /// open is a command and rejects even then.
    #[inline]
    pub(super) fn shadows(&self, state: State) -> bool {
        self.tuning().config.shadow && state != State::ForcedOpen
    }

    pub(super) fn reject(
        &self,
        state: State,
        retry_after: Option<Duration>,
        now: Option<u64>,
    ) -> Rejected {
        let rejected = Rejected::new(self.name.clone(), state, retry_after);
        if self.shadows(state) {
            self.report_shadow_rejection(&rejected);
            return rejected;
        }
        if let Some(log) = &self.rejections {
            let now = now.unwrap_or_else(|| self.now());
            log.push(REJECTION, now);
        }
        if !self.listeners.is_empty() {
            for l in self.listeners.iter() {
                l.on_rejection(&rejected);
            }
        }
        if tracing::level_enabled!(tracing::Level::TRACE) {
            self.trace_rejection(state);
        }
        rejected
    }

    #[cold]
    #[inline(never)]
    fn report_shadow_rejection(&self, would_reject: &Rejected) {
        self.shadow_rejections.fetch_add(1, Ordering::Relaxed);
        for l in self.listeners.iter() {
            l.on_shadow_rejection(would_reject);
        }
        tracing::debug!(
            breaker = %self.name,
            state = would_reject.state().as_str(),
            "call would have been rejected; let through (shadow mode)"
        );
    }

    // Out of line, behind a check of the global level filter: the event's machinery would
    // otherwise swell the inlined fast path.
    #[cold]
    #[inline(never)]
    pub(super) fn trace_rejection(&self, state: State) {
        tracing::trace!(breaker = %self.name, state = state.as_str(), "call rejected");
    }

    #[inline]
    pub(super) fn finish(&self, ticket: PermitKey, outcome: Outcome) {
        self.finish_at(ticket, outcome, None);
    }

    /// Records a call whose duration the caller measured: it counts as slow or not by
    /// `elapsed`, whatever the breaker's clock says.
    pub(super) fn finish_measured(&self, ticket: PermitKey, outcome: Outcome, elapsed: Duration) {
        let measured = Measured {
            now: self.now(),
            elapsed: crate::clock::nanos(elapsed),
        };
        self.finish_at(ticket, outcome, Some(measured));
    }

    /// Records an outcome; `measured` when the caller timed the call itself.
    #[inline(always)]
    fn finish_at(&self, ticket: PermitKey, outcome: Outcome, measured: Option<Measured>) {
        // The listener's clock read serves the rest of the recording too.
        let reported = if self.reports_outcomes {
            Some(self.report_outcome(ticket, outcome, measured))
        } else {
            measured.map(|m| m.now)
        };
        if ticket.is_trial() {
            return self.finish_trial(ticket, outcome, reported, measured);
        }
        if outcome == Outcome::Ignored {
            return;
        }
        let word = self.state.load(Ordering::Acquire);
        if generation_of(word) != ticket.generation() {
            return; // admitted before a transition: says nothing about the new state
        }
        let failure = outcome == Outcome::Failure;
        let flags = self.flags();
        // A slow-call rule needs the exact time; a window bucket or a log entry does not.
        let now = if let Some(now) = reported {
            now
        } else if flags.times_calls() {
            self.now()
        } else if flags.records_time() || failure {
            self.clock.recent_nanos()
        } else {
            0
        };
        // A breaker with neither a window nor a timed rule never looks its tuning up here.
        let (slow, new_bucket) = if flags.uses_tuning() {
            let tuning = self.tuning();
            let slow = is_slow_after(&tuning.config, elapsed(ticket, now, measured));
            let new_bucket = match &tuning.window {
                Some(window) => window.record(Mark { failure, slow }, now),
                None => false,
            };
            (slow, new_bucket)
        } else {
            (false, false)
        };
        if let Some(link) = &self.fleet {
            link.count(failure, slow);
        }
        self.log_outcome(failure, slow, now);
        // `judges_successes` first: a breaker no success can trip reads nothing more.
        let may_raise_a_rate = !failure
            && !slow
            && flags.judges_successes()
            && success_may_raise_a_rate(
                &self.tuning().config,
                self.below_minimum.load(Ordering::Relaxed),
                new_bucket,
            );
        let judging = judges(state_of(word), failure, slow, may_raise_a_rate);
        if failure {
            self.last_failure
                .store(now.saturating_add(1), Ordering::Relaxed);
            let run = self
                .consecutive
                .fetch_add(1, Ordering::AcqRel)
                .saturating_add(1);
            if judging {
                self.judge(word, run, now);
            }
        } else {
            // A load, not a write, on the common path: the line stays shared between cores.
            if self.consecutive.load(Ordering::Relaxed) != 0 {
                self.consecutive.store(0, Ordering::Relaxed);
            }
            if judging {
                // A fast success may not have read the clock; a trip needs the time.
                let now = if now == 0 {
                    self.clock.recent_nanos()
                } else {
                    now
                };
                self.judge(word, 0, now);
            }
        }
    }

    // Cold and out of line so a breaker that reports nothing keeps its fast path as it was.
    /// Returns the time it read.
    #[cold]
    pub(super) fn report_outcome(
        &self,
        ticket: PermitKey,
        outcome: Outcome,
        measured: Option<Measured>,
    ) -> u64 {
        let now = measured.map_or_else(|| self.now(), |m| m.now);
        let took = elapsed(ticket, now, measured);
        let event = OutcomeEvent {
            name: self.name.clone(),
            outcome,
            slow: outcome != Outcome::Ignored && is_slow_after(&self.tuning().config, took),
            trial: ticket.is_trial(),
            duration: Duration::from_nanos(took),
        };
        for l in self.listeners.iter() {
            l.on_outcome(&event);
        }
        now
    }

    #[inline]
    pub(super) fn log_outcome(&self, failure: bool, slow: bool, now: u64) {
        if let Some(log) = &self.log {
            let kind = match (failure, slow) {
                (false, false) => LoggedOutcome::Success,
                (true, false) => LoggedOutcome::Failure,
                (false, true) => LoggedOutcome::SlowSuccess,
                (true, true) => LoggedOutcome::SlowFailure,
            };
            log.push(kind.code(), now);
        }
    }

    #[cold]
    pub(super) fn judge(&self, word: u64, consecutive: u32, now: u64) {
        let config = &self.tuning().config;
        let stats = self.window_stats(now);
        self.below_minimum
            .store(below_minimum(config, &stats), Ordering::Relaxed);
        if let Some((to, reason)) = trip(config, consecutive, &stats) {
            self.transition(word, to, reason, now);
        }
    }

    pub(super) fn window_stats(&self, now: u64) -> WindowStats {
        match &self.tuning().window {
            Some(w) => w.stats(now),
            None => WindowStats::default(),
        }
    }

    #[cold]
    pub(super) fn finish_trial(
        &self,
        ticket: PermitKey,
        outcome: Outcome,
        now: Option<u64>,
        measured: Option<Measured>,
    ) {
        let now = now.unwrap_or_else(|| self.now());
        let failure = outcome == Outcome::Failure;
        let slow = outcome != Outcome::Ignored
            && is_slow_after(&self.tuning().config, elapsed(ticket, now, measured));
        if outcome != Outcome::Ignored {
            self.log_outcome(failure, slow, now);
        }
        if failure {
            self.last_failure
                .store(now.saturating_add(1), Ordering::Relaxed);
        }
        let counted = trial_counts(outcome, slow);
        let Some(tally) = self.gate.finish(ticket.generation(), counted) else {
            return;
        };
        let Some(success) = counted else {
            return;
        };
        if let Some(link) = &self.fleet {
            link.count(failure, slow);
            if link.defers_trials() {
                link.note_trial(success);
                return;
            }
        }
        let close = self.tuning().config.close;
        if let Some((to, reason)) = after_trial(close, tally.successes, tally.failures) {
            let expected = encode(State::HalfOpen, ticket.generation());
            self.transition(expected, to, reason, now);
        }
    }

    #[inline]
    pub(super) fn release(&self, ticket: PermitKey) {
        if ticket.is_trial() {
            self.gate.finish(ticket.generation(), None);
        }
    }

    pub(super) fn record_unticketed(&self, outcome: Outcome) {
        let word = self.settle();
        let now = self.now();
        let ticket = PermitKey::new(generation_of(word), state_of(word) == State::HalfOpen, now);
        self.finish(ticket, outcome);
    }

    /// Notes a failure's server-given delay, for a breaker that opens for it.
    pub(super) fn note_retry_after(&self, wait: Duration) {
        if let Some(max) = self.tuning().config.retry_after_max {
            let until = retry_hint_until(self.now(), wait, max);
            self.retry_hint_until.fetch_max(until, Ordering::AcqRel);
        }
    }

    /// Moves from the exact state word `expected` to `to`. Returns false when another thread
    /// moved first (the caller's view was stale): that thread reports its own transition,
    /// so every change is reported exactly once.
    pub(super) fn transition(
        &self,
        expected: u64,
        to: State,
        reason: TransitionReason,
        now: u64,
    ) -> bool {
        self.transition_until(expected, to, reason, now, None)
    }

    /// [`transition`](Self::transition), with the end of an OPEN state's cooldown given
    /// (adopted from a fleet) instead of drawn.
    pub(super) fn transition_until(
        &self,
        expected: u64,
        to: State,
        reason: TransitionReason,
        now: u64,
        open_until: Option<u64>,
    ) -> bool {
        let stats = self.window_stats(now);
        let new_word;
        {
            let mut slow = lock(&self.slow);
            if self.state.load(Ordering::Acquire) != expected {
                return false;
            }
            let generation = generation_of(expected) + 1;
            let slow = &mut *slow;
            let rng = &mut slow.rng;
            let open_until = open_until.or_else(|| {
                let hint = self.retry_hint_until.load(Ordering::Acquire);
                hinted_open_until(hint, now)
            });
            let entry = enter(to, slow.consecutive_trips, now, open_until, |trips| {
                self.tuning().config.cooldown.draw(trips, rng)
            });
            slow.consecutive_trips = entry.consecutive_trips;
            if let Some(until) = entry.open_until {
                self.open_until.store(until, Ordering::Release);
            }
            if let Some(since) = entry.half_open_since {
                self.gate.reset(generation);
                self.half_open_since.store(since, Ordering::Release);
            }
            if entry.clears_counts {
                self.clear_counts();
            }
            new_word = encode(to, generation);
            self.state.store(new_word, Ordering::Release);
        }
        let transition = Transition {
            name: self.name.clone(),
            from: state_of(expected),
            to,
            reason,
            generation: generation_of(new_word),
            at_nanos: now,
            stats,
        };
        tracing::info!(
            breaker = %self.name,
            from = transition.from.as_str(),
            to = to.as_str(),
            reason = %transition.reason,
            generation = transition.generation,
            calls = stats.calls,
            failures = stats.failures,
            slow_calls = stats.slow_calls,
            "circuit breaker state changed"
        );
        for l in self.listeners.iter() {
            l.on_transition(&transition);
        }
        if let Some(link) = &self.fleet {
            link.wake();
        }
        true
    }

    /// The counters a close clears (the trips are cleared by the caller, under its lock).
    pub(super) fn clear_counts(&self) {
        if let Some(w) = &self.tuning().window {
            w.reset();
        }
        self.below_minimum.store(true, Ordering::Relaxed);
        self.consecutive.store(0, Ordering::Release);
        self.retry_hint_until.store(0, Ordering::Relaxed);
    }

    pub(super) fn manual(&self, manual: Manual) -> bool {
        loop {
            let word = self.state.load(Ordering::Acquire);
            let from = state_of(word);
            if !manual.allowed_from(from) {
                return false;
            }
            if !manual.changes_state(from) {
                // A reset of a closed breaker: counters cleared, no change to report.
                let mut slow = lock(&self.slow);
                if self.state.load(Ordering::Acquire) != word {
                    continue;
                }
                self.clear_counts();
                slow.consecutive_trips = 0;
                return false;
            }
            if self.transition(word, manual.target(), manual.clone().reason(), self.now()) {
                return true;
            }
        }
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        let word = self.settle();
        let now = self.now();
        let state = state_of(word);
        let window = self.window_stats(now);
        let last_failure = self.last_failure.load(Ordering::Relaxed);
        let remaining_cooldown = (state == State::Open).then(|| {
            Duration::from_nanos(self.open_until.load(Ordering::Acquire).saturating_sub(now))
        });
        let tally = self.gate.tally();
        let in_half_open =
            state == State::HalfOpen && tally.tag == super::gate::tag_of(generation_of(word));
        let recent = match &self.log {
            Some(log) => log
                .entries()
                .into_iter()
                .filter_map(|(at, code)| {
                    Some(OutcomeEntry {
                        outcome: LoggedOutcome::from_code(code)?,
                        age: Duration::from_nanos(now.saturating_sub(at)),
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        let recent_rejections = match &self.rejections {
            Some(log) => log
                .entries()
                .into_iter()
                .map(|(at, _)| Duration::from_nanos(now.saturating_sub(at)))
                .collect(),
            None => Vec::new(),
        };
        let tuning = self.tuning();
        let judged = tuning.window.is_some() && !below_minimum(&tuning.config, &window);
        Snapshot {
            name: self.name.clone(),
            state,
            generation: generation_of(word),
            window,
            failure_rate: judged.then(|| window.failure_rate()),
            slow_rate: judged.then(|| window.slow_rate()),
            consecutive_failures: self.consecutive.load(Ordering::Acquire),
            since_last_failure: (last_failure != 0)
                .then(|| Duration::from_nanos(now.saturating_sub(last_failure - 1))),
            remaining_cooldown,
            consecutive_trips: lock(&self.slow).consecutive_trips,
            trials_in_flight: if in_half_open { tally.in_flight } else { 0 },
            trial_successes: if in_half_open { tally.successes } else { 0 },
            trial_failures: if in_half_open { tally.failures } else { 0 },
            recent,
            recent_rejections,
            shadow_rejections: self.shadow_rejections.load(Ordering::Relaxed),
        }
    }
}
