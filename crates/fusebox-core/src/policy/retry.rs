//! Retry with backoff, Retry-After hints and a retry budget.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::ConfigError;
use crate::backoff::{Backoff, Delays, Jitter};
use crate::breaker::Name;
use crate::budget::RetryBudget;
use crate::clock::{ClockHandle, IntoClock};
use crate::error::Error;

/// What to do after one attempt.
///
/// ```
/// use fusebox_core::policy::RetryDecision;
/// use std::time::Duration;
/// assert!(RetryDecision::RetryAfter(Duration::from_secs(1)).is_retry());
/// assert!(!RetryDecision::Stop.is_retry());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Return this result.
    Stop,
    /// Try again after the backoff's next delay.
    Retry,
    /// Try again, waiting at least this long (a server's `Retry-After`).
    RetryAfter(Duration),
}

impl RetryDecision {
    /// Whether the attempt should be retried.
    pub fn is_retry(self) -> bool {
        !matches!(self, RetryDecision::Stop)
    }
}

/// A value that may carry a server-given delay before the next attempt, such as an HTTP
/// `Retry-After` header on a 429 or 503.
///
/// ```
/// use fusebox_core::policy::RetryAfterHint;
/// use std::time::Duration;
///
/// struct Throttled { wait_secs: u64 }
/// impl RetryAfterHint for Throttled {
///     fn retry_after(&self) -> Option<Duration> {
///         Some(Duration::from_secs(self.wait_secs))
///     }
/// }
/// assert_eq!(Throttled { wait_secs: 2 }.retry_after(), Some(Duration::from_secs(2)));
/// ```
pub trait RetryAfterHint {
    /// The delay the server asked for, if any.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl RetryAfterHint for () {}

impl<E: RetryAfterHint> RetryAfterHint for Error<E> {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Inner(e) => e.retry_after(),
            Error::Rejected(r) => r.retry_after,
            _ => None,
        }
    }
}

/// Why an attempt is being retried, as reported to listeners and `tracing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryReason {
    /// The call failed with the caller's error.
    Error,
    /// The call returned an `Ok` value classified as retryable (a 503 response, say).
    Value,
    /// An inner timeout expired.
    Timeout,
    /// An inner breaker rejected the call.
    Rejected,
    /// An inner bulkhead was full.
    BulkheadFull,
}

impl RetryReason {
    fn of<T, E>(result: &Result<T, Error<E>>) -> Self {
        match result {
            Ok(_) => RetryReason::Value,
            Err(Error::Inner(_)) => RetryReason::Error,
            Err(Error::Timeout(_)) => RetryReason::Timeout,
            Err(Error::Rejected(_)) => RetryReason::Rejected,
            Err(Error::BulkheadFull(_)) => RetryReason::BulkheadFull,
        }
    }

    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Error => "error",
            RetryReason::Value => "value",
            RetryReason::Timeout => "timeout",
            RetryReason::Rejected => "rejected",
            RetryReason::BulkheadFull => "bulkhead_full",
        }
    }
}

/// One retry, as given to listeners.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryEvent {
    /// The policy's name.
    pub name: Name,
    /// The attempt about to start (2 for the first retry).
    pub attempt: u32,
    /// The delay slept before it.
    pub delay: Duration,
    /// Why the previous attempt is retried.
    pub reason: RetryReason,
}

/// Why a retryable result was returned without retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// `max_retries` reached.
    MaxRetries,
    /// The next delay would pass `max_elapsed`, or the backoff has no more delays.
    Exhausted,
    /// The server asked for a longer wait than `max_retry_after`.
    RetryAfterTooLong,
    /// The retry budget is spent.
    BudgetExhausted,
}

type Classify<T, E> = Arc<dyn Fn(&Result<T, Error<E>>) -> RetryDecision + Send + Sync>;
type OnRetry = Arc<dyn Fn(&RetryEvent) + Send + Sync>;
type OnGiveUp = Arc<dyn Fn(&Name, GiveUpReason) + Send + Sync>;

struct RetryInner<T, E> {
    name: Name,
    max_retries: u32,
    max_elapsed: Option<Duration>,
    max_retry_after: Duration,
    backoff: Backoff,
    classify: Classify<T, E>,
    budget: Option<RetryBudget>,
    seed: Option<u64>,
    clock: ClockHandle,
    on_retry: Vec<OnRetry>,
    on_give_up: Vec<OnGiveUp>,
}

/// Retries a call with backoff while a classifier says its result is retryable.
///
/// Cheap to clone and share: every clone uses the same settings and the same budget.
/// Dropping the future stops retrying at once (it is cancel-safe).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_core::backoff::Backoff;
/// use fusebox_core::policy::Retry;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// let retry = Retry::<u32, &str>::builder()
///     .max_retries(3)
///     .backoff(Backoff::fixed(Duration::from_millis(100)).build()?)
///     .build()?;
///
/// let attempts = AtomicU32::new(0);
/// let value = retry
///     .call(|| async {
///         match attempts.fetch_add(1, Ordering::Relaxed) {
///             0 | 1 => Err("flaky"),
///             n => Ok(n),
///         }
///     })
///     .await
///     .expect("the third attempt works");
/// assert_eq!(value, 2);
/// # Ok(())
/// # }
/// ```
pub struct Retry<T, E> {
    inner: Arc<RetryInner<T, E>>,
}

impl<T, E> Clone for Retry<T, E> {
    fn clone(&self) -> Self {
        Retry {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T, E> fmt::Debug for Retry<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("name", &self.inner.name)
            .field("max_retries", &self.inner.max_retries)
            .field("max_elapsed", &self.inner.max_elapsed)
            .field("backoff", &self.inner.backoff)
            .field("budget", &self.inner.budget.is_some())
            .finish()
    }
}

/// Builds a [`Retry`]. Defaults: 3 retries, exponential backoff from 100 ms to 10 s with full
/// jitter, `Err` retried (the caller's errors and timeouts, never a breaker's rejection or a
/// full bulkhead), `Ok` never retried, server hints honoured up to 60 s.
#[must_use]
pub struct RetryBuilder<T, E> {
    name: Name,
    max_retries: u32,
    max_elapsed: Option<Duration>,
    max_retry_after: Duration,
    backoff: Option<Backoff>,
    classify: Option<Classify<T, E>>,
    budget: Option<RetryBudget>,
    seed: Option<u64>,
    clock: Option<ClockHandle>,
    on_retry: Vec<OnRetry>,
    on_give_up: Vec<OnGiveUp>,
}

impl<T, E> fmt::Debug for RetryBuilder<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBuilder")
            .field("name", &self.name)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

/// The default classification: retry the caller's errors and timeouts.
fn retry_errors<T, E>(result: &Result<T, Error<E>>) -> RetryDecision {
    match result {
        Err(Error::Inner(_)) | Err(Error::Timeout(_)) => RetryDecision::Retry,
        _ => RetryDecision::Stop,
    }
}

impl<T, E> Retry<T, E> {
    /// Starts a builder with the defaults.
    pub fn builder() -> RetryBuilder<T, E> {
        RetryBuilder {
            name: Name::from("retry"),
            max_retries: 3,
            max_elapsed: None,
            max_retry_after: Duration::from_secs(60),
            backoff: None,
            classify: None,
            budget: None,
            seed: None,
            clock: None,
            on_retry: Vec::new(),
            on_give_up: Vec::new(),
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    /// Maximum retries (attempts = retries + 1).
    pub fn max_retries(&self) -> u32 {
        self.inner.max_retries
    }

    /// The shared retry budget, if any.
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.inner.budget.as_ref()
    }

    /// Runs `op`, retrying per this policy. `op` is called once per attempt.
    pub async fn call<F, Fut>(&self, op: F) -> Result<T, Error<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(|| async { op().await.map_err(Error::Inner) })
            .await
    }

    /// Runs `inner` (already mapped to fusebox errors), retrying per this policy.
    pub(crate) async fn run<F, Fut>(&self, inner: F) -> Result<T, Error<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        let mut attempts = self.attempts();
        let mut last = inner().await;
        while let Some(delay) = attempts.next_delay(&last) {
            drop(last);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            last = inner().await;
        }
        last
    }

    /// Starts the retry decisions of one call: a sans-IO stepper for callers that drive the
    /// attempts themselves (a tower service, an actor). It counts the call as a first attempt
    /// in the budget.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use fusebox_core::policy::Retry;
    /// use fusebox_core::Error;
    /// use std::time::Duration;
    ///
    /// let retry = Retry::<(), &str>::builder()
    ///     .max_retries(2)
    ///     .backoff(Backoff::fixed(Duration::from_millis(5)).build()?)
    ///     .build()?;
    /// let mut attempts = retry.attempts();
    /// let failed: Result<(), Error<&str>> = Err(Error::Inner("boom"));
    /// assert_eq!(attempts.next_delay(&failed), Some(Duration::from_millis(5)));
    /// assert_eq!(attempts.next_delay(&failed), Some(Duration::from_millis(5)));
    /// assert_eq!(attempts.next_delay(&failed), None); // two retries spent
    /// assert_eq!(attempts.next_delay(&Ok(())), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn attempts(&self) -> RetryAttempts<'_, T, E> {
        RetryAttempts::begin(PolicyRef::Borrowed(self))
    }

    /// Like [`attempts`](Self::attempts), owning a handle to the policy, for `'static`
    /// futures.
    ///
    /// ```
    /// use fusebox_core::policy::Retry;
    /// let retry = Retry::<(), ()>::builder().build()?;
    /// let attempts: fusebox_core::policy::RetryAttempts<'static, (), ()> = retry.clone().into_attempts();
    /// assert_eq!(attempts.attempt(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn into_attempts(self) -> RetryAttempts<'static, T, E> {
        RetryAttempts::begin(PolicyRef::Owned(self))
    }
}

enum PolicyRef<'a, T, E> {
    Borrowed(&'a Retry<T, E>),
    Owned(Retry<T, E>),
}

impl<T, E> PolicyRef<'_, T, E> {
    fn inner(&self) -> &RetryInner<T, E> {
        match self {
            PolicyRef::Borrowed(r) => &r.inner,
            PolicyRef::Owned(r) => &r.inner,
        }
    }
}

/// The retry decisions of one call, from [`Retry::attempts`]: hand it each attempt's result,
/// it says how long to wait before the next attempt, or `None` to return that result.
pub struct RetryAttempts<'a, T, E> {
    policy: PolicyRef<'a, T, E>,
    started: Option<u64>,
    /// Created at the first retry, so a call that succeeds at once draws no randomness.
    delays: Option<Delays<SmallRng>>,
    attempt: u32,
}

impl<T, E> fmt::Debug for RetryAttempts<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryAttempts")
            .field("policy", &self.policy.inner().name)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl<'a, T, E> RetryAttempts<'a, T, E> {
    fn begin(policy: PolicyRef<'a, T, E>) -> Self {
        let p = policy.inner();
        if let Some(budget) = &p.budget {
            budget.deposit(p.clock.now_nanos());
        }
        let started = p.max_elapsed.map(|_| p.clock.now_nanos());
        RetryAttempts {
            policy,
            started,
            delays: None,
            attempt: 1,
        }
    }

    /// The attempt that produced the last result (1 for the first).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Judges the result of the current attempt: `Some(delay)` to retry after `delay` (the
    /// retry is counted, reported to listeners and taken from the budget), `None` to return
    /// this result.
    pub fn next_delay(&mut self, last: &Result<T, Error<E>>) -> Option<Duration> {
        let p = self.policy.inner();
        let decision = (p.classify)(last);
        if !decision.is_retry() {
            return None;
        }
        if self.attempt > p.max_retries {
            return self.give_up(GiveUpReason::MaxRetries);
        }
        let delays = self.delays.get_or_insert_with(|| {
            let rng = match p.seed {
                Some(seed) => SmallRng::seed_from_u64(seed),
                None => SmallRng::from_rng(&mut rand::rng()),
            };
            p.backoff.with_rng(rng)
        });
        let Some(mut delay) = delays.next() else {
            return self.give_up(GiveUpReason::Exhausted);
        };
        if let RetryDecision::RetryAfter(hint) = decision {
            if hint > p.max_retry_after {
                return self.give_up(GiveUpReason::RetryAfterTooLong);
            }
            delay = delay.max(hint);
        }
        if let (Some(max), Some(started)) = (p.max_elapsed, self.started) {
            let elapsed = Duration::from_nanos(p.clock.now_nanos().saturating_sub(started));
            if elapsed.saturating_add(delay) > max {
                return self.give_up(GiveUpReason::Exhausted);
            }
        }
        if let Some(budget) = &p.budget {
            if !budget.try_withdraw(p.clock.now_nanos()) {
                return self.give_up(GiveUpReason::BudgetExhausted);
            }
        }
        self.attempt += 1;
        let event = RetryEvent {
            name: p.name.clone(),
            attempt: self.attempt,
            delay,
            reason: RetryReason::of(last),
        };
        tracing::debug!(
            policy = %p.name,
            attempt = self.attempt,
            delay_ms = delay.as_millis() as u64,
            reason = event.reason.as_str(),
            "retrying"
        );
        for listener in &p.on_retry {
            listener(&event);
        }
        Some(delay)
    }

    fn give_up(&self, reason: GiveUpReason) -> Option<Duration> {
        let p = self.policy.inner();
        tracing::debug!(policy = %p.name, reason = ?reason, "not retrying");
        for listener in &p.on_give_up {
            listener(&p.name, reason);
        }
        None
    }
}

impl<T, E> RetryBuilder<T, E> {
    /// Names the policy (for events, tracing and metrics).
    pub fn name(mut self, name: impl Into<Name>) -> Self {
        self.name = name.into();
        self
    }
    /// Maximum retries; attempts = retries + 1. `0` disables retrying.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }
    /// Stops retrying when the next delay would take the whole call past `max`.
    pub fn max_elapsed(mut self, max: Duration) -> Self {
        self.max_elapsed = Some(max);
        self
    }
    /// Longest server-given delay honoured; a longer `Retry-After` stops retrying.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }
    /// The delays between attempts.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }
    /// Full control over classification: what to do with each result, `Ok` values included.
    pub fn retry_if<F>(mut self, classify: F) -> Self
    where
        F: Fn(&Result<T, Error<E>>) -> RetryDecision + Send + Sync + 'static,
    {
        self.classify = Some(Arc::new(classify));
        self
    }
    /// Retries the caller's errors for which `should_handle` is true, and timeouts.
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
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }
    /// Seeds the jitter, for reproducible delays.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }
    /// The clock for the budget and `max_elapsed` (default: the monotonic clock; use
    /// [`TokioClock`](crate::clock::TokioClock) under `tokio::time::pause`).
    pub fn clock(mut self, clock: impl IntoClock) -> Self {
        self.clock = Some(clock.into_handle().0);
        self
    }
    /// Calls `f` when a retry is scheduled, before its delay.
    pub fn on_retry<F>(mut self, f: F) -> Self
    where
        F: Fn(&RetryEvent) + Send + Sync + 'static,
    {
        self.on_retry.push(Arc::new(f));
        self
    }
    /// Calls `f` when a retryable result is returned without retrying, with the reason.
    pub fn on_give_up<F>(mut self, f: F) -> Self
    where
        F: Fn(&Name, GiveUpReason) + Send + Sync + 'static,
    {
        self.on_give_up.push(Arc::new(f));
        self
    }

    /// Validates and builds the policy.
    pub fn build(self) -> Result<Retry<T, E>, ConfigError>
    where
        T: 'static,
        E: 'static,
    {
        if self.max_elapsed.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::invalid(
                "max_elapsed",
                "must be longer than zero",
            ));
        }
        let backoff = match self.backoff {
            Some(b) => b,
            None => Backoff::exponential(Duration::from_millis(100), Duration::from_secs(10))
                .jitter(Jitter::Full)
                .build()?,
        };
        let classify = self
            .classify
            .unwrap_or_else(|| Arc::new(retry_errors::<T, E>));
        Ok(Retry {
            inner: Arc::new(RetryInner {
                name: self.name,
                max_retries: self.max_retries,
                max_elapsed: self.max_elapsed,
                max_retry_after: self.max_retry_after,
                backoff,
                classify,
                budget: self.budget,
                seed: self.seed,
                clock: self.clock.unwrap_or(ClockHandle::Monotonic),
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
    pub fn honor_retry_after(self) -> Self {
        self.retry_after_from(|r: &Result<T, Error<E>>| match r {
            Ok(v) => v.retry_after(),
            Err(e) => e.retry_after(),
        })
    }
}
