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
//!   [`Fallback::when`] or [`Fallback::on_rejected`].
//! * **A cost guard inside the retry** admits and costs every attempt, since every attempt is
//!   billed; outside it, it would see one permit and only the final result per call.

use std::fmt;
use std::future::Future;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use crate::policy::{
    Answer, BoxFuture, Bulkhead, BulkheadSlot, Fallback, Retry, RetryAttempts, Timeout,
};
use fusebox_core::ConfigError;
use fusebox_core::Outcome;
use fusebox_core::breaker::{Breaker, Permit};
use fusebox_core::guard::{CostGuard, CostPermit};
use fusebox_core::{BulkheadFull, Error, TimedOut};

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
pub(crate) fn breaker_outcome<T, E>(result: &Result<T, Error<E>>) -> Outcome {
    match result {
        Ok(_) => Outcome::Success,
        Err(Error::Inner(_)) | Err(Error::Timeout(_)) => Outcome::Failure,
        Err(_) => Outcome::Ignored,
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
    let never_ran = matches!(
        result,
        Err(Error::Rejected(_)) | Err(Error::BulkheadFull(_)) | Err(Error::CostRejected(_))
    );
    if never_ran {
        permit.cancel();
    } else {
        permit.record(extract(result));
    }
}

/// A refusal by the policy at `i`, for the policies above it.
#[cold]
fn refused<T, E>(i: usize, error: Error<E>) -> (usize, Result<T, Error<E>>) {
    (i, Err(error))
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
        PipelineBuilder {
            slots: Vec::new(),
            error: None,
        }
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
        Call {
            slots: &self.slots,
            depth: 0,
            wait: ManuallyDrop::new(Wait::Start),
            op,
            attempt: MaybeUninit::uninit(),
            timer: None,
            levels: [const { MaybeUninit::uninit() }; MAX_DEPTH],
        }
    }
}

// One call is one hand-written state machine rather than one nested future per policy: the
// future holds the attempt in flight, one small state per policy entered and one timer shared
// by every timeout and backoff delay, boxed when first armed. A call that succeeds at once
// enters the policies in one loop, polls its attempt and hands the result back up in
// another, without allocating, reading the clock or touching a timer unless a policy in the
// stack asks for it; nothing is written into the future beyond the states of the policies
// entered.

pin_project! {
    /// The future of [`Pipeline::call`].
    // Laid out by hand: everything written when the call is made (the slots, `depth` and
    // the tag of `wait`) shares the first 32 bytes. A future is moved at least once before
    // it is polled, as a copy in wide chunks, and a chunk that was just written by narrower
    // stores stalls that copy; one such chunk, not five.
    #[repr(C)]
    struct Call<'a, T, E, F, Fut> {
        slots: &'a [Slot<T, E>],
        depth: u32,
        // Dropped by hand, and only when it may hold something.
        wait: ManuallyDrop<Wait<'a, T, E>>,
        op: F,
        // The attempt in flight: the caller's future, initialised exactly while `wait` is
        // `Attempt`.
        #[pin]
        attempt: MaybeUninit<Fut>,
        // One timer for the earliest of the active deadlines, made the first time the call
        // waits on one. Boxed: a call that never waits on a deadline carries one word, not
        // a timer entry that would double the size of every call's future.
        timer: Option<Pin<Box<Sleep>>>,
        // The state of each policy the call is inside, outermost first: exactly the first
        // `depth` are initialised, and dropping the call drops those, innermost first.
        levels: [MaybeUninit<Level<'a, T, E>>; MAX_DEPTH],
    }

    impl<'a, T, E, F, Fut> PinnedDrop for Call<'a, T, E, F, Fut> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.depth == 0 && matches!(**this.wait, Wait::Empty | Wait::Start) {
                return; // finished, or never polled: nothing is held
            }
            // The attempt in flight is cancelled before the permits and slots it runs under
            // are released, innermost first, as nested futures would be.
            drop_attempt(this.wait, this.attempt);
            // What the old state held is dropped here; `Empty` holds nothing.
            **this.wait = Wait::Empty;
            while *this.depth > 0 {
                *this.depth -= 1;
                // SAFETY: the levels below `depth` are initialised; `depth` was lowered first,
                // so this one is never read or dropped again, even if its drop panics.
                unsafe { this.levels[*this.depth as usize].assume_init_drop() };
            }
        }
    }
}

/// Drops the attempt in flight, if there is one, leaving `wait` empty.
#[inline]
fn drop_attempt<T, E, Fut>(wait: &mut Wait<'_, T, E>, attempt: Pin<&mut MaybeUninit<Fut>>) {
    if matches!(wait, Wait::Attempt) {
        // `Attempt` holds nothing itself; cleared first, so the attempt is never dropped
        // twice, even if its drop panics.
        std::mem::forget(std::mem::replace(wait, Wait::Empty));
        // SAFETY: `Attempt` says the attempt is initialised; it is dropped in place, as a
        // pinned value must be.
        unsafe { attempt.get_unchecked_mut().assume_init_drop() };
    }
}

type QueueWait<'a> =
    Pin<Box<dyn Future<Output = Result<BulkheadSlot<'a>, BulkheadFull>> + Send + 'a>>;

/// What the call is waiting on, below every active policy. Nothing here is pinned: the
/// caller's future, the only part that may need pinning, is kept beside it. The tag comes
/// first (see [`Call`]'s layout).
#[repr(u8)]
enum Wait<'a, T, E> {
    /// Not polled yet.
    Start,
    /// An attempt: the caller's future, in `attempt`.
    Attempt,
    /// The fallback at `level` answering with its handler.
    Fallback { level: u8, fut: BoxFuture<T, E> },
    /// The bulkhead at `level` waiting in its queue.
    Queue { level: u8, fut: QueueWait<'a> },
    /// The retry at `level` waiting before its next attempt (`None`: longer than the clock
    /// can represent).
    Backoff { level: u8, until: Option<Instant> },
    /// Finished, or between two states inside `poll`.
    Empty,
}

impl<T, E> Wait<'_, T, E> {
    /// Whether replacing this state needs no drop.
    fn holds_nothing(&self) -> bool {
        matches!(
            self,
            Wait::Start | Wait::Attempt | Wait::Backoff { .. } | Wait::Empty
        )
    }
}

/// The state of one policy while the call is inside it.
enum Level<'a, T, E> {
    /// A policy that keeps no state (a fallback).
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

/// Where the call goes after the policies have handled a result.
enum Next {
    /// Finished with the result handed up.
    Done,
    /// A retry starts another attempt: enter the policies from this index.
    Descend(usize),
    /// A new leaf waits.
    Wait,
}

/// What polling the attempt, or the timer's expiry, led to.
enum Fired<T, E> {
    /// Nothing is ready and nothing has expired: wait.
    Nothing,
    /// A backoff delay ended and the next attempt was started: poll it.
    Again,
    /// A result for the policy just above this index (an attempt's result, a timeout's
    /// error, or a refusal of the next attempt).
    Unwind(usize, Result<T, Error<E>>),
}

/// The parts of a [`Call`] that stepping changes.
struct Machine<'p, 'a, T, E, F, Fut> {
    attempt: Pin<&'p mut MaybeUninit<Fut>>,
    wait: &'p mut Wait<'a, T, E>,
    levels: &'p mut [MaybeUninit<Level<'a, T, E>>; MAX_DEPTH],
    depth: &'p mut u32,
    slots: &'a [Slot<T, E>],
    op: &'p F,
    timer: &'p mut Option<Pin<Box<Sleep>>>,
}

impl<T, E, F, Fut> Future for Call<'_, T, E, F, Fut>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Error<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut m = Machine {
            attempt: this.attempt,
            wait: &mut **this.wait,
            levels: this.levels,
            depth: this.depth,
            slots: this.slots,
            op: this.op,
            timer: this.timer,
        };
        'poll: loop {
            // What the leaf produced: a result for the policy just above index `above`.
            let (mut above, mut result) = match m.wait {
                Wait::Start => match m.descend(0) {
                    Some(refused) => refused,
                    // The first attempt is polled at once, not after another turn of the loop.
                    None if matches!(m.wait, Wait::Attempt) => match m.poll_attempt(cx) {
                        Fired::Nothing => return Poll::Pending,
                        Fired::Again => continue,
                        Fired::Unwind(above, result) => (above, result),
                    },
                    None => continue,
                },
                Wait::Attempt => match m.poll_attempt(cx) {
                    Fired::Nothing => return Poll::Pending,
                    Fired::Again => continue,
                    Fired::Unwind(above, result) => (above, result),
                },
                Wait::Fallback { level, fut } => match fut.as_mut().poll(cx) {
                    Poll::Ready(r) => {
                        let level = usize::from(*level);
                        m.set_wait(Wait::Empty);
                        (level, r)
                    }
                    Poll::Pending => match m.expired(cx) {
                        Fired::Nothing => return Poll::Pending,
                        Fired::Again => continue,
                        Fired::Unwind(above, result) => (above, result),
                    },
                },
                Wait::Queue { level, fut } => match fut.as_mut().poll(cx) {
                    Poll::Ready(Ok(slot)) => {
                        let level = usize::from(*level);
                        m.set_wait(Wait::Empty);
                        m.enter(level, Level::Bulkhead { _slot: slot });
                        match m.descend(level + 1) {
                            None => continue,
                            Some(refused) => refused,
                        }
                    }
                    Poll::Ready(Err(full)) => {
                        let level = usize::from(*level);
                        m.set_wait(Wait::Empty);
                        tracing::debug!(bulkhead = %full.name, "bulkhead full");
                        (level, Err(Error::BulkheadFull(full)))
                    }
                    Poll::Pending => match m.expired(cx) {
                        Fired::Nothing => return Poll::Pending,
                        Fired::Again => continue,
                        Fired::Unwind(above, result) => (above, result),
                    },
                },
                Wait::Backoff { .. } => match m.expired(cx) {
                    Fired::Nothing => return Poll::Pending,
                    Fired::Again => continue,
                    Fired::Unwind(above, result) => (above, result),
                },
                Wait::Empty => panic!("a pipeline call polled after it completed"),
            };
            loop {
                match m.unwind(above, &mut result) {
                    Next::Done => return Poll::Ready(result),
                    Next::Wait => continue 'poll,
                    Next::Descend(from) => match m.descend(from) {
                        None => continue 'poll,
                        Some((refused_at, refusal)) => {
                            above = refused_at;
                            result = refusal;
                        }
                    },
                }
            }
        }
    }
}

impl<'a, T, E, F, Fut> Machine<'_, 'a, T, E, F, Fut>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    /// Replaces whatever the leaf waits on with `wait`, dropping it (the attempt included).
    #[inline]
    fn set_wait(&mut self, wait: Wait<'a, T, E>) {
        if self.wait.holds_nothing() {
            std::mem::forget(std::mem::replace(self.wait, wait));
        } else {
            *self.wait = wait;
        }
    }

    /// Polls the attempt in flight (`wait` is `Attempt`): its result for the innermost policy,
    /// or what a pending attempt's deadlines say.
    #[inline(always)]
    fn poll_attempt(&mut self, cx: &mut Context<'_>) -> Fired<T, E> {
        // SAFETY: `Attempt` says the attempt is initialised; it stays pinned.
        let fut = unsafe {
            self.attempt
                .as_mut()
                .map_unchecked_mut(|a| a.assume_init_mut())
        };
        match fut.poll(cx) {
            Poll::Ready(r) => {
                // The finished attempt is dropped before the policies see its result, as a
                // nested future would be.
                drop_attempt(self.wait, self.attempt.as_mut());
                Fired::Unwind(self.slots.len(), r.map_err(Error::Inner))
            }
            Poll::Pending => self.expired(cx),
        }
    }

    /// Stores the state of the policy at `i`, which the call enters: every policy outside it
    /// has been entered, and none inside.
    #[inline]
    fn enter(&mut self, i: usize, state: Level<'a, T, E>) {
        debug_assert_eq!(i, *self.depth as usize);
        // Never more than `MAX_DEPTH` policies: the builder refuses deeper stacks.
        if let Some(level) = self.levels.get_mut(i) {
            level.write(state);
            *self.depth = i as u32 + 1;
        }
    }

    /// Takes back the state of the innermost policy the call is inside (at `depth - 1`).
    #[inline]
    fn leave(&mut self) -> Level<'a, T, E> {
        *self.depth -= 1;
        // SAFETY: the levels below the old `depth` are initialised, and the lowered `depth`
        // makes this one uninitialised again: it is read out exactly once.
        unsafe { self.levels[*self.depth as usize].assume_init_read() }
    }

    /// Enters the policies from index `from` (which must equal `depth`) down and starts an
    /// attempt. `None`: a leaf now waits (the attempt, or a queue); otherwise a policy
    /// refused the call, and its error goes to the policy just above the returned index.
    #[inline(always)]
    fn descend(&mut self, from: usize) -> Option<(usize, Result<T, Error<E>>)> {
        let slots = self.slots;
        for (i, slot) in slots.iter().enumerate().skip(from) {
            debug_assert_eq!(i, *self.depth as usize);
            // Never more than `MAX_DEPTH` policies: the builder refuses deeper stacks. The
            // level is found before its state is made, so the state is written where it
            // lies rather than made aside and copied.
            let Some(level) = self.levels.get_mut(i) else {
                break;
            };
            match slot {
                Slot::Fallback(_) => {
                    level.write(Level::Idle);
                }
                Slot::Timeout(t) => {
                    let deadline = Instant::now().checked_add(t.duration());
                    level.write(Level::Timeout(deadline));
                }
                Slot::Retry(r) => {
                    level.write(Level::Retry {
                        started: r.start_time(),
                        attempts: None,
                    });
                }
                Slot::Breaker(b, _) => match b.try_acquire() {
                    Ok(permit) => {
                        level.write(Level::Breaker(permit));
                    }
                    Err(rejected) => return Some(refused(i, Error::Rejected(rejected))),
                },
                Slot::Bulkhead(b) => match b.try_enter() {
                    Some(entered) => {
                        level.write(Level::Bulkhead { _slot: entered });
                    }
                    // Waiting is boxed: a call that finds a free slot carries no wait state.
                    None if b.queues() => {
                        self.set_wait(Wait::Queue {
                            level: i as u8,
                            fut: Box::pin(b.enter()),
                        });
                        return None;
                    }
                    None => {
                        tracing::debug!(bulkhead = %b.name(), "bulkhead full");
                        return Some(refused(i, Error::BulkheadFull(b.full_error())));
                    }
                },
                Slot::Cost(g, _) => match g.try_acquire() {
                    Ok(permit) => {
                        level.write(Level::Cost(permit));
                    }
                    Err(no) => return Some(refused(i, Error::CostRejected(Box::new(no)))),
                },
            }
            *self.depth = i as u32 + 1;
        }
        // Made before the state says so: if `op` panics, the call is not left waiting on an
        // attempt that does not exist.
        let attempt = (self.op)();
        drop_attempt(self.wait, self.attempt.as_mut());
        // SAFETY: not pinned before this write, and no attempt is in flight (just dropped
        // if there was one); `Attempt` below records that it is initialised.
        unsafe { self.attempt.as_mut().get_unchecked_mut().write(attempt) };
        self.set_wait(Wait::Attempt);
        None
    }

    /// Hands `result` to each policy above index `above` (which must equal `depth`),
    /// innermost first.
    #[inline]
    fn unwind(&mut self, above: usize, result: &mut Result<T, Error<E>>) -> Next {
        debug_assert_eq!(above, *self.depth as usize);
        let slots = self.slots;
        while let Some(i) = self.depth.checked_sub(1).map(|i| i as usize) {
            let slot = &slots[i];
            let Some(level) = self.levels.get_mut(i) else {
                break;
            };
            // SAFETY: the levels below `depth` are initialised.
            let state = unsafe { level.assume_init_mut() };
            match (slot, state) {
                (Slot::Breaker(_, classify), Level::Breaker(permit)) => {
                    let outcome = match classify {
                        None => breaker_outcome(result),
                        Some(c) => c(result),
                    };
                    // SAFETY: the permit is read out once, and `depth` lowered at once, so
                    // the level is never read or dropped again.
                    let permit = unsafe { std::ptr::read(permit) };
                    *self.depth = i as u32;
                    permit.record(outcome);
                }
                (Slot::Retry(r), Level::Retry { started, attempts }) => {
                    let delay = match attempts {
                        Some(attempts) => attempts.next_delay(result),
                        None => r.first_delay(*started, result).map(|(boxed, delay)| {
                            *attempts = Some(boxed);
                            delay
                        }),
                    };
                    if let Some(delay) = delay {
                        return self.retry_after(i, delay);
                    }
                    match attempts.take() {
                        // Nothing else to drop: the level is simply left.
                        None => *self.depth = i as u32,
                        Some(boxed) => {
                            *self.depth = i as u32;
                            drop(boxed);
                        }
                    }
                }
                (Slot::Fallback(f), _) if result.is_err() => {
                    drop(self.leave());
                    if let Some(fut) = Self::fall_back(f, result) {
                        self.set_wait(Wait::Fallback {
                            level: i as u8,
                            fut,
                        });
                        return Next::Wait;
                    }
                }
                (Slot::Cost(_, extract), Level::Cost(_)) => {
                    let Level::Cost(permit) = self.leave() else {
                        continue;
                    };
                    settle_cost(permit, result, |r| extract(r));
                }
                // A fallback passing a success and a timeout that did not expire leave the
                // result alone, and hold nothing to drop.
                (Slot::Fallback(_) | Slot::Timeout(_), Level::Idle | Level::Timeout(_)) => {
                    *self.depth = i as u32;
                }
                // A bulkhead slot is released as it drops.
                _ => drop(self.leave()),
            }
        }
        Next::Done
    }

    /// Starts the next attempt below the retry at `i` (the innermost policy entered) after
    /// `delay`.
    #[cold]
    fn retry_after(&mut self, i: usize, delay: Duration) -> Next {
        if delay.is_zero() {
            return Next::Descend(i + 1);
        }
        let until = Instant::now().checked_add(delay);
        self.set_wait(Wait::Backoff {
            level: i as u8,
            until,
        });
        Next::Wait
    }

    /// Lets a fallback answer the error in `result`: now, in place, or later with the
    /// returned future.
    #[cold]
    fn fall_back(f: &Fallback<T, E>, result: &mut Result<T, Error<E>>) -> Option<BoxFuture<T, E>> {
        // A placeholder while the fallback owns the result; overwritten below, or unused
        // when the handler's future answers instead.
        let placeholder = Err(Error::Timeout(TimedOut {
            after: Duration::ZERO,
        }));
        match f.answer(std::mem::replace(result, placeholder)) {
            Answer::Now(answered) => {
                *result = answered;
                None
            }
            Answer::Later(fut) => Some(fut),
        }
    }

    /// Arms the timer for the earliest active deadline and, if it has passed, acts on what
    /// expired: the backoff delay at the leaf, or else the innermost expired timeout.
    fn expired(&mut self, cx: &mut Context<'_>) -> Fired<T, E> {
        let backoff = match &*self.wait {
            Wait::Backoff { level, until } => Some((usize::from(*level), *until)),
            _ => None,
        };
        let depth = *self.depth as usize;
        let deadlines = self.levels[..depth].iter().filter_map(|l| {
            // SAFETY: the levels below `depth` are initialised.
            match unsafe { l.assume_init_ref() } {
                Level::Timeout(deadline) => *deadline,
                _ => None,
            }
        });
        let Some(earliest) = deadlines.chain(backoff.and_then(|(_, until)| until)).min() else {
            return Fired::Nothing;
        };
        let sleep = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(earliest)));
        if sleep.deadline() != earliest {
            sleep.as_mut().reset(earliest);
        }
        if sleep.as_mut().poll(cx).is_pending() {
            return Fired::Nothing;
        }
        let fired_at = Instant::now().max(earliest);
        if let Some((level, Some(until))) = backoff
            && until <= fired_at
        {
            self.set_wait(Wait::Empty);
            return match self.descend(level + 1) {
                None => Fired::Again,
                Some((above, result)) => Fired::Unwind(above, result),
            };
        }
        let expired = (0..depth).rev().find(|&i| {
            // SAFETY: the levels below `depth` are initialised.
            let state = unsafe { self.levels[i].assume_init_ref() };
            matches!(state, Level::Timeout(Some(deadline)) if *deadline <= fired_at)
        });
        let Some(level) = expired else {
            return Fired::Nothing;
        };
        // Everything inside the timeout is dropped, innermost first, like a cancelled future,
        // and the timeout itself is left.
        drop_attempt(self.wait, self.attempt.as_mut());
        self.set_wait(Wait::Empty);
        while *self.depth as usize > level {
            drop(self.leave());
        }
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
    /// A refusal by a breaker, bulkhead or cost guard further in proves the call never reached
    /// the dependency: its reservation is released and nothing is counted, without asking the
    /// extractor. Every other result, errors and timeouts included, goes to the extractor.
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
