//! The future of [`Pipeline::call`](super::Pipeline::call): one state machine that walks the
//! policies of a call, in safe code.

use std::future::Future;
use std::mem::ManuallyDrop;

use arrayvec::ArrayVec;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::MAX_DEPTH;
use super::slot::Slot;
use super::{breaker_outcome, classified, settle_cost};
use crate::policy::{Answer, BoxFuture, Chaos, Fallback};
use fusebox_core::{Error, Outcome, TimedOut};

mod deadline;
mod hedge;
mod state;

use deadline::Timer;
use state::{Fired, Injected, Level, Next, Wait, drop_attempt};

/// A refusal by the policy at `i`, for the policies above it.
#[cold]
fn refused<T, E>(i: usize, error: Error<E>) -> (usize, Result<T, Error<E>>) {
    (i, Err(error))
}

// One call is one hand-written state machine rather than one nested future per policy: the
// future holds the attempt in flight, one small state per policy entered and one timer shared
// by every timeout and backoff delay, boxed when first armed. A call that succeeds at once
// enters the policies in one loop, polls its attempt and hands the result back up in
// another, without allocating, reading the clock or touching a timer unless a policy in the
// stack asks for it. It is safe code throughout: the levels the call is inside are an
// `ArrayVec`, pushed on entering a policy and popped on leaving it, and the attempt in flight
// is an `Option` pinned in place.

pin_project! {
    /// The future of [`Pipeline::call`].
    // Laid out by hand: what is written when the call is made (the slots, the tag of `wait`
    // and the levels' length) sits in the first 48 bytes, and nothing else is written. A
    // future is moved at least once before it is polled, as a copy in wide chunks, and a
    // chunk that was just written by narrower stores stalls that copy.
    #[repr(C)]
    pub(super) struct Call<'a, T, E, F, Fut> {
        slots: &'a [Slot<T, E>],
        // Emptied by hand on drop, when it may hold something.
        wait: ManuallyDrop<Wait<'a, T, E, Fut>>,
        // The state of each policy the call is inside, outermost first: a level is pushed
        // when the call enters its policy and popped when it leaves, so a new call writes
        // only the length, and dropping the call drops the levels it is inside, innermost
        // first.
        levels: ArrayVec<Level<'a, T, E>, MAX_DEPTH>,
        op: F,
        // The attempt in flight: the caller's future, `Some` exactly while `wait` is
        // `Attempt`.
        #[pin]
        attempt: Option<Fut>,
        // One timer for the earliest of the active deadlines, made the first time the call
        // waits on one. Boxed: a call that never waits on a deadline carries one word, not
        // a timer entry that would double the size of every call's future.
        timer: Timer,
    }

    impl<'a, T, E, F, Fut> PinnedDrop for Call<'a, T, E, F, Fut> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.levels.is_empty() && matches!(**this.wait, Wait::Empty | Wait::Start) {
                return; // finished, or never polled: nothing is held
            }
            // The attempt in flight is cancelled before the permits and slots it runs under
            // are released, innermost first, as nested futures would be.
            drop_attempt(this.wait, this.attempt);
            **this.wait = Wait::Empty;
            // Popped before it drops, so a level is never dropped twice, even if its drop
            // panics.
            while let Some(level) = this.levels.pop() {
                drop(level);
            }
        }
    }
}

impl<'a, T, E, F, Fut> Call<'a, T, E, F, Fut> {
    /// A call of `op` through `slots`, not started: nothing runs before the first poll.
    #[inline]
    pub(super) fn new(slots: &'a [Slot<T, E>], op: F) -> Self {
        Call {
            slots,
            wait: ManuallyDrop::new(Wait::Start),
            levels: ArrayVec::new_const(),
            op,
            attempt: None,
            timer: Timer(None),
        }
    }
}

/// The parts of a [`Call`] that stepping changes.
struct Walk<'p, 'a, T, E, F, Fut> {
    attempt: Pin<&'p mut Option<Fut>>,
    wait: &'p mut Wait<'a, T, E, Fut>,
    levels: &'p mut ArrayVec<Level<'a, T, E>, MAX_DEPTH>,
    slots: &'a [Slot<T, E>],
    op: &'p F,
    timer: &'p mut Timer,
}

impl<T, E, F, Fut> Future for Call<'_, T, E, F, Fut>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    type Output = Result<T, Error<E>>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut m = Walk {
            attempt: this.attempt,
            wait: &mut **this.wait,
            levels: this.levels,
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
                Wait::Hedged { .. } => match m.poll_hedged(cx) {
                    Fired::Nothing => return Poll::Pending,
                    Fired::Again => continue,
                    Fired::Unwind(above, result) => (above, result),
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

impl<'a, T, E, F, Fut> Walk<'_, 'a, T, E, F, Fut>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    /// Replaces whatever the leaf waits on with `wait`, dropping it (the attempt included).
    #[inline(always)]
    fn set_wait(&mut self, wait: Wait<'a, T, E, Fut>) {
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
        let Some(fut) = self.attempt.as_mut().as_pin_mut() else {
            // Never the case while `wait` is `Attempt`: nothing to poll, so wait.
            return self.expired(cx);
        };
        match fut.poll(cx) {
            Poll::Ready(r) => {
                // The finished attempt is dropped before the policies see its result, as a
                // nested future would be.
                drop_attempt(self.wait, self.attempt.as_mut());
                if r.is_ok() {
                    self.first_won();
                }
                Fired::Unwind(self.slots.len(), r.map_err(Error::Inner))
            }
            Poll::Pending => self.expired(cx),
        }
    }

    /// Stores the state of the policy at `i`, which the call enters: every policy outside it
    /// has been entered, and none inside.
    #[inline]
    fn enter(&mut self, i: usize, state: Level<'a, T, E>) {
        debug_assert_eq!(i, self.levels.len());
        // Never more than `MAX_DEPTH` policies: the builder refuses deeper stacks.
        let _ = self.levels.try_push(state);
    }

    /// Leaves the innermost policy the call is inside (at `i`, the last level), whose state
    /// holds nothing to drop: it is popped and forgotten, so no drop glue looks at it.
    #[inline(always)]
    fn leave_idle(&mut self, i: usize) {
        debug_assert_eq!(i + 1, self.levels.len());
        if let Some(old) = self.levels.pop() {
            debug_assert!(old.holds_nothing());
            std::mem::forget(old);
        }
    }

    /// Takes back the state of the innermost policy the call is inside.
    #[inline]
    fn leave(&mut self) -> Level<'a, T, E> {
        // Not `unwrap_or(Level::Vacant)`: its unused default would be dropped out of line.
        match self.levels.pop() {
            Some(level) => level,
            None => Level::Vacant,
        }
    }

    /// Enters the policies from index `from` (which must equal `depth`) down and starts an
    /// attempt. `None`: a leaf now waits (the attempt, or a queue); otherwise a policy
    /// refused the call, and its error goes to the policy just above the returned index.
    #[inline(always)]
    fn descend(&mut self, from: usize) -> Option<(usize, Result<T, Error<E>>)> {
        let slots = self.slots;
        for (i, slot) in slots.iter().enumerate().skip(from) {
            debug_assert_eq!(i, self.levels.len());
            // Never more than `MAX_DEPTH` policies: the builder refuses deeper stacks.
            if self.levels.is_full() {
                break;
            }
            let level = &mut *self.levels;
            let mut put = |state| {
                let _ = level.try_push(state);
            };
            match slot {
                Slot::Fallback(_) => {
                    put(Level::Idle);
                }
                Slot::Timeout(t) => {
                    let deadline = Instant::now().checked_add(t.duration());
                    put(Level::Timeout(deadline));
                }
                Slot::Retry(r) => {
                    put(Level::Retry {
                        started: r.start_time(),
                        attempts: None,
                    });
                }
                Slot::Breaker(b, _) => match b.try_acquire() {
                    Ok(permit) => {
                        put(Level::Breaker(permit));
                    }
                    Err(rejected) => return Some(refused(i, Error::Rejected(rejected))),
                },
                Slot::Bulkhead(b) => match b.try_enter() {
                    Some(entered) => {
                        put(Level::Bulkhead { _slot: entered });
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
                        put(Level::Cost(permit));
                    }
                    Err(no) => return Some(refused(i, Error::CostRejected(Box::new(no)))),
                },
                Slot::RateLimit(l) => match l.try_acquire() {
                    Ok(()) => put(Level::Idle),
                    Err(limited) => return Some(refused(i, Error::RateLimited(limited))),
                },
                Slot::Throttle(t, _) => match t.admit() {
                    Ok(()) => put(Level::Idle),
                    Err(throttled) => return Some(refused(i, Error::Throttled(throttled))),
                },
                Slot::Chaos(c) => {
                    // Off, a chaos policy draws nothing: only a drawn injection leaves the path.
                    let injection = c.decide();
                    if injection.delay.is_some() || injection.fault {
                        match self.inject(i, c, injection) {
                            Injected::Delayed => return None,
                            Injected::Fault(refusal) => return Some(refusal),
                            Injected::Nothing => {}
                        }
                    }
                    let _ = self.levels.try_push(Level::Idle);
                }
                Slot::Hedge(h) => self.enter_hedge(h),
                Slot::Outlier(endpoint) => match endpoint.admit() {
                    Ok(()) => put(Level::Idle),
                    Err(ejected) => return Some(refused(i, Error::Ejected(ejected))),
                },
                Slot::Limit(l, _) => match l.try_acquire_compact() {
                    Ok(permit) => put(Level::Limit(permit)),
                    Err(exceeded) => return Some(refused(i, Error::LimitExceeded(exceeded))),
                },
            }
        }
        // Made before the state says so: if `op` panics, the call is not left waiting on an
        // attempt that does not exist.
        let attempt = (self.op)();
        drop_attempt(self.wait, self.attempt.as_mut());
        self.attempt.set(Some(attempt));
        self.set_wait(Wait::Attempt);
        None
    }

    /// Enters the chaos policy at `i` with what it drew: a delay on the call's timer (the
    /// fault, if any, answers when it ends), or the fault at once.
    #[cold]
    #[inline(never)]
    fn inject(
        &mut self,
        i: usize,
        chaos: &Chaos<E>,
        injection: crate::policy::Injection,
    ) -> Injected<T, E> {
        if let Some(delay) = injection.delay {
            let _ = self.levels.try_push(Level::Chaos {
                fault: u64::from(injection.fault),
            });
            // The policies inside are entered (or the fault answered) when the delay ends,
            // as after a retry's backoff.
            self.set_wait(Wait::Backoff {
                level: i as u8,
                until: Instant::now().checked_add(delay),
            });
            return Injected::Delayed;
        }
        match chaos.make_fault() {
            Some(fault) => Injected::Fault(refused(i, Error::Inner(fault))),
            None => Injected::Nothing,
        }
    }

    /// Hands `result` to each policy above index `above` (which must equal `depth`),
    /// innermost first.
    #[inline]
    fn unwind(&mut self, above: usize, result: &mut Result<T, Error<E>>) -> Next {
        debug_assert_eq!(above, self.levels.len());
        let slots = self.slots;
        while let Some(i) = self.levels.len().checked_sub(1) {
            let slot = &slots[i];
            let Some(state) = self.levels.get_mut(i) else {
                break;
            };
            match (slot, state) {
                (Slot::Breaker(_, classify), Level::Breaker(_)) => {
                    let outcome = classified(classify.as_ref(), result);
                    match self.leave() {
                        Level::Breaker(permit) => permit.record(outcome),
                        // Never the case: the state matched above.
                        other => drop(other),
                    }
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
                        // Nothing else to drop: the level is simply left (see `leave_idle`).
                        None => self.leave_idle(i),
                        Some(boxed) => {
                            self.leave_idle(i);
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
                (Slot::Throttle(t, classify), Level::Idle) => {
                    let outcome = classified(classify.as_ref(), result);
                    t.record(outcome != Outcome::Failure);
                    self.leave_idle(i);
                }
                (Slot::Outlier(endpoint), Level::Idle) => {
                    endpoint.record(breaker_outcome(result));
                    self.leave_idle(i);
                }
                (Slot::Limit(_, classify), Level::Limit(_)) => {
                    let outcome = classified(classify.as_ref(), result);
                    if let Level::Limit(permit) = self.leave() {
                        permit.settle(outcome);
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
                (
                    Slot::Fallback(_)
                    | Slot::Timeout(_)
                    | Slot::RateLimit(_)
                    | Slot::Chaos(_)
                    | Slot::Hedge(_),
                    Level::Idle | Level::Timeout(_) | Level::Chaos { .. } | Level::Hedge { .. },
                ) => {
                    self.leave_idle(i);
                }
                // A bulkhead slot is released as it drops.
                _ => drop(self.leave()),
            }
        }
        Next::Done
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
}
