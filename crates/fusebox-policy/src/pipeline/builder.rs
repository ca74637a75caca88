//! [`PipelineBuilder`]: the policies of a pipeline, outermost first, validated by `build`.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use super::slot::Slot;
use super::{MAX_DEPTH, Pipeline};
use crate::policy::{
    Bulkhead, Chaos, ConcurrencyLimit, Fallback, Hedge, OutlierEndpoint, RateLimitMode,
    RateLimiter, Retry, Throttle, Timeout,
};
use fusebox_core::ConfigError;
use fusebox_core::Error;
use fusebox_core::Outcome;
use fusebox_core::breaker::Breaker;
use fusebox_core::guard::CostGuard;

/// Builds a [`Pipeline`]: each method adds a policy inside the ones before it.
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// use fusebox_policy::pipeline::Pipeline;
/// use fusebox_policy::policy::Bulkhead;
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

impl<T, E> PipelineBuilder<T, E> {
    /// An empty builder, for [`Pipeline::builder`].
    pub(super) fn new() -> Self {
        PipelineBuilder {
            slots: Vec::new(),
            error: None,
        }
    }

    fn push(mut self, slot: Slot<T, E>) -> Self {
        self.slots.push(slot);
        self
    }

    /// Adds a fallback.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::Fallback;
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
    /// use fusebox_policy::pipeline::Pipeline;
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
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::Retry;
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
    /// use fusebox_policy::pipeline::Pipeline;
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
    /// use fusebox_policy::pipeline::Pipeline;
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

    /// Adds a breaker with an optional classification already shared, for pipelines built
    /// from settings.
    pub(crate) fn breaker_classified(
        self,
        breaker: Breaker,
        classify: Option<super::slot::ClassifyOutcome<T, E>>,
    ) -> Self {
        self.push(Slot::Breaker(breaker, classify))
    }

    /// Adds a bulkhead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::Bulkhead;
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
    /// counted as the guard's [`UnknownCost`](fusebox_core::guard::UnknownCost) says).
    ///
    /// A refusal by a breaker, bulkhead, cost guard or limit further in
    /// ([`Error::is_refusal`]) proves the call never reached the dependency: its reservation
    /// is released and nothing is counted, without asking the extractor. Every other result, errors and timeouts included, goes to the extractor.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::Retry;
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

    /// Adds a rate limiter that refuses calls past its quota with
    /// [`Error::RateLimited`](fusebox_core::Error::RateLimited). A limiter in
    /// [`Wait`](crate::policy::RateLimitMode::Wait) mode is refused by `build`: a pipeline's
    /// limiter refuses at once; put a waiting one in a [`Stack`](crate::stack::Stack) or a
    /// tower layer.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::RateLimiter;
    /// let limiter = RateLimiter::builder("search").per_second(1).build()?;
    /// let pipeline = Pipeline::builder().rate_limit(limiter).build()?;
    /// assert!(pipeline.call(|| async { Ok::<_, ()>(1) }).await.is_ok());
    /// let second = pipeline.call(|| async { Ok::<_, ()>(2) }).await.unwrap_err();
    /// assert_eq!(second.stopped_by(), Some("rate_limit"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn rate_limit(mut self, limiter: RateLimiter) -> Self {
        if limiter.mode() != RateLimitMode::Reject && self.error.is_none() {
            self.error = Some(ConfigError::invalid(
                "rate_limit",
                "a pipeline's rate limiter refuses at once: build it in Reject mode, or put \
                 a waiting limiter in a Stack or a tower layer",
            ));
        }
        self.push(Slot::RateLimit(limiter))
    }

    /// Adds adaptive client-side throttling: a call is dropped locally with
    /// [`Error::Throttled`](fusebox_core::Error::Throttled) while the dependency refuses
    /// too much. What the dependency answered is read as a breaker reads it (the caller's
    /// errors and timeouts are refusals, anything else accepted); see
    /// [`throttle_with`](Self::throttle_with) to choose.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::Throttle;
    /// let throttle = Throttle::builder("quotes").seed(1).build()?;
    /// let pipeline = Pipeline::builder().throttle(throttle.clone()).build()?;
    /// for _ in 0..50 {
    ///     let _ = pipeline.call(|| async { Err::<(), _>("overloaded") }).await;
    /// }
    /// assert!(throttle.probability() > 0.9);
    /// # Ok(())
    /// # }
    /// ```
    pub fn throttle(self, throttle: Throttle) -> Self {
        self.push(Slot::Throttle(throttle, None))
    }

    /// Adds adaptive throttling with its own reading of results: `Outcome::Failure` means
    /// the dependency refused the call; anything else that it accepted it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::{Error, Outcome};
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::Throttle;
    /// let throttle = Throttle::builder("quotes").build()?;
    /// let pipeline = Pipeline::<(), &str>::builder()
    ///     .throttle_with(throttle.clone(), |r| match r {
    ///         Err(Error::Inner("overloaded")) => Outcome::Failure,
    ///         _ => Outcome::Success, // a "not found" was served
    ///     })
    ///     .build()?;
    /// for _ in 0..50 {
    ///     let _ = pipeline.call(|| async { Err("not found") }).await;
    /// }
    /// assert_eq!(throttle.probability(), 0.0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn throttle_with<C>(self, throttle: Throttle, classify: C) -> Self
    where
        C: Fn(&Result<T, Error<E>>) -> Outcome + Send + Sync + 'static,
    {
        self.push(Slot::Throttle(throttle, Some(Arc::new(classify))))
    }

    /// Adds an adaptive concurrency limit: calls past it are refused with
    /// [`Error::LimitExceeded`](fusebox_core::Error::LimitExceeded), and each call's round
    /// trip and outcome (read as a breaker reads it; see
    /// [`concurrency_limit_with`](Self::concurrency_limit_with)) move the limit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let limit = ConcurrencyLimit::builder("db").initial_limit(1).min_limit(1).build()?;
    /// let pipeline = Pipeline::builder().concurrency_limit(limit.clone()).build()?;
    /// let _held = limit.try_acquire().unwrap(); // another caller holds the only place
    /// let refused = pipeline.call(|| async { Ok::<_, ()>(1) }).await.unwrap_err();
    /// assert_eq!(refused.stopped_by(), Some("concurrency_limit"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn concurrency_limit(self, limit: ConcurrencyLimit) -> Self {
        self.push(Slot::Limit(limit, None))
    }

    /// Adds an adaptive concurrency limit with its own reading of results (a 503 `Ok`
    /// response as overload, say).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::Outcome;
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let limit = ConcurrencyLimit::builder("api").build()?;
    /// let pipeline = Pipeline::<u16, ()>::builder()
    ///     .concurrency_limit_with(limit.clone(), |r| match r {
    ///         Ok(503) | Err(_) => Outcome::Failure,
    ///         Ok(_) => Outcome::Success,
    ///     })
    ///     .build()?;
    /// assert_eq!(pipeline.call(|| async { Ok(200) }).await.unwrap(), 200);
    /// assert_eq!(limit.in_flight(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn concurrency_limit_with<C>(self, limit: ConcurrencyLimit, classify: C) -> Self
    where
        C: Fn(&Result<T, Error<E>>) -> Outcome + Send + Sync + 'static,
    {
        self.push(Slot::Limit(limit, Some(Arc::new(classify))))
    }

    /// Adds fault and latency injection (off unless the chaos policy is enabled): a drawn
    /// delay runs on the call's timer before the policies inside, then a drawn fault answers
    /// instead of the call, as `Error::Inner`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::{Chaos, Latency};
    /// use std::time::Duration;
    /// let chaos = Chaos::builder("db")
    ///     .enabled(true)
    ///     .latency(1.0, Latency::Fixed(Duration::from_millis(30)))
    ///     .fault(1.0, || "injected")
    ///     .build()?;
    /// let pipeline = Pipeline::<u32, &str>::builder().chaos(chaos).build()?;
    /// let started = tokio::time::Instant::now();
    /// let err = pipeline.call(|| async { Ok(1) }).await.unwrap_err();
    /// assert_eq!(err.into_inner(), Some("injected"));
    /// assert_eq!(started.elapsed(), Duration::from_millis(30));
    /// # Ok(())
    /// # }
    /// ```
    pub fn chaos(self, chaos: Chaos<E>) -> Self {
        self.push(Slot::Chaos(chaos))
    }

    /// Adds one endpoint of an outlier detector: calls are refused with
    /// [`Error::Ejected`](fusebox_core::Error::Ejected) while it is ejected, and counted for
    /// it otherwise (read as a breaker reads them). Give each endpoint's pipeline its own
    /// [`OutlierDetector::endpoint`](crate::policy::OutlierDetector::endpoint) of one shared
    /// detector.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("replicas").consecutive_failures(1).build()?;
    /// let [a, b] = ["10.0.0.1", "10.0.0.2"]
    ///     .map(|host| Pipeline::<(), &str>::builder().outlier(detector.endpoint(host)).build());
    /// let (a, b) = (a?, b?);
    /// b.call(|| async { Ok(()) }).await.unwrap();
    /// let _ = a.call(|| async { Err("503") }).await;
    /// let refused = a.call(|| async { Ok(()) }).await.unwrap_err();
    /// assert_eq!(refused.stopped_by(), Some("outlier_ejection"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn outlier<K>(self, endpoint: OutlierEndpoint<K>) -> Self
    where
        K: Hash + Eq + Clone + fmt::Display + Send + Sync + 'static,
    {
        self.push(Slot::Outlier(Arc::new(endpoint)))
    }

    /// Adds hedging around the attempt itself: after the hedge's delay the operation is
    /// started again (up to its `max_hedged_attempts` more), the first success answers and
    /// the other attempts are dropped; once every attempt has failed, the last failure
    /// answers. A pipeline runs its other policies once per call, so a hedge is its
    /// innermost policy: `build` refuses one with anything inside it (put the policies that
    /// should see each hedged attempt apart in a [`Stack`](crate::stack::Stack)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::Hedge;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    /// let hedge = Hedge::builder("search").delay(Duration::from_millis(50)).build()?;
    /// let pipeline = Pipeline::<&str, ()>::builder().hedge(hedge.clone()).build()?;
    /// let asked = AtomicU32::new(0);
    /// let started = tokio::time::Instant::now();
    /// let answer = pipeline
    ///     .call(|| async {
    ///         let stuck = asked.fetch_add(1, Ordering::Relaxed) == 0;
    ///         tokio::time::sleep(Duration::from_millis(if stuck { 2_000 } else { 10 })).await;
    ///         Ok(if stuck { "stuck" } else { "hedge" })
    ///     })
    ///     .await;
    /// assert_eq!(answer.unwrap(), "hedge");
    /// assert_eq!(started.elapsed(), Duration::from_millis(60));
    /// assert_eq!(hedge.stats().hedge_wins, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn hedge(self, hedge: Hedge) -> Self {
        self.push(Slot::Hedge(hedge))
    }

    /// Validates and builds the pipeline.
    ///
    /// ```
    /// use fusebox_policy::pipeline::Pipeline;
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
        let innermost = self.slots.len().saturating_sub(1);
        if self
            .slots
            .iter()
            .enumerate()
            .any(|(i, slot)| matches!(slot, Slot::Hedge(_)) && i != innermost)
        {
            return Err(ConfigError::invalid(
                "hedge",
                "a pipeline hedges the attempt itself: the hedge must be its innermost policy \
                 (put policies that should see each hedged attempt in a Stack)",
            ));
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
