//! A retry policy's recent counts, for health reports and mode rules.

use std::fmt;
use std::sync::{Arc, Mutex};

use fusebox_core::clock::{IntoClock, SharedClock};
use fusebox_policy::policy::RetryBuilder;

const MINUTE_NANOS: u64 = 60_000_000_000;
/// One bucket per minute over the last hour.
const BUCKETS: usize = 60;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Minutes since the clock's origin, plus one (0: never used).
    minute: u64,
    retries: u64,
    give_ups: u64,
}

struct Counts {
    clock: SharedClock,
    buckets: Mutex<[Bucket; BUCKETS]>,
}

/// Counts a retry policy's retries and give-ups over the last hour, by the minute.
///
/// Attach it to a policy with [`attach`](Self::attach) and register it in a
/// [`HealthRegistry`](super::HealthRegistry); the report's `retries_1h` and `give_ups_1h`
/// then feed mode rules such as `retries_1h > 10`. Clones share the counts.
///
/// ```
/// use fusebox_core::clock::ManualClock;
/// use fusebox_health::health::RetryStats;
/// use fusebox_policy::policy::Retry;
/// use fusebox_core::Error;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let stats = RetryStats::with_clock(clock.clone());
/// let retry = stats.attach(Retry::<(), &str>::builder().max_retries(2)).build()?;
/// let mut attempts = retry.attempts();
/// while attempts.next_delay(&Err(Error::Inner("busy"))).is_some() {}
/// assert_eq!((stats.retries_last_hour(), stats.give_ups_last_hour()), (2, 1));
///
/// clock.advance(Duration::from_secs(3600));
/// assert_eq!(stats.retries_last_hour(), 0); // an hour later, forgotten
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RetryStats {
    counts: Arc<Counts>,
}

impl fmt::Debug for RetryStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryStats")
            .field("retries_last_hour", &self.retries_last_hour())
            .field("give_ups_last_hour", &self.give_ups_last_hour())
            .finish()
    }
}

impl Default for RetryStats {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryStats {
    /// Counts on the default monotonic clock.
    ///
    /// ```
    /// use fusebox_health::health::RetryStats;
    /// assert_eq!(RetryStats::new().retries_last_hour(), 0);
    /// ```
    pub fn new() -> Self {
        Self::from_handle(SharedClock::monotonic())
    }

    /// Counts on `clock` (a `ManualClock` in tests).
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_health::health::RetryStats;
    /// let stats = RetryStats::with_clock(ManualClock::new());
    /// stats.record_retry();
    /// assert_eq!(stats.retries_last_hour(), 1);
    /// ```
    pub fn with_clock(clock: impl IntoClock) -> Self {
        Self::from_handle(clock.into_handle())
    }

    fn from_handle(clock: SharedClock) -> Self {
        RetryStats {
            counts: Arc::new(Counts {
                clock,
                buckets: Mutex::new([Bucket::default(); BUCKETS]),
            }),
        }
    }

    /// Adds the hooks that count `builder`'s retries and give-ups.
    ///
    /// ```
    /// use fusebox_health::health::RetryStats;
    /// use fusebox_policy::policy::Retry;
    /// let stats = RetryStats::new();
    /// let retry = stats.attach(Retry::<(), ()>::builder()).build()?;
    /// assert_eq!(retry.max_retries(), 3);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn attach<T, E>(&self, builder: RetryBuilder<T, E>) -> RetryBuilder<T, E> {
        let (on_retry, on_give_up) = (self.clone(), self.clone());
        builder
            .on_retry(move |_| on_retry.record_retry())
            .on_give_up(move |_, _| on_give_up.record_give_up())
    }

    /// Counts one retry now.
    ///
    /// ```
    /// use fusebox_health::health::RetryStats;
    /// let stats = RetryStats::new();
    /// stats.record_retry();
    /// assert_eq!(stats.retries_last_hour(), 1);
    /// ```
    pub fn record_retry(&self) {
        self.update(|b| b.retries += 1);
    }

    /// Counts one give-up now.
    ///
    /// ```
    /// use fusebox_health::health::RetryStats;
    /// let stats = RetryStats::new();
    /// stats.record_give_up();
    /// assert_eq!(stats.give_ups_last_hour(), 1);
    /// ```
    pub fn record_give_up(&self) {
        self.update(|b| b.give_ups += 1);
    }

    /// Retries in the last hour (the current minute included).
    ///
    /// ```
    /// use fusebox_health::health::RetryStats;
    /// assert_eq!(RetryStats::new().retries_last_hour(), 0);
    /// ```
    pub fn retries_last_hour(&self) -> u64 {
        self.sum(|b| b.retries)
    }

    /// Give-ups in the last hour (the current minute included).
    ///
    /// ```
    /// use fusebox_health::health::RetryStats;
    /// assert_eq!(RetryStats::new().give_ups_last_hour(), 0);
    /// ```
    pub fn give_ups_last_hour(&self) -> u64 {
        self.sum(|b| b.give_ups)
    }

    fn minute(&self) -> u64 {
        self.counts.clock.now_nanos() / MINUTE_NANOS + 1
    }

    fn update(&self, add: impl FnOnce(&mut Bucket)) {
        let minute = self.minute();
        let mut buckets = lock(&self.counts.buckets);
        let bucket = &mut buckets[(minute % BUCKETS as u64) as usize];
        if bucket.minute != minute {
            *bucket = Bucket {
                minute,
                ..Bucket::default()
            };
        }
        add(bucket);
    }

    fn sum(&self, field: impl Fn(&Bucket) -> u64) -> u64 {
        let minute = self.minute();
        let oldest = minute.saturating_sub(BUCKETS as u64 - 1);
        lock(&self.counts.buckets)
            .iter()
            .filter(|b| b.minute != 0 && b.minute >= oldest && b.minute <= minute)
            .map(field)
            .sum()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain counters stay consistent across a panic.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use fusebox_core::clock::ManualClock;
    use std::time::Duration;

    #[test]
    fn counts_slide_out_minute_by_minute() {
        let clock = ManualClock::new();
        let stats = RetryStats::with_clock(clock.clone());
        stats.record_retry();
        clock.advance(Duration::from_secs(30 * 60));
        stats.record_retry();
        stats.record_give_up();
        assert_eq!(stats.retries_last_hour(), 2);
        clock.advance(Duration::from_secs(30 * 60));
        // The first retry is now 60 minutes old: out of the window.
        assert_eq!(stats.retries_last_hour(), 1);
        assert_eq!(stats.give_ups_last_hour(), 1);
        clock.advance(Duration::from_secs(2 * 3600));
        assert_eq!(
            (stats.retries_last_hour(), stats.give_ups_last_hour()),
            (0, 0)
        );
        // A bucket reused after a lap starts from zero.
        stats.record_retry();
        assert_eq!(stats.retries_last_hour(), 1);
    }
}
