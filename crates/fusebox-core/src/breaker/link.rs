//! What a breaker shares with the task that keeps it in step with a fleet store: outcome
//! totals to flush, trial outcomes to report, the trial slots the fleet granted, and a way
//! to wake the task. Everything here is atomics; a call never waits on the task.

use super::gate::tag_of;
use super::window::{Padded, stripe_count, stripe_hint};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

#[derive(Debug)]
struct StripeCounts {
    successes: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

impl StripeCounts {
    fn new() -> Self {
        StripeCounts {
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            slow: AtomicU64::new(0),
        }
    }
}

/// Outcome totals of this instance's own calls since the breaker was built.
///
/// ```
/// use fusebox_core::breaker::Totals;
/// let t = Totals { successes: 3, ..Totals::default() };
/// assert_eq!(t.failures, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Calls that succeeded.
    pub successes: u64,
    /// Calls that failed.
    pub failures: u64,
    /// Calls slower than the slow-call threshold, successes or failures.
    pub slow: u64,
}

/// The link between a breaker and the engine that keeps it in step with other instances.
/// Build the breaker with [`BreakerBuilder::build_linked`](super::BreakerBuilder::build_linked);
/// the engine reads what the breaker counted and sets what the fleet granted.
///
/// ```
/// use fusebox_core::breaker::{Breaker, FleetLink};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// let wakes = Arc::new(AtomicUsize::new(0));
/// let woken = Arc::clone(&wakes);
/// let link = FleetLink::new(Box::new(move || {
///     woken.fetch_add(1, Ordering::Relaxed);
/// }));
/// let b = Breaker::builder("db").consecutive_failures(1).build_linked(link)?;
/// b.record_failure(); // trips: the engine is woken to tell the fleet
/// assert!(wakes.load(Ordering::Relaxed) >= 1);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub struct FleetLink {
    /// Striped per thread: with a fleet attached, every counted call adds here, and one
    /// shared line would bounce between cores.
    stripes: Box<[Padded<StripeCounts>]>,
    mask: usize,
    trial_successes: AtomicU32,
    trial_failures: AtomicU32,
    /// Non-zero while the fleet judges half-open trials (the store is reachable and the
    /// breaker follows a fleet-wide episode).
    defer_trials: AtomicU32,
    /// Trial slots granted for one local half-open episode: tag in the high half, count low.
    grant: AtomicU64,
    /// Non-zero once a call found no granted trial slot free: this instance has traffic
    /// that wants a trial.
    demand: AtomicU32,
    waker: Box<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for FleetLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetLink")
            .field("totals", &self.totals())
            .field("defer_trials", &self.defers_trials())
            .finish_non_exhaustive()
    }
}

impl FleetLink {
    /// A link whose engine is woken by `waker` (a transition, a trial outcome, a call that
    /// found no trial slot).
    ///
    /// ```
    /// let link = fusebox_core::breaker::FleetLink::new(Box::new(|| {}));
    /// assert_eq!(link.totals().successes, 0);
    /// ```
    pub fn new(waker: Box<dyn Fn() + Send + Sync>) -> Self {
        let stripes = stripe_count();
        FleetLink {
            stripes: (0..stripes).map(|_| Padded(StripeCounts::new())).collect(),
            mask: stripes - 1,
            trial_successes: AtomicU32::new(0),
            trial_failures: AtomicU32::new(0),
            defer_trials: AtomicU32::new(0),
            grant: AtomicU64::new(0),
            demand: AtomicU32::new(0),
            waker,
        }
    }

    #[inline]
    pub(crate) fn count(&self, failure: bool, slow: bool) {
        let Some(stripe) = self.stripes.get(stripe_hint() & self.mask) else {
            return;
        };
        if failure {
            stripe.failures.fetch_add(1, Ordering::Relaxed);
        } else {
            stripe.successes.fetch_add(1, Ordering::Relaxed);
        }
        if slow {
            stripe.slow.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What the breaker counted of its own calls.
    ///
    /// ```
    /// let link = fusebox_core::breaker::FleetLink::new(Box::new(|| {}));
    /// assert_eq!(link.totals(), Default::default());
    /// ```
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for s in self.stripes.iter() {
            t.successes += s.successes.load(Ordering::Relaxed);
            t.failures += s.failures.load(Ordering::Relaxed);
            t.slow += s.slow.load(Ordering::Relaxed);
        }
        t
    }

    pub(crate) fn note_trial(&self, success: bool) {
        if success {
            self.trial_successes.fetch_add(1, Ordering::AcqRel);
        } else {
            self.trial_failures.fetch_add(1, Ordering::AcqRel);
        }
        self.wake();
    }

    /// Takes the trial outcomes noted since the last call.
    /// Trial outcomes (successes, failures) reported since the last call, for the fleet to
    /// count.
    ///
    /// ```
    /// let link = fusebox_core::breaker::FleetLink::new(Box::new(|| {}));
    /// assert_eq!(link.take_trials(), (0, 0));
    /// ```
    pub fn take_trials(&self) -> (u32, u32) {
        (
            self.trial_successes.swap(0, Ordering::AcqRel),
            self.trial_failures.swap(0, Ordering::AcqRel),
        )
    }

    #[inline]
    pub(crate) fn defers_trials(&self) -> bool {
        self.defer_trials.load(Ordering::Acquire) != 0
    }

    /// While set, half-open trials are the fleet's: the breaker admits only the slots
    /// granted with [`set_granted`](Self::set_granted) and leaves the verdict to the fleet.
    ///
    /// ```
    /// let link = fusebox_core::breaker::FleetLink::new(Box::new(|| {}));
    /// link.set_defer_trials(true);
    /// ```
    pub fn set_defer_trials(&self, defer: bool) {
        self.defer_trials.store(u32::from(defer), Ordering::Release);
    }

    /// Trial slots granted to the local half-open episode of `generation`.
    #[inline]
    pub(crate) fn granted(&self, generation: u64) -> u32 {
        let word = self.grant.load(Ordering::Acquire);
        if (word >> 32) as u16 == tag_of(generation) {
            word as u32
        } else {
            0
        }
    }

    /// Sets the slots granted to the local episode of `generation`.
    /// The trial slots the fleet granted this instance for its half-open episode
    /// `generation` (the breaker's local generation).
    ///
    /// ```
    /// let link = fusebox_core::breaker::FleetLink::new(Box::new(|| {}));
    /// link.set_granted(3, 2);
    /// ```
    pub fn set_granted(&self, generation: u64, slots: u32) {
        let word = (u64::from(tag_of(generation)) << 32) | u64::from(slots);
        self.grant.store(word, Ordering::Release);
    }

    /// Notes that a call wanted a trial slot this instance does not hold; wakes the sync
    /// task the first time only.
    #[cold]
    pub(crate) fn want_trial(&self) {
        if self.demand.swap(1, Ordering::AcqRel) == 0 {
            self.wake();
        }
    }

    /// Whether a call wanted a trial slot since the last look; clears the note.
    /// Whether a call found no trial slot since the last call: the engine should claim more.
    ///
    /// ```
    /// let link = fusebox_core::breaker::FleetLink::new(Box::new(|| {}));
    /// assert!(!link.take_demand());
    /// ```
    pub fn take_demand(&self) -> bool {
        self.demand.swap(0, Ordering::AcqRel) != 0
    }

    pub(crate) fn wake(&self) {
        (self.waker)();
    }
}
