//! The half-open gate: admission of trial calls and their tally in one atomic word, so the
//! trial limit holds under any interleaving without a lock.

use super::algorithm::trial_admissible;
use crate::sync::{AtomicU64, Ordering};

/// `tag | in_flight | successes | failures`, 16 bits each. The tag is the low 16 bits of the
/// generation that opened this half-open episode, so permits from an earlier episode cannot
/// touch the tally of a later one.
#[derive(Debug)]
pub(crate) struct HalfOpenGate {
    word: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) tag: u16,
    pub(crate) in_flight: u32,
    pub(crate) successes: u32,
    pub(crate) failures: u32,
}

impl Tally {
    fn unpack(w: u64) -> Self {
        Tally {
            tag: (w >> 48) as u16,
            in_flight: ((w >> 32) & 0xFFFF) as u32,
            successes: ((w >> 16) & 0xFFFF) as u32,
            failures: (w & 0xFFFF) as u32,
        }
    }

    fn pack(self) -> u64 {
        (u64::from(self.tag) << 48)
            | (u64::from(self.in_flight & 0xFFFF) << 32)
            | (u64::from(self.successes & 0xFFFF) << 16)
            | u64::from(self.failures & 0xFFFF)
    }
}

/// The result of asking for a trial slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Admitted,
    /// Every trial slot is taken or the close rule has all the trials it needs.
    Full,
    /// The gate belongs to another half-open episode.
    Stale,
}

pub(crate) fn tag_of(generation: u64) -> u16 {
    (generation & 0xFFFF) as u16
}

impl HalfOpenGate {
    pub(crate) fn new() -> Self {
        HalfOpenGate {
            word: AtomicU64::new(0),
        }
    }

    /// Starts a fresh episode. Called before the HALF_OPEN state is published.
    pub(crate) fn reset(&self, generation: u64) {
        let fresh = Tally {
            tag: tag_of(generation),
            in_flight: 0,
            successes: 0,
            failures: 0,
        };
        self.word.store(fresh.pack(), Ordering::Release);
    }

    pub(crate) fn tally(&self) -> Tally {
        Tally::unpack(self.word.load(Ordering::Acquire))
    }

    /// Claims a trial slot when fewer than `concurrency` are in flight and fewer than
    /// `trials` have been started in this episode.
    pub(crate) fn try_admit(&self, generation: u64, concurrency: u32, trials: u32) -> Admission {
        let tag = tag_of(generation);
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let t = Tally::unpack(current);
            if t.tag != tag {
                return Admission::Stale;
            }
            let finished = t.successes + t.failures;
            if !trial_admissible(concurrency, trials, t.in_flight, finished) {
                return Admission::Full;
            }
            let next = Tally {
                in_flight: t.in_flight + 1,
                ..t
            };
            match self.word.compare_exchange_weak(
                current,
                next.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Admission::Admitted,
                Err(actual) => current = actual,
            }
        }
    }

    /// Ends one trial: `Some(true)` a success, `Some(false)` a failure, `None` released
    /// without counting (dropped or ignored). Returns the tally after, or `None` when the
    /// episode is over.
    pub(crate) fn finish(&self, generation: u64, outcome: Option<bool>) -> Option<Tally> {
        let tag = tag_of(generation);
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let t = Tally::unpack(current);
            if t.tag != tag || t.in_flight == 0 {
                return None;
            }
            let next = Tally {
                in_flight: t.in_flight - 1,
                successes: t.successes + u32::from(outcome == Some(true)),
                failures: t.failures + u32::from(outcome == Some(false)),
                ..t
            };
            match self.word.compare_exchange_weak(
                current,
                next.pack(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(next),
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn limits_and_release() {
        let gate = HalfOpenGate::new();
        gate.reset(7);
        assert_eq!(gate.try_admit(7, 2, 3), Admission::Admitted);
        assert_eq!(gate.try_admit(7, 2, 3), Admission::Admitted);
        assert_eq!(gate.try_admit(7, 2, 3), Admission::Full); // concurrency
        assert!(gate.finish(7, None).is_some()); // released, not counted
        assert_eq!(gate.try_admit(7, 2, 3), Admission::Admitted);
        let t = gate.finish(7, Some(true)).unwrap();
        assert_eq!((t.in_flight, t.successes), (1, 1));
        assert_eq!(gate.try_admit(7, 2, 3), Admission::Admitted);
        assert_eq!(gate.try_admit(7, 2, 3), Admission::Full); // 3 started
        assert_eq!(gate.try_admit(8, 2, 3), Admission::Stale);
        assert_eq!(gate.finish(8, Some(true)), None);
        gate.reset(9);
        assert_eq!(gate.finish(7, Some(true)), None); // old episode's permit
    }
}
