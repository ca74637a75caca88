//! Time sources. The sans-IO core never reads a clock: time is passed in as nanoseconds
//! since an arbitrary, fixed origin. The concurrent shell reads one of these clocks.
//!
//! * [`MonotonicClock`]: the default. On Linux it reads `CLOCK_MONOTONIC_COARSE` (a few ns,
//!   resolution of one kernel tick, 1 to 4 ms); elsewhere it falls back to [`PreciseClock`].
//! * [`PreciseClock`]: `std::time::Instant`, nanosecond resolution, ~20-40 ns per read on VMs.
//! * [`ManualClock`]: moved by hand, for deterministic tests.
//! * [`UnixClock`]: monotonic, but counting from the Unix epoch, for calendar windows.
//! * `TokioClock`, in fusebox-policy: follows `tokio::time`, so `tokio::time::pause` drives it.

use std::fmt;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic source of time, in nanoseconds since an origin fixed for the clock's lifetime.
///
/// Implement it to plug in your own time source; it must never go backwards.
///
/// ```
/// use fusebox_core::clock::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// clock.advance(Duration::from_millis(5));
/// assert_eq!(clock.now_nanos(), 5_000_000);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Nanoseconds since this clock's origin.
    ///
    /// ```
    /// use fusebox_core::clock::{Clock, ManualClock};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let before = clock.now_nanos();
    /// clock.advance(Duration::from_micros(3));
    /// assert_eq!(clock.now_nanos() - before, 3_000);
    /// ```
    fn now_nanos(&self) -> u64;
}

fn process_origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn duration_to_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The precise system clock: `std::time::Instant` measured from a process-wide origin.
///
/// ```
/// use fusebox_core::clock::{Clock, PreciseClock};
/// let a = PreciseClock.now_nanos();
/// let b = PreciseClock.now_nanos();
/// assert!(b >= a);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PreciseClock;

impl Clock for PreciseClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        duration_to_nanos(process_origin().elapsed())
    }
}

/// The default clock: cheap to read, monotonic, millisecond-grade resolution on Linux.
///
/// Circuit breakers compare times against cooldowns and windows of seconds, so a clock that
/// costs a few nanoseconds matters more than one with nanosecond resolution. Use
/// [`PreciseClock`] when slow-call thresholds are below ~50 ms (the breaker builder does this
/// by itself when no clock was chosen).
///
/// Where a millisecond of staleness is harmless (is an OPEN breaker's cooldown over? which
/// bucket of a time-based window does an outcome go in?), breakers on this clock read a
/// process-wide copy of it that one background thread, started on first use, refreshes about
/// every millisecond: a load instead of a clock read. That copy never runs ahead of the
/// clock, so a cooldown never ends early; it may be noticed a tick late.
///
/// ```
/// use fusebox_core::clock::{Clock, MonotonicClock};
/// let a = MonotonicClock.now_nanos();
/// assert!(MonotonicClock.now_nanos() >= a);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

impl MonotonicClock {
    /// The resolution of this clock on this platform.
    ///
    /// ```
    /// use fusebox_core::clock::MonotonicClock;
    /// assert!(MonotonicClock::resolution() <= std::time::Duration::from_millis(20));
    /// ```
    pub fn resolution() -> Duration {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let ts = rustix::time::clock_getres(rustix::time::ClockId::MonotonicCoarse);
            if let (Ok(secs), Ok(nanos)) = (u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
                return Duration::new(secs, nanos);
            }
        }
        Duration::from_nanos(1)
    }
}

impl Clock for MonotonicClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // Through libc (rustix's libc backend), which reads the vDSO: no system call, a
            // few nanoseconds, and safe under valgrind, whose mappings rustix's own vDSO
            // lookup cannot parse.
            let ts = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
            (ts.tv_sec as u64)
                .wrapping_mul(1_000_000_000)
                .wrapping_add(ts.tv_nsec as u64)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            PreciseClock.now_nanos()
        }
    }
}

/// Monotonic time counted from the Unix epoch (1970-01-01 00:00 UTC): the system clock is read
/// once, when the clock is made, and the monotonic clock advances it from there.
///
/// Calendar windows (an hour or a day in UTC) need to know where hours begin, which a clock
/// with an arbitrary origin cannot tell. Reading the wall clock on every call would let an NTP
/// step move time backwards; anchoring once keeps time monotonic at the price of not
/// following later corrections (a drift of at most the host clock's slew, a few seconds a day).
///
/// ```
/// use fusebox_core::clock::{Clock, UnixClock};
///
/// let clock = UnixClock::new();
/// let a = clock.now_nanos();
/// assert!(a > 1_600_000_000_000_000_000); // after September 2020
/// assert!(clock.now_nanos() >= a);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct UnixClock {
    unix_origin: u64,
    origin: Instant,
}

impl UnixClock {
    /// A clock anchored to the system's wall clock now. A wall clock set before 1970 counts
    /// from the epoch itself.
    ///
    /// ```
    /// use fusebox_core::clock::{Clock, UnixClock};
    /// assert!(UnixClock::new().now_nanos() > 0);
    /// ```
    pub fn new() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UnixClock {
            unix_origin: duration_to_nanos(since_epoch),
            origin: Instant::now(),
        }
    }
}

impl Default for UnixClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for UnixClock {
    fn now_nanos(&self) -> u64 {
        self.unix_origin
            .saturating_add(duration_to_nanos(self.origin.elapsed()))
    }
}

/// A clock moved only by hand. Clones share the same time.
///
/// ```
/// use fusebox_core::clock::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let shared = clock.clone();
/// shared.advance(Duration::from_secs(1));
/// assert_eq!(clock.now(), Duration::from_secs(1));
/// clock.set(Duration::from_secs(10));
/// assert_eq!(shared.now_nanos(), 10_000_000_000);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock at time zero.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use std::time::Duration;
    /// assert_eq!(ManualClock::new().now(), Duration::ZERO);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_millis(1500));
    /// clock.advance(Duration::from_millis(500));
    /// assert_eq!(clock.now(), Duration::from_secs(2));
    /// ```
    pub fn advance(&self, by: Duration) {
        self.nanos
            .fetch_add(duration_to_nanos(by), Ordering::SeqCst);
    }

    /// Sets the clock to `at` since its origin. Setting it backwards is allowed for tests of
    /// clock anomalies; fusebox treats a clock that went back as "no time passed".
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// clock.set(Duration::from_secs(60));
    /// assert_eq!(clock.now(), Duration::from_secs(60));
    /// clock.set(Duration::from_secs(59)); // backwards, to test a misbehaving clock
    /// assert_eq!(clock.now(), Duration::from_secs(59));
    /// ```
    pub fn set(&self, at: Duration) {
        self.nanos.store(duration_to_nanos(at), Ordering::SeqCst);
    }

    /// The current time since the origin.
    ///
    /// ```
    /// use fusebox_core::clock::{Clock, ManualClock};
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// clock.advance(Duration::from_millis(250));
    /// assert_eq!(clock.now(), Duration::from_millis(250));
    /// assert_eq!(clock.now().as_nanos(), u128::from(clock.now_nanos()));
    /// ```
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos())
    }
}

impl Clock for ManualClock {
    #[inline]
    fn now_nanos(&self) -> u64 {
        self.nanos.load(Ordering::SeqCst)
    }
}

/// The most recent [`MonotonicClock`] time, refreshed about every millisecond by one
/// background thread per process, started the first time it is needed; 0 before the first
/// tick.
// The recent time is kept by a thread of ours rather than quanta's upkeep: quanta's global
// clock calibrates for up to 200 ms on first use, which a breaker's first call would pay,
// and the coarse clock it would replace is already one vDSO read.
static RECENT_NANOS: AtomicU64 = AtomicU64::new(0);

/// Starts the refreshing thread once; `false` when the platform cannot spawn threads.
fn start_recent_ticker() -> bool {
    static STARTED: OnceLock<bool> = OnceLock::new();
    *STARTED.get_or_init(|| {
        #[cfg(loom)]
        {
            false
        }
        #[cfg(not(loom))]
        {
            std::thread::Builder::new()
                .name("fusebox-clock".into())
                .spawn(|| {
                    loop {
                        RECENT_NANOS.store(MonotonicClock.now_nanos(), Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
                .is_ok()
        }
    })
}

/// [`MonotonicClock`] time at most about a millisecond old, for a load instead of a clock
/// read. It is never ahead of the real time, so a deadline judged with it is never passed
/// early, only noticed up to one tick (or a scheduling delay) late.
#[inline]
pub(crate) fn recent_monotonic_nanos() -> u64 {
    let recent = RECENT_NANOS.load(Ordering::Relaxed);
    if recent != 0 {
        return recent;
    }
    recent_before_first_tick()
}

#[cold]
#[inline(never)]
fn recent_before_first_tick() -> u64 {
    start_recent_ticker();
    MonotonicClock.now_nanos()
}

/// The clock a breaker holds: the built-in clocks are matched statically, so the hot path
/// pays no indirect call for them.
#[derive(Debug, Clone)]
pub(crate) enum ClockHandle {
    Monotonic,
    Precise,
    Manual(ManualClock),
    Custom(Arc<dyn Clock>),
}

impl ClockHandle {
    #[inline]
    pub(crate) fn now_nanos(&self) -> u64 {
        match self {
            ClockHandle::Monotonic => MonotonicClock.now_nanos(),
            ClockHandle::Precise => PreciseClock.now_nanos(),
            ClockHandle::Manual(c) => c.now_nanos(),
            ClockHandle::Custom(c) => c.now_nanos(),
        }
    }

    /// The time where a millisecond of staleness is harmless (is a cooldown over? which
    /// bucket does this outcome go in?): a load from the process-wide recent time for the
    /// default clock, a real read for every other clock.
    #[inline]
    pub(crate) fn recent_nanos(&self) -> u64 {
        match self {
            ClockHandle::Monotonic => recent_monotonic_nanos(),
            other => other.now_nanos(),
        }
    }
}

/// Anything that can become the clock of a breaker or policy.
///
/// ```
/// use fusebox_core::clock::{IntoClock, ManualClock, PreciseClock};
/// fn takes(_c: impl IntoClock) {}
/// takes(ManualClock::new());
/// takes(PreciseClock);
/// ```
pub trait IntoClock {
    /// The clock as policies keep it.
    ///
    /// ```
    /// use fusebox_core::clock::{IntoClock, ManualClock};
    /// use std::time::Duration;
    /// let manual = ManualClock::new();
    /// let shared = manual.clone().into_handle();
    /// manual.advance(Duration::from_nanos(7));
    /// assert_eq!(shared.now_nanos(), 7);
    /// ```
    fn into_handle(self) -> SharedClock;
}

/// A clock as a policy keeps it: one of the built-in clocks, read without dynamic dispatch,
/// or any [`Clock`]. Cheap to clone; clones read the same time.
///
/// ```
/// use fusebox_core::clock::SharedClock;
/// let clock = SharedClock::default(); // the monotonic clock
/// assert!(clock.recent_nanos() <= clock.now_nanos());
/// ```
#[derive(Debug, Clone)]
pub struct SharedClock(pub(crate) ClockHandle);

impl SharedClock {
    /// The default [`MonotonicClock`].
    ///
    /// ```
    /// use fusebox_core::clock::SharedClock;
    /// let a = SharedClock::monotonic().now_nanos();
    /// assert!(SharedClock::monotonic().now_nanos() >= a);
    /// ```
    pub fn monotonic() -> Self {
        SharedClock(ClockHandle::Monotonic)
    }

    /// Nanoseconds since the clock's origin.
    ///
    /// ```
    /// use fusebox_core::clock::{IntoClock, ManualClock};
    /// assert_eq!(ManualClock::new().into_handle().now_nanos(), 0);
    /// ```
    #[inline]
    pub fn now_nanos(&self) -> u64 {
        self.0.now_nanos()
    }

    /// The time as of at most about a millisecond ago, never ahead of
    /// [`now_nanos`](Self::now_nanos): a load instead of a clock read for the monotonic clock, the exact
    /// time for any other.
    ///
    /// ```
    /// use fusebox_core::clock::SharedClock;
    /// let clock = SharedClock::monotonic();
    /// assert!(clock.recent_nanos() <= clock.now_nanos());
    /// ```
    #[inline]
    pub fn recent_nanos(&self) -> u64 {
        self.0.recent_nanos()
    }
}

impl Default for SharedClock {
    fn default() -> Self {
        Self::monotonic()
    }
}

impl IntoClock for MonotonicClock {
    fn into_handle(self) -> SharedClock {
        SharedClock(ClockHandle::Monotonic)
    }
}
impl IntoClock for PreciseClock {
    fn into_handle(self) -> SharedClock {
        SharedClock(ClockHandle::Precise)
    }
}
impl IntoClock for ManualClock {
    fn into_handle(self) -> SharedClock {
        SharedClock(ClockHandle::Manual(self))
    }
}
impl IntoClock for UnixClock {
    fn into_handle(self) -> SharedClock {
        SharedClock(ClockHandle::Custom(Arc::new(self)))
    }
}
impl IntoClock for Arc<dyn Clock> {
    fn into_handle(self) -> SharedClock {
        SharedClock(ClockHandle::Custom(self))
    }
}

pub(crate) fn nanos(d: Duration) -> u64 {
    duration_to_nanos(d)
}
