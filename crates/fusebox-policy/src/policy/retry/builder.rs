//! The retry's builder: attempts, backoff, budget, classification and listeners.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fusebox_core::ConfigError;
use fusebox_core::Error;
use fusebox_core::backoff::Backoff;
use fusebox_core::breaker::Name;
use fusebox_core::budget::RetryBudget;
use fusebox_core::clock::{IntoClock, SharedClock};

use super::*;

/// Builds a [`Retry`]. Defaults: 3 retries, exponential backoff from 100 ms to 10 s with full
/// jitter, `Err` retried (the caller's errors and timeouts, never a breaker's rejection or a
/// full bulkhead), `Ok` never retried. Server hints are not read unless asked for
/// ([`honor_retry_after`](Self::honor_retry_after), [`retry_after_from`](Self::retry_after_from));
/// then they are honoured up to `max_retry_after`, 60 s by default.
///
/// ```
/// use fusebox_core::breaker::{Rejected, State};
/// use fusebox_policy::policy::Retry;
/// use fusebox_core::{Error, TimedOut};
/// use std::time::Duration;
/// let retry = Retry::<(), ()>::builder().build()?;
/// assert_eq!(retry.max_retries(), 3);
/// let timed_out = Err(Error::Timeout(TimedOut { after: Duration::from_secs(1) }));
/// assert!(retry.attempts().next_delay(&timed_out).is_some());
/// let rejected = Rejected::new("db", State::Open, None);
/// assert_eq!(retry.attempts().next_delay(&Err(Error::Rejected(rejected))), None);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use]
pub struct RetryBuilder<T, E> {
    pub(super) name: Name,
    pub(super) max_retries: u32,
    pub(super) max_elapsed: Option<Duration>,
    pub(super) max_retry_after: Duration,
    pub(super) backoff: Option<Backoff>,
    pub(super) classify: Option<Classify<T, E>>,
    pub(super) budget: Option<RetryBudget>,
    pub(super) seed: Option<u64>,
    pub(super) clock: Option<SharedClock>,
    pub(super) on_retry: Vec<OnRetry>,
    pub(super) on_give_up: Vec<OnGiveUp>,
}

impl<T, E> fmt::Debug for RetryBuilder<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("name", &self.name)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl<T, E> RetryBuilder<T, E> {
    /// Names the policy (for events, tracing and metrics).
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// let retry = Retry::<(), ()>::builder().name(String::from("inventory")).build()?;
    /// assert_eq!(retry.name(), "inventory");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(mut self, name: impl Into<Name>) -> Self {
        self.name = name.into();
        self
    }
    /// Maximum retries; attempts = retries + 1. `0` disables retrying.
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// let never = Retry::<(), &str>::builder().max_retries(0).build()?;
    /// assert_eq!(never.attempts().next_delay(&Err(Error::Inner("busy"))), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }
    /// Stops retrying when the next delay would take the whole call past `max`.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// # use std::time::Duration;
    /// let (clock, secs) = (ManualClock::new(), Duration::from_secs);
    /// let retry = Retry::<(), ()>::builder().backoff(Backoff::fixed(secs(1)).build()?);
    /// let retry = retry.max_elapsed(secs(2)).clock(clock.clone()).build()?;
    /// let mut attempts = retry.attempts();
    /// assert!(attempts.next_delay(&Err(Error::Inner(()))).is_some());
    /// clock.advance(secs(2)); // one more 1 s delay would end past 2 s
    /// assert_eq!(attempts.next_delay(&Err(Error::Inner(()))), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_elapsed(mut self, max: Duration) -> Self {
        self.max_elapsed = Some(max);
        self
    }
    /// Longest server-given delay honoured; a longer `Retry-After` stops retrying.
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// # use std::time::Duration;
    /// // The error is the number of seconds the server asked to wait.
    /// let retry = Retry::<(), u64>::builder()
    ///     .retry_after_from(|r| r.as_ref().err()?.inner().map(|s| Duration::from_secs(*s)))
    ///     .max_retry_after(Duration::from_secs(5))
    ///     .build()?;
    /// let delay = retry.attempts().next_delay(&Err(Error::Inner(3)));
    /// assert_eq!(delay, Some(Duration::from_secs(3)));
    /// assert_eq!(retry.attempts().next_delay(&Err(Error::Inner(10))), None); // too long
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }
    /// The delays between attempts.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// # use std::time::Duration;
    /// let ms = Duration::from_millis;
    /// let backoff = Backoff::exponential(ms(100), ms(1000)).build()?;
    /// let retry = Retry::<(), ()>::builder().backoff(backoff).build()?;
    /// let mut attempts = retry.attempts();
    /// let failed = Err(Error::Inner(()));
    /// let delays: Vec<_> = (0..3).map_while(|_| attempts.next_delay(&failed)).collect();
    /// assert_eq!(delays, [ms(100), ms(200), ms(400)]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }
    /// Full control over classification: what to do with each result, `Ok` values included.
    ///
    /// ```
    /// use fusebox_policy::policy::{Retry, RetryDecision};
    /// // Retry a 503 response as well as errors.
    /// let retry = Retry::<u16, ()>::builder()
    ///     .retry_if(|r| match r {
    ///         Ok(503) | Err(_) => RetryDecision::Retry,
    ///         Ok(_) => RetryDecision::Stop,
    ///     })
    ///     .build()?;
    /// assert!(retry.attempts().next_delay(&Ok(503)).is_some());
    /// assert_eq!(retry.attempts().next_delay(&Ok(200)), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn retry_if<F>(mut self, classify: F) -> Self
    where
        F: Fn(&Result<T, Error<E>>) -> RetryDecision + Send + Sync + 'static,
    {
        self.classify = Some(Arc::new(classify));
        self
    }
    /// Retries the caller's errors for which `should_handle` is true, and timeouts.
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// let retry = Retry::<(), &str>::builder().retry_on(|e| *e == "busy").build()?;
    /// assert!(retry.attempts().next_delay(&Err(Error::Inner("busy"))).is_some());
    /// assert_eq!(retry.attempts().next_delay(&Err(Error::Inner("bad request"))), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn retry_on<P>(self, should_handle: P) -> Self
    where
        P: Fn(&E) -> bool + Send + Sync + 'static,
    {
        self.retry_if(move |r| match r {
            Err(Error::Inner(e)) if should_handle(e) => RetryDecision::Retry,
            Err(Error::Timeout(_)) => RetryDecision::Retry,
            _ => RetryDecision::Stop,
        })
    }
    /// Shares a retry budget: when it is spent, the last result returns at once.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, RetryBudget};
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// // One retry per first attempt, and no floor.
    /// let config = BudgetConfig::builder().ratio(1.0).min_retries_per_second(0.0).build()?;
    /// let retry = Retry::<(), ()>::builder().budget(RetryBudget::new(config)).build()?;
    /// let mut attempts = retry.attempts(); // this call's first attempt earns one retry
    /// assert!(attempts.next_delay(&Err(Error::Inner(()))).is_some());
    /// assert_eq!(attempts.next_delay(&Err(Error::Inner(()))), None); // the budget is spent
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }
    /// Seeds the jitter, for reproducible delays.
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// // The default backoff has full jitter; the same seed draws the same delays.
    /// let a = Retry::<(), ()>::builder().seed(42).build()?;
    /// let b = Retry::<(), ()>::builder().seed(42).build()?;
    /// let failed = Err(Error::Inner(()));
    /// assert_eq!(a.attempts().next_delay(&failed), b.attempts().next_delay(&failed));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// The clock for the budget and `max_elapsed` (default: the monotonic clock; use
    /// [`TokioClock`](crate::TokioClock) under `tokio::time::pause`).
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, RetryBudget};
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// # use std::time::Duration;
    /// let config = BudgetConfig::builder().ratio(1.0).min_retries_per_second(0.0).build()?;
    /// let clock = ManualClock::new();
    /// let retry = Retry::<(), ()>::builder().budget(RetryBudget::new(config));
    /// let retry = retry.clock(clock.clone()).build()?;
    /// let mut attempts = retry.attempts(); // earns one retry, for the budget's 10 s window
    /// clock.advance(Duration::from_secs(20));
    /// assert_eq!(attempts.next_delay(&Err(Error::Inner(()))), None); // that retry expired
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clock(mut self, clock: impl IntoClock) -> Self {
        self.clock = Some(clock.into_handle());
        self
    }
    /// Calls `f` when a retry is scheduled, before its delay.
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// # use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let retry = Retry::<(), ()>::builder()
    ///     .max_retries(2)
    ///     .on_retry(move |e| log.lock().unwrap().push(e.attempt))
    ///     .build()?;
    /// let mut attempts = retry.attempts();
    /// while attempts.next_delay(&Err(Error::Inner(()))).is_some() {}
    /// assert_eq!(*seen.lock().unwrap(), [2, 3]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_retry<F>(mut self, f: F) -> Self
    where
        F: Fn(&RetryEvent) + Send + Sync + 'static,
    {
        self.on_retry.push(Arc::new(f));
        self
    }
    /// Calls `f` when a retryable result is returned without retrying, with the reason.
    ///
    /// ```
    /// use fusebox_policy::policy::{GiveUpReason, Retry};
    /// use fusebox_core::Error;
    /// # use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let retry = Retry::<(), ()>::builder()
    ///     .max_retries(0)
    ///     .on_give_up(move |name, reason| log.lock().unwrap().push((name.to_string(), reason)))
    ///     .build()?;
    /// retry.attempts().next_delay(&Err(Error::Inner(())));
    /// assert_eq!(*seen.lock().unwrap(), [("retry".to_string(), GiveUpReason::MaxRetries)]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_give_up<F>(mut self, f: F) -> Self
    where
        F: Fn(&Name, GiveUpReason) + Send + Sync + 'static,
    {
        self.on_give_up.push(Arc::new(f));
        self
    }

    /// Validates and builds the policy.
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// use std::time::Duration;
    /// assert!(Retry::<(), ()>::builder().build().is_ok());
    /// let err = Retry::<(), ()>::builder().max_elapsed(Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.field(), Some("max_elapsed"));
    /// ```
    pub fn build(self) -> Result<Retry<T, E>, ConfigError>
    where
        T: 'static,
        E: 'static,
    {
        let backoff = match self.backoff {
            Some(b) => b,
            None => RetryPlan::default_backoff()?,
        };
        let plan = RetryPlan {
            max_retries: self.max_retries,
            max_elapsed: self.max_elapsed,
            max_retry_after: self.max_retry_after,
            backoff,
        };
        plan.validate()?;
        Ok(Retry {
            inner: Arc::new(RetryInner {
                name: self.name,
                plan: Revisions::new(plan),
                classify: self.classify,
                budget: self.budget,
                seed: self.seed,
                clock: self.clock.unwrap_or(SharedClock::monotonic()),
                on_retry: self.on_retry,
                on_give_up: self.on_give_up,
            }),
        })
    }
}

impl<T: 'static, E: 'static> RetryBuilder<T, E> {
    /// Honours server-given delays found by `hint`: a retryable result for which it returns
    /// a delay waits at least that long (up to [`max_retry_after`](Self::max_retry_after)).
    /// Set the classification first.
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// # use std::time::Duration;
    /// // The error is the number of seconds the server asked to wait.
    /// let retry = Retry::<(), u64>::builder()
    ///     .retry_after_from(|r| r.as_ref().err()?.inner().map(|s| Duration::from_secs(*s)))
    ///     .build()?;
    /// let delay = retry.attempts().next_delay(&Err(Error::Inner(2)));
    /// assert_eq!(delay, Some(Duration::from_secs(2))); // longer than the backoff's delay
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn retry_after_from<H>(mut self, hint: H) -> Self
    where
        H: Fn(&Result<T, Error<E>>) -> Option<Duration> + Send + Sync + 'static,
    {
        let classify = self
            .classify
            .take()
            .unwrap_or_else(|| Arc::new(retry_errors::<T, E>));
        self.classify = Some(Arc::new(move |r: &Result<T, Error<E>>| match classify(r) {
            RetryDecision::Stop => RetryDecision::Stop,
            decided => hint(r).map_or(decided, RetryDecision::RetryAfter),
        }));
        self
    }
}

impl<T, E> RetryBuilder<T, E>
where
    T: RetryAfterHint + 'static,
    E: RetryAfterHint + 'static,
{
    /// Honours server-given delays carried by values and errors through [`RetryAfterHint`]
    /// (a breaker's rejection carries its own). Set the classification first.
    ///
    /// ```
    /// use fusebox_policy::policy::{Retry, RetryAfterHint};
    /// use fusebox_core::Error;
    /// # use std::time::Duration;
    /// struct Throttled(u64); // a 429 with `Retry-After: <seconds>`
    /// impl RetryAfterHint for Throttled {
    ///     fn retry_after(&self) -> Option<Duration> {
    ///         Some(Duration::from_secs(self.0))
    ///     }
    /// }
    /// let retry = Retry::<(), Throttled>::builder().honor_retry_after().build()?;
    /// let delay = retry.attempts().next_delay(&Err(Error::Inner(Throttled(3))));
    /// assert_eq!(delay, Some(Duration::from_secs(3)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn honor_retry_after(self) -> Self {
        self.retry_after_from(|r: &Result<T, Error<E>>| match r {
            Ok(v) => v.retry_after(),
            Err(e) => e.retry_after(),
        })
    }
}
