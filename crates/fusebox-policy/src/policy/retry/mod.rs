//! Retry with backoff, Retry-After hints and a retry budget.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use fusebox_core::Error;
use fusebox_core::breaker::Name;
use fusebox_core::budget::RetryBudget;
use fusebox_core::clock::SharedClock;
use fusebox_core::revisions::Revisions;
use rand::RngCore;
use rand::rngs::SmallRng;

mod attempts;
mod builder;
mod decision;
mod plan;

use attempts::PolicyRef;
pub use attempts::RetryAttempts;
pub use builder::RetryBuilder;
pub use plan::RetryPlan;

/// The start of a call whose plan set no `max_elapsed`: it is not timed.
const NOT_TIMED: u64 = u64::MAX;
pub use decision::{GiveUpReason, RetryAfterHint, RetryDecision, RetryEvent, RetryReason};

pub(super) type Classify<T, E> = Arc<dyn Fn(&Result<T, Error<E>>) -> RetryDecision + Send + Sync>;
pub(super) type OnRetry = Arc<dyn Fn(&RetryEvent) + Send + Sync>;
pub(super) type OnGiveUp = Arc<dyn Fn(&Name, GiveUpReason) + Send + Sync>;

pub(super) struct RetryInner<T, E> {
    pub(super) name: Name,
    /// How many retries, how far apart, for how long: replaced by a reconfiguration.
    pub(super) plan: Revisions<RetryPlan>,
    /// `None`: the default, [`retry_errors`], called directly rather than through a pointer.
    pub(super) classify: Option<Classify<T, E>>,
    pub(super) budget: Option<RetryBudget>,
    pub(super) seed: Option<u64>,
    pub(super) clock: SharedClock,
    pub(super) on_retry: Vec<OnRetry>,
    pub(super) on_give_up: Vec<OnGiveUp>,
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
    pub(super) inner: Arc<RetryInner<T, E>>,
}

impl<T, E> RetryInner<T, E> {
    /// Revision `revision` of the plan, noted by a call when it began retrying.
    pub(super) fn plan_at(&self, revision: usize) -> &RetryPlan {
        // Revisions are never removed: one noted from `revision()` is always there.
        self.plan
            .get(revision)
            .unwrap_or_else(|| self.plan.current())
    }
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
            .field("plan", self.inner.plan.current())
            .field("budget", &self.inner.budget.is_some())
            .finish()
    }
}

/// The jitter generator of one call, seeded on its first draw: a backoff without jitter
/// (a fixed delay, say) never seeds one. The policy's seed makes the draws reproducible;
/// without one, seeds come from a cheap per-thread sequence rather than the operating system
/// or the thread's cryptographic generator, since jitter only needs to differ between calls
/// and clients, not to be secret.
pub(super) struct LazyRng {
    pub(super) seed: Option<u64>,
    pub(super) rng: Option<SmallRng>,
}

impl LazyRng {
    pub(super) fn new(seed: Option<u64>) -> Self {
        LazyRng { seed, rng: None }
    }

    pub(super) fn rng(&mut self) -> &mut SmallRng {
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
    pub(super) fn decide(&self, result: &Result<T, Error<E>>) -> RetryDecision {
        match &self.classify {
            Some(classify) => classify(result),
            None => retry_errors(result),
        }
    }
}

/// The default classification: retry the caller's errors and timeouts.
#[inline]
pub(super) fn retry_errors<T, E>(result: &Result<T, Error<E>>) -> RetryDecision {
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
        self.inner.plan.current().max_retries
    }

    /// The seed of the jitter, when one was given.
    #[cfg(feature = "reload")]
    pub(crate) fn seed(&self) -> Option<u64> {
        self.inner.seed
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
            let started = self.start_time().unwrap_or(NOT_TIMED);
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
    pub(super) fn passes_at_once(&self, first: &Result<T, Error<E>>) -> bool {
        let p = &*self.inner;
        p.budget.is_none() && p.classify.is_none() && !retry_errors(first).is_retry()
    }

    /// The rest of a call whose first result was not passed at once: that result, done, or
    /// the retries, boxed so that a call that succeeds at once carries only a pointer's worth
    /// of retry state. Takes the result by value and is never inlined, so the caller's copy
    /// of it never has its address taken and can stay in registers.
    #[inline(never)]
    #[allow(clippy::type_complexity)]
    pub(super) fn judge_first<'a, F, Fut>(
        &'a self,
        started: u64,
        first: Result<T, Error<E>>,
        inner: &'a F,
    ) -> Result<Result<T, Error<E>>, Pin<Box<impl Future<Output = Result<T, Error<E>>>>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        // `started` is `NOT_TIMED` when the plan had no `max_elapsed` at the call's start.
        let started = (started != NOT_TIMED).then_some(started);
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
        let plan = self.inner.plan.current();
        plan.max_elapsed.map(|_| self.inner.clock.now_nanos())
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
    pub(super) fn first_delay_boxed(
        &self,
        started: Option<u64>,
        first: &Result<T, Error<E>>,
    ) -> Option<(Box<RetryAttempts<'_, T, E>>, Duration)> {
        self.first_delay_judged(started, first)
            .map(|(stepper, delay)| (Box::new(stepper), delay))
    }

    pub(super) fn first_delay_judged(
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
