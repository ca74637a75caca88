//! Hedging inside a pipeline call. The hedge is always the innermost policy; its racing
//! attempts live in a box made when the first hedge is sent, so a call that is never hedged
//! carries none of it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use super::Walk;
use super::state::{Fired, Level, Wait, drop_attempt};
use crate::pipeline::slot::Slot;
use crate::policy::{Hedge, Stopwatch};
use fusebox_core::Error;

/// Drops a hedged call's racing attempts: the hedges with their race, then the first.
#[cold]
#[inline(never)]
pub(super) fn drop_race<T, E, Fut>(
    wait: &mut Wait<'_, T, E, Fut>,
    mut attempt: Pin<&mut Option<Fut>>,
) {
    *wait = Wait::Empty;
    attempt.set(None);
}

/// The hedges of one call, made when the first is sent.
pub(super) struct Race<T, E, Fut> {
    /// Each hedge, `None` once finished, with its stopwatch; a hedge's place tells which it is.
    hedges: Vec<(Option<Pin<Box<Fut>>>, Stopwatch)>,
    /// When the next hedge is due; `None` when no more may be sent.
    next: Option<Instant>,
    /// The first attempt is still running (in the call's `attempt`).
    first_running: bool,
    last_failure: Option<E>,
    _value: std::marker::PhantomData<fn() -> T>,
}

impl<'a, T, E, F, Fut> Walk<'_, 'a, T, E, F, Fut>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    /// Enters the hedge, the innermost policy: the call counts in its budget, and the
    /// first attempt's start and the delay it earns are kept.
    #[cold]
    #[inline(never)]
    pub(super) fn enter_hedge(&mut self, hedge: &Hedge) {
        let _ = hedge.begin_call();
        let delay = hedge.delay();
        let _ = self.levels.try_push(Level::Hedge {
            started: Instant::now(),
            delay_nanos: u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX),
        });
    }

    /// The hedge the call is inside, if its innermost policy is one: its level and policy.
    #[inline]
    pub(super) fn hedge_level(&self) -> Option<(usize, &'a Hedge)> {
        let slots = self.slots;
        match slots.last() {
            Some(Slot::Hedge(h)) if self.levels.len() == slots.len() => Some((slots.len() - 1, h)),
            _ => None,
        }
    }

    /// The first attempt answered before any hedge: its latency feeds a percentile delay.
    #[inline]
    pub(super) fn first_won(&mut self) {
        if let Some((level, h)) = self.hedge_level()
            && let Some(Level::Hedge { started, .. }) = self.levels.get(level)
        {
            h.settle(0, h.stopwatch_at(*started), None, 0);
        }
    }

    /// When the next hedge is due, if one may still be sent.
    pub(super) fn next_hedge(&self) -> Option<Instant> {
        let (level, _) = self.hedge_level()?;
        match &*self.wait {
            Wait::Hedged { race, .. } => race.next,
            Wait::Attempt => match self.levels.get(level) {
                Some(Level::Hedge {
                    started,
                    delay_nanos,
                }) => started.checked_add(Duration::from_nanos(*delay_nanos)),
                _ => None,
            },
            _ => None,
        }
    }

    /// Sends the next hedge (the hedge's delay is over), unless the budget refuses it.
    #[cold]
    pub(super) fn send_hedge(&mut self) -> Fired<T, E> {
        let Some((level, h)) = self.hedge_level() else {
            return Fired::Nothing;
        };
        let Some(Level::Hedge { delay_nanos, .. }) = self.levels.get(level) else {
            return Fired::Nothing;
        };
        let delay = Duration::from_nanos(*delay_nanos);
        if matches!(&*self.wait, Wait::Attempt) {
            // The first hedge: the race begins, around the first attempt still running.
            self.set_wait(Wait::Hedged {
                race: Box::new(Race {
                    hedges: Vec::new(),
                    next: None,
                    first_running: true,
                    last_failure: None,
                    _value: std::marker::PhantomData,
                }),
            });
        }
        let Wait::Hedged { race, .. } = &mut *self.wait else {
            return Fired::Nothing;
        };
        let number = race.hedges.len() as u32 + 1;
        race.next = None;
        match h.try_hedge(number) {
            Some(watch) => {
                race.hedges.push((Some(Box::pin((self.op)())), watch));
                if number < h.max_hedged_attempts() {
                    race.next = Instant::now().checked_add(delay);
                }
                Fired::Again
            }
            // Refused by the budget: no later hedge for this call.
            None => Fired::Nothing,
        }
    }

    /// Polls the attempts racing under a hedge: the first success answers and the others
    /// are dropped; a failure waits for the others, and the last one answers once all have
    /// failed.
    #[cold]
    #[inline(never)]
    pub(super) fn poll_hedged(&mut self, cx: &mut Context<'_>) -> Fired<T, E> {
        let Some((_, h)) = self.hedge_level() else {
            return self.expired(cx);
        };
        let started = match self.levels.last() {
            Some(Level::Hedge { started, .. }) => *started,
            _ => Instant::now(),
        };
        let Wait::Hedged { race, .. } = &mut *self.wait else {
            return self.expired(cx);
        };
        let mut won: Option<(u32, Stopwatch, T)> = None;
        if race.first_running
            && let Some(first) = self.attempt.as_mut().as_pin_mut()
            && let Poll::Ready(result) = first.poll(cx)
        {
            race.first_running = false;
            self.attempt.set(None);
            match result {
                Ok(value) => won = Some((0, h.stopwatch_at(started), value)),
                Err(failure) => race.last_failure = Some(failure),
            }
        }
        if won.is_none() {
            for (index, (slot, watch)) in race.hedges.iter_mut().enumerate() {
                let Some(running) = slot.as_mut() else {
                    continue;
                };
                if let Poll::Ready(result) = running.as_mut().poll(cx) {
                    *slot = None;
                    match result {
                        Ok(value) => {
                            won = Some((index as u32 + 1, *watch, value));
                            break;
                        }
                        Err(failure) => race.last_failure = Some(failure),
                    }
                }
            }
        }
        let hedges_running = race.hedges.iter().filter(|(h, _)| h.is_some()).count() as u32;
        let in_flight = hedges_running + u32::from(race.first_running);
        if let Some((winner, watch, value)) = won {
            let first = (winner > 0 && race.first_running).then(|| h.stopwatch_at(started));
            h.settle(winner, watch, first, in_flight);
            drop_attempt(self.wait, self.attempt.as_mut());
            return Fired::Unwind(self.slots.len(), Ok(value));
        }
        if in_flight == 0
            && let Some(failure) = race.last_failure.take()
        {
            drop_attempt(self.wait, self.attempt.as_mut());
            return Fired::Unwind(self.slots.len(), Err(Error::Inner(failure)));
        }
        self.expired(cx)
    }
}
