//! The [`Policy`] trait and the layers a [`Stack`](super::Stack) is made of: the empty
//! stack, two layers nested, a policy with its result reader, and the trait for every
//! built-in policy. Apart from the stack itself, which only chains them.

use std::fmt;
use std::future::Future;

use crate::pipeline::{breaker_outcome, settle_cost};
use crate::policy::{Bulkhead, Fallback, Retry, Timeout};
use fusebox_core::Error;
use fusebox_core::Outcome;
use fusebox_core::breaker::Breaker;
use fusebox_core::guard::CostGuard;

/// A policy that a [`Stack`](super::Stack) can hold: it runs an attempt, once or more, and
/// returns a result.
///
/// Implemented by every policy fusebox has, by the stack's own layers, and by
/// [`Stack`](super::Stack) itself (so stacks nest). Implement it to add a policy of your
/// own; it sits in a stack like the built-in ones and is inlined like them.
///
/// `attempt` starts one attempt of everything inside this policy: call it once to pass the
/// call on, several times to retry, or not at all to refuse. It is `Copy`, a couple of
/// references, so a policy can keep it and hand it on by value.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_core::breaker::Breaker;
/// use fusebox_policy::stack::{Policy, Stack};
/// use fusebox_core::Error;
/// use std::future::Future;
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// /// Counts the attempts that reach it.
/// #[derive(Default)]
/// struct CountAttempts(AtomicU64);
///
/// impl<T, E> Policy<T, E> for CountAttempts {
///     fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
///     where
///         F: Fn() -> Fut + Copy,
///         Fut: Future<Output = Result<T, Error<E>>>,
///     {
///         self.0.fetch_add(1, Ordering::Relaxed);
///         attempt()
///     }
/// }
///
/// let breaker = Breaker::builder("db").consecutive_failures(1).build()?;
/// let stack = Stack::new().breaker(breaker).policy(CountAttempts::default());
/// assert!(stack.call(|| async { Err::<(), _>("down") }).await.is_err());
/// // The breaker is open: the second call never reaches the counter.
/// assert!(stack.call(|| async { Ok::<(), &str>(()) }).await.unwrap_err().is_rejected());
/// assert_eq!(stack.innermost().0.load(Ordering::Relaxed), 1);
/// # Ok(())
/// # }
/// ```
pub trait Policy<T, E> {
    /// Runs `attempt` under this policy.
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>;
}

/// The empty stack's policy: runs the attempt once, as it is.
///
/// ```
/// use fusebox_policy::stack::{Bare, Stack};
/// let stack: Stack<Bare> = Stack::new();
/// # let _ = stack;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Bare;

impl<T, E> Policy<T, E> for Bare {
    #[inline(always)]
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        attempt()
    }
}

/// Two layers of a stack: `inner` runs inside `outer`.
///
/// ```
/// use fusebox_policy::policy::Timeout;
/// use fusebox_policy::stack::{Bare, Stack, Then};
/// use std::time::Duration;
/// let stack: Stack<Then<Bare, Timeout>> = Stack::new().timeout(Duration::from_secs(1))?;
/// assert_eq!(stack.innermost().duration(), Duration::from_secs(1));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Then<Outer, Inner> {
    pub(super) outer: Outer,
    pub(super) inner: Inner,
}

impl<T, E, O, I> Policy<T, E> for Then<O, I>
where
    O: Policy<T, E>,
    I: Policy<T, E>,
{
    #[inline(always)]
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        let inner = &self.inner;
        self.outer.run(move || inner.run(attempt))
    }
}

/// A policy with the function that reads its results: a breaker with its classification
/// ([`Stack::breaker_with`](super::Stack::breaker_with)), a cost guard with its cost
/// extractor ([`Stack::cost_guard`](super::Stack::cost_guard)).
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// use fusebox_policy::stack::Stack;
/// use fusebox_core::{Error, Outcome};
/// let stack = Stack::new().breaker_with(Breaker::builder("api").build()?, |r: &Result<u16, Error<()>>| {
///     if matches!(r, Ok(503) | Err(_)) { Outcome::Failure } else { Outcome::Success }
/// });
/// assert_eq!(stack.innermost().policy().name(), "api");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct With<P, X> {
    pub(super) policy: P,
    pub(super) reader: X,
}

impl<P, X> With<P, X> {
    /// The policy.
    ///
    /// ```
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// use fusebox_policy::stack::Stack;
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(5.0).build()?).build()?;
    /// let stack = Stack::new().cost_guard(guard, |_: &Result<(), fusebox_core::Error<()>>| None::<f64>);
    /// assert_eq!(stack.innermost().policy().status().spent, 0.0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn policy(&self) -> &P {
        &self.policy
    }
}

impl<P: fmt::Debug, X> fmt::Debug for With<P, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.policy.fmt(f)
    }
}

impl<T, E, C> Policy<T, E> for With<Breaker, C>
where
    C: Fn(&Result<T, Error<E>>) -> Outcome,
{
    #[inline(always)]
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        self.policy.around(&self.reader, attempt)
    }
}

impl<T, E, X> Policy<T, E> for With<CostGuard, X>
where
    X: Fn(&Result<T, Error<E>>) -> Option<f64>,
{
    // Not an async fn, which would keep its arguments twice in its future.
    #[allow(clippy::manual_async_fn)]
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        async move {
            let permit = self
                .policy
                .try_acquire()
                .map_err(|no| Error::CostRejected(Box::new(no)))?;
            let result = attempt().await;
            settle_cost(permit, &result, &self.reader);
            result
        }
    }
}

impl<T, E> Policy<T, E> for Breaker {
    #[inline(always)]
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        self.around(breaker_outcome, attempt)
    }
}

/// `Policy` for the policies whose crate-internal `around` already runs an attempt the way a
/// stack needs.
macro_rules! policy_around {
    ($($policy:ty),*) => {$(
        impl<T, E> Policy<T, E> for $policy {
            #[inline(always)]
            fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
            where
                F: Fn() -> Fut + Copy,
                Fut: Future<Output = Result<T, Error<E>>>,
            {
                self.around(attempt)
            }
        }
    )*};
}

policy_around!(Retry<T, E>, Timeout, Bulkhead, Fallback<T, E>);

impl<O, I> Then<O, I> {
    /// The outer policies.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_policy::stack::Stack;
    /// let stack = Stack::new()
    ///     .breaker(Breaker::builder("a").build()?)
    ///     .breaker(Breaker::builder("b").build()?)
    ///     .breaker(Breaker::builder("c").build()?);
    /// assert_eq!(stack.outer().outer().inner().name(), "a");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn outer(&self) -> &O {
        &self.outer
    }

    /// The innermost policy.
    ///
    /// ```
    /// use fusebox_policy::stack::Stack;
    /// use std::time::Duration;
    /// let stack = Stack::new()
    ///     .timeout(Duration::from_secs(2))?
    ///     .timeout(Duration::from_secs(1))?;
    /// assert_eq!(stack.outer().inner().duration(), Duration::from_secs(2));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn inner(&self) -> &I {
        &self.inner
    }
}
