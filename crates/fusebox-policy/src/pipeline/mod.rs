//! Pipelines: fallback, timeout, retry, breaker, bulkhead and cost guard stacked in the order
//! written.
//!
//! A [`Pipeline`] is one type whatever it holds, built at run time. Where the shape is fixed
//! and the call is hot, a [`Stack`](crate::stack::Stack) runs the same policies with the
//! same semantics at about the cost of the policies themselves; see [`stack`](crate::stack).
//!
//! # Order
//!
//! Policies run outermost first, as written in the builder. The usual stack is
//!
//! ```text
//! fallback -> timeout (whole call) -> retry -> breaker -> timeout (each attempt) -> bulkhead -> call
//! ```
//!
//! * **Retry outside the breaker** (the usual choice): every attempt passes the breaker and
//!   counts in its window. Once it opens, the next attempt is rejected and the retry stops at
//!   once (a rejection is not retried by default), so a dead dependency gets no retry storm.
//!   With `max_retries = 2` and a breaker that trips after 3 consecutive failures, the first
//!   call makes 3 attempts and trips the breaker; the next call is rejected without any.
//! * **Retry inside the breaker**: the retry loop runs under one breaker permit, so the
//!   breaker sees one outcome per call, only the final one. Retries are then invisible to
//!   it: 3 failed calls of 3 attempts each are 9 failed attempts but 3 breaker failures.
//!   Choose this when transient failures that a retry absorbs should not count at all.
//! * **Timeout outside the retry** bounds the whole call, retries and sleeps included;
//!   **inside** it bounds each attempt (and a timed-out attempt is retried).
//! * **Bulkhead innermost** holds a slot only while the dependency is really being called,
//!   not while a retry sleeps; outermost, it also caps calls waiting on backoff.
//! * **Fallback outermost** answers whatever stopped the call; narrow it with
//!   [`Fallback::when`](crate::policy::Fallback::when) or
//!   [`Fallback::on_rejected`](crate::policy::Fallback::on_rejected).
//! * **A cost guard inside the retry** admits and costs every attempt, since every attempt is
//!   billed; outside it, it would see one permit and only the final result per call.

#![forbid(unsafe_code)]

mod builder;
mod call;
mod slot;

use std::fmt;
use std::future::Future;
use std::sync::Arc;

pub use builder::PipelineBuilder;
use call::Call;
pub(crate) use slot::ClassifyOutcome;
use slot::Slot;

use fusebox_core::Error;
use fusebox_core::Outcome;
use fusebox_core::guard::CostPermit;

/// Deepest stack a pipeline accepts.
///
/// ```
/// use fusebox_policy::pipeline::{Pipeline, MAX_DEPTH};
/// use std::time::Duration;
/// let mut builder = Pipeline::<(), ()>::builder();
/// for _ in 0..=MAX_DEPTH {
///     builder = builder.timeout(Duration::from_secs(1));
/// }
/// assert_eq!(builder.build().unwrap_err().field(), Some("pipeline"));
/// ```
pub const MAX_DEPTH: usize = 6;

/// How a breaker inside a pipeline reads results by default: the caller's errors and
/// timeouts are failures; a rejection or a full bulkhead further in says nothing about the
/// dependency and is ignored.
pub(crate) fn breaker_outcome<T, E>(result: &Result<T, Error<E>>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(Error::Inner(_)) | Err(Error::Timeout(_)) => Outcome::Failure,
        Err(_) => Outcome::Ignored,
    }
}

/// How a level with an optional classifier of its own reads `result`: by `classify`, or as
/// a breaker does.
#[inline]
pub(crate) fn classified<T, E>(
    classify: Option<&slot::ClassifyOutcome<T, E>>,
    result: &Result<T, Error<E>>,
) -> Outcome {
    match classify {
        None => breaker_outcome(result),
        Some(c) => c(result),
    }
}

/// Settles a cost guard's permit with the result of the call it admitted. A refusal by a
/// policy further in proves the call never reached the dependency, so it cannot have cost
/// anything: the reservation is released without asking `extract`. Any other result is
/// costed by `extract`.
pub(crate) fn settle_cost<T, E>(
    permit: CostPermit<'_>,
    result: &Result<T, Error<E>>,
    extract: impl FnOnce(&Result<T, Error<E>>) -> Option<f64>,
) {
    let never_ran = matches!(result, Err(e) if e.is_refusal());
    if never_ran {
        permit.cancel();
    } else {
        permit.record(extract(result));
    }
}

/// Policies stacked in the order written, called around an async closure.
///
/// `Clone + Send + Sync`, one `Arc` inside: share it across tasks and SDK methods. A call
/// allocates nothing on the success path. A call that has to wait on a deadline (a timeout
/// while its attempt is pending, a backoff delay) allocates its timer once, the first time
/// it waits: the timer would otherwise more than double the size of every call's future.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_core::backoff::Backoff;
/// use fusebox_core::breaker::Breaker;
/// use fusebox_policy::pipeline::Pipeline;
/// use fusebox_policy::policy::{Fallback, Retry};
/// use std::time::Duration;
///
/// let pipeline = Pipeline::builder()
///     .fallback(Fallback::value("cached".to_string()).on_rejected())
///     .retry(
///         Retry::builder()
///             .max_retries(2)
///             .backoff(Backoff::fixed(Duration::from_millis(50)).build()?)
///             .build()?,
///     )
///     .breaker(Breaker::builder("profile-api").failures_in_last(2, 5).build()?)
///     .timeout(Duration::from_secs(1))
///     .build()?;
///
/// let name = pipeline.call(|| async { Ok::<_, std::io::Error>("ada".to_string()) }).await?;
/// assert_eq!(name, "ada");
/// # Ok(())
/// # }
/// ```
pub struct Pipeline<T, E> {
    slots: Arc<[Slot<T, E>]>,
}

impl<T, E> Clone for Pipeline<T, E> {
    fn clone(&self) -> Self {
        Pipeline {
            slots: Arc::clone(&self.slots),
        }
    }
}

impl<T, E> fmt::Debug for Pipeline<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.slots.iter()).finish()
    }
}

impl<T, E> Pipeline<T, E> {
    /// An empty builder.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::pipeline::Pipeline;
    /// // With no policy, a pipeline just runs the call.
    /// let empty = Pipeline::<u8, &str>::builder().build()?;
    /// assert_eq!(empty.depth(), 0);
    /// assert_eq!(empty.call(|| async { Ok(3) }).await.unwrap(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> PipelineBuilder<T, E> {
        PipelineBuilder::new()
    }

    /// The number of policies.
    ///
    /// ```
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::{Fallback, Retry};
    /// let pipeline = Pipeline::<u32, ()>::builder()
    ///     .fallback(Fallback::value(0))
    ///     .retry(Retry::builder().build()?)
    ///     .build()?;
    /// assert_eq!(pipeline.depth(), 2);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn depth(&self) -> usize {
        self.slots.len()
    }

    /// Runs `op` through every policy, outermost first. `op` is called once per attempt, so
    /// it is `Fn`: capture by reference, or clone what each attempt needs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::Retry;
    /// # use std::sync::atomic::{AtomicU32, Ordering};
    /// let pipeline = Pipeline::builder().retry(Retry::builder().max_retries(3).build()?).build()?;
    /// let attempts = AtomicU32::new(0); // captured by reference: `op` runs once per attempt
    /// let r = pipeline.call(|| async {
    ///     match attempts.fetch_add(1, Ordering::Relaxed) {
    ///         0 => Err("flaky"),
    ///         n => Ok(n),
    ///     }
    /// });
    /// assert_eq!(r.await.unwrap(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn call<F, Fut>(&self, op: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        Call::new(&self.slots, op)
    }
}
