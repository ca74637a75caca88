//! Adaptive concurrency limit: a bulkhead whose size is measured, not configured.
//!
//! The pure algorithms are in [`algorithm`]; this module is the concurrent shell around
//! them: an atomic count of calls in flight checked against an atomic limit on the way in
//! (no lock), and a short critical section on the way out to feed the round trip to the
//! algorithm.
//!
//! The builder (`builder`) and the permits (`permit`) have files of their own.

mod algorithm;
mod builder;
mod permit;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fusebox_core::breaker::Name;
use fusebox_core::{Error, LimitExceeded, Outcome};

pub use algorithm::{AdaptiveLimit, Aimd, Gradient2, LimitAlgorithm, LimitSample, Vegas};
pub use builder::ConcurrencyLimitBuilder;
pub(crate) use permit::CompactPermit;
pub use permit::{LimitPermit, OwnedLimitPermit};

type LimitListener = Arc<dyn Fn(&Name, u32) + Send + Sync>;
type RefusedListener = Arc<dyn Fn(&LimitExceeded) + Send + Sync>;

#[derive(Clone, Default)]
struct Listeners {
    on_limit_change: Vec<LimitListener>,
    on_refused: Vec<RefusedListener>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} limit listeners, {} refusal listeners",
            self.on_limit_change.len(),
            self.on_refused.len()
        )
    }
}

#[derive(Debug)]
struct Inner {
    name: Name,
    limit: AtomicU32,
    in_flight: AtomicU32,
    state: Mutex<AdaptiveLimit>,
    origin: tokio::time::Instant,
    listeners: Listeners,
}

/// Limits calls in flight to a limit it learns from their round trips: it grows while the
/// dependency answers as fast as when idle, and shrinks when round trips grow or calls fail,
/// with one of three algorithms ([`Aimd`], [`Vegas`], [`Gradient2`]). Calls beyond the
/// limit are refused at once with [`Error::LimitExceeded`]. Clones share the limit.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_policy::policy::{ConcurrencyLimit, Vegas};
///
/// let limit = ConcurrencyLimit::builder("db").algorithm(Vegas::new()).initial_limit(1).build()?;
/// let held = limit.try_acquire()?;
/// let refused = limit.call(|| async { Ok::<_, ()>(1) }).await.unwrap_err();
/// assert_eq!(refused.stopped_by(), Some("concurrency_limit"));
/// held.success();
/// assert_eq!(limit.call(|| async { Ok::<_, ()>(1) }).await.unwrap(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ConcurrencyLimit {
    inner: Arc<Inner>,
}

impl Inner {
    /// Feeds a finished call to the algorithm and publishes the limit if it moved.
    fn record(&self, started: tokio::time::Instant, in_flight: u32, outcome: Outcome) {
        let dropped = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Ignored => return,
        };
        let now = tokio::time::Instant::now();
        let rtt = now.saturating_duration_since(started);
        let at = now.saturating_duration_since(self.origin);
        let moved = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            state.record(at, rtt, in_flight, dropped)
        };
        if let Some(limit) = moved {
            let before = self.limit.swap(limit, Ordering::AcqRel);
            if before != limit {
                tracing::debug!(name = %self.name, before, limit, "concurrency limit moved");
                for listener in &self.listeners.on_limit_change {
                    listener(&self.name, limit);
                }
            }
        }
    }
}

impl ConcurrencyLimit {
    /// Starts a builder for a limit called `name` (defaults: [`Aimd`], limits 1..=1000
    /// starting at 20, a 250 ms window of at least 10 calls).
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// assert_eq!(ConcurrencyLimit::builder("search").build()?.limit(), 20);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder(name: impl Into<Name>) -> ConcurrencyLimitBuilder {
        ConcurrencyLimitBuilder {
            name: name.into(),
            algorithm: LimitAlgorithm::Aimd(Aimd::new()),
            min: 1,
            max: 1000,
            initial: 20,
            window: Duration::from_millis(250),
            min_samples: 10,
            listeners: Listeners::default(),
        }
    }

    /// The limit's name.
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// assert_eq!(ConcurrencyLimit::builder("x").build()?.name(), "x");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    /// The limit now.
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// assert_eq!(ConcurrencyLimit::builder("x").initial_limit(7).build()?.limit(), 7);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn limit(&self) -> u32 {
        self.inner.limit.load(Ordering::Acquire)
    }

    /// Calls in flight now.
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// assert_eq!(ConcurrencyLimit::builder("x").build()?.in_flight(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn in_flight(&self) -> u32 {
        self.inner.in_flight.load(Ordering::Acquire)
    }

    /// Takes a place if the limit allows, without waiting; the refusal otherwise.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let limit = ConcurrencyLimit::builder("db").min_limit(1).initial_limit(1).build()?;
    /// let _held = limit.try_acquire().expect("a free place");
    /// let refused = limit.try_acquire().unwrap_err();
    /// assert_eq!((refused.limit, refused.in_flight), (1, 1));
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_acquire(&self) -> Result<LimitPermit<'_>, LimitExceeded> {
        let in_flight = self.take_place()?;
        Ok(LimitPermit {
            limit: self,
            started: tokio::time::Instant::now(),
            in_flight,
        })
    }

    /// Like [`try_acquire`](Self::try_acquire), owning the permit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let limit = ConcurrencyLimit::builder("db").initial_limit(1).build()?;
    /// let permit = limit.try_acquire_owned().expect("a free place");
    /// assert!(limit.try_acquire_owned().is_err());
    /// drop(permit);
    /// assert!(limit.try_acquire_owned().is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_acquire_owned(&self) -> Result<OwnedLimitPermit, LimitExceeded> {
        let in_flight = self.take_place()?;
        Ok(OwnedLimitPermit {
            limit: self.clone(),
            started: tokio::time::Instant::now(),
            in_flight,
        })
    }

    /// Counts one more call in flight if the limit allows; the count including it.
    fn take_place(&self) -> Result<u32, LimitExceeded> {
        let inner = &*self.inner;
        let mut in_flight = inner.in_flight.load(Ordering::Acquire);
        loop {
            let limit = inner.limit.load(Ordering::Acquire);
            if in_flight >= limit {
                return Err(self.refuse(limit, in_flight));
            }
            match inner.in_flight.compare_exchange_weak(
                in_flight,
                in_flight + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(in_flight + 1),
                Err(now) => in_flight = now,
            }
        }
    }

    fn refuse(&self, limit: u32, in_flight: u32) -> LimitExceeded {
        let refusal = LimitExceeded {
            name: self.inner.name.clone(),
            limit,
            in_flight,
        };
        tracing::debug!(name = %refusal.name, limit, in_flight, "concurrency limit refused a call");
        for listener in &self.inner.listeners.on_refused {
            listener(&refusal);
        }
        refusal
    }

    /// Runs `f` if the limit allows, measuring it: `Ok` is a success, `Err` a drop.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let limit = ConcurrencyLimit::builder("db").build()?;
    /// assert_eq!(limit.call(|| async { Ok::<_, ()>(5) }).await.unwrap(), 5);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<T, E, F, Fut>(&self, f: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire().map_err(Error::LimitExceeded)?;
        let result = f().await;
        match result {
            Ok(_) => permit.success(),
            Err(_) => permit.dropped(),
        }
        result.map_err(Error::Inner)
    }

    /// Runs a stack's attempt under the limit, classifying its result with `classify`.
    pub(crate) async fn around_with<T, E, F, Fut, C>(
        &self,
        attempt: F,
        classify: C,
    ) -> Result<T, Error<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
        C: Fn(&Result<T, Error<E>>) -> Outcome,
    {
        let permit = self.try_acquire().map_err(Error::LimitExceeded)?;
        let result = attempt().await;
        permit.settle(classify(&result));
        result
    }

    /// Pairs the limit with a classifier for use in a stack, where the default counts `Ok`
    /// as a success, a failure or timeout of the attempt as a drop and anything else not at
    /// all.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::{Error, Outcome};
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// use fusebox_policy::stack::Stack;
    /// let limit = ConcurrencyLimit::builder("api").build()?;
    /// let stack = Stack::new().policy(limit.classify_with(|r: &Result<u16, Error<()>>| {
    ///     if matches!(r, Ok(503)) { Outcome::Failure } else { Outcome::Success }
    /// }));
    /// assert_eq!(stack.call(|| async { Ok::<u16, ()>(200) }).await.unwrap(), 200);
    /// # Ok(())
    /// # }
    /// ```
    pub fn classify_with<C>(self, classify: C) -> ClassifiedLimit<C> {
        ClassifiedLimit {
            limit: self,
            classify,
        }
    }
}

/// A [`ConcurrencyLimit`] with the function that classifies its calls, for a
/// [`Stack`](crate::stack::Stack) (see [`ConcurrencyLimit::classify_with`]).
///
/// ```
/// use fusebox_policy::policy::ConcurrencyLimit;
/// let classified = ConcurrencyLimit::builder("a").build()?.classify_with(|_: &Result<(), fusebox_core::Error<()>>| fusebox_core::Outcome::Success);
/// assert_eq!(classified.limit().name(), "a");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClassifiedLimit<C> {
    limit: ConcurrencyLimit,
    classify: C,
}

impl<C> ClassifiedLimit<C> {
    /// The limit.
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let c = ConcurrencyLimit::builder("a").build()?.classify_with(|_: &Result<(), fusebox_core::Error<()>>| fusebox_core::Outcome::Success);
    /// assert_eq!(c.limit().limit(), 20);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn limit(&self) -> &ConcurrencyLimit {
        &self.limit
    }
}

impl<T, E> crate::stack::Policy<T, E> for ConcurrencyLimit {
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        // `Ok` a success, a failed or timed-out attempt a drop, a refusal further in nothing.
        self.around_with(attempt, crate::pipeline::breaker_outcome::<T, E>)
    }
}

impl<T, E, C> crate::stack::Policy<T, E> for ClassifiedLimit<C>
where
    C: Fn(&Result<T, Error<E>>) -> Outcome,
{
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        self.limit.around_with(attempt, &self.classify)
    }
}
