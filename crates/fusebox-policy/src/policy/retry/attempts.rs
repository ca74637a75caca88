//! The retries of one call: a stepper over the policy's decisions, budget and backoff.

use std::fmt;
use std::time::Duration;

use fusebox_core::Error;
use fusebox_core::backoff::Cursor;

use super::*;

pub(super) enum PolicyRef<'a, T, E> {
    Borrowed(&'a Retry<T, E>),
    Owned(Retry<T, E>),
}

impl<T, E> PolicyRef<'_, T, E> {
    pub(super) fn inner(&self) -> &RetryInner<T, E> {
        match self {
            PolicyRef::Borrowed(r) => &r.inner,
            PolicyRef::Owned(r) => &r.inner,
        }
    }
}

/// The retry decisions of one call, from [`Retry::attempts`]: hand it each attempt's result,
/// it says how long to wait before the next attempt, or `None` to return that result.
///
/// ```
/// use fusebox_policy::policy::Retry;
/// use fusebox_core::Error;
/// let retry = Retry::<u32, &str>::builder().max_retries(4).build()?;
/// let mut replies = [Err("busy"), Err("busy"), Ok(7)].into_iter();
/// let mut attempts = retry.attempts();
/// let mut result = replies.next().unwrap().map_err(Error::Inner);
/// while let Some(_delay) = attempts.next_delay(&result) {
///     // a real driver sleeps for `_delay` here
///     result = replies.next().unwrap().map_err(Error::Inner);
/// }
/// assert_eq!((result.unwrap(), attempts.attempt()), (7, 3));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub struct RetryAttempts<'a, T, E> {
    pub(super) policy: PolicyRef<'a, T, E>,
    /// The revision of the policy's plan this call follows to its end.
    pub(super) plan: usize,
    pub(super) started: Option<u64>,
    /// How far the policy's backoff has gone; the backoff itself stays in the policy.
    pub(super) delays: Cursor,
    /// Seeded only if a jittered delay is drawn.
    pub(super) rng: LazyRng,
    pub(super) attempt: u32,
}

impl<T, E> fmt::Debug for RetryAttempts<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryAttempts")
            .field("policy", &self.policy.inner().name)
            .field("attempt", &self.attempt)
            .finish()
    }
}

impl<'a, T, E> RetryAttempts<'a, T, E> {
    pub(super) fn begin(policy: PolicyRef<'a, T, E>) -> Self {
        let p = policy.inner();
        let started = p.plan.current().max_elapsed.map(|_| p.clock.now_nanos());
        Self::begin_at(policy, started)
    }

    /// Starts the decisions of a call that began at `started` (when `max_elapsed` is set).
    pub(super) fn begin_at(policy: PolicyRef<'a, T, E>, started: Option<u64>) -> Self {
        let p = policy.inner();
        if let Some(budget) = &p.budget {
            budget.deposit(p.clock.now_nanos());
        }
        let plan = p.plan.revision();
        let delays = p.plan_at(plan).backoff.cursor();
        let rng = LazyRng::new(p.seed);
        RetryAttempts {
            policy,
            plan,
            started,
            delays,
            rng,
            attempt: 1,
        }
    }

    /// The attempt that produced the last result (1 for the first).
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// let retry = Retry::<(), ()>::builder().build()?;
    /// let mut attempts = retry.attempts();
    /// assert_eq!(attempts.attempt(), 1);
    /// attempts.next_delay(&Err(Error::Inner(())));
    /// assert_eq!(attempts.attempt(), 2);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Judges the result of the current attempt: `Some(delay)` to retry after `delay` (the
    /// retry is counted, reported to listeners and taken from the budget), `None` to return
    /// this result.
    ///
    /// ```
    /// use fusebox_core::backoff::Backoff;
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_core::Error;
    /// use std::time::Duration;
    /// let backoff = Backoff::fixed(Duration::from_millis(20)).build()?;
    /// let retry = Retry::<u32, &str>::builder().backoff(backoff).build()?;
    /// let mut attempts = retry.attempts();
    /// let delay = attempts.next_delay(&Err(Error::Inner("busy")));
    /// assert_eq!(delay, Some(Duration::from_millis(20)));
    /// assert_eq!(attempts.next_delay(&Ok(1)), None); // Ok values are returned
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn next_delay(&mut self, last: &Result<T, Error<E>>) -> Option<Duration> {
        let decision = self.policy.inner().decide(last);
        self.delay_for(decision, last)
    }

    /// [`next_delay`](Self::next_delay) once the result is classified.
    pub(super) fn delay_for(
        &mut self,
        decision: RetryDecision,
        last: &Result<T, Error<E>>,
    ) -> Option<Duration> {
        if !decision.is_retry() {
            return None;
        }
        let p = self.policy.inner();
        let plan = p.plan_at(self.plan);
        if self.attempt > plan.max_retries {
            return self.give_up(GiveUpReason::MaxRetries);
        }
        let Some(mut delay) = plan.backoff.step(&mut self.delays, &mut self.rng) else {
            return self.give_up(GiveUpReason::Exhausted);
        };
        if let RetryDecision::RetryAfter(hint) = decision {
            if hint > plan.max_retry_after {
                return self.give_up(GiveUpReason::RetryAfterTooLong);
            }
            delay = delay.max(hint);
        }
        if let (Some(max), Some(started)) = (plan.max_elapsed, self.started) {
            let elapsed = Duration::from_nanos(p.clock.now_nanos().saturating_sub(started));
            if elapsed.saturating_add(delay) > max {
                return self.give_up(GiveUpReason::Exhausted);
            }
        }
        if let Some(budget) = &p.budget
            && !budget.try_withdraw(p.clock.now_nanos())
        {
            return self.give_up(GiveUpReason::BudgetExhausted);
        }
        self.attempt += 1;
        let event = RetryEvent {
            name: p.name.clone(),
            attempt: self.attempt,
            delay,
            reason: RetryReason::of(last),
        };
        tracing::debug!(
            policy = %p.name,
            attempt = self.attempt,
            delay_ms = delay.as_millis() as u64,
            reason = event.reason.as_str(),
            "retrying"
        );
        for listener in &p.on_retry {
            listener(&event);
        }
        Some(delay)
    }

    pub(super) fn give_up(&self, reason: GiveUpReason) -> Option<Duration> {
        let p = self.policy.inner();
        tracing::debug!(policy = %p.name, reason = ?reason, "not retrying");
        for listener in &p.on_give_up {
            listener(&p.name, reason);
        }
        None
    }
}
