//! Retry with backoff, Retry-After hints and a retry budget.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use rand::rngs::SmallRng;

use fusebox_core::ConfigError;
use fusebox_core::Error;
use fusebox_core::backoff::{Backoff, Cursor, Jitter};
use fusebox_core::breaker::Name;
use fusebox_core::budget::RetryBudget;
use fusebox_core::clock::{IntoClock, SharedClock};

/// What to do after one attempt.
///
/// ```
/// use fusebox_policy::policy::RetryDecision;
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
    ///
    /// ```
    /// use fusebox_policy::policy::RetryDecision;
    /// use std::time::Duration;
    /// assert!(RetryDecision::Retry.is_retry());
    /// assert!(RetryDecision::RetryAfter(Duration::from_secs(2)).is_retry());
    /// assert!(!RetryDecision::Stop.is_retry());
    /// ```
    pub fn is_retry(self) -> bool {
        !matches!(self, RetryDecision::Stop)
    }
}

/// A value that may carry a server-given delay before the next attempt, such as an HTTP
/// `Retry-After` header on a 429 or 503.
///
/// ```
/// use fusebox_policy::policy::RetryAfterHint;
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
    ///
    /// ```
    /// use fusebox_policy::policy::RetryAfterHint;
    /// struct Plain;
    /// impl RetryAfterHint for Plain {} // the default: no hint
    /// assert_eq!(Plain.retry_after(), None);
    /// assert_eq!(().retry_after(), None);
    /// ```
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl RetryAfterHint for () {}

impl<E: RetryAfterHint> RetryAfterHint for Error<E> {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Inner(e) => e.retry_after(),
            Error::Rejected(r) => r.retry_after(),
            Error::CostRejected(r) => r.retry_after,
            _ => None,
        }
    }
}

/// Why an attempt is being retried, as reported to listeners and `tracing`.
///
/// ```
/// use fusebox_policy::policy::{Retry, RetryReason};
/// use fusebox_core::{Error, TimedOut};
/// # use std::sync::{Arc, Mutex};
/// # use std::time::Duration;
/// let reasons = Arc::new(Mutex::new(Vec::new()));
/// let log = reasons.clone();
/// let retry = Retry::<(), ()>::builder()
///     .on_retry(move |e| log.lock().unwrap().push(e.reason))
///     .build()?;
/// let timed_out = Err(Error::Timeout(TimedOut { after: Duration::from_secs(1) }));
/// retry.attempts().next_delay(&timed_out);
/// assert_eq!(*reasons.lock().unwrap(), [RetryReason::Timeout]);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
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
    /// An inner cost guard refused the call.
    CostRejected,
}

impl RetryReason {
    fn of<T, E>(result: &Result<T, Error<E>>) -> Self {
        match result {
            Ok(_) => RetryReason::Value,
            Err(Error::Inner(_)) => RetryReason::Error,
            Err(Error::Timeout(_)) => RetryReason::Timeout,
            Err(Error::Rejected(_)) => RetryReason::Rejected,
            Err(Error::BulkheadFull(_)) => RetryReason::BulkheadFull,
            Err(Error::CostRejected(_)) => RetryReason::CostRejected,
        }
    }

    /// Stable lower-case name.
    ///
    /// ```
    /// use fusebox_policy::policy::RetryReason;
    /// assert_eq!(RetryReason::Error.as_str(), "error");
    /// assert_eq!(RetryReason::BulkheadFull.as_str(), "bulkhead_full");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Error => "error",
            RetryReason::Value => "value",
            RetryReason::Timeout => "timeout",
            RetryReason::Rejected => "rejected",
            RetryReason::BulkheadFull => "bulkhead_full",
            RetryReason::CostRejected => "cost_rejected",
        }
    }
}

/// One retry, as given to listeners.
///
/// ```
/// use fusebox_policy::policy::{Retry, RetryReason};
/// use fusebox_core::Error;
/// # use std::sync::{Arc, Mutex};
/// let events = Arc::new(Mutex::new(Vec::new()));
/// let log = events.clone();
/// let retry = Retry::<(), &str>::builder()
///     .on_retry(move |e| log.lock().unwrap().push(e.clone()))
///     .build()?;
/// let delay = retry.attempts().next_delay(&Err(Error::Inner("busy")));
/// let event = events.lock().unwrap()[0].clone();
/// assert_eq!((event.attempt, event.reason, Some(event.delay)), (2, RetryReason::Error, delay));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
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
///
/// ```
/// use fusebox_core::backoff::Backoff;
/// use fusebox_policy::policy::{GiveUpReason, Retry};
/// use fusebox_core::Error;
/// # use std::sync::{Arc, Mutex};
/// # use std::time::Duration;
/// let reasons = Arc::new(Mutex::new(Vec::new()));
/// let log = reasons.clone();
/// let retry = Retry::<(), ()>::builder()
///     .backoff(Backoff::fixed(Duration::ZERO).max_delays(1).build()?)
///     .on_give_up(move |_, reason| log.lock().unwrap().push(reason))
///     .build()?;
/// let mut attempts = retry.attempts();
/// while attempts.next_delay(&Err(Error::Inner(()))).is_some() {}
/// assert_eq!(*reasons.lock().unwrap(), [GiveUpReason::Exhausted]); // one delay, then none
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
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
    /// `None`: the default, [`retry_errors`], called directly rather than through a pointer.
    classify: Option<Classify<T, E>>,
    budget: Option<RetryBudget>,
    seed: Option<u64>,
    clock: SharedClock,
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
/// use fusebox_policy::policy::Retry;
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
    name: Name,
    max_retries: u32,
    max_elapsed: Option<Duration>,
    max_retry_after: Duration,
    backoff: Option<Backoff>,
    classify: Option<Classify<T, E>>,
    budget: Option<RetryBudget>,
    seed: Option<u64>,
    clock: Option<SharedClock>,
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

/// The jitter generator of one call, seeded on its first draw: a backoff without jitter
/// (a fixed delay, say) never seeds one. The policy's seed makes the draws reproducible;
/// without one, seeds come from a cheap per-thread sequence rather than the operating system
/// or the thread's cryptographic generator, since jitter only needs to differ between calls
/// and clients, not to be secret.
struct LazyRng {
    seed: Option<u64>,
    rng: Option<SmallRng>,
}

impl LazyRng {
    fn new(seed: Option<u64>) -> Self {
        LazyRng { seed, rng: None }
    }

    fn rng(&mut self) -> &mut SmallRng {
        let seed = self.seed;
        self.rng
            .get_or_insert_with(|| fusebox_core::rng::small_rng(seed))
    }
}

impl RngCore for LazyRng {
    fn next_u32(&mut self) -> u32 {
        self.rng().next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.rng().next_u64()
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        self.rng().fill_bytes(dst)
    }
}

impl<T, E> RetryInner<T, E> {
    fn decide(&self, result: &Result<T, Error<E>>) -> RetryDecision {
        match &self.classify {
            Some(classify) => classify(result),
            None => retry_errors(result),
        }
    }
}

/// The default classification: retry the caller's errors and timeouts.
#[inline]
fn retry_errors<T, E>(result: &Result<T, Error<E>>) -> RetryDecision {
    match result {
        Err(Error::Inner(_)) | Err(Error::Timeout(_)) => RetryDecision::Retry,
        _ => RetryDecision::Stop,
    }
}

impl<T, E> Retry<T, E> {
    /// Starts a builder with the defaults.
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// let retry = Retry::<String, std::io::Error>::builder()
    ///     .name("fetch-profile")
    ///     .max_retries(5)
    ///     .build()?;
    /// assert_eq!((retry.name().as_str(), retry.max_retries()), ("fetch-profile", 5));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
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
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// assert_eq!(Retry::<(), ()>::builder().build()?.name(), "retry"); // the default
    /// assert_eq!(Retry::<(), ()>::builder().name("search").build()?.name(), "search");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    /// Maximum retries (attempts = retries + 1).
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// assert_eq!(Retry::<(), ()>::builder().build()?.max_retries(), 3); // the default
    /// assert_eq!(Retry::<(), ()>::builder().max_retries(0).build()?.max_retries(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_retries(&self) -> u32 {
        self.inner.max_retries
    }

    /// The shared retry budget, if any.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, RetryBudget};
    /// use fusebox_policy::policy::Retry;
    /// assert!(Retry::<(), ()>::builder().build()?.budget().is_none());
    /// let budget = RetryBudget::new(BudgetConfig::builder().ratio(0.1).build()?);
    /// let retry = Retry::<(), ()>::builder().budget(budget).build()?;
    /// assert_eq!(retry.budget().map(|b| b.config().ratio()), Some(0.1));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.inner.budget.as_ref()
    }

    /// Runs `op`, retrying per this policy. `op` is called once per attempt.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Retry;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// let retry = Retry::<(), &str>::builder().max_retries(2).build()?;
    /// let calls = AtomicU32::new(0);
    /// let r = retry.call(|| async {
    ///     calls.fetch_add(1, Ordering::Relaxed);
    ///     Err("down")
    /// });
    /// assert_eq!(r.await.unwrap_err().into_inner(), Some("down")); // the last error
    /// assert_eq!(calls.load(Ordering::Relaxed), 3); // 1 attempt + 2 retries
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<F, Fut>(&self, op: F) -> Result<T, Error<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.around(|| async { op().await.map_err(Error::Inner) })
            .await
    }

    /// Runs `inner` (already mapped to fusebox errors), retrying per this policy.
    // Not an async fn: an async fn keeps its arguments twice in its future, once as passed
    // and once as locals, and stacks nest this future.
    #[inline]
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn around<F, Fut>(&self, inner: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        async move {
            // One word across the await rather than an `Option`'s two: read back as a start
            // time only when `max_elapsed` is set.
            let started = self.start_time().unwrap_or(0);
            // Scoped to this block, which ends before the next await: a future keeps every
            // local in scope at an await, moved out or not.
            let rest = {
                let first = inner().await;
                if self.passes_at_once(&first) {
                    return first;
                }
                match self.judge_first(started, first, &inner) {
                    Ok(done) => return done,
                    Err(rest) => rest,
                }
            };
            rest.await
        }
    }

    /// Whether the first result of a call goes back as it is, decided inline for the common
    /// case: no budget to count the call in, the default classification, and a result it
    /// does not retry. `false` means "ask [`first_delay`](Self::first_delay)".
    #[inline(always)]
    fn passes_at_once(&self, first: &Result<T, Error<E>>) -> bool {
        let p = &*self.inner;
        p.budget.is_none() && p.classify.is_none() && !retry_errors(first).is_retry()
    }

    /// The rest of a call whose first result was not passed at once: that result, done, or
    /// the retries, boxed so that a call that succeeds at once carries only a pointer's worth
    /// of retry state. Takes the result by value and is never inlined, so the caller's copy
    /// of it never has its address taken and can stay in registers.
    #[inline(never)]
    #[allow(clippy::type_complexity)]
    fn judge_first<'a, F, Fut>(
        &'a self,
        started: u64,
        first: Result<T, Error<E>>,
        inner: &'a F,
    ) -> Result<Result<T, Error<E>>, Pin<Box<impl Future<Output = Result<T, Error<E>>>>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        let started = self.inner.max_elapsed.map(|_| started);
        match self.first_delay_judged(started, &first) {
            None => Ok(first),
            Some((attempts, delay)) => {
                Err(Box::pin(Self::retry_rest(attempts, delay, first, inner)))
            }
        }
    }

    async fn retry_rest<F, Fut>(
        mut attempts: RetryAttempts<'_, T, E>,
        mut delay: Duration,
        last: Result<T, Error<E>>,
        inner: &F,
    ) -> Result<T, Error<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        drop(last);
        loop {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let last = inner().await;
            match attempts.next_delay(&last) {
                Some(next) => delay = next,
                None => return last,
            }
        }
    }

    /// When a call starts, if `max_elapsed` needs to know.
    #[inline]
    pub(crate) fn start_time(&self) -> Option<u64> {
        self.inner.max_elapsed.map(|_| self.inner.clock.now_nanos())
    }

    /// Judges the first result of a call that started at `started` (from
    /// [`start_time`](Self::start_time)), like [`RetryAttempts::next_delay`] on a fresh
    /// stepper. The stepper is built, boxed, only when the result is retried: a call that is
    /// not retried carries none.
    #[inline]
    pub(crate) fn first_delay(
        &self,
        started: Option<u64>,
        first: &Result<T, Error<E>>,
    ) -> Option<(Box<RetryAttempts<'_, T, E>>, Duration)> {
        if self.passes_at_once(first) {
            return None;
        }
        self.first_delay_boxed(started, first)
    }

    /// [`first_delay_judged`](Self::first_delay_judged) with the stepper boxed, out of line:
    /// a caller on the success path sees only a pointer-sized answer.
    #[inline(never)]
    fn first_delay_boxed(
        &self,
        started: Option<u64>,
        first: &Result<T, Error<E>>,
    ) -> Option<(Box<RetryAttempts<'_, T, E>>, Duration)> {
        self.first_delay_judged(started, first)
            .map(|(stepper, delay)| (Box::new(stepper), delay))
    }

    fn first_delay_judged(
        &self,
        started: Option<u64>,
        first: &Result<T, Error<E>>,
    ) -> Option<(RetryAttempts<'_, T, E>, Duration)> {
        let mut attempts = RetryAttempts::begin_at(PolicyRef::Borrowed(self), started);
        let delay = attempts.next_delay(first)?;
        Some((attempts, delay))
    }

    /// Starts the retry decisions of one call: a sans-IO stepper for callers that drive the
    /// attempts themselves (a tower service, an actor). It counts the call as a first attempt
    /// in the budget.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use fusebox_policy::policy::Retry;
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
    /// use fusebox_policy::policy::Retry;
    /// let retry = Retry::<(), ()>::builder().build()?;
    /// let attempts: fusebox_policy::policy::RetryAttempts<'static, (), ()> = retry.clone().into_attempts();
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
///
/// ```
/// use fusebox_policy::policy::Retry;
/// use fusebox_core::Error;
/// let retry = Retry::<u32, &str>::builder().max_retries(4).build()?;
/// let mut replies = [Err("busy"), Err("busy"), Ok(7)].into_iter();
/// let mut attempts = retry.attempts();
/// let mut result = replies.next().unwrap().map_err(Error::Inner);
/// while let Some(_delay) = attempts.next_delay(&result) {
///     // a real driver sleeps for `_delay` here
///     result = replies.next().unwrap().map_err(Error::Inner);
/// }
/// assert_eq!((result.unwrap(), attempts.attempt()), (7, 3));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub struct RetryAttempts<'a, T, E> {
    policy: PolicyRef<'a, T, E>,
    started: Option<u64>,
    /// How far the policy's backoff has gone; the backoff itself stays in the policy.
    delays: Cursor,
    /// Seeded only if a jittered delay is drawn.
    rng: LazyRng,
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
        let started = p.max_elapsed.map(|_| p.clock.now_nanos());
        Self::begin_at(policy, started)
    }

    /// Starts the decisions of a call that began at `started` (when `max_elapsed` is set).
    fn begin_at(policy: PolicyRef<'a, T, E>, started: Option<u64>) -> Self {
        let p = policy.inner();
        if let Some(budget) = &p.budget {
            budget.deposit(p.clock.now_nanos());
        }
        let (delays, rng) = (p.backoff.cursor(), LazyRng::new(p.seed));
        RetryAttempts {
            policy,
            started,
            delays,
            rng,
            attempt: 1,
        }
    }

    /// The attempt that produced the last result (1 for the first).
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// let retry = Retry::<(), ()>::builder().build()?;
    /// let mut attempts = retry.attempts();
    /// assert_eq!(attempts.attempt(), 1);
    /// attempts.next_delay(&Err(Error::Inner(())));
    /// assert_eq!(attempts.attempt(), 2);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Judges the result of the current attempt: `Some(delay)` to retry after `delay` (the
    /// retry is counted, reported to listeners and taken from the budget), `None` to return
    /// this result.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// use std::time::Duration;
    /// let backoff = Backoff::fixed(Duration::from_millis(20)).build()?;
    /// let retry = Retry::<u32, &str>::builder().backoff(backoff).build()?;
    /// let mut attempts = retry.attempts();
    /// let delay = attempts.next_delay(&Err(Error::Inner("busy")));
    /// assert_eq!(delay, Some(Duration::from_millis(20)));
    /// assert_eq!(attempts.next_delay(&Ok(1)), None); // Ok values are returned
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn next_delay(&mut self, last: &Result<T, Error<E>>) -> Option<Duration> {
        let decision = self.policy.inner().decide(last);
        self.delay_for(decision, last)
    }

    /// [`next_delay`](Self::next_delay) once the result is classified.
    fn delay_for(
        &mut self,
        decision: RetryDecision,
        last: &Result<T, Error<E>>,
    ) -> Option<Duration> {
        if !decision.is_retry() {
            return None;
        }
        let p = self.policy.inner();
        if self.attempt > p.max_retries {
            return self.give_up(GiveUpReason::MaxRetries);
        }
        let Some(mut delay) = p.backoff.step(&mut self.delays, &mut self.rng) else {
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
        if let Some(budget) = &p.budget
            && !budget.try_withdraw(p.clock.now_nanos())
        {
            return self.give_up(GiveUpReason::BudgetExhausted);
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
    /// [`TokioClock`](fusebox_policy::TokioClock) under `tokio::time::pause`).
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
        Ok(Retry {
            inner: Arc::new(RetryInner {
                name: self.name,
                max_retries: self.max_retries,
                max_elapsed: self.max_elapsed,
                max_retry_after: self.max_retry_after,
                backoff,
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
