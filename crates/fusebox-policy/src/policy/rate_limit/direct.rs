//! The rate limiter all calls share: one quota, one GCRA state.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};

use fusebox_core::breaker::Name;
use fusebox_core::{Error, RateLimited};

use super::{LimiterClock, Listeners, RateLimitMode, RateLimiterBuilder, Settings};

type DirectGcra =
    governor::RateLimiter<NotKeyed, InMemoryState, LimiterClock, NoOpMiddleware<Nanos>>;

#[derive(Debug)]
pub(super) struct DirectInner {
    pub(super) settings: Settings,
    pub(super) gcra: DirectGcra,
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
    pub(super) inner: Arc<DirectInner>,
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
