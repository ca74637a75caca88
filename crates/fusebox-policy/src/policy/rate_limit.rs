//! Rate limiter: a GCRA (generic cell rate algorithm) limit on how often calls may start,
//! global or per key, that either waits for a permit (for at most a bound) or refuses at once.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{NotUntil, Quota};

use fusebox_core::breaker::Name;
use fusebox_core::clock::{IntoClock, PreciseClock, SharedClock};
use fusebox_core::{ConfigError, Error, RateLimited};

/// Governor's view of a fusebox clock: nanoseconds since the clock's origin, so a
/// `ManualClock` or a `TokioClock` under paused time drives the limiter deterministically.
#[derive(Debug, Clone)]
struct LimiterClock(SharedClock);

impl GovernorClock for LimiterClock {
    type Instant = Nanos;

    #[inline]
    fn now(&self) -> Nanos {
        Nanos::from(self.0.now_nanos())
    }
}

/// What a limiter does with a call that finds no permit.
///
/// ```
/// use fusebox_policy::policy::{RateLimitMode, RateLimiter};
/// use std::time::Duration;
/// let limiter = RateLimiter::builder("api")
///     .per_second(10)
///     .mode(RateLimitMode::Wait { max_wait: Duration::from_millis(250) })
///     .build()?;
/// assert_eq!(limiter.mode(), RateLimitMode::Wait { max_wait: Duration::from_millis(250) });
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitMode {
    /// Refuse at once with [`Error::RateLimited`] (the default).
    #[default]
    Reject,
    /// Sleep until a permit is free if that is at most `max_wait` away; refuse otherwise
    /// (without sleeping, since waiting would not help).
    Wait {
        /// The longest a call may wait for its permit.
        max_wait: Duration,
    },
}

type LimitedListener = Arc<dyn Fn(&RateLimited) + Send + Sync>;
type WaitListener = Arc<dyn Fn(Duration) + Send + Sync>;

/// Listeners told of refusals and waits.
#[derive(Clone, Default)]
struct Listeners {
    on_limited: Vec<LimitedListener>,
    on_wait: Vec<WaitListener>,
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on_limited, {} on_wait",
            self.on_limited.len(),
            self.on_wait.len()
        )
    }
}

/// The validated settings both limiter kinds share.
#[derive(Debug)]
struct Settings {
    name: Name,
    quota: Quota,
    mode: RateLimitMode,
    clock: LimiterClock,
    listeners: Listeners,
}

impl Settings {
    /// Turns governor's answer into a permit (after a wait, in wait mode) or a refusal.
    async fn admit(
        &self,
        mut check: impl FnMut() -> Result<(), NotUntil<Nanos>>,
        name: impl FnOnce() -> Name,
    ) -> Result<(), RateLimited> {
        let refusal = match check() {
            Ok(()) => return Ok(()),
            Err(not_until) => not_until,
        };
        let mut retry_after = refusal.wait_time_from(self.clock.now());
        if let RateLimitMode::Wait { max_wait } = self.mode {
            let mut waited = Duration::ZERO;
            // Another caller may take the permit we waited for, so check again and keep
            // waiting while the total stays within the bound.
            while waited + retry_after <= max_wait {
                for listener in &self.listeners.on_wait {
                    listener(retry_after);
                }
                tracing::debug!(rate_limiter = %self.name, ?retry_after, "waiting for a permit");
                tokio::time::sleep(retry_after).await;
                waited += retry_after;
                match check() {
                    Ok(()) => return Ok(()),
                    Err(not_until) => retry_after = not_until.wait_time_from(self.clock.now()),
                }
                if retry_after.is_zero() {
                    // A clock that does not follow tokio's timers has not moved: waiting
                    // longer would spin, so refuse.
                    break;
                }
            }
        }
        let limited = RateLimited {
            name: name(),
            retry_after,
        };
        tracing::debug!(rate_limiter = %self.name, ?retry_after, "rate limited");
        for listener in &self.listeners.on_limited {
            listener(&limited);
        }
        Err(limited)
    }
}

/// Builds a [`RateLimiter`] or a [`KeyedRateLimiter`].
///
/// ```
/// use fusebox_policy::policy::RateLimiter;
/// use std::time::Duration;
/// let limiter = RateLimiter::builder("search")
///     .quota(100, Duration::from_secs(60))
///     .burst(10)
///     .build()?;
/// assert_eq!(limiter.burst(), 10);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct RateLimiterBuilder {
    name: Name,
    permits: u64,
    period: Duration,
    burst: Option<u64>,
    mode: RateLimitMode,
    clock: Option<SharedClock>,
    listeners: Listeners,
}

impl RateLimiterBuilder {
    /// Allows `n` calls a second (the default is 1), bursting up to `n` at once.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("a").per_second(5).build()?;
    /// assert_eq!(limiter.burst(), 5);
    /// let err = RateLimiter::builder("a").per_second(0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("permits"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn per_second(self, n: u64) -> Self {
        self.quota(n, Duration::from_secs(1))
    }

    /// Allows `permits` calls every `per`, one freed every `per / permits`, bursting up to
    /// `permits` at once unless [`burst`](Self::burst) says otherwise.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// use std::time::Duration;
    /// let limiter = RateLimiter::builder("a").quota(3, Duration::from_millis(300)).build()?;
    /// assert_eq!(limiter.interval(), Duration::from_millis(100));
    /// let err = RateLimiter::builder("a").quota(3, Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.field(), Some("per"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn quota(mut self, permits: u64, per: Duration) -> Self {
        self.permits = permits;
        self.period = per;
        self
    }

    /// Calls allowed at once after a quiet spell (default: the quota's permits).
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("a").per_second(10).burst(1).build()?;
    /// assert_eq!(limiter.burst(), 1);
    /// let err = RateLimiter::builder("a").burst(0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("burst"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn burst(mut self, n: u64) -> Self {
        self.burst = Some(n);
        self
    }

    /// What to do with a call that finds no permit (default: refuse at once).
    ///
    /// ```
    /// use fusebox_policy::policy::{RateLimitMode, RateLimiter};
    /// let limiter = RateLimiter::builder("a").mode(RateLimitMode::Reject).build()?;
    /// assert_eq!(limiter.mode(), RateLimitMode::Reject);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn mode(mut self, mode: RateLimitMode) -> Self {
        self.mode = mode;
        self
    }

    /// Waits for a permit for at most `max_wait`, then refuses: shorthand for
    /// [`mode`](Self::mode)`(RateLimitMode::Wait { max_wait })`.
    ///
    /// ```
    /// use fusebox_policy::policy::{RateLimitMode, RateLimiter};
    /// use std::time::Duration;
    /// let limiter = RateLimiter::builder("a").max_wait(Duration::from_secs(1)).build()?;
    /// assert_eq!(limiter.mode(), RateLimitMode::Wait { max_wait: Duration::from_secs(1) });
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_wait(self, max_wait: Duration) -> Self {
        self.mode(RateLimitMode::Wait { max_wait })
    }

    /// The clock permits are counted on (default: [`PreciseClock`], the exact monotonic time). Waits sleep on
    /// tokio's timers, so a limiter that waits should run on a clock that follows them
    /// ([`TokioClock`](crate::TokioClock)) when tests pause time.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_policy::policy::RateLimiter;
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let limiter = RateLimiter::builder("a").per_second(1).clock(clock.clone()).build()?;
    /// assert!(limiter.try_acquire().is_ok());
    /// assert!(limiter.try_acquire().is_err());
    /// clock.advance(Duration::from_secs(1));
    /// assert!(limiter.try_acquire().is_ok());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clock(mut self, clock: impl IntoClock) -> Self {
        self.clock = Some(clock.into_handle());
        self
    }

    /// Calls `f` with every refusal, for alerts and metrics.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// # use std::sync::atomic::{AtomicU32, Ordering};
    /// # use std::sync::Arc;
    /// let refused = Arc::new(AtomicU32::new(0));
    /// let count = refused.clone();
    /// let limiter = RateLimiter::builder("a")
    ///     .per_second(1)
    ///     .on_limited(move |_| {
    ///         count.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build()?;
    /// let _ = limiter.try_acquire();
    /// let _ = limiter.try_acquire();
    /// assert_eq!(refused.load(Ordering::Relaxed), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_limited(mut self, f: impl Fn(&RateLimited) + Send + Sync + 'static) -> Self {
        self.listeners.on_limited.push(Arc::new(f));
        self
    }

    /// Calls `f` with the expected wait each time a call in wait mode starts to sleep.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::{TokioClock, policy::RateLimiter};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// let waits = Arc::new(Mutex::new(Vec::new()));
    /// let seen = waits.clone();
    /// let limiter = RateLimiter::builder("a")
    ///     .per_second(10)
    ///     .burst(1)
    ///     .max_wait(Duration::from_secs(1))
    ///     .clock(TokioClock::new())
    ///     .on_wait(move |d| seen.lock().unwrap().push(d))
    ///     .build()?;
    /// limiter.acquire().await.unwrap();
    /// limiter.acquire().await.unwrap();
    /// assert_eq!(*waits.lock().unwrap(), [Duration::from_millis(100)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_wait(mut self, f: impl Fn(Duration) + Send + Sync + 'static) -> Self {
        self.listeners.on_wait.push(Arc::new(f));
        self
    }

    /// The limiter's name, for hooks that label by it rather than by a refusal's key.
    #[cfg(feature = "metrics")]
    pub(crate) fn limiter_name(&self) -> Name {
        self.name.clone()
    }

    /// Validates the settings.
    fn settings(self) -> Result<Settings, ConfigError> {
        let permits = nonzero_u32("permits", self.permits)?;
        let period = fusebox_core::check::nonzero_duration("per", self.period)?;
        let burst = match self.burst {
            Some(b) => nonzero_u32("burst", b)?,
            None => permits,
        };
        // One permit every period / permits; nanosecond precision, at least one nanosecond.
        let interval = period / permits.get();
        let quota = Quota::with_period(interval)
            .ok_or_else(|| ConfigError::invalid("per", "is too short for that many permits"))?
            .allow_burst(burst);
        if let RateLimitMode::Wait { max_wait } = self.mode {
            // Durations past what a tokio timer can hold (about two years) are refused
            // rather than wrapped.
            if max_wait > Duration::from_secs(365 * 24 * 3600) {
                return Err(ConfigError::invalid("max_wait", "must be at most a year"));
            }
        }
        Ok(Settings {
            name: self.name,
            quota,
            mode: self.mode,
            // Not the coarse monotonic clock breakers default to: its millisecond steps would
            // release permits in clumps and round every `retry_after`.
            clock: LimiterClock(self.clock.unwrap_or_else(|| PreciseClock.into_handle())),
            listeners: self.listeners,
        })
    }

    /// Builds a limiter all calls share.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("a").per_second(2).build()?;
    /// assert_eq!(limiter.name(), "a");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<RateLimiter, ConfigError> {
        let settings = self.settings()?;
        let gcra = governor::RateLimiter::new(
            settings.quota,
            InMemoryState::default(),
            settings.clock.clone(),
        );
        Ok(RateLimiter {
            inner: Arc::new(DirectInner { settings, gcra }),
        })
    }

    /// Builds a limiter with a separate quota for each key (a tenant, a host...).
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("tenants").per_second(1).build_keyed::<String>()?;
    /// assert!(limiter.try_acquire(&"acme".to_string()).is_ok());
    /// assert!(limiter.try_acquire(&"acme".to_string()).is_err());
    /// assert!(limiter.try_acquire(&"initech".to_string()).is_ok());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build_keyed<K>(self) -> Result<KeyedRateLimiter<K>, ConfigError>
    where
        K: Hash + Eq + Clone + fmt::Display,
    {
        let settings = self.settings()?;
        let gcra = governor::RateLimiter::new(
            settings.quota,
            HashMapStateStore::default(),
            settings.clock.clone(),
        );
        Ok(KeyedRateLimiter {
            inner: Arc::new(KeyedInner { settings, gcra }),
        })
    }
}

fn nonzero_u32(field: &'static str, n: u64) -> Result<NonZeroU32, ConfigError> {
    let n = u32::try_from(n)
        .map_err(|_| ConfigError::invalid(field, "must fit in 32 bits (at most 4294967295)"))?;
    NonZeroU32::new(n).ok_or_else(|| ConfigError::invalid(field, "must be at least 1"))
}

type DirectGcra =
    governor::RateLimiter<NotKeyed, InMemoryState, LimiterClock, NoOpMiddleware<Nanos>>;

#[derive(Debug)]
struct DirectInner {
    settings: Settings,
    gcra: DirectGcra,
}

/// Limits how often calls may start, all callers sharing one quota: a call finds a permit,
/// waits for one (in [`RateLimitMode::Wait`], up to a bound) or is refused with
/// [`Error::RateLimited`], which says when to retry. Clones share the quota.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_policy::policy::RateLimiter;
/// let limiter = RateLimiter::builder("geocoder").per_second(2).build()?;
/// assert_eq!(limiter.call(|| async { Ok::<_, ()>(1) }).await.unwrap(), 1);
/// assert_eq!(limiter.call(|| async { Ok::<_, ()>(2) }).await.unwrap(), 2);
/// let refused = limiter.call(|| async { Ok::<_, ()>(3) }).await.unwrap_err();
/// assert_eq!(refused.stopped_by(), Some("rate_limit"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RateLimiter {
    inner: Arc<DirectInner>,
}

impl RateLimiter {
    /// A builder for a limiter called `name` (one call a second until told otherwise).
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("a").build()?;
    /// assert_eq!(limiter.burst(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder(name: impl Into<Name>) -> RateLimiterBuilder {
        RateLimiterBuilder {
            name: name.into(),
            permits: 1,
            period: Duration::from_secs(1),
            burst: None,
            mode: RateLimitMode::Reject,
            clock: None,
            listeners: Listeners::default(),
        }
    }

    /// The limiter's name.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// assert_eq!(RateLimiter::builder("maps").build()?.name(), "maps");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &str {
        self.inner.settings.name.as_ref()
    }

    /// Calls allowed at once after a quiet spell.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// assert_eq!(RateLimiter::builder("a").per_second(4).build()?.burst(), 4);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn burst(&self) -> u32 {
        self.inner.settings.quota.burst_size().get()
    }

    /// The time it takes to free one permit.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// use std::time::Duration;
    /// let limiter = RateLimiter::builder("a").per_second(4).build()?;
    /// assert_eq!(limiter.interval(), Duration::from_millis(250));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn interval(&self) -> Duration {
        self.inner.settings.quota.replenish_interval()
    }

    /// What a call that finds no permit does.
    ///
    /// ```
    /// use fusebox_policy::policy::{RateLimitMode, RateLimiter};
    /// assert_eq!(RateLimiter::builder("a").build()?.mode(), RateLimitMode::Reject);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn mode(&self) -> RateLimitMode {
        self.inner.settings.mode
    }

    /// Takes a permit if one is free now, whatever the mode; refuses otherwise.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("a").per_second(1).build()?;
    /// assert!(limiter.try_acquire().is_ok());
    /// let refused = limiter.try_acquire().unwrap_err();
    /// assert!(refused.retry_after.as_millis() > 900);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn try_acquire(&self) -> Result<(), RateLimited> {
        let inner = &*self.inner;
        match inner.gcra.check() {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let limited = RateLimited {
                    name: inner.settings.name.clone(),
                    retry_after: not_until.wait_time_from(inner.settings.clock.now()),
                };
                for listener in &inner.settings.listeners.on_limited {
                    listener(&limited);
                }
                Err(limited)
            }
        }
    }

    /// Takes a permit if one is free now and tells nobody when none is: for a caller that
    /// goes on to [`acquire`](Self::acquire) (a call that waits is not refused yet).
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("a").per_second(1).build()?;
    /// assert!(limiter.take_free_permit());
    /// assert!(!limiter.take_free_permit());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[inline]
    pub fn take_free_permit(&self) -> bool {
        self.inner.gcra.check().is_ok()
    }

    /// Like [`acquire`](Self::acquire), owning a handle to the limiter: the future is
    /// `'static`, for a service's response future or a spawned task.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("a").per_second(1).build()?;
    /// tokio::spawn(limiter.acquire_owned()).await??;
    /// assert!(tokio::spawn(limiter.acquire_owned()).await?.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire_owned(&self) -> impl Future<Output = Result<(), RateLimited>> + Send + 'static {
        let this = self.clone();
        async move { this.acquire().await }
    }

    /// Takes a permit as the mode says: at once, or after a bounded wait.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::{TokioClock, policy::RateLimiter};
    /// use std::time::Duration;
    /// let limiter = RateLimiter::builder("a")
    ///     .per_second(1)
    ///     .max_wait(Duration::from_secs(2))
    ///     .clock(TokioClock::new())
    ///     .build()?;
    /// let start = tokio::time::Instant::now();
    /// limiter.acquire().await.unwrap();
    /// limiter.acquire().await.unwrap(); // waits a second for the next permit
    /// assert_eq!(start.elapsed(), Duration::from_secs(1));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire(&self) -> Result<(), RateLimited> {
        let inner = &*self.inner;
        inner
            .settings
            .admit(|| inner.gcra.check(), || inner.settings.name.clone())
            .await
    }

    /// Runs `op` once it has a permit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::Error;
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("a").per_second(1).build()?;
    /// assert!(matches!(limiter.call(|| async { Err::<(), _>("bad") }).await, Err(Error::Inner("bad"))));
    /// assert!(matches!(limiter.call(|| async { Ok::<_, ()>(()) }).await, Err(Error::RateLimited(_))));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, op: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.around(|| async { op().await.map_err(Error::Inner) })
            .await
    }

    #[inline]
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn around<F, Fut, T, E>(&self, inner: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        async move {
            // A free permit is taken without awaiting; only a call that must wait pays for
            // the boxed wait state, so the common future stays small.
            match self.inner.gcra.check() {
                Ok(()) => {}
                Err(_) => {
                    if let Err(limited) = Box::pin(self.acquire()).await {
                        return Err(Error::RateLimited(limited));
                    }
                }
            }
            inner().await
        }
    }
}

impl<T, E> crate::stack::Policy<T, E> for RateLimiter {
    #[inline(always)]
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        self.around(attempt)
    }
}

type KeyedGcra<K> =
    governor::RateLimiter<K, HashMapStateStore<K>, LimiterClock, NoOpMiddleware<Nanos>>;

struct KeyedInner<K: Hash + Eq + Clone> {
    settings: Settings,
    gcra: KeyedGcra<K>,
}

/// A rate limiter with a quota of its own for each key: one tenant, host or user using up
/// its permits leaves the others theirs. Refusals name the key, as `limiter/key`. Clones
/// share the quotas.
///
/// Keys are remembered until [`forget_idle`](Self::forget_idle) drops those whose quota is
/// full again; call it now and then where keys come from outside.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_policy::policy::RateLimiter;
/// let limiter = RateLimiter::builder("tenants").per_second(1).build_keyed::<&str>()?;
/// assert!(limiter.call(&"acme", || async { Ok::<_, ()>(()) }).await.is_ok());
/// let refused = limiter.call(&"acme", || async { Ok::<_, ()>(()) }).await.unwrap_err();
/// assert_eq!(refused.stopped_by(), Some("rate_limit"));
/// assert!(limiter.call(&"initech", || async { Ok::<_, ()>(()) }).await.is_ok());
/// # Ok(())
/// # }
/// ```
pub struct KeyedRateLimiter<K: Hash + Eq + Clone> {
    inner: Arc<KeyedInner<K>>,
}

impl<K: Hash + Eq + Clone> Clone for KeyedRateLimiter<K> {
    fn clone(&self) -> Self {
        KeyedRateLimiter {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: Hash + Eq + Clone> fmt::Debug for KeyedRateLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedRateLimiter")
            .field("settings", &self.inner.settings)
            .field("keys", &self.inner.gcra.len())
            .finish()
    }
}

impl<K: Hash + Eq + Clone + fmt::Display> KeyedRateLimiter<K> {
    /// The limiter's name.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// assert_eq!(RateLimiter::builder("t").build_keyed::<u32>()?.name(), "t");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &str {
        self.inner.settings.name.as_ref()
    }

    /// What a call that finds no permit for its key does.
    ///
    /// ```
    /// use fusebox_policy::policy::{RateLimitMode, RateLimiter};
    /// assert_eq!(RateLimiter::builder("t").build_keyed::<u8>()?.mode(), RateLimitMode::Reject);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn mode(&self) -> RateLimitMode {
        self.inner.settings.mode
    }

    fn refusal_name(&self, key: &K) -> Name {
        Name::from(format!("{}/{key}", self.inner.settings.name))
    }

    /// Takes a permit for `key` if one is free now; refuses otherwise.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("t").per_second(1).build_keyed::<u32>()?;
    /// assert!(limiter.try_acquire(&7).is_ok());
    /// assert_eq!(limiter.try_acquire(&7).unwrap_err().name, "t/7");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn try_acquire(&self, key: &K) -> Result<(), RateLimited> {
        let inner = &*self.inner;
        match inner.gcra.check_key(key) {
            Ok(()) => Ok(()),
            Err(not_until) => {
                let limited = RateLimited {
                    name: self.refusal_name(key),
                    retry_after: not_until.wait_time_from(inner.settings.clock.now()),
                };
                for listener in &inner.settings.listeners.on_limited {
                    listener(&limited);
                }
                Err(limited)
            }
        }
    }

    /// Takes a permit for `key` as the mode says: at once, or after a bounded wait.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::{TokioClock, policy::RateLimiter};
    /// use std::time::Duration;
    /// let limiter = RateLimiter::builder("t")
    ///     .per_second(2)
    ///     .burst(1)
    ///     .max_wait(Duration::from_secs(1))
    ///     .clock(TokioClock::new())
    ///     .build_keyed::<u8>()?;
    /// limiter.acquire(&1).await.unwrap();
    /// limiter.acquire(&1).await.unwrap(); // waits half a second
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire(&self, key: &K) -> Result<(), RateLimited> {
        let inner = &*self.inner;
        inner
            .settings
            .admit(|| inner.gcra.check_key(key), || self.refusal_name(key))
            .await
    }

    /// Takes a permit for `key` if one is free now and tells nobody when none is: for a
    /// caller that goes on to [`acquire`](Self::acquire).
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("t").per_second(1).build_keyed::<u8>()?;
    /// assert!(limiter.take_free_permit(&1));
    /// assert!(!limiter.take_free_permit(&1));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[inline]
    pub fn take_free_permit(&self, key: &K) -> bool {
        self.inner.gcra.check_key(key).is_ok()
    }

    /// Like [`acquire`](Self::acquire), owning the key and a handle to the limiter: the
    /// future is `'static`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("t").per_second(1).build_keyed::<u8>()?;
    /// tokio::spawn(limiter.acquire_owned(3)).await??;
    /// assert!(tokio::spawn(limiter.acquire_owned(3)).await?.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn acquire_owned(
        &self,
        key: K,
    ) -> impl Future<Output = Result<(), RateLimited>> + Send + 'static
    where
        K: Send + Sync + 'static,
    {
        let this = self.clone();
        async move { this.acquire(&key).await }
    }

    /// Runs `op` once `key` has a permit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("t").per_second(1).build_keyed::<u8>()?;
    /// assert_eq!(limiter.call(&1, || async { Ok::<_, ()>(5) }).await.unwrap(), 5);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, key: &K, op: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if self.inner.gcra.check_key(key).is_err() {
            Box::pin(self.acquire(key))
                .await
                .map_err(Error::RateLimited)?;
        }
        op().await.map_err(Error::Inner)
    }

    /// Forgets the keys whose quota is full again, so keys seen once do not stay forever.
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_policy::policy::RateLimiter;
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let limiter = RateLimiter::builder("t").per_second(1).clock(clock.clone()).build_keyed::<u8>()?;
    /// let _ = limiter.try_acquire(&1);
    /// assert_eq!(limiter.keys(), 1);
    /// clock.advance(Duration::from_secs(2));
    /// limiter.forget_idle();
    /// assert_eq!(limiter.keys(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn forget_idle(&self) {
        self.inner.gcra.retain_recent();
    }

    /// How many keys the limiter remembers.
    ///
    /// ```
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("t").build_keyed::<u8>()?;
    /// assert_eq!(limiter.keys(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn keys(&self) -> usize {
        self.inner.gcra.len()
    }
}
