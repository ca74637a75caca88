//! Deadlines of a pipeline call: its one timer, armed for the earliest of its timeouts,
//! backoff delay and next hedge, and what happens when one of them passes.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::Instant;

use super::Walk;
use tokio::time::Sleep;

use super::state::{Fired, Level, Next, Wait, drop_attempt};
use crate::pipeline::slot::Slot;
use fusebox_core::{Error, TimedOut};

/// The call's timer, if it ever waited on a deadline.
pub(super) struct Timer(pub(super) Option<Pin<Box<Sleep>>>);

impl Drop for Timer {
    // Most calls never make a timer: the check is inlined into the call's drop and the
    // timer's own drop, a sizeable function, is called only when there is one.
    #[inline]
    fn drop(&mut self) {
        if let Some(sleep) = self.0.take() {
            drop_timer(sleep);
        }
    }
}

#[cold]
#[inline(never)]
pub(super) fn drop_timer(sleep: Pin<Box<Sleep>>) {
    drop(sleep);
}

impl<'a, T, E, F, Fut> Walk<'_, 'a, T, E, F, Fut>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    /// Starts the next attempt below the retry at `i` (the innermost policy entered) after
    /// `delay`.
    #[cold]
    pub(super) fn retry_after(&mut self, i: usize, delay: Duration) -> Next {
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

    /// Arms the timer for the earliest active deadline and, if it has passed, acts on what
    /// expired: the backoff delay at the leaf, or else the innermost expired timeout.
    pub(super) fn expired(&mut self, cx: &mut Context<'_>) -> Fired<T, E> {
        let backoff = match &*self.wait {
            Wait::Backoff { level, until } => Some((usize::from(*level), *until)),
            _ => None,
        };
        let hedge = self.next_hedge();
        let depth = self.levels.len();
        let deadlines = self.levels.iter().filter_map(|l| match l {
            Level::Timeout(deadline) => *deadline,
            _ => None,
        });
        let Some(earliest) = deadlines
            .chain(backoff.and_then(|(_, until)| until))
            .chain(hedge)
            .min()
        else {
            return Fired::Nothing;
        };
        let sleep = self
            .timer
            .0
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
            if let (Some(Level::Chaos { fault: 1 }), Slot::Chaos(chaos)) =
                (self.levels.get(level), &self.slots[level])
                && let Some(fault) = chaos.make_fault()
            {
                // The injected delay is over: the fault answers instead of the call.
                return Fired::Unwind(level + 1, Err(Error::Inner(fault)));
            }
            return match self.descend(level + 1) {
                None => Fired::Again,
                Some((above, result)) => Fired::Unwind(above, result),
            };
        }
        let expired = (0..depth).rev().find(
            |&i| matches!(&self.levels[i], Level::Timeout(Some(deadline)) if *deadline <= fired_at),
        );
        let Some(level) = expired else {
            if hedge.is_some_and(|due| due <= fired_at) {
                return self.send_hedge();
            }
            return Fired::Nothing;
        };
        // Everything inside the timeout is dropped, innermost first, like a cancelled future,
        // and the timeout itself is left.
        drop_attempt(self.wait, self.attempt.as_mut());
        self.set_wait(Wait::Empty);
        while self.levels.len() > level {
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
