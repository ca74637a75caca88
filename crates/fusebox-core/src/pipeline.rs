//! Pipelines: fallback, timeout, retry, breaker, bulkhead and cost guard stacked in the order
//! written.
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
//!   [`Fallback::when`] or [`Fallback::on_rejected`].
//! * **A cost guard inside the retry** admits and costs every attempt, since every attempt is
//!   billed; outside it, it would see one permit and only the final result per call.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::ConfigError;
use crate::breaker::Breaker;
use crate::error::Error;
use crate::guard::CostGuard;
use crate::outcome::Outcome;
use crate::policy::{Bulkhead, Fallback, Retry, Timeout};

/// Deepest stack a pipeline accepts.
///
/// ```
/// use fusebox_core::pipeline::{Pipeline, MAX_DEPTH};
/// use std::time::Duration;
/// let mut builder = Pipeline::<(), ()>::builder();
/// for _ in 0..=MAX_DEPTH {
///     builder = builder.timeout(Duration::from_secs(1));
/// }
/// assert_eq!(builder.build().unwrap_err().field(), Some("pipeline"));
/// ```
pub const MAX_DEPTH: usize = 6;

type ClassifyOutcome<T, E> = Arc<dyn Fn(&Result<T, Error<E>>) -> Outcome + Send + Sync>;
type ExtractCost<T, E> = Arc<dyn Fn(&Result<T, Error<E>>) -> Option<f64> + Send + Sync>;

enum Slot<T, E> {
    Fallback(Fallback<T, E>),
    Timeout(Timeout),
    Retry(Retry<T, E>),
    Breaker(Breaker, Option<ClassifyOutcome<T, E>>),
    Bulkhead(Bulkhead),
    Cost(CostGuard, ExtractCost<T, E>),
}

impl<T, E> Clone for Slot<T, E> {
    fn clone(&self) -> Self {
        match self {
            Slot::Fallback(f) => Slot::Fallback(f.clone()),
            Slot::Timeout(t) => Slot::Timeout(*t),
            Slot::Retry(r) => Slot::Retry(r.clone()),
            Slot::Breaker(b, c) => Slot::Breaker(b.clone(), c.clone()),
            Slot::Bulkhead(b) => Slot::Bulkhead(b.clone()),
            Slot::Cost(g, x) => Slot::Cost(g.clone(), Arc::clone(x)),
        }
    }
}

impl<T, E> fmt::Debug for Slot<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Slot::Fallback(x) => x.fmt(f),
            Slot::Timeout(x) => x.fmt(f),
            Slot::Retry(x) => x.fmt(f),
            Slot::Breaker(b, _) => b.fmt(f),
            Slot::Bulkhead(x) => x.fmt(f),
            Slot::Cost(g, _) => g.fmt(f),
        }
    }
}

/// How a breaker inside a pipeline reads results by default: the caller's errors and
/// timeouts are failures; a rejection or a full bulkhead further in says nothing about the
/// dependency and is ignored.
fn breaker_outcome<T, E>(result: &Result<T, Error<E>>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(Error::Inner(_)) | Err(Error::Timeout(_)) => Outcome::Failure,
        Err(_) => Outcome::Ignored,
    }
}

/// Whether a policy further in refused the call before it reached the dependency, so it
/// cannot have cost anything.
fn never_ran<T, E>(result: &Result<T, Error<E>>) -> bool {
    matches!(
        result,
        Err(Error::Rejected(_)) | Err(Error::BulkheadFull(_)) | Err(Error::CostRejected(_))
    )
}

impl<T, E> Slot<T, E> {
    async fn around<F, Fut>(&self, inner: F) -> Result<T, Error<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        match self {
            Slot::Fallback(f) => f.run(inner).await,
            Slot::Timeout(t) => t.run(inner).await,
            Slot::Retry(r) => r.run(inner).await,
            Slot::Bulkhead(b) => b.run(inner).await,
            Slot::Breaker(b, classify) => {
                let permit = b.try_acquire().map_err(Error::Rejected)?;
                let result = inner().await;
                let outcome = match classify {
                    None => breaker_outcome(&result),
                    Some(c) => c(&result),
                };
                permit.record(outcome);
                result
            }
            Slot::Cost(g, extract) => {
                let permit = g.try_acquire().map_err(Error::CostRejected)?;
                let result = inner().await;
                if never_ran(&result) {
                    permit.cancel();
                } else {
                    permit.record(extract(&result));
                }
                result
            }
        }
    }
}

/// Policies stacked in the order written, called around an async closure.
///
/// `Clone + Send + Sync`, one `Arc` inside: share it across tasks and SDK methods. A call
/// allocates nothing on the success path.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_core::backoff::Backoff;
/// use fusebox_core::breaker::Breaker;
/// use fusebox_core::pipeline::Pipeline;
/// use fusebox_core::policy::{Fallback, Retry};
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

/// Builds a [`Pipeline`]: each method adds a policy inside the ones before it.
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// use fusebox_core::pipeline::Pipeline;
/// use fusebox_core::policy::Bulkhead;
/// use std::time::Duration;
/// let pipeline = Pipeline::<String, std::io::Error>::builder()
///     .timeout(Duration::from_secs(2)) // outermost
///     .breaker(Breaker::builder("users").build()?)
///     .bulkhead(Bulkhead::builder("users").max_concurrent(8).build()?) // innermost
///     .build()?;
/// assert_eq!(pipeline.depth(), 3);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use]
pub struct PipelineBuilder<T, E> {
    slots: Vec<Slot<T, E>>,
    error: Option<ConfigError>,
}

impl<T, E> fmt::Debug for PipelineBuilder<T, E> {
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
    /// use fusebox_core::pipeline::Pipeline;
    /// // With no policy, a pipeline just runs the call.
    /// let empty = Pipeline::<u8, &str>::builder().build()?;
    /// assert_eq!(empty.depth(), 0);
    /// assert_eq!(empty.call(|| async { Ok(3) }).await.unwrap(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> PipelineBuilder<T, E> {
        PipelineBuilder {
            slots: Vec::new(),
            error: None,
        }
    }

    /// The number of policies.
    ///
    /// ```
    /// use fusebox_core::pipeline::Pipeline;
    /// use fusebox_core::policy::{Fallback, Retry};
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
    /// use fusebox_core::pipeline::Pipeline;
    /// use fusebox_core::policy::Retry;
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
    pub async fn call<F, Fut>(&self, op: F) -> Result<T, Error<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let op = || async { op().await.map_err(Error::Inner) };
        self.level0(&op).await
    }
}

// Each level is its own function so the whole stack is one future of known size: no
// boxing, no recursion, and auto traits (Send) follow from the caller's closure.
macro_rules! levels {
    ($($name:ident $idx:literal => $next:ident;)*) => {$(
        fn $name<'a, F, Fut>(&'a self, op: &'a F) -> impl Future<Output = Result<T, Error<E>>> + 'a
        where
            F: Fn() -> Fut,
            Fut: Future<Output = Result<T, Error<E>>> + 'a,
        {
            async move {
                match self.slots.get($idx) {
                    None => op().await,
                    Some(slot) => slot.around(|| self.$next(op)).await,
                }
            }
        }
    )*};
}

impl<T, E> Pipeline<T, E> {
    levels! {
        level0 0 => level1;
        level1 1 => level2;
        level2 2 => level3;
        level3 3 => level4;
        level4 4 => level5;
        level5 5 => level6;
    }

    fn level6<'a, F, Fut>(&'a self, op: &'a F) -> impl Future<Output = Result<T, Error<E>>> + 'a
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>> + 'a,
    {
        op()
    }
}

impl<T, E> PipelineBuilder<T, E> {
    fn push(mut self, slot: Slot<T, E>) -> Self {
        self.slots.push(slot);
        self
    }

    /// Adds a fallback.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::pipeline::Pipeline;
    /// use fusebox_core::policy::Fallback;
    /// # use std::time::Duration;
    /// let pipeline = Pipeline::builder()
    ///     .fallback(Fallback::value("cached"))
    ///     .timeout(Duration::from_millis(100))
    ///     .build()?;
    /// let r = pipeline.call(|| async {
    ///     tokio::time::sleep(Duration::from_secs(1)).await;
    ///     Ok::<_, ()>("fresh")
    /// });
    /// assert_eq!(r.await.unwrap(), "cached"); // the timeout's error was answered
    /// # Ok(())
    /// # }
    /// ```
    pub fn fallback(self, fallback: Fallback<T, E>) -> Self {
        self.push(Slot::Fallback(fallback))
    }

    /// Adds a timeout: for each attempt when inside a retry, for the whole call outside.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::pipeline::Pipeline;
    /// use std::time::Duration;
    /// let pipeline = Pipeline::builder().timeout(Duration::from_millis(100)).build()?;
    /// let slow = pipeline.call(|| async {
    ///     tokio::time::sleep(Duration::from_secs(1)).await;
    ///     Ok::<_, ()>(())
    /// });
    /// assert_eq!(slow.await.unwrap_err().stopped_by(), Some("timeout"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn timeout(mut self, after: Duration) -> Self {
        match Timeout::new(after) {
            Ok(t) => self.push(Slot::Timeout(t)),
            Err(e) => {
                self.error.get_or_insert(e);
                self
            }
        }
    }

    /// Adds a retry policy.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::pipeline::Pipeline;
    /// use fusebox_core::policy::Retry;
    /// # use std::sync::atomic::{AtomicU32, Ordering};
    /// let pipeline = Pipeline::builder().retry(Retry::builder().max_retries(2).build()?).build()?;
    /// let attempts = AtomicU32::new(0);
    /// let r = pipeline.call(|| async {
    ///     attempts.fetch_add(1, Ordering::Relaxed);
    ///     Err::<(), _>("down")
    /// });
    /// assert!(r.await.is_err());
    /// assert_eq!(attempts.load(Ordering::Relaxed), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn retry(self, retry: Retry<T, E>) -> Self {
        self.push(Slot::Retry(retry))
    }

    /// Adds a circuit breaker, reading results the default way: the caller's errors and
    /// timeouts are failures, rejections and full bulkheads further in are ignored.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_core::pipeline::Pipeline;
    /// let breaker = Breaker::builder("db").consecutive_failures(1).build()?;
    /// let pipeline = Pipeline::builder().breaker(breaker).build()?;
    /// let first = pipeline.call(|| async { Err::<(), _>("down") }).await;
    /// assert!(first.unwrap_err().inner().is_some()); // ran and failed: the breaker trips
    /// let second = pipeline.call(|| async { Ok(()) }).await;
    /// assert!(second.unwrap_err().is_rejected());
    /// # Ok(())
    /// # }
    /// ```
    pub fn breaker(self, breaker: Breaker) -> Self {
        self.push(Slot::Breaker(breaker, None))
    }

    /// Adds a circuit breaker with its own classification of results (a 503 `Ok` response
    /// as a failure, say).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::pipeline::Pipeline;
    /// use fusebox_core::Outcome;
    /// let breaker = Breaker::builder("api").consecutive_failures(1).build()?;
    /// let pipeline = Pipeline::<u16, ()>::builder()
    ///     .breaker_with(breaker.clone(), |r| match r {
    ///         Ok(503) | Err(_) => Outcome::Failure,
    ///         Ok(_) => Outcome::Success,
    ///     })
    ///     .build()?;
    /// assert_eq!(pipeline.call(|| async { Ok(503) }).await.unwrap(), 503);
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok(())
    /// # }
    /// ```
    pub fn breaker_with<C>(self, breaker: Breaker, classify: C) -> Self
    where
        C: Fn(&Result<T, Error<E>>) -> Outcome + Send + Sync + 'static,
    {
        self.push(Slot::Breaker(breaker, Some(Arc::new(classify))))
    }

    /// Adds a bulkhead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::pipeline::Pipeline;
    /// use fusebox_core::policy::Bulkhead;
    /// let bulkhead = Bulkhead::builder("db").max_concurrent(1).build()?;
    /// let pipeline = Pipeline::builder().bulkhead(bulkhead.clone()).build()?;
    /// let _busy = bulkhead.try_enter(); // another caller holds the only slot
    /// let r = pipeline.call(|| async { Ok::<_, ()>(1) }).await;
    /// assert_eq!(r.unwrap_err().stopped_by(), Some("bulkhead"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn bulkhead(self, bulkhead: Bulkhead) -> Self {
        self.push(Slot::Bulkhead(bulkhead))
    }

    /// Adds a cost guard; `extractor` tells each call's cost from its result (`None`: unknown,
    /// counted as the guard's [`UnknownCost`](crate::guard::UnknownCost) says).
    ///
    /// A refusal by a breaker, bulkhead or cost guard further in proves the call never reached
    /// the dependency: its reservation is released and nothing is counted, without asking the
    /// extractor. Every other result, errors and timeouts included, goes to the extractor.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// use fusebox_core::pipeline::Pipeline;
    /// use fusebox_core::policy::Retry;
    /// use fusebox_core::Error;
    ///
    /// #[derive(Debug)]
    /// struct Reply { tokens: u32 }
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let pipeline = Pipeline::builder()
    ///     .retry(Retry::builder().max_retries(1).build()?)
    ///     .cost_guard(guard.clone(), |r: &Result<Reply, Error<std::io::Error>>| match r {
    ///         Ok(reply) => Some(f64::from(reply.tokens) * 0.001),
    ///         Err(_) => Some(0.0),
    ///     })
    ///     .build()?;
    ///
    /// let reply = pipeline.call(|| async { Ok(Reply { tokens: 600 }) }).await?;
    /// assert_eq!(reply.tokens, 600);
    /// assert_eq!(guard.status().spent, 0.6);
    /// pipeline.call(|| async { Ok(Reply { tokens: 400 }) }).await?;
    /// let refused = pipeline.call(|| async { Ok(Reply { tokens: 1 }) }).await.unwrap_err();
    /// assert_eq!(refused.stopped_by(), Some("cost_guard"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn cost_guard<X>(self, guard: CostGuard, extractor: X) -> Self
    where
        X: Fn(&Result<T, Error<E>>) -> Option<f64> + Send + Sync + 'static,
    {
        self.push(Slot::Cost(guard, Arc::new(extractor)))
    }

    /// Validates and builds the pipeline.
    ///
    /// ```
    /// use fusebox_core::pipeline::Pipeline;
    /// use std::time::Duration;
    /// let ok = Pipeline::<(), ()>::builder().timeout(Duration::from_secs(1)).build()?;
    /// assert_eq!(ok.depth(), 1);
    /// let bad = Pipeline::<(), ()>::builder().timeout(Duration::ZERO).build();
    /// assert_eq!(bad.unwrap_err().field(), Some("timeout"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<Pipeline<T, E>, ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.slots.len() > MAX_DEPTH {
            return Err(ConfigError::invalid(
                "pipeline",
                format!("at most {MAX_DEPTH} policies, got {}", self.slots.len()),
            ));
        }
        Ok(Pipeline {
            slots: self.slots.into(),
        })
    }
}
