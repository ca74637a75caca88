//! Windows over recent outcomes.
//!
//! [`SeqWindow`] is the plain, single-threaded window of the sans-IO machine. [`AtomicWindow`]
//! is the concurrent one behind [`Breaker`](super::Breaker): recording an outcome is one
//! atomic add plus one store (count-based) or one add on a per-thread stripe (time-based),
//! and the window is only summed when a bad outcome must be judged or a snapshot is taken.

use crate::sync::{AtomicU8, AtomicU64, Ordering};
use std::cell::Cell;
use std::collections::VecDeque;

use super::config::WindowKind;
use super::stats::WindowStats;

/// What one counted call was: the bits of a window slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
}

impl Mark {
    fn slot_code(self) -> u8 {
        1 | (u8::from(self.failure) << 1) | (u8::from(self.slow) << 2)
    }
}

fn add_slot(stats: &mut WindowStats, code: u8) {
    if code & 1 != 0 {
        stats.calls += 1;
        stats.failures += u64::from((code >> 1) & 1);
        stats.slow_calls += u64::from((code >> 2) & 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Sequential window (sans-IO core)
// ---------------------------------------------------------------------------------------------

/// The single-threaded window of the sans-IO state machine.
#[derive(Debug, Clone)]
pub(crate) enum SeqWindow {
    None,
    Count {
        size: usize,
        marks: VecDeque<Mark>,
    },
    Time {
        bucket_nanos: u64,
        buckets: u64,
        /// (epoch, stats) for the epochs that saw calls, oldest first.
        counts: VecDeque<(u64, WindowStats)>,
    },
}

impl SeqWindow {
    pub(crate) fn new(kind: Option<WindowKind>) -> Self {
        match kind {
            None => SeqWindow::None,
            Some(WindowKind::Count { calls }) => SeqWindow::Count {
                size: calls as usize,
                marks: VecDeque::with_capacity(calls as usize),
            },
            Some(WindowKind::Time { span, buckets }) => SeqWindow::Time {
                bucket_nanos: bucket_nanos(span.as_nanos(), buckets),
                buckets: live_buckets(buckets),
                counts: VecDeque::new(),
            },
        }
    }

    /// Records one call; true when it opened a new bucket of a time window (older calls may
    /// have left the window).
    pub(crate) fn record(&mut self, mark: Mark, now: u64) -> bool {
        match self {
            SeqWindow::None => false,
            SeqWindow::Count { size, marks } => {
                if marks.len() == *size {
                    marks.pop_front();
                }
                marks.push_back(mark);
                false
            }
            SeqWindow::Time {
                bucket_nanos,
                buckets,
                counts,
            } => {
                let epoch = now / *bucket_nanos;
                prune(counts, epoch, *buckets);
                let mut delta = WindowStats::default();
                add_slot(&mut delta, mark.slot_code());
                match counts.back_mut() {
                    Some((e, s)) if *e >= epoch => {
                        s.calls += delta.calls;
                        s.failures += delta.failures;
                        s.slow_calls += delta.slow_calls;
                        false
                    }
                    _ => {
                        counts.push_back((epoch, delta));
                        true
                    }
                }
            }
        }
    }

    pub(crate) fn stats(&mut self, now: u64) -> WindowStats {
        let mut stats = WindowStats::default();
        match self {
            SeqWindow::None => {}
            SeqWindow::Count { marks, .. } => {
                for m in marks.iter() {
                    add_slot(&mut stats, m.slot_code());
                }
            }
            SeqWindow::Time {
                bucket_nanos,
                buckets,
                counts,
            } => {
                prune(counts, now / *bucket_nanos, *buckets);
                for (_, s) in counts.iter() {
                    stats.calls += s.calls;
                    stats.failures += s.failures;
                    stats.slow_calls += s.slow_calls;
                }
            }
        }
        stats
    }

    pub(crate) fn reset(&mut self) {
        match self {
            SeqWindow::None => {}
            SeqWindow::Count { marks, .. } => marks.clear(),
            SeqWindow::Time { counts, .. } => counts.clear(),
        }
    }
}

fn prune(counts: &mut VecDeque<(u64, WindowStats)>, epoch: u64, buckets: u64) {
    let start = (epoch + 1).saturating_sub(buckets);
    while matches!(counts.front(), Some((e, _)) if *e < start) {
        counts.pop_front();
    }
}

/// Buckets a time window of `buckets` keeps: the current one, which is partly over, and
/// `buckets` whole ones before it, so that a call is remembered for at least the window's
/// span (and at most one bucket more), never less.
pub(crate) fn live_buckets(buckets: u32) -> u64 {
    u64::from(buckets.max(1)) + 1
}

pub(crate) fn bucket_nanos(span_nanos: u128, buckets: u32) -> u64 {
    let width = span_nanos / u128::from(buckets.max(1));
    u64::try_from(width).unwrap_or(u64::MAX).max(1)
}

// ---------------------------------------------------------------------------------------------
// Concurrent windows
// ---------------------------------------------------------------------------------------------

/// Keeps a value on its own pair of cache lines, so that two cores writing neighbouring
/// values do not bounce one line between them.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// The concurrent window of a breaker.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per breaker; boxing would add a pointer chase per record
pub(crate) enum AtomicWindow {
    Count(CountWindow),
    Time(TimeWindow),
}

impl AtomicWindow {
    pub(crate) fn new(kind: WindowKind) -> Self {
        match kind {
            WindowKind::Count { calls } => AtomicWindow::Count(CountWindow::new(calls as usize)),
            WindowKind::Time { span, buckets } => {
                AtomicWindow::Time(TimeWindow::new(span.as_nanos(), buckets))
            }
        }
    }

    /// Records one call; true when it opened a new bucket of a time window on this thread's
    /// stripe (older calls may have left the window since this stripe last recorded).
    #[inline]
    pub(crate) fn record(&self, mark: Mark, now: u64) -> bool {
        match self {
            AtomicWindow::Count(w) => {
                w.record(mark);
                false
            }
            AtomicWindow::Time(w) => w.record(mark, now),
        }
    }

    /// Records `n` outcomes alike at once (outcomes other instances reported). A count
    /// window keeps at most its size of them: older ones would be pushed out anyway.
    pub(crate) fn record_many(&self, mark: Mark, n: u64, now: u64) {
        match self {
            AtomicWindow::Count(w) => {
                for _ in 0..n.min(w.capacity() as u64) {
                    w.record(mark);
                }
            }
            AtomicWindow::Time(w) => {
                w.record_many(mark, n, now);
            }
        }
    }

    pub(crate) fn stats(&self, now: u64) -> WindowStats {
        match self {
            AtomicWindow::Count(w) => w.stats(),
            AtomicWindow::Time(w) => w.stats(now),
        }
    }

    pub(crate) fn reset(&self) {
        match self {
            AtomicWindow::Count(w) => w.reset(),
            AtomicWindow::Time(w) => w.reset(),
        }
    }
}

/// The last N calls, as a ring of one-byte slots with running counts beside it.
///
/// A record claims a position with one `fetch_add` and reads its slot; only when the slot's
/// content changes (a success replacing a failure, the first lap) is it swapped, and the
/// exact difference between old and new content applied to the counts. Every change of a
/// slot goes through a swap, so the counts always equal the slots' contents once writers are
/// done, whatever the interleaving, and judging the window costs three loads, not a scan.
#[derive(Debug)]
pub(crate) struct CountWindow {
    next: Padded<AtomicU64>,
    counts: Padded<SlotCounts>,
    slots: Box<[AtomicU8]>,
}

#[derive(Debug, Default)]
pub(crate) struct SlotCounts {
    filled: AtomicU64,
    failures: AtomicU64,
    slow: AtomicU64,
}

/// Applies the change of one slot from `old` to `new` to the running counts.
fn apply_slot_change(counts: &SlotCounts, old: u8, new: u8) {
    for (counter, bit) in [
        (&counts.filled, 0),
        (&counts.failures, 1),
        (&counts.slow, 2),
    ] {
        let before = (old >> bit) & 1;
        let after = (new >> bit) & 1;
        if after > before {
            counter.fetch_add(1, Ordering::AcqRel);
        } else if before > after {
            // May dip below zero for an instant when racing the matching increment: read
            // as signed and clamped.
            counter.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn read_count(counter: &AtomicU64) -> u64 {
    (counter.load(Ordering::Acquire) as i64).max(0) as u64
}

impl CountWindow {
    pub(crate) fn new(size: usize) -> Self {
        let size = size.max(1);
        CountWindow {
            next: Padded(AtomicU64::new(0)),
            counts: Padded(SlotCounts::default()),
            slots: (0..size).map(|_| AtomicU8::new(0)).collect(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub(crate) fn record(&self, mark: Mark) {
        let position = self.next.fetch_add(1, Ordering::Relaxed);
        let index = (position % self.slots.len() as u64) as usize;
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        let new = mark.slot_code();
        // Steady state (a success over a success) writes nothing at all.
        if slot.load(Ordering::Acquire) != new {
            let old = slot.swap(new, Ordering::AcqRel);
            if old != new {
                apply_slot_change(&self.counts, old, new);
            }
        }
    }

    pub(crate) fn stats(&self) -> WindowStats {
        let calls = read_count(&self.counts.filled);
        WindowStats {
            calls,
            failures: read_count(&self.counts.failures).min(calls),
            slow_calls: read_count(&self.counts.slow).min(calls),
        }
    }

    pub(crate) fn reset(&self) {
        for slot in self.slots.iter() {
            let old = slot.swap(0, Ordering::AcqRel);
            if old != 0 {
                apply_slot_change(&self.counts, old, 0);
            }
        }
    }

    /// Counts by scanning every slot: what the running counts must equal at rest.
    #[cfg(any(test, loom))]
    pub(crate) fn scanned(&self) -> WindowStats {
        let mut stats = WindowStats::default();
        for slot in self.slots.iter() {
            add_slot(&mut stats, slot.load(Ordering::Acquire));
        }
        stats
    }
}

/// Marks older than every bucket of the window, and "never written".
const NEVER: u64 = u64::MAX;

/// A time-based window striped per thread.
///
/// Each stripe keeps running totals (calls; failures and slow calls packed in one word) that
/// only ever grow, and remembers the totals at the start of each bucket it saw calls in. The
/// window's count is "totals now minus totals at the start of the oldest live bucket", so a
/// record is one add on the thread's own stripe and nothing is ever reset under a writer's
/// feet: an outcome can be attributed to a neighbouring bucket in a race, never lost.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    bucket_nanos: u64,
    buckets: u64,
    stripes: Box<[Padded<Stripe>]>,
    mask: usize,
}

#[derive(Debug)]
pub(crate) struct Stripe {
    calls: AtomicU64,
    /// Failures in the low 32 bits, slow calls in the high 32; wrapping is harmless because
    /// only differences over one window are read.
    bad: AtomicU64,
    last_epoch: AtomicU64,
    /// When the bucket `last_epoch` ends, in clock nanoseconds: until then a record needs no
    /// division to know it falls in the current bucket. Only ever a hint: a record that finds
    /// it stale (or `last_epoch` unset) takes the slow path, which judges by the epoch.
    bucket_end: AtomicU64,
    marks: Box<[BucketStart]>,
}

/// Totals of a stripe when a bucket began, written like a seqlock (epoch last).
#[derive(Debug)]
pub(crate) struct BucketStart {
    epoch: AtomicU64,
    calls: AtomicU64,
    bad: AtomicU64,
}

pub(crate) fn stripe_count() -> usize {
    #[cfg(loom)]
    {
        2
    }
    #[cfg(not(loom))]
    {
        use std::sync::OnceLock;
        static STRIPES: OnceLock<usize> = OnceLock::new();
        *STRIPES.get_or_init(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(4)
                .next_power_of_two()
                .clamp(2, 64)
        })
    }
}

thread_local! {
    static STRIPE_HINT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
pub(crate) fn stripe_hint() -> usize {
    STRIPE_HINT.with(|hint| {
        let h = hint.get();
        if h != usize::MAX {
            return h;
        }
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let h = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        hint.set(h);
        h
    })
}

const BAD_FAILURE: u64 = 1;
const BAD_SLOW: u64 = 1 << 32;

impl TimeWindow {
    pub(crate) fn new(span_nanos: u128, buckets: u32) -> Self {
        let stripes = stripe_count();
        let buckets_kept = live_buckets(buckets);
        // One start more than the buckets kept: the oldest bucket's start stays readable
        // while a writer opens the next bucket.
        let marks = buckets_kept as usize + 1;
        TimeWindow {
            bucket_nanos: bucket_nanos(span_nanos, buckets),
            buckets: buckets_kept,
            stripes: (0..stripes)
                .map(|_| {
                    Padded(Stripe {
                        calls: AtomicU64::new(0),
                        bad: AtomicU64::new(0),
                        last_epoch: AtomicU64::new(NEVER),
                        bucket_end: AtomicU64::new(0),
                        marks: (0..marks)
                            .map(|_| BucketStart {
                                epoch: AtomicU64::new(NEVER),
                                calls: AtomicU64::new(0),
                                bad: AtomicU64::new(0),
                            })
                            .collect(),
                    })
                })
                .collect(),
            mask: stripes - 1,
        }
    }

    #[inline]
    pub(crate) fn record(&self, mark: Mark, now: u64) -> bool {
        self.record_many(mark, 1, now)
    }

    /// Records `n` outcomes alike; inlined, `record`'s `n = 1` folds away. True when the
    /// record moved the stripe to a new bucket.
    #[inline]
    fn record_many(&self, mark: Mark, n: u64, now: u64) -> bool {
        let Some(stripe) = self.stripes.get(stripe_hint() & self.mask) else {
            return false;
        };
        let last = stripe.last_epoch.load(Ordering::Acquire);
        let rolled = last == NEVER || now >= stripe.bucket_end.load(Ordering::Relaxed);
        if rolled {
            self.roll(stripe, now);
        }
        stripe.calls.fetch_add(n, Ordering::AcqRel);
        let bad = u64::from(mark.failure) * BAD_FAILURE + u64::from(mark.slow) * BAD_SLOW;
        if bad != 0 {
            // Failures and slow calls share a word; wrapping only matters past 2^32 in one
            // window, where the rate is long decided.
            stripe.bad.fetch_add(bad.wrapping_mul(n), Ordering::AcqRel);
        }
        rolled
    }

    /// Opens the bucket `now` falls in, if it is newer than the stripe's current one, and
    /// notes when the current one ends.
    #[cold]
    fn roll(&self, stripe: &Stripe, now: u64) {
        let epoch = now / self.bucket_nanos;
        let last = stripe.last_epoch.load(Ordering::Acquire);
        if last != epoch && (last == NEVER || epoch > last) {
            self.begin_bucket(stripe, last, epoch);
        }
        let current = stripe.last_epoch.load(Ordering::Acquire);
        if current != NEVER {
            let end = current.saturating_add(1).saturating_mul(self.bucket_nanos);
            stripe.bucket_end.store(end, Ordering::Relaxed);
        }
    }

    #[cold]
    fn begin_bucket(&self, stripe: &Stripe, last: u64, epoch: u64) {
        if stripe
            .last_epoch
            .compare_exchange(last, epoch, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return; // another writer of this stripe opened the bucket
        }
        let slot = (epoch % stripe.marks.len() as u64) as usize;
        if let Some(start) = stripe.marks.get(slot) {
            start.epoch.store(NEVER, Ordering::Release);
            start
                .calls
                .store(stripe.calls.load(Ordering::Acquire), Ordering::Release);
            start
                .bad
                .store(stripe.bad.load(Ordering::Acquire), Ordering::Release);
            start.epoch.store(epoch, Ordering::Release);
        }
    }

    pub(crate) fn stats(&self, now: u64) -> WindowStats {
        let epoch = now / self.bucket_nanos;
        let first = (epoch + 1).saturating_sub(self.buckets);
        let mut stats = WindowStats::default();
        for stripe in self.stripes.iter() {
            let last = stripe.last_epoch.load(Ordering::Acquire);
            if last == NEVER || last < first {
                continue; // nothing recorded within the window
            }
            let calls = stripe.calls.load(Ordering::Acquire);
            let bad = stripe.bad.load(Ordering::Acquire);
            // The oldest bucket start within the window: everything after it is in the window.
            let mut oldest: Option<(u64, u64, u64)> = None;
            for start in stripe.marks.iter() {
                let e = start.epoch.load(Ordering::Acquire);
                if e == NEVER || e < first || e > epoch {
                    continue;
                }
                let c = start.calls.load(Ordering::Acquire);
                let b = start.bad.load(Ordering::Acquire);
                if start.epoch.load(Ordering::Acquire) != e {
                    continue; // being rewritten
                }
                if oldest.is_none_or(|(oe, _, _)| e < oe) {
                    oldest = Some((e, c, b));
                }
            }
            // No start found: a writer is opening the first bucket right now; its calls
            // will be seen by the next judgement.
            // A start newer than the totals read above belongs to a bucket opened meanwhile.
            if let Some((_, c, b)) = oldest.filter(|&(_, c, _)| c <= calls) {
                let d_calls = calls - c;
                let d_bad = bad.wrapping_sub(b);
                // `bad` was read after `calls`: clamp the few outcomes caught in between.
                stats.calls += d_calls;
                stats.failures += (d_bad & 0xFFFF_FFFF).min(d_calls);
                stats.slow_calls += (d_bad >> 32).min(d_calls);
            }
        }
        stats
    }

    pub(crate) fn reset(&self) {
        for stripe in self.stripes.iter() {
            stripe.last_epoch.store(NEVER, Ordering::Release);
            for start in stripe.marks.iter() {
                start.epoch.store(NEVER, Ordering::Release);
            }
        }
    }
}

/// A bounded log of recent outcomes: one `fetch_add` and one store per entry.
#[derive(Debug)]
pub(crate) struct OutcomeLog {
    next: Padded<AtomicU64>,
    entries: Box<[AtomicU64]>,
}

impl OutcomeLog {
    pub(crate) fn new(capacity: usize) -> Self {
        OutcomeLog {
            next: Padded(AtomicU64::new(0)),
            entries: (0..capacity.max(1)).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Stores (time << 3 | outcome code); time 0 is fine because code 0 means "empty".
    pub(crate) fn push(&self, code: u64, now: u64) {
        let position = self.next.fetch_add(1, Ordering::Relaxed);
        let index = (position % self.entries.len() as u64) as usize;
        if let Some(entry) = self.entries.get(index) {
            entry.store((now << 3) | (code & 7), Ordering::Release);
        }
    }

    /// Entries oldest first, as (time, code).
    pub(crate) fn entries(&self) -> Vec<(u64, u64)> {
        let next = self.next.load(Ordering::Acquire);
        let len = self.entries.len() as u64;
        let count = next.min(len);
        let mut out = Vec::with_capacity(count as usize);
        for i in (next - count)..next {
            if let Some(entry) = self.entries.get((i % len) as usize) {
                let raw = entry.load(Ordering::Acquire);
                if raw & 7 != 0 {
                    out.push((raw >> 3, raw & 7));
                }
            }
        }
        out
    }
}

#[cfg(all(test, not(loom)))]
mod tests;
