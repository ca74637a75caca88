//! The breaker's state word (state and generation in one atomic) and the ticket a permit
//! carries.

use super::stats::State;

pub(super) const CLOSED: u64 = 0;
pub(super) const OPEN: u64 = 1;
pub(super) const DISABLED: u64 = 4;
pub(super) const STATE_BITS: u64 = 3;
pub(super) const STATE_MASK: u64 = (1 << STATE_BITS) - 1;

#[inline]
pub(super) fn encode(state: State, generation: u64) -> u64 {
    (generation << STATE_BITS) | state.code()
}
#[inline]
pub(super) fn state_of(word: u64) -> State {
    State::from_code(word & STATE_MASK)
}
#[inline]
pub(super) fn generation_of(word: u64) -> u64 {
    word >> STATE_BITS
}

/// The start of a call admitted without reading the clock (no rule needed its duration
/// then): its duration is unknown, so it never counts as slow, even if a reconfiguration
/// added a slow-call rule while it ran. It reads as started at the end of time: every
/// elapsed time measured from it saturates to zero, at no cost on the path that records it.
pub(super) const UNTIMED: u64 = u64::MAX;

/// Everything a permit needs to record its outcome later, in two words: a permit is three,
/// and so is every breaker's level in a pipeline call.
#[derive(Debug, Clone, Copy)]
pub(super) struct PermitKey {
    /// The generation admitted in, shifted left once, with the low bit set for a half-open
    /// trial. Packed into a full word, not beside a `bool`: a one-byte store followed by the
    /// ticket being copied as words stalls store-to-load forwarding on every call.
    pub(super) key: u64,
    pub(super) started: u64,
}

impl PermitKey {
    /// A call admitted at `started`.
    #[inline]
    pub(super) fn new(generation: u64, trial: bool, started: u64) -> PermitKey {
        // Generations have at most 64 - STATE_BITS bits: the shift loses nothing.
        PermitKey {
            key: generation << 1 | u64::from(trial),
            started,
        }
    }

    /// The ticket of a call a shadow breaker let through instead of rejecting: its
    /// generation is one no state word reaches (they have 61 bits), so its outcome is
    /// recorded nowhere, as an enforcing breaker would not have seen it.
    #[inline]
    pub(super) fn unrecorded(started: u64) -> PermitKey {
        PermitKey::new(u64::MAX >> 2, false, started)
    }

    #[inline]
    pub(super) fn generation(self) -> u64 {
        self.key >> 1
    }

    #[inline]
    pub(super) fn is_trial(self) -> bool {
        self.key & 1 != 0
    }
}
