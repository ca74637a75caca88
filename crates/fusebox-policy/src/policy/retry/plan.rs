//! What a retry may do, apart from what it retries: how many retries, how far apart, for how
//! long. The part of a retry that can be replaced while it runs.

use std::time::Duration;

use fusebox_core::ConfigError;
use fusebox_core::backoff::{Backoff, Jitter};

use super::Retry;

/// A retry's limits and delays: the part [`Retry::reconfigure`] replaces while calls run.
///
/// ```
/// use fusebox_policy::policy::Retry;
/// let retry = Retry::<(), ()>::builder().max_retries(2).build()?;
/// let plan = retry.plan();
/// assert_eq!((plan.max_retries, plan.max_elapsed), (2, None));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPlan {
    /// Retries after the first attempt; `0` disables retrying.
    pub max_retries: u32,
    /// Stop retrying when the next delay would take the call past this.
    pub max_elapsed: Option<Duration>,
    /// Longest server-given delay (`Retry-After`) honoured.
    pub max_retry_after: Duration,
    /// The delays between attempts.
    pub backoff: Backoff,
}

impl RetryPlan {
    /// The backoff of a retry built without one: exponential from 100 ms to 10 s, full jitter.
    pub(super) fn default_backoff() -> Result<Backoff, ConfigError> {
        Backoff::exponential(Duration::from_millis(100), Duration::from_secs(10))
            .jitter(Jitter::Full)
            .build()
    }

    /// Refuses a plan no retry can follow, naming the field.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_elapsed.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::invalid(
                "max_elapsed",
                "must be longer than zero",
            ));
        }
        Ok(())
    }
}

impl<T, E> Retry<T, E> {
    /// The current plan: limits and delays.
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// assert_eq!(Retry::<(), ()>::builder().build()?.plan().max_retries, 3);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn plan(&self) -> RetryPlan {
        self.inner.plan.current().clone()
    }

    /// Replaces the plan while the retry runs; every clone follows. A call already retrying
    /// finishes under the plan it started retrying with (its backoff sequence stays whole);
    /// calls whose first attempt fails afterwards use the new one. The classification, the
    /// budget, the listeners, the clock and the seed are kept. An invalid plan is refused
    /// with its field named, and the old one stays. Returns how many times the retry has
    /// been reconfigured.
    ///
    /// Each plan stays allocated until the retry is dropped: reconfigure when settings
    /// change, not on every call.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::backoff::Backoff;
    /// use fusebox_policy::policy::{Retry, RetryPlan};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    ///
    /// let retry = Retry::<(), &str>::builder().max_retries(1).build()?;
    /// let more = RetryPlan {
    ///     max_retries: 4,
    ///     backoff: Backoff::fixed(Duration::from_millis(10)).build()?,
    ///     ..retry.plan()
    /// };
    /// assert_eq!(retry.reconfigure(more)?, 1);
    ///
    /// let calls = AtomicU32::new(0);
    /// let _ = retry.call(|| async { calls.fetch_add(1, Ordering::Relaxed); Err("down") }).await;
    /// assert_eq!(calls.load(Ordering::Relaxed), 5); // 1 attempt + 4 retries
    ///
    /// let zero = RetryPlan { max_elapsed: Some(Duration::ZERO), ..retry.plan() };
    /// assert_eq!(retry.reconfigure(zero).unwrap_err().field(), Some("max_elapsed"));
    /// assert_eq!(retry.max_retries(), 4); // unchanged
    /// # Ok(())
    /// # }
    /// ```
    pub fn reconfigure(&self, plan: RetryPlan) -> Result<usize, ConfigError> {
        plan.validate()?;
        let revision = self.inner.plan.replace(plan);
        tracing::info!(policy = %self.inner.name, revision, "retry reconfigured");
        Ok(revision)
    }

    /// How many times the retry has been reconfigured (0: never).
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// assert_eq!(Retry::<(), ()>::builder().build()?.revision(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn revision(&self) -> usize {
        self.inner.plan.revision()
    }
}
