//! Typed policy stacks: the same policies as a [`Pipeline`](crate::pipeline::Pipeline), with
//! the stack's shape in its type.
//!
//! A [`Stack`] is built like a pipeline, outermost policy first, and runs the same way: the
//! same policies, the same order rules (see [the pipeline's docs](crate::pipeline#order)), the
//! same [`Error`] telling which policy stopped a call. What differs is where the shape lives.
//! A `Pipeline` keeps its policies in a list chosen at run time, walked by one state machine:
//! one type, whatever it holds, easy to store and to pass around. A `Stack` nests one generic
//! layer per policy, so the compiler sees through the whole call and inlines it, like a tower
//! `Layer` stack. Its success path costs about what the policies themselves do; the price is
//! a type that spells out its policies.
//!
//! | | [`Pipeline`](crate::pipeline::Pipeline) | [`Stack`] |
//! |---|---|---|
//! | type | `Pipeline<T, E>`, whatever the policies | one type per shape |
//! | built | at run time, validated by `build()` | at compile time, nothing left to validate |
//! | policies | fallback, timeout, retry, breaker, bulkhead, cost guard, rate limiter (refusing), throttle, concurrency limit, chaos, an outlier detector's endpoint, hedging (innermost) | every policy fusebox has (waiting rate limiters too), anywhere, and your own ([`Policy`]) |
//! | success path, retry + breaker | 2.5-3x a bare breaker | 1.2-1.4x a bare breaker |
//!
//! Reach for a `Stack` where the shape is fixed and the call is hot; a `Pipeline` where the
//! shape comes from configuration, or where one type must hold whichever stack was chosen.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use fusebox_core::backoff::Backoff;
//! use fusebox_core::breaker::Breaker;
//! use fusebox_policy::policy::{Fallback, Retry};
//! use fusebox_policy::stack::Stack;
//! use std::time::Duration;
//!
//! let stack = Stack::new()
//!     .fallback(Fallback::value("cached".to_string()).on_rejected())
//!     .retry(
//!         Retry::builder()
//!             .max_retries(2)
//!             .backoff(Backoff::fixed(Duration::from_millis(50)).build()?)
//!             .build()?,
//!     )
//!     .breaker(Breaker::builder("profile-api").failures_in_last(2, 5).build()?)
//!     .timeout(Duration::from_secs(1))?;
//!
//! let name = stack.call(|| async { Ok::<_, std::io::Error>("ada".to_string()) }).await?;
//! assert_eq!(name, "ada");
//! # Ok(())
//! # }
//! ```
//!
//! # Storing a stack
//!
//! A stack's type lists its policies, outermost first, each wrapped around the ones before
//! it by [`Then`]. Give it a name with a type alias to keep it in a struct. Keep the type
//! concrete where a call's future must be `Send` (to spawn it, say): the compiler proves a
//! stack's future `Send` from the policies it holds, which generic code over `P: Policy`
//! does not know.
//!
//! ```
//! use fusebox_core::breaker::Breaker;
//! use fusebox_policy::policy::Retry;
//! use fusebox_policy::stack::{Bare, Stack, Then};
//!
//! type Guarded<T> = Stack<Then<Then<Bare, Retry<T, std::io::Error>>, Breaker>>;
//!
//! #[derive(Clone)]
//! struct UsersClient {
//!     stack: Guarded<String>,
//! }
//!
//! impl UsersClient {
//!     async fn name(&self, id: u32) -> Result<String, fusebox_core::Error<std::io::Error>> {
//!         self.stack.call(|| async move { Ok(format!("user-{id}")) }).await
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = UsersClient {
//!     stack: Stack::new()
//!         .retry(Retry::builder().max_retries(2).build()?)
//!         .breaker(Breaker::builder("users").build()?),
//! };
//! let spawned = tokio::spawn({
//!     let client = client.clone();
//!     async move { client.name(7).await }
//! });
//! assert_eq!(spawned.await??, "user-7");
//! # Ok(())
//! # }
//! ```
//!
//! This file holds the stack and its builder methods; the [`Policy`] trait and the layers
//! a stack nests ([`Bare`], [`Then`], [`With`]) are in `layer`.

mod layer;

pub use layer::{Bare, Policy, Then, With};

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use crate::policy::{Bulkhead, Fallback, Hedge, Retry, Timeout};
use fusebox_core::ConfigError;
use fusebox_core::Error;
use fusebox_core::breaker::Breaker;
use fusebox_core::guard::CostGuard;

/// Policies stacked in the order written, with the stack's shape in its type (see the
/// [module docs](self) for how it compares with a [`Pipeline`](crate::pipeline::Pipeline)).
///
/// Each method adds a policy inside the ones before it and returns the larger stack; there
/// is nothing to validate at the end, since every policy was validated when it was built.
/// Cloning a stack clones each policy, a reference count apiece: clone it into tasks freely,
/// or share one behind an `Arc`. It is `Send + Sync` when its policies are (the built-in ones
/// are).
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_core::breaker::Breaker;
/// use fusebox_policy::policy::Retry;
/// use fusebox_policy::stack::Stack;
/// # use std::sync::atomic::{AtomicU32, Ordering};
///
/// let stack = Stack::new()
///     .retry(Retry::builder().max_retries(3).build()?)
///     .breaker(Breaker::builder("search").build()?);
/// let attempts = AtomicU32::new(0); // captured by reference: `op` runs once per attempt
/// let r = stack.call(|| async {
///     match attempts.fetch_add(1, Ordering::Relaxed) {
///         0 => Err("flaky"),
///         n => Ok(n),
///     }
/// });
/// assert_eq!(r.await.unwrap(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[must_use]
pub struct Stack<P> {
    policies: P,
}

impl Stack<Bare> {
    /// An empty stack, which runs a call as it is.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use fusebox_policy::stack::Stack;
    /// let empty = Stack::new();
    /// assert_eq!(empty.call(|| async { Ok::<_, ()>(3) }).await.unwrap(), 3);
    /// # }
    /// ```
    pub fn new() -> Self {
        Stack { policies: Bare }
    }
}

impl<P> Stack<P> {
    /// Adds `policy` inside the policies already in the stack.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_policy::stack::Stack;
    /// let stack = Stack::new().policy(Breaker::builder("db").build()?);
    /// assert_eq!(stack.innermost().name(), "db");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn policy<Q>(self, policy: Q) -> Stack<Then<P, Q>> {
        Stack {
            policies: Then {
                outer: self.policies,
                inner: policy,
            },
        }
    }

    /// Adds a fallback.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Fallback;
    /// use fusebox_policy::stack::Stack;
    /// # use std::time::Duration;
    /// let stack = Stack::new()
    ///     .fallback(Fallback::value("cached"))
    ///     .timeout(Duration::from_millis(100))?;
    /// let r = stack.call(|| async {
    ///     tokio::time::sleep(Duration::from_secs(1)).await;
    ///     Ok::<_, ()>("fresh")
    /// });
    /// assert_eq!(r.await.unwrap(), "cached"); // the timeout's error was answered
    /// # Ok(())
    /// # }
    /// ```
    pub fn fallback<T, E>(self, fallback: Fallback<T, E>) -> Stack<Then<P, Fallback<T, E>>> {
        self.policy(fallback)
    }

    /// Adds a timeout of `after`: for each attempt when inside a retry, for the whole call
    /// outside. The same call as [`PipelineBuilder::timeout`](crate::pipeline::PipelineBuilder::timeout);
    /// a stack has no `build()`, so a zero duration is refused here, with the same error.
    /// A [`Timeout`] built beforehand goes in with [`policy`](Self::policy).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::stack::Stack;
    /// use std::time::Duration;
    /// let stack = Stack::new().timeout(Duration::from_millis(100))?;
    /// let slow = stack.call(|| async {
    ///     tokio::time::sleep(Duration::from_secs(1)).await;
    ///     Ok::<_, ()>(())
    /// });
    /// assert_eq!(slow.await.unwrap_err().stopped_by(), Some("timeout"));
    ///
    /// let zero = Stack::new().timeout(Duration::ZERO).unwrap_err();
    /// assert_eq!(zero.field(), Some("timeout"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn timeout(self, after: Duration) -> Result<Stack<Then<P, Timeout>>, ConfigError> {
        Ok(self.policy(Timeout::new(after)?))
    }

    /// Adds a retry policy.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_policy::stack::Stack;
    /// # use std::sync::atomic::{AtomicU32, Ordering};
    /// let stack = Stack::new().retry(Retry::builder().max_retries(2).build()?);
    /// let attempts = AtomicU32::new(0);
    /// let r = stack.call(|| async {
    ///     attempts.fetch_add(1, Ordering::Relaxed);
    ///     Err::<(), _>("down")
    /// });
    /// assert!(r.await.is_err());
    /// assert_eq!(attempts.load(Ordering::Relaxed), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn retry<T, E>(self, retry: Retry<T, E>) -> Stack<Then<P, Retry<T, E>>> {
        self.policy(retry)
    }

    /// Adds a circuit breaker, reading results the default way: the caller's errors and
    /// timeouts are failures, rejections and full bulkheads further in are ignored.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_policy::stack::Stack;
    /// let breaker = Breaker::builder("db").consecutive_failures(1).build()?;
    /// let stack = Stack::new().breaker(breaker);
    /// let first = stack.call(|| async { Err::<(), _>("down") }).await;
    /// assert!(first.unwrap_err().inner().is_some()); // ran and failed: the breaker trips
    /// let second = stack.call(|| async { Ok::<(), &str>(()) }).await;
    /// assert!(second.unwrap_err().is_rejected());
    /// # Ok(())
    /// # }
    /// ```
    pub fn breaker(self, breaker: Breaker) -> Stack<Then<P, Breaker>> {
        self.policy(breaker)
    }

    /// Adds a circuit breaker with its own classification of results (a 503 `Ok` response
    /// as a failure, say).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_policy::stack::Stack;
    /// use fusebox_core::{Error, Outcome};
    /// let breaker = Breaker::builder("api").consecutive_failures(1).build()?;
    /// let stack = Stack::new().breaker_with(breaker.clone(), |r: &Result<u16, Error<()>>| match r {
    ///     Ok(503) | Err(_) => Outcome::Failure,
    ///     Ok(_) => Outcome::Success,
    /// });
    /// assert_eq!(stack.call(|| async { Ok(503) }).await.unwrap(), 503);
    /// assert_eq!(breaker.state(), State::Open);
    /// # Ok(())
    /// # }
    /// ```
    pub fn breaker_with<C>(
        self,
        breaker: Breaker,
        classify: C,
    ) -> Stack<Then<P, With<Breaker, C>>> {
        self.policy(With {
            policy: breaker,
            reader: classify,
        })
    }

    /// Adds a bulkhead.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Bulkhead;
    /// use fusebox_policy::stack::Stack;
    /// let bulkhead = Bulkhead::builder("db").max_concurrent(1).build()?;
    /// let stack = Stack::new().bulkhead(bulkhead.clone());
    /// let _busy = bulkhead.try_enter(); // another caller holds the only slot
    /// let r = stack.call(|| async { Ok::<_, ()>(1) }).await;
    /// assert_eq!(r.unwrap_err().stopped_by(), Some("bulkhead"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn bulkhead(self, bulkhead: Bulkhead) -> Stack<Then<P, Bulkhead>> {
        self.policy(bulkhead)
    }

    /// Adds hedging: every call through the stack is sent again after the hedge's delay if
    /// it has not succeeded, and the first success wins. The policies inside the hedge run
    /// once per attempt; put it outside a breaker or a timeout so that each attempt passes
    /// them, and only on stacks whose calls are safe to send twice.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Hedge;
    /// use fusebox_policy::stack::Stack;
    /// use std::time::Duration;
    /// let hedge = Hedge::builder("search").delay(Duration::from_millis(10)).build()?;
    /// let stack = Stack::new().hedge(hedge.clone()).timeout(Duration::from_secs(1))?;
    /// assert_eq!(stack.call(|| async { Ok::<_, ()>(1) }).await.unwrap(), 1);
    /// assert_eq!(hedge.stats().hedges_sent, 0); // answered at once: nothing to hedge
    /// # Ok(())
    /// # }
    /// ```
    pub fn hedge(self, hedge: Hedge) -> Stack<Then<P, Hedge>> {
        self.policy(hedge)
    }

    /// Adds a cost guard; `extractor` tells each call's cost from its result, as for
    /// [`PipelineBuilder::cost_guard`](crate::pipeline::PipelineBuilder::cost_guard): a
    /// refusal further in releases the reservation without asking it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// use fusebox_policy::stack::Stack;
    /// use fusebox_core::Error;
    ///
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let stack = Stack::new().cost_guard(guard.clone(), |r: &Result<u32, Error<std::io::Error>>| {
    ///     r.as_ref().ok().map(|tokens| f64::from(*tokens) * 0.001)
    /// });
    /// assert_eq!(stack.call(|| async { Ok(600) }).await?, 600);
    /// assert_eq!(guard.status().spent, 0.6);
    /// # Ok(())
    /// # }
    /// ```
    pub fn cost_guard<X>(
        self,
        guard: CostGuard,
        extractor: X,
    ) -> Stack<Then<P, With<CostGuard, X>>> {
        self.policy(With {
            policy: guard,
            reader: extractor,
        })
    }

    /// Runs `op` through every policy, outermost first. `op` is called once per attempt, so
    /// it is `Fn`: capture by reference, or clone what each attempt needs.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_policy::stack::Stack;
    /// let stack = Stack::new().breaker(Breaker::builder("db").build()?);
    /// let rows = stack.call(|| async { Ok::<_, std::io::Error>(vec![1, 2]) }).await;
    /// assert_eq!(rows.unwrap(), [1, 2]);
    /// # Ok(())
    /// # }
    /// ```
    // Not an async fn, which would keep its arguments twice in its future.
    #[allow(clippy::manual_async_fn)]
    #[inline]
    pub fn call<T, E, F, Fut>(&self, op: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        P: Policy<T, E>,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        async move {
            // Borrows `op`, so the closure handed down is `Copy`: a reference.
            self.policies
                .run(|| MapInner {
                    fut: op(),
                    _error: PhantomData,
                })
                .await
        }
    }
}

impl<T, E, P: Policy<T, E>> Policy<T, E> for Stack<P> {
    #[inline(always)]
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        self.policies.run(attempt)
    }
}

impl<O, I> Stack<Then<O, I>> {
    /// The policy added last, the innermost.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_policy::stack::Stack;
    /// let stack = Stack::new()
    ///     .retry(Retry::<(), ()>::builder().build()?)
    ///     .breaker(Breaker::builder("db").build()?);
    /// assert_eq!(stack.innermost().name(), "db");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn innermost(&self) -> &I {
        &self.policies.inner
    }

    /// The policies outside the innermost one.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_policy::stack::Stack;
    /// let stack = Stack::new()
    ///     .retry(Retry::<(), ()>::builder().name("outer").build()?)
    ///     .breaker(Breaker::builder("db").build()?);
    /// assert_eq!(stack.outer().inner().name(), "outer");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn outer(&self) -> &O {
        &self.policies.outer
    }
}

pin_project! {
    /// The caller's future with its error wrapped as [`Error::Inner`].
    struct MapInner<Fut, E> {
        #[pin]
        fut: Fut,
        _error: PhantomData<fn() -> E>,
    }
}

impl<T, E, Fut> Future for MapInner<Fut, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Error<E>>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().fut.poll(cx) {
            Poll::Ready(result) => Poll::Ready(result.map_err(Error::Inner)),
            Poll::Pending => Poll::Pending,
        }
    }
}
