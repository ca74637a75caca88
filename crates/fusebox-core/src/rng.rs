//! Random sources for jitter, seeded one way everywhere: from a given seed for reproducible
//! runs, otherwise from a cheap per-thread sequence started from the operating system's
//! randomness. Jitter has to differ between calls and clients, not to be secret.

use std::cell::Cell;

use rand::SeedableRng;
use rand::rngs::SmallRng;

/// The generator for one breaker, backoff or call: seeded with `seed` when given (the same
/// draws every run), else with a [`fresh_seed`].
///
/// ```
/// use rand::Rng;
/// let a: u64 = fusebox_core::rng::small_rng(Some(7)).random();
/// let b: u64 = fusebox_core::rng::small_rng(Some(7)).random();
/// assert_eq!(a, b);
/// ```
pub fn small_rng(seed: Option<u64>) -> SmallRng {
    SmallRng::seed_from_u64(seed.unwrap_or_else(fresh_seed))
}

/// A fresh seed: the next value of this thread's SplitMix64 sequence, which starts from the
/// operating system's randomness once per thread. Never panics: where the operating system
/// has nothing to give, or during thread teardown, a process-wide sequence still differs
/// per call.
///
/// ```
/// assert_ne!(fusebox_core::rng::fresh_seed(), fusebox_core::rng::fresh_seed());
/// ```
pub fn fresh_seed() -> u64 {
    use rand::TryRngCore;
    use std::sync::atomic::{AtomicU64, Ordering};

    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    // Where the operating system has nothing to give, or this thread's sequence is already
    // gone (thread teardown): a process-wide sequence, still distinct per call.
    static SHARED: AtomicU64 = AtomicU64::new(GOLDEN);
    thread_local! {
        static STATE: Cell<u64> = const { Cell::new(0) };
    }
    fn mix(mut z: u64) -> u64 {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    let shared = || SHARED.fetch_add(GOLDEN, Ordering::Relaxed);
    let next = |state: &Cell<u64>| {
        let mut x = state.get();
        if x == 0 {
            x = rand::rngs::OsRng
                .try_next_u64()
                .unwrap_or_else(|_| shared())
                | 1;
        }
        x = x.wrapping_add(GOLDEN);
        state.set(x);
        mix(x)
    };
    STATE.try_with(next).unwrap_or_else(|_| mix(shared()))
}
