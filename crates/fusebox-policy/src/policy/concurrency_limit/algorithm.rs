//! The sans-IO half of the adaptive concurrency limit: samples in, a new limit out.
//!
//! Nothing here reads a clock or takes a lock. [`AdaptiveLimit`] gathers the samples of a
//! window (so one noisy call cannot move the limit) and hands the window's summary to the
//! chosen [`LimitAlgorithm`], then keeps the result inside `[min, max]`.

use std::time::Duration;

/// What one window of calls looked like, as an algorithm sees it.
///
/// ```
/// use fusebox_policy::policy::LimitSample;
/// use std::time::Duration;
/// let sample = LimitSample { rtt: Duration::from_millis(12), in_flight: 8, dropped: false };
/// assert!(!sample.dropped);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitSample {
    /// Mean round-trip time of the window's calls.
    pub rtt: Duration,
    /// Most calls in flight seen when a call of the window started.
    pub in_flight: u32,
    /// Whether any call of the window failed, was dropped or timed out.
    pub dropped: bool,
}

/// Additive increase, multiplicative decrease: `+1` after a window where the limit was used
/// (at least half of it in flight), `× backoff_ratio` after a window with a drop or a call
/// slower than `timeout`.
///
/// ```
/// use fusebox_policy::policy::Aimd;
/// use std::time::Duration;
/// let aimd = Aimd::new().backoff_ratio(0.8).timeout(Duration::from_secs(2));
/// assert_eq!(aimd.backoff_ratio_value(), 0.8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aimd {
    backoff_ratio: f64,
    timeout: Duration,
}

impl Default for Aimd {
    fn default() -> Self {
        Self::new()
    }
}

impl Aimd {
    /// Defaults: back off to 0.9 of the limit, a call slower than 5 s counts as a drop.
    ///
    /// ```
    /// use fusebox_policy::policy::Aimd;
    /// assert_eq!(Aimd::new().backoff_ratio_value(), 0.9);
    /// ```
    pub fn new() -> Self {
        Self {
            backoff_ratio: 0.9,
            timeout: Duration::from_secs(5),
        }
    }
    /// The factor applied on a drop, in `(0, 1)`.
    ///
    /// ```
    /// use fusebox_policy::policy::Aimd;
    /// assert_eq!(Aimd::new().backoff_ratio(0.5).backoff_ratio_value(), 0.5);
    /// ```
    pub fn backoff_ratio(mut self, ratio: f64) -> Self {
        self.backoff_ratio = ratio;
        self
    }
    /// A window whose mean round trip exceeds this counts as a drop.
    ///
    /// ```
    /// use fusebox_policy::policy::Aimd;
    /// # use std::time::Duration;
    /// let _ = Aimd::new().timeout(Duration::from_millis(300));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// The configured backoff ratio.
    ///
    /// ```
    /// use fusebox_policy::policy::Aimd;
    /// assert!(Aimd::new().backoff_ratio_value() < 1.0);
    /// ```
    pub fn backoff_ratio_value(&self) -> f64 {
        self.backoff_ratio
    }

    fn next(&self, limit: f64, sample: &LimitSample) -> f64 {
        if sample.dropped || sample.rtt > self.timeout {
            limit * self.backoff_ratio
        } else if f64::from(sample.in_flight) * 2.0 >= limit {
            limit + 1.0
        } else {
            limit
        }
    }
}

/// TCP Vegas applied to calls: the queue a window built is
/// `limit · (1 − rtt_noload / rtt)`; the limit grows while the queue is under
/// `alpha = 3·log10(limit)` and shrinks once it passes `beta = 6·log10(limit)`.
/// `rtt_noload` is the shortest window mean seen (a window's mean, not its fastest call, so
/// ordinary jitter does not read as a queue), forgotten every `probe_every` windows so a
/// dependency that got slower for good is measured afresh.
///
/// ```
/// use fusebox_policy::policy::Vegas;
/// let _ = Vegas::new().probe_every(500);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vegas {
    rtt_noload: Option<Duration>,
    probe_every: u32,
    windows: u32,
}

impl Default for Vegas {
    fn default() -> Self {
        Self::new()
    }
}

impl Vegas {
    /// Defaults: the no-load round trip is re-measured every 1000 windows.
    ///
    /// ```
    /// use fusebox_policy::policy::Vegas;
    /// assert_eq!(Vegas::new(), Vegas::default());
    /// ```
    pub fn new() -> Self {
        Self {
            rtt_noload: None,
            probe_every: 1000,
            windows: 0,
        }
    }
    /// Windows between forgetting the no-load round trip (0 never forgets).
    ///
    /// ```
    /// use fusebox_policy::policy::Vegas;
    /// assert_ne!(Vegas::new().probe_every(10), Vegas::new());
    /// ```
    pub fn probe_every(mut self, windows: u32) -> Self {
        self.probe_every = windows;
        self
    }

    fn next(&mut self, limit: f64, sample: &LimitSample) -> f64 {
        self.windows = self.windows.wrapping_add(1);
        if self.probe_every != 0 && self.windows.is_multiple_of(self.probe_every) {
            self.rtt_noload = None;
        }
        let noload = match self.rtt_noload {
            Some(seen) if seen <= sample.rtt => seen,
            _ => {
                self.rtt_noload = Some(sample.rtt);
                sample.rtt
            }
        };
        let step = limit.max(1.0).log10().max(1.0);
        if sample.dropped {
            return limit - step;
        }
        // A window that used under half the limit says nothing about a larger one.
        if f64::from(sample.in_flight) * 2.0 < limit || sample.rtt.is_zero() {
            return limit;
        }
        let queue = limit * (1.0 - noload.as_secs_f64() / sample.rtt.as_secs_f64());
        let alpha = 3.0 * step;
        let beta = 6.0 * step;
        if queue <= step {
            limit + beta
        } else if queue < alpha {
            limit + step
        } else if queue > beta {
            limit - step
        } else {
            limit
        }
    }
}

/// Gradient of round trips: `gradient = clamp(1.5 · long_rtt / short_rtt, 0.5, 1.0)`, and
/// the limit moves `smoothing` of the way to `limit · gradient + queue_size`. The long round
/// trip is an exponentially weighted mean over `long_window` windows; a drop counts as the
/// smallest gradient.
///
/// Because the long round trip follows a dependency that got slower for good, a load that
/// only ever shows as latency lets the limit creep up as the long mean catches up; Gradient2
/// settles where overload ends in failures or timeouts. Where latency is the only signal,
/// prefer [`Vegas`].
///
/// ```
/// use fusebox_policy::policy::Gradient2;
/// let g = Gradient2::new().smoothing(0.1).queue_size(2.0).long_window(100);
/// assert_ne!(g, Gradient2::new());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gradient2 {
    smoothing: f64,
    queue_size: f64,
    tolerance: f64,
    long_window: u32,
    long_rtt: Option<f64>,
}

impl Default for Gradient2 {
    fn default() -> Self {
        Self::new()
    }
}

impl Gradient2 {
    /// Defaults: smoothing 0.2, queue 4, tolerance 1.5, long window 100 windows.
    ///
    /// ```
    /// use fusebox_policy::policy::Gradient2;
    /// assert_eq!(Gradient2::new(), Gradient2::default());
    /// ```
    pub fn new() -> Self {
        Self {
            smoothing: 0.2,
            queue_size: 4.0,
            tolerance: 1.5,
            long_window: 100,
            long_rtt: None,
        }
    }
    /// How far the limit moves toward its target each window, in `(0, 1]`.
    ///
    /// ```
    /// use fusebox_policy::policy::Gradient2;
    /// let _ = Gradient2::new().smoothing(0.5);
    /// ```
    pub fn smoothing(mut self, smoothing: f64) -> Self {
        self.smoothing = smoothing;
        self
    }
    /// Calls allowed to queue above what the gradient admits.
    ///
    /// ```
    /// use fusebox_policy::policy::Gradient2;
    /// let _ = Gradient2::new().queue_size(8.0);
    /// ```
    pub fn queue_size(mut self, queue: f64) -> Self {
        self.queue_size = queue;
        self
    }
    /// Windows the long round trip averages over.
    ///
    /// ```
    /// use fusebox_policy::policy::Gradient2;
    /// let _ = Gradient2::new().long_window(600);
    /// ```
    pub fn long_window(mut self, windows: u32) -> Self {
        self.long_window = windows;
        self
    }

    fn next(&mut self, limit: f64, sample: &LimitSample) -> f64 {
        let short = sample.rtt.as_secs_f64();
        let long = match self.long_rtt {
            None => short,
            Some(long) => {
                let weight = 2.0 / (f64::from(self.long_window) + 1.0);
                let mut long = long + (short - long) * weight;
                // After an overload the long round trip is far above the short one; pull it
                // down quickly so the limit can grow again.
                if long / short > 2.0 {
                    long *= 0.95;
                }
                long
            }
        };
        if long.is_finite() && long > 0.0 {
            self.long_rtt = Some(long);
        }
        let gradient = if sample.dropped {
            0.5
        } else {
            if f64::from(sample.in_flight) * 2.0 < limit || short <= 0.0 {
                return limit;
            }
            (self.tolerance * long / short).clamp(0.5, 1.0)
        };
        let target = limit * gradient + self.queue_size;
        limit * (1.0 - self.smoothing) + target * self.smoothing
    }
}

/// Which algorithm moves an adaptive limit.
///
/// ```
/// use fusebox_policy::policy::{Aimd, LimitAlgorithm};
/// let algorithm = LimitAlgorithm::from(Aimd::new());
/// assert!(matches!(algorithm, LimitAlgorithm::Aimd(_)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LimitAlgorithm {
    /// See [`Aimd`].
    Aimd(Aimd),
    /// See [`Vegas`].
    Vegas(Vegas),
    /// See [`Gradient2`].
    Gradient2(Gradient2),
}

impl From<Aimd> for LimitAlgorithm {
    fn from(a: Aimd) -> Self {
        Self::Aimd(a)
    }
}
impl From<Vegas> for LimitAlgorithm {
    fn from(a: Vegas) -> Self {
        Self::Vegas(a)
    }
}
impl From<Gradient2> for LimitAlgorithm {
    fn from(a: Gradient2) -> Self {
        Self::Gradient2(a)
    }
}

impl LimitAlgorithm {
    /// The limit after a window that looked like `sample`, before clamping.
    ///
    /// ```
    /// use fusebox_policy::policy::{Aimd, LimitAlgorithm, LimitSample};
    /// use std::time::Duration;
    /// let mut aimd = LimitAlgorithm::from(Aimd::new());
    /// let ms = Duration::from_millis(10);
    /// let dropped = LimitSample { rtt: ms, in_flight: 10, dropped: true };
    /// assert_eq!(aimd.next_limit(10.0, &dropped), 9.0);
    /// ```
    pub fn next_limit(&mut self, limit: f64, sample: &LimitSample) -> f64 {
        match self {
            Self::Aimd(a) => a.next(limit, sample),
            Self::Vegas(v) => v.next(limit, sample),
            Self::Gradient2(g) => g.next(limit, sample),
        }
    }

    /// The field a setting is out of range in, if any.
    pub(crate) fn invalid_field(&self) -> Option<(&'static str, &'static str)> {
        let bad = |x: f64, lo: f64, hi: f64| !(x > lo && x <= hi);
        match self {
            Self::Aimd(a) if bad(a.backoff_ratio, 0.0, 1.0) || a.backoff_ratio >= 1.0 => {
                Some(("backoff_ratio", "must be between 0 and 1 (exclusive)"))
            }
            Self::Aimd(a) if a.timeout.is_zero() => Some(("timeout", "must be longer than zero")),
            Self::Gradient2(g) if bad(g.smoothing, 0.0, 1.0) => {
                Some(("smoothing", "must be in (0, 1]"))
            }
            Self::Gradient2(g) if !(g.queue_size.is_finite() && g.queue_size >= 0.0) => {
                Some(("queue_size", "must be a finite number, zero or more"))
            }
            Self::Gradient2(g) if g.long_window == 0 => {
                Some(("long_window", "must be at least 1, got 0"))
            }
            _ => None,
        }
    }
}

/// An adaptive limit as a pure state machine: record each call's round trip, and once a
/// window is complete (`window` long and at least `min_samples` calls) the algorithm moves
/// the limit, kept within `[min, max]`. Time is passed in, so tests drive it directly.
///
/// ```
/// use fusebox_policy::policy::{AdaptiveLimit, Aimd};
/// use std::time::Duration;
/// let ms = Duration::from_millis;
/// let mut limit = AdaptiveLimit::new(Aimd::new().into(), 1, 100, 10, ms(100), 1);
/// // One window used the whole limit: +1.
/// assert_eq!(limit.record(ms(0), ms(5), 10, false), None);
/// assert_eq!(limit.record(ms(100), ms(5), 10, false), Some(11));
/// // A drop: × 0.9, and the limit in force is rounded down (9.9 → 9).
/// limit.record(ms(150), ms(5), 11, true);
/// assert_eq!(limit.record(ms(200), ms(5), 11, false), Some(9));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptiveLimit {
    algorithm: LimitAlgorithm,
    min: f64,
    max: f64,
    limit: f64,
    window: Duration,
    min_samples: u32,
    window_start: Option<Duration>,
    samples: u32,
    rtt_sum: Duration,
    max_in_flight: u32,
    dropped: bool,
}

impl AdaptiveLimit {
    /// A limit starting at `initial`, moved once per `window` with `min_samples` or more
    /// calls. Bounds are taken as given: the builder validates them; here `min` is raised to
    /// 1 and `max` to `min`, and `initial` clamped, so no input can break the invariant.
    ///
    /// ```
    /// use fusebox_policy::policy::{AdaptiveLimit, Vegas};
    /// use std::time::Duration;
    /// let limit = AdaptiveLimit::new(Vegas::new().into(), 5, 50, 500, Duration::from_secs(1), 10);
    /// assert_eq!(limit.limit(), 50);
    /// ```
    pub fn new(
        algorithm: LimitAlgorithm,
        min: u32,
        max: u32,
        initial: u32,
        window: Duration,
        min_samples: u32,
    ) -> Self {
        let min = f64::from(min.max(1));
        let max = f64::from(max).max(min);
        Self {
            algorithm,
            min,
            max,
            limit: f64::from(initial).clamp(min, max),
            window,
            min_samples,
            window_start: None,
            samples: 0,
            rtt_sum: Duration::ZERO,
            max_in_flight: 0,
            dropped: false,
        }
    }

    /// The limit now, rounded down (and never below `min`).
    ///
    /// ```
    /// use fusebox_policy::policy::{AdaptiveLimit, Aimd};
    /// use std::time::Duration;
    /// assert_eq!(AdaptiveLimit::new(Aimd::new().into(), 2, 8, 4, Duration::from_secs(1), 1).limit(), 4);
    /// ```
    pub fn limit(&self) -> u32 {
        // `limit` is finite and within [min, max] ⊆ [1, u32::MAX], so the cast is exact.
        self.limit.floor() as u32
    }

    /// Records a call that took `rtt`, started with `in_flight` calls in flight (itself
    /// included) and failed or not (`dropped`), at time `now`. Returns the new limit when
    /// this call completed a window.
    ///
    /// ```
    /// use fusebox_policy::policy::{AdaptiveLimit, Gradient2};
    /// use std::time::Duration;
    /// let ms = Duration::from_millis;
    /// let mut limit = AdaptiveLimit::new(Gradient2::new().into(), 1, 100, 20, ms(10), 2);
    /// assert_eq!(limit.record(ms(0), ms(5), 20, false), None);
    /// assert_eq!(limit.record(ms(20), ms(5), 20, false), Some(20)); // 20·0.8 + (20 + 4)·0.2
    /// ```
    pub fn record(
        &mut self,
        now: Duration,
        rtt: Duration,
        in_flight: u32,
        dropped: bool,
    ) -> Option<u32> {
        let start = *self.window_start.get_or_insert(now);
        self.samples = self.samples.saturating_add(1);
        self.rtt_sum = self.rtt_sum.saturating_add(rtt);
        self.max_in_flight = self.max_in_flight.max(in_flight);
        self.dropped |= dropped;
        if now.saturating_sub(start) < self.window || self.samples < self.min_samples {
            return None;
        }
        let sample = LimitSample {
            rtt: self.rtt_sum / self.samples.max(1),
            in_flight: self.max_in_flight,
            dropped: self.dropped,
        };
        self.window_start = Some(now);
        self.samples = 0;
        self.rtt_sum = Duration::ZERO;
        self.max_in_flight = 0;
        self.dropped = false;
        let next = self.algorithm.next_limit(self.limit, &sample);
        if next.is_finite() {
            self.limit = next.clamp(self.min, self.max);
        }
        Some(self.limit())
    }
}
