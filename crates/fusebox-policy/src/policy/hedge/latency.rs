//! A small lock-free latency histogram that follows change: the source of a hedge's
//! percentile delay.
//!
//! Latencies are counted in microseconds, in log-linear buckets: exact below 16 µs, then
//! sixteen buckets per power of two, so a bucket is at most 1/16 (6.25 %) as wide as the
//! values it holds. Values from an hour up share the last bucket. A percentile reads the
//! upper edge of the bucket it falls in: it can overstate the true value by up to one
//! bucket, never understate it, so a hedge fires a little late rather than early.
//!
//! Two generations of counts take turns: each lives for half the window, then is cleared and
//! refilled. A percentile reads both, so it always covers between half a window and a whole
//! window of recent calls, and a latency shift is fully taken in within one window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Values below this many microseconds have a bucket each.
const LINEAR: u64 = 16;
/// Bits of a value kept below its leading one: sixteen buckets per power of two.
const SUB_BITS: u32 = 4;
/// The largest exponent counted apart; larger values share the last bucket.
const MAX_EXPONENT: u32 = 31;
/// Number of buckets per generation.
const BUCKETS: usize = ((MAX_EXPONENT - SUB_BITS + 2) as usize) << SUB_BITS;

/// The bucket of a latency of `micros` microseconds.
fn bucket_of(micros: u64) -> usize {
    let capped = micros.min((1 << (MAX_EXPONENT + 1)) - 1);
    if capped < LINEAR {
        return capped as usize;
    }
    let exponent = 63 - capped.leading_zeros();
    let shift = exponent - SUB_BITS;
    let sub = (capped >> shift) & (LINEAR - 1);
    (((shift + 1) as usize) << SUB_BITS) + sub as usize
}

/// The smallest value past bucket `index`, in microseconds.
fn upper_edge(index: usize) -> u64 {
    if (index as u64) < LINEAR {
        return index as u64 + 1;
    }
    let shift = (index >> SUB_BITS) as u32 - 1;
    let sub = (index as u64) & (LINEAR - 1);
    (LINEAR + sub + 1) << shift
}

fn empty_generation() -> Box<[AtomicU64]> {
    (0..BUCKETS).map(|_| AtomicU64::new(0)).collect()
}

/// Recent latencies in log-linear buckets, shared without locks.
///
/// Time is passed in (`now_nanos`, from any clock), so it runs the same under a manual
/// clock in tests as in production. Concurrent recorders never block each other: a record is
/// one atomic add, plus clearing a generation once per half window. A record racing with
/// that clearing may be lost, which a distribution of thousands of samples does not notice.
///
/// ```
/// use fusebox_policy::policy::LatencyHistogram;
/// use std::time::Duration;
///
/// let histogram = LatencyHistogram::new(Duration::from_secs(10));
/// for ms in 1..=100 {
///     histogram.record(Duration::from_millis(ms), 0);
/// }
/// let p95 = histogram.percentile(0.95, 0).unwrap();
/// // 95 ms, read from the upper edge of its bucket: at most 1/16 above.
/// assert!(p95 >= Duration::from_millis(95) && p95 <= Duration::from_micros(95_000 * 17 / 16));
/// ```
#[derive(Debug)]
pub struct LatencyHistogram {
    generations: [Box<[AtomicU64]>; 2],
    /// The half-window period the current generation belongs to.
    period: AtomicU64,
    half_window_nanos: u64,
}

impl LatencyHistogram {
    /// A histogram remembering about `window` of latencies (at least two nanoseconds).
    ///
    /// ```
    /// use fusebox_policy::policy::LatencyHistogram;
    /// use std::time::Duration;
    /// let histogram = LatencyHistogram::new(Duration::from_secs(30));
    /// assert_eq!(histogram.count(0), 0);
    /// ```
    pub fn new(window: Duration) -> Self {
        let window_nanos = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        LatencyHistogram {
            generations: [empty_generation(), empty_generation()],
            period: AtomicU64::new(0),
            half_window_nanos: (window_nanos / 2).max(1),
        }
    }

    /// Counts one call that took `latency`, at time `now_nanos`.
    ///
    /// ```
    /// use fusebox_policy::policy::LatencyHistogram;
    /// use std::time::Duration;
    /// let histogram = LatencyHistogram::new(Duration::from_secs(10));
    /// histogram.record(Duration::from_millis(3), 1_000);
    /// assert_eq!(histogram.count(1_000), 1);
    /// ```
    pub fn record(&self, latency: Duration, now_nanos: u64) {
        let period = now_nanos / self.half_window_nanos;
        let current = self.period.load(Ordering::Acquire);
        if period > current
            && self
                .period
                .compare_exchange(current, period, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // The winner of the race clears the generation it moves into, and the other
            // one too if a whole window went by without a record.
            self.clear(period);
            if period - current >= 2 {
                self.clear(period + 1);
            }
        }
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        // A clock read just before another thread's move counts in the newer generation.
        self.generation(period.max(current))[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// How many latencies the window holds at `now_nanos`.
    ///
    /// ```
    /// use fusebox_policy::policy::LatencyHistogram;
    /// use std::time::Duration;
    /// let histogram = LatencyHistogram::new(Duration::from_secs(10));
    /// histogram.record(Duration::from_millis(3), 0);
    /// assert_eq!(histogram.count(0), 1);
    /// assert_eq!(histogram.count(10_000_000_000), 0); // a window later, forgotten
    /// ```
    pub fn count(&self, now_nanos: u64) -> u64 {
        self.live(now_nanos)
            .iter()
            .flatten()
            .map(|generation| {
                generation
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .sum::<u64>()
            })
            .sum()
    }

    /// The `quantile` (in `0.0..=1.0`, e.g. 0.95) of the latencies in the window at
    /// `now_nanos`, read as the upper edge of its bucket; `None` when the window is empty or
    /// `quantile` is not a number.
    ///
    /// ```
    /// use fusebox_policy::policy::LatencyHistogram;
    /// use std::time::Duration;
    /// let histogram = LatencyHistogram::new(Duration::from_secs(10));
    /// assert_eq!(histogram.percentile(0.5, 0), None);
    /// histogram.record(Duration::from_micros(7), 0);
    /// assert_eq!(histogram.percentile(0.5, 0), Some(Duration::from_micros(8)));
    /// ```
    pub fn percentile(&self, quantile: f64, now_nanos: u64) -> Option<Duration> {
        if quantile.is_nan() {
            return None;
        }
        let live = self.live(now_nanos);
        let count_at = |index: usize| -> u64 {
            live.iter()
                .flatten()
                .map(|generation| generation[index].load(Ordering::Relaxed))
                .sum()
        };
        let total: u64 = (0..BUCKETS).map(count_at).sum();
        if total == 0 {
            return None;
        }
        let rank = ((quantile.clamp(0.0, 1.0) * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for index in 0..BUCKETS {
            seen += count_at(index);
            if seen >= rank {
                return Some(Duration::from_micros(upper_edge(index)));
            }
        }
        None
    }

    fn generation(&self, period: u64) -> &[AtomicU64] {
        &self.generations[(period % 2) as usize]
    }

    fn clear(&self, period: u64) {
        for bucket in self.generation(period) {
            bucket.store(0, Ordering::Relaxed);
        }
    }

    /// The generations still inside the window at `now_nanos`: the current one for a
    /// period after it was last written, and the previous one while the current is live.
    fn live(&self, now_nanos: u64) -> [Option<&[AtomicU64]>; 2] {
        let now_period = now_nanos / self.half_window_nanos;
        let period = self.period.load(Ordering::Acquire);
        let age = now_period.saturating_sub(period);
        [
            (age <= 1).then(|| self.generation(period)),
            (age == 0 && period > 0).then(|| self.generation(period + 1)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut previous_edge = 0;
        for index in 0..BUCKETS {
            let edge = upper_edge(index);
            assert!(edge > previous_edge, "bucket {index}");
            // The bucket's lowest value is the previous bucket's edge.
            assert_eq!(bucket_of(previous_edge), index, "bucket {index}");
            assert_eq!(bucket_of(edge - 1), index, "bucket {index}");
            previous_edge = edge;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn a_bucket_is_at_most_a_sixteenth_of_its_values() {
        for index in LINEAR as usize..BUCKETS {
            let low = upper_edge(index - 1);
            let width = upper_edge(index) - low;
            assert!(width * 16 <= low, "bucket {index}: {low} + {width}");
        }
    }

    #[test]
    fn the_window_forgets_old_latencies() {
        let h = LatencyHistogram::new(Duration::from_secs(10));
        let second = 1_000_000_000;
        for _ in 0..100 {
            h.record(Duration::from_millis(200), 0);
        }
        // Half a window later both generations are live: the old samples still count.
        for _ in 0..100 {
            h.record(Duration::from_millis(10), 6 * second);
        }
        assert_eq!(h.count(6 * second), 200);
        let p90 = h.percentile(0.9, 6 * second).unwrap();
        assert!(p90 >= Duration::from_millis(200), "{p90:?}");
        // A window later only the recent, fast samples remain.
        h.record(Duration::from_millis(10), 11 * second);
        assert_eq!(h.count(11 * second), 101);
        let p90 = h.percentile(0.9, 11 * second).unwrap();
        assert!(p90 < Duration::from_millis(11), "{p90:?}");
        // Long idle: everything forgotten.
        assert_eq!(h.count(40 * second), 0);
        assert_eq!(h.percentile(0.5, 40 * second), None);
        h.record(Duration::from_millis(1), 40 * second);
        assert_eq!(h.count(40 * second), 1);
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        let h = LatencyHistogram::new(Duration::from_secs(10));
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let h = &h;
                scope.spawn(move || {
                    for i in 0..10_000u64 {
                        h.record(Duration::from_micros(1 + (i + t) % 1_000), 1_000);
                    }
                });
            }
        });
        assert_eq!(h.count(1_000), 40_000);
        let median = h.percentile(0.5, 1_000).unwrap();
        assert!(
            median >= Duration::from_micros(500) && median <= Duration::from_micros(532),
            "{median:?}"
        );
    }

    proptest! {
        #[test]
        fn percentile_is_within_one_bucket(
            mut micros in prop::collection::vec(1u64..10_000_000, 1..300),
            quantile in 0.01f64..=1.0,
        ) {
            let h = LatencyHistogram::new(Duration::from_secs(60));
            for &m in &micros {
                h.record(Duration::from_micros(m), 0);
            }
            micros.sort_unstable();
            let rank = ((quantile * micros.len() as f64).ceil() as usize).clamp(1, micros.len());
            let exact = micros[rank - 1];
            let read = u64::try_from(h.percentile(quantile, 0).unwrap().as_micros()).unwrap();
            prop_assert!(read > exact, "read {} exact {}", read, exact);
            prop_assert!(read <= exact + exact / 16 + 1, "read {} exact {}", read, exact);
        }
    }
}
