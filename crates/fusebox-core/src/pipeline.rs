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
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::ConfigError;
use crate::breaker::{Breaker, Permit};
use crate::error::{BulkheadFull, Error, TimedOut};
use crate::guard::{CostGuard, CostPermit};
use crate::outcome::Outcome;
use crate::policy::{
    Answer, BoxFuture, Bulkhead, BulkheadSlot, Fallback, Retry, RetryAttempts, Timeout,
};

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
    pub fn call<F, Fut>(&self, op: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        Call {
            leaf: Leaf::Start,
            timer: Timer::Unset,
            levels: ManuallyDrop::new([const { Level::Idle }; MAX_DEPTH]),
            slots: &self.slots,
            op,
            depth: 0,
        }
    }
}

// One call is one hand-written state machine rather than one nested future per policy: the
// future holds the attempt in flight, one small state per policy entered and one timer shared
// by every timeout and backoff delay, so it stays small, and a call that succeeds at once walks
// down the stack and back up without allocating, reading the clock or touching a timer unless
// a policy in the stack asks for it.

pin_project! {
    /// The future of [`Pipeline::call`].
    struct Call<'a, T, E, F, Fut> {
        #[pin]
        leaf: Leaf<'a, T, E, Fut>,
        #[pin]
        timer: Timer,
        // The state of each policy, outermost first. Those from `depth` on are always idle,
        // so dropping the call only visits the policies it is inside.
        levels: ManuallyDrop<[Level<'a, T, E>; MAX_DEPTH]>,
        depth: usize,
        slots: &'a [Slot<T, E>],
        op: F,
    }

    impl<'a, T, E, F, Fut> PinnedDrop for Call<'a, T, E, F, Fut> {
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            // The attempt in flight is cancelled before the permits and slots it runs under
            // are released, innermost first, as nested futures would be.
            this.leaf.set(Leaf::Empty);
            for level in this.levels[..*this.depth].iter_mut().rev() {
                *level = Level::Idle;
            }
        }
    }
}

type QueueWait<'a> =
    Pin<Box<dyn Future<Output = Result<BulkheadSlot<'a>, BulkheadFull>> + Send + 'a>>;

pin_project! {
    /// What the call is waiting on, below every active policy.
    #[project = LeafProj]
    enum Leaf<'a, T, E, Fut> {
        // Not polled yet.
        Start,
        // An attempt: the caller's future.
        Op { #[pin] fut: Fut },
        // The fallback at `level` answering with its handler.
        Fallback { level: usize, fut: BoxFuture<T, E> },
        // The bulkhead at `level` waiting in its queue.
        Queue { level: usize, fut: QueueWait<'a> },
        // The retry at `level` waiting before its next attempt (`None`: longer than the clock
        // can represent).
        Backoff { level: usize, until: Option<Instant> },
        // Finished, or between two states inside `poll`.
        Empty,
    }
}

pin_project! {
    /// One timer for the earliest of the active deadlines, made the first time one is needed.
    #[project = TimerProj]
    enum Timer {
        Unset,
        Set { #[pin] sleep: Sleep },
    }
}

/// The state of one policy while the call is inside it.
enum Level<'a, T, E> {
    /// Not entered, or a policy that keeps no state (a fallback).
    Idle,
    Breaker(Permit<'a>),
    Cost(CostPermit<'a>),
    /// Held for its drop, which frees the slot.
    Bulkhead {
        _slot: BulkheadSlot<'a>,
    },
    /// When the timeout expires (`None`: later than the clock can represent).
    Timeout(Option<Instant>),
    /// The decisions are made at the first result, and kept (boxed) only if it is retried.
    Retry {
        started: Option<u64>,
        attempts: Option<Box<RetryAttempts<'a, T, E>>>,
    },
}

/// Where the call goes after a policy has handled a result.
enum Next<T, E> {
    /// Finished with this result.
    Done(Result<T, Error<E>>),
    /// A retry starts another attempt: enter the policies from this index.
    Descend(usize),
    /// A new leaf waits.
    Wait,
}

/// What the timer's expiry led to.
enum Fired<T, E> {
    /// Nothing has expired: wait.
    Nothing,
    /// A backoff delay ended and the next attempt was started: poll it.
    Again,
    /// A result for the policy just above this index (a timeout's error, or a refusal of the
    /// next attempt).
    Unwind(usize, Result<T, Error<E>>),
}

/// How the first attempt went.
enum First<T, E> {
    /// Finished with this result.
    Done(Result<T, Error<E>>),
    /// A leaf waits, and the state of every policy entered is stored; `polled`: the leaf has
    /// been polled already (and has registered for a wake-up).
    Waiting { polled: bool },
}

/// The parts of a [`Call`] that stepping changes.
struct Machine<'p, 'a, T, E, F, Fut> {
    leaf: Pin<&'p mut Leaf<'a, T, E, Fut>>,
    levels: &'p mut [Level<'a, T, E>; MAX_DEPTH],
    depth: &'p mut usize,
    slots: &'a [Slot<T, E>],
    op: &'p F,
}

impl<T, E, F, Fut> Future for Call<'_, T, E, F, Fut>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut timer = this.timer;
        let mut m = Machine {
            leaf: this.leaf,
            levels: this.levels,
            depth: this.depth,
            slots: this.slots,
            op: this.op,
        };
        loop {
            // What the leaf produced: a result for the policy just above index `above`, or
            // an index to enter the policies from.
            let (above, result) = match m.leaf.as_mut().project() {
                LeafProj::Start => match m.first(0, cx) {
                    First::Done(result) => return Poll::Ready(result),
                    First::Waiting { polled: false } => continue,
                    First::Waiting { polled: true } => match m.expired(timer.as_mut(), cx) {
                        Fired::Nothing => return Poll::Pending,
                        Fired::Again => continue,
                        Fired::Unwind(above, result) => (above, result),
                    },
                },
                LeafProj::Op { fut } => match fut.poll(cx) {
                    Poll::Ready(r) => (m.slots.len(), r.map_err(Error::Inner)),
                    Poll::Pending => match m.expired(timer.as_mut(), cx) {
                        Fired::Nothing => return Poll::Pending,
                        Fired::Again => continue,
                        Fired::Unwind(above, result) => (above, result),
                    },
                },
                LeafProj::Fallback { level, fut } => match fut.as_mut().poll(cx) {
                    Poll::Ready(r) => (*level, r),
                    Poll::Pending => match m.expired(timer.as_mut(), cx) {
                        Fired::Nothing => return Poll::Pending,
                        Fired::Again => continue,
                        Fired::Unwind(above, result) => (above, result),
                    },
                },
                LeafProj::Queue { level, fut } => match fut.as_mut().poll(cx) {
                    Poll::Ready(Ok(slot)) => {
                        let level = *level;
                        m.levels[level] = Level::Bulkhead { _slot: slot };
                        *m.depth = level + 1;
                        match m.descend(level + 1) {
                            None => continue,
                            Some(unwind) => unwind,
                        }
                    }
                    Poll::Ready(Err(full)) => {
                        tracing::debug!(bulkhead = %full.name, "bulkhead full");
                        (*level, Err(Error::BulkheadFull(full)))
                    }
                    Poll::Pending => match m.expired(timer.as_mut(), cx) {
                        Fired::Nothing => return Poll::Pending,
                        Fired::Again => continue,
                        Fired::Unwind(above, result) => (above, result),
                    },
                },
                LeafProj::Backoff { .. } => match m.expired(timer.as_mut(), cx) {
                    Fired::Nothing => return Poll::Pending,
                    Fired::Again => continue,
                    Fired::Unwind(above, result) => (above, result),
                },
                LeafProj::Empty => panic!("a pipeline call polled after it completed"),
            };
            // Whatever the leaf held has given its result.
            m.leaf.set(Leaf::Empty);
            let next = m.unwind(above, result, 0);
            if let Next::Done(result) = m.run(next, 0) {
                return Poll::Ready(result);
            }
        }
    }
}

impl<'a, T, E, F, Fut> Machine<'_, 'a, T, E, F, Fut>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    /// Enters the policies from index `from` down and starts an attempt. `None`: a leaf now
    /// waits (the attempt, or a queue); otherwise a policy refused the call, and its error
    /// goes to the policy just above the returned index.
    fn descend(&mut self, from: usize) -> Option<(usize, Result<T, Error<E>>)> {
        let slots = self.slots;
        for (i, slot) in slots.iter().enumerate().skip(from) {
            let state = match slot {
                Slot::Fallback(_) => Level::Idle,
                Slot::Timeout(t) => Level::Timeout(Instant::now().checked_add(t.duration())),
                Slot::Retry(r) => Level::Retry {
                    started: r.start_time(),
                    attempts: None,
                },
                Slot::Breaker(b, _) => match b.try_acquire() {
                    Ok(permit) => Level::Breaker(permit),
                    Err(rejected) => return Some((i, Err(Error::Rejected(rejected)))),
                },
                Slot::Bulkhead(b) => match b.try_enter() {
                    Some(entered) => Level::Bulkhead { _slot: entered },
                    // Waiting is boxed: a call that finds a free slot carries no wait state.
                    None if b.queues() => {
                        self.leaf.set(Leaf::Queue {
                            level: i,
                            fut: Box::pin(b.enter()),
                        });
                        return None;
                    }
                    None => {
                        tracing::debug!(bulkhead = %b.name(), "bulkhead full");
                        return Some((i, Err(Error::BulkheadFull(b.full_error()))));
                    }
                },
                Slot::Cost(g, _) => match g.try_acquire() {
                    Ok(permit) => Level::Cost(permit),
                    Err(refused) => return Some((i, Err(Error::CostRejected(refused)))),
                },
            };
            // Levels from `depth` on are idle: overwritten without running their drop.
            std::mem::forget(std::mem::replace(&mut self.levels[i], state));
            *self.depth = i + 1;
        }
        self.leaf.set(Leaf::Op { fut: (self.op)() });
        None
    }

    /// The first attempt, entering the policies from index `i` down with their state kept on
    /// the stack: a call that completes at once writes none of it into the future. Whatever
    /// must wait stores its state in `levels` on the way back up, and the machine goes on
    /// from there.
    fn first(&mut self, i: usize, cx: &mut Context<'_>) -> First<T, E> {
        let Some(slot) = self.slots.get(i) else {
            self.leaf.set(Leaf::Op { fut: (self.op)() });
            let LeafProj::Op { fut } = self.leaf.as_mut().project() else {
                return First::Waiting { polled: false };
            };
            return match fut.poll(cx) {
                Poll::Ready(result) => {
                    self.leaf.set(Leaf::Empty);
                    First::Done(result.map_err(Error::Inner))
                }
                Poll::Pending => {
                    *self.depth = i;
                    First::Waiting { polled: true }
                }
            };
        };
        match slot {
            Slot::Breaker(b, classify) => {
                let permit = match b.try_acquire() {
                    Ok(permit) => permit,
                    Err(rejected) => return First::Done(Err(Error::Rejected(rejected))),
                };
                match self.first(i + 1, cx) {
                    First::Done(result) => {
                        permit.record(match classify {
                            None => breaker_outcome(&result),
                            Some(c) => c(&result),
                        });
                        First::Done(result)
                    }
                    waiting => self.park(i, Level::Breaker(permit), waiting),
                }
            }
            Slot::Retry(r) => {
                let started = r.start_time();
                let mut result = match self.first(i + 1, cx) {
                    First::Done(result) => result,
                    waiting => {
                        let state = Level::Retry {
                            started,
                            attempts: None,
                        };
                        return self.park(i, state, waiting);
                    }
                };
                let Some((mut attempts, mut delay)) = r.first_delay(started, &result) else {
                    return First::Done(result);
                };
                loop {
                    drop(result);
                    let next = if delay.is_zero() {
                        *self.depth = i + 1;
                        self.run(Next::Descend(i + 1), i + 1)
                    } else {
                        let until = Instant::now().checked_add(delay);
                        self.leaf.set(Leaf::Backoff { level: i, until });
                        *self.depth = i + 1;
                        Next::Wait
                    };
                    result = match next {
                        Next::Done(next) => next,
                        _ => {
                            let state = Level::Retry {
                                started,
                                attempts: Some(attempts),
                            };
                            return self.park(i, state, First::Waiting { polled: false });
                        }
                    };
                    match attempts.next_delay(&result) {
                        Some(next) => delay = next,
                        None => return First::Done(result),
                    }
                }
            }
            Slot::Fallback(f) => match self.first(i + 1, cx) {
                First::Done(result) => match f.answer(result) {
                    Answer::Now(result) => First::Done(result),
                    Answer::Later(fut) => {
                        self.leaf.set(Leaf::Fallback { level: i, fut });
                        *self.depth = i;
                        First::Waiting { polled: false }
                    }
                },
                waiting => waiting,
            },
            Slot::Timeout(t) => {
                let deadline = Instant::now().checked_add(t.duration());
                match self.first(i + 1, cx) {
                    First::Done(result) => First::Done(result),
                    waiting => self.park(i, Level::Timeout(deadline), waiting),
                }
            }
            Slot::Bulkhead(b) => match b.try_enter() {
                Some(entered) => match self.first(i + 1, cx) {
                    First::Done(result) => First::Done(result),
                    waiting => self.park(i, Level::Bulkhead { _slot: entered }, waiting),
                },
                None if b.queues() => {
                    self.leaf.set(Leaf::Queue {
                        level: i,
                        fut: Box::pin(b.enter()),
                    });
                    *self.depth = i;
                    First::Waiting { polled: false }
                }
                None => {
                    tracing::debug!(bulkhead = %b.name(), "bulkhead full");
                    First::Done(Err(Error::BulkheadFull(b.full_error())))
                }
            },
            Slot::Cost(g, extract) => {
                let permit = match g.try_acquire() {
                    Ok(permit) => permit,
                    Err(refused) => return First::Done(Err(Error::CostRejected(refused))),
                };
                match self.first(i + 1, cx) {
                    First::Done(result) => {
                        if never_ran(&result) {
                            permit.cancel();
                        } else {
                            permit.record(extract(&result));
                        }
                        First::Done(result)
                    }
                    waiting => self.park(i, Level::Cost(permit), waiting),
                }
            }
        }
    }

    /// Stores the state of the policy at `i` when the call beneath it waits.
    fn park(&mut self, i: usize, state: Level<'a, T, E>, waiting: First<T, E>) -> First<T, E> {
        // What waits beneath is deeper, so `depth` already covers this level, and the level
        // is idle: overwritten without running its drop.
        std::mem::forget(std::mem::replace(&mut self.levels[i], state));
        waiting
    }

    /// Steps from `next` until the call finishes or waits, handing results no further up
    /// than the policy at index `floor`.
    fn run(&mut self, mut next: Next<T, E>, floor: usize) -> Next<T, E> {
        while let Next::Descend(from) = next {
            next = match self.descend(from) {
                None => Next::Wait,
                Some((above, result)) => self.unwind(above, result, floor),
            };
        }
        next
    }

    /// Hands `result` to each policy above index `above` and from index `floor` on,
    /// innermost first.
    fn unwind(
        &mut self,
        mut above: usize,
        mut result: Result<T, Error<E>>,
        floor: usize,
    ) -> Next<T, E> {
        while above > floor {
            let i = above - 1;
            above = i;
            *self.depth = i;
            let state = std::mem::replace(&mut self.levels[i], Level::Idle);
            match (&self.slots[i], state) {
                (Slot::Breaker(_, classify), Level::Breaker(permit)) => {
                    permit.record(match classify {
                        None => breaker_outcome(&result),
                        Some(c) => c(&result),
                    });
                }
                (Slot::Retry(r), Level::Retry { started, attempts }) => {
                    let next = match attempts {
                        Some(mut attempts) => {
                            attempts.next_delay(&result).map(|delay| (attempts, delay))
                        }
                        None => r.first_delay(started, &result),
                    };
                    if let Some((attempts, delay)) = next {
                        drop(result);
                        self.levels[i] = Level::Retry {
                            started,
                            attempts: Some(attempts),
                        };
                        *self.depth = i + 1;
                        if delay.is_zero() {
                            return Next::Descend(i + 1);
                        }
                        let until = Instant::now().checked_add(delay);
                        self.leaf.set(Leaf::Backoff { level: i, until });
                        return Next::Wait;
                    }
                }
                (Slot::Fallback(f), _) => match f.answer(result) {
                    Answer::Now(answered) => result = answered,
                    Answer::Later(fut) => {
                        self.leaf.set(Leaf::Fallback { level: i, fut });
                        return Next::Wait;
                    }
                },
                (Slot::Cost(_, extract), Level::Cost(permit)) => {
                    if never_ran(&result) {
                        permit.cancel();
                    } else {
                        permit.record(extract(&result));
                    }
                }
                // A timeout that did not expire and a bulkhead slot (released as `state`
                // drops) leave the result alone.
                _ => {}
            }
        }
        Next::Done(result)
    }

    /// Arms the timer for the earliest active deadline and, if it has passed, acts on what
    /// expired: the backoff delay at the leaf, or else the innermost expired timeout.
    fn expired(&mut self, mut timer: Pin<&mut Timer>, cx: &mut Context<'_>) -> Fired<T, E> {
        let backoff = match &*self.leaf {
            Leaf::Backoff { level, until } => Some((*level, *until)),
            _ => None,
        };
        let deadlines = self.levels[..*self.depth].iter().filter_map(|l| match l {
            Level::Timeout(deadline) => *deadline,
            _ => None,
        });
        let Some(earliest) = deadlines.chain(backoff.and_then(|(_, until)| until)).min() else {
            return Fired::Nothing;
        };
        if let TimerProj::Unset = timer.as_mut().project() {
            timer.set(Timer::Set {
                sleep: tokio::time::sleep_until(earliest),
            });
        }
        let TimerProj::Set { mut sleep } = timer.project() else {
            return Fired::Nothing;
        };
        if sleep.deadline() != earliest {
            sleep.as_mut().reset(earliest);
        }
        if sleep.poll(cx).is_pending() {
            return Fired::Nothing;
        }
        let fired_at = Instant::now().max(earliest);
        if let Some((level, Some(until))) = backoff
            && until <= fired_at
        {
            self.leaf.set(Leaf::Empty);
            return match self.descend(level + 1) {
                None => Fired::Again,
                Some((above, result)) => Fired::Unwind(above, result),
            };
        }
        let depth = *self.depth;
        let expired = (0..depth).rev().find(
            |&i| matches!(self.levels[i], Level::Timeout(Some(deadline)) if deadline <= fired_at),
        );
        let Some(level) = expired else {
            return Fired::Nothing;
        };
        // Everything inside the timeout is dropped, innermost first, like a cancelled future.
        self.leaf.set(Leaf::Empty);
        for inner in self.levels[level..depth].iter_mut().rev() {
            *inner = Level::Idle;
        }
        *self.depth = level;
        let Slot::Timeout(t) = &self.slots[level] else {
            return Fired::Nothing;
        };
        let after = t.duration();
        tracing::debug!(after_ms = after.as_millis() as u64, "call timed out");
        Fired::Unwind(level, Err(Error::Timeout(TimedOut { after })))
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
