//! What a pipeline call waits on below its policies, and the state it keeps for each policy it
//! is inside.

use std::future::Future;
use std::pin::Pin;

use super::hedge::{Race, drop_race};
use crate::policy::{BoxFuture, BulkheadSlot, CompactPermit, RetryAttempts};
use fusebox_core::breaker::Permit;
use fusebox_core::guard::CostPermit;
use fusebox_core::{BulkheadFull, Error};
use tokio::time::Instant;

/// Drops the attempt in flight, if there is one, leaving `wait` empty.
#[inline]
pub(super) fn drop_attempt<T, E, Fut>(
    wait: &mut Wait<'_, T, E, Fut>,
    mut attempt: Pin<&mut Option<Fut>>,
) {
    match wait {
        Wait::Attempt => {
            // `Attempt` holds nothing itself; cleared first, so the call never waits on an
            // attempt that is gone, even if its drop panics. Forgotten rather than dropped: no
            // drop glue is called for a state known to hold nothing.
            std::mem::forget(std::mem::replace(wait, Wait::Empty));
            // Dropped in place, as a pinned value must be.
            attempt.set(None);
        }
        Wait::Hedged { .. } => drop_race(wait, attempt),
        _ => {}
    }
}

pub(super) type QueueWait<'a> =
    Pin<Box<dyn Future<Output = Result<BulkheadSlot<'a>, BulkheadFull>> + Send + 'a>>;

/// What the call is waiting on, below every active policy. Nothing here is pinned: the
/// caller's future, the only part that may need pinning, is kept beside it. The tag comes
/// first (see [`Call`]'s layout).
#[repr(u8)]
pub(super) enum Wait<'a, T, E, Fut> {
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
    /// Attempts racing under the hedge (the innermost policy): the first one in `attempt`,
    /// the hedges in the race.
    Hedged { race: Box<Race<T, E, Fut>> },
    /// Finished, or between two states inside `poll`.
    Empty,
}

impl<T, E, Fut> Wait<'_, T, E, Fut> {
    /// Whether replacing this state needs no drop.
    #[inline(always)]
    pub(super) fn holds_nothing(&self) -> bool {
        matches!(
            self,
            Wait::Start | Wait::Attempt | Wait::Backoff { .. } | Wait::Empty
        )
    }
}

/// The state of one policy while the call is inside it.
pub(super) enum Level<'a, T, E> {
    /// Nothing: what `leave` answers when no level is left (never, by construction).
    Vacant,
    /// A policy that keeps no state (a fallback).
    Idle,
    Breaker(Permit<'a>),
    Cost(CostPermit<'a>),
    /// A place under a concurrency limit, freed as it drops if the call never settles it.
    Limit(CompactPermit<'a>),
    /// A chaos policy delaying the call, which then fails with its fault if `fault`.
    /// (A word, not a `bool`: every payload of a level starts on a word, so a level moved
    /// out of the stack and read back field by field is copied in whole words, which the
    /// reads can forward from.)
    Chaos {
        fault: u64,
    },
    /// The hedge: when its first attempt started, and its delay (ns), fixed for the call.
    Hedge {
        started: Instant,
        delay_nanos: u64,
    },
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

impl<T, E> Level<'_, T, E> {
    /// Whether forgetting this state leaks nothing: it holds no permit, slot or box.
    pub(super) fn holds_nothing(&self) -> bool {
        matches!(
            self,
            Level::Vacant
                | Level::Idle
                | Level::Timeout(_)
                | Level::Chaos { .. }
                | Level::Hedge { .. }
                | Level::Retry { attempts: None, .. }
        )
    }
}

/// What a chaos policy's draw did to a call entering it.
pub(super) enum Injected<T, E> {
    /// A delay now runs on the call's timer.
    Delayed,
    /// The fault answers at once, for the policies above.
    Fault((usize, Result<T, Error<E>>)),
    /// A fault was drawn but the policy makes none: the call goes on.
    Nothing,
}

/// Where the call goes after the policies have handled a result.
pub(super) enum Next {
    /// Finished with the result handed up.
    Done,
    /// A retry starts another attempt: enter the policies from this index.
    Descend(usize),
    /// A new leaf waits.
    Wait,
}

/// What polling the attempt, or the timer's expiry, led to.
pub(super) enum Fired<T, E> {
    /// Nothing is ready and nothing has expired: wait.
    Nothing,
    /// A backoff delay ended and the next attempt was started: poll it.
    Again,
    /// A result for the policy just above this index (an attempt's result, a timeout's
    /// error, or a refusal of the next attempt).
    Unwind(usize, Result<T, Error<E>>),
}
