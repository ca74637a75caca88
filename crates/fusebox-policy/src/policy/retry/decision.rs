//! What a retry decides about a result, and what it reports: decisions, reasons, events, hints.

use std::time::Duration;

use fusebox_core::Error;
use fusebox_core::breaker::Name;

/// What to do after one attempt.
///
/// ```
/// use fusebox_policy::policy::RetryDecision;
/// use std::time::Duration;
/// assert!(RetryDecision::RetryAfter(Duration::from_secs(1)).is_retry());
/// assert!(!RetryDecision::Stop.is_retry());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Return this result.
    Stop,
    /// Try again after the backoff's next delay.
    Retry,
    /// Try again, waiting at least this long (a server's `Retry-After`).
    RetryAfter(Duration),
}

impl RetryDecision {
    /// Whether the attempt should be retried.
    ///
    /// ```
    /// use fusebox_policy::policy::RetryDecision;
    /// use std::time::Duration;
    /// assert!(RetryDecision::Retry.is_retry());
    /// assert!(RetryDecision::RetryAfter(Duration::from_secs(2)).is_retry());
    /// assert!(!RetryDecision::Stop.is_retry());
    /// ```
    pub fn is_retry(self) -> bool {
        !matches!(self, RetryDecision::Stop)
    }
}

/// A value that may carry a server-given delay before the next attempt, such as an HTTP
/// `Retry-After` header on a 429 or 503.
///
/// ```
/// use fusebox_policy::policy::RetryAfterHint;
/// use std::time::Duration;
///
/// struct Throttled { wait_secs: u64 }
/// impl RetryAfterHint for Throttled {
///     fn retry_after(&self) -> Option<Duration> {
///         Some(Duration::from_secs(self.wait_secs))
///     }
/// }
/// assert_eq!(Throttled { wait_secs: 2 }.retry_after(), Some(Duration::from_secs(2)));
/// ```
pub trait RetryAfterHint {
    /// The delay the server asked for, if any.
    ///
    /// ```
    /// use fusebox_policy::policy::RetryAfterHint;
    /// struct Plain;
    /// impl RetryAfterHint for Plain {} // the default: no hint
    /// assert_eq!(Plain.retry_after(), None);
    /// assert_eq!(().retry_after(), None);
    /// ```
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

impl RetryAfterHint for () {}

impl<E: RetryAfterHint> RetryAfterHint for Error<E> {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Inner(e) => e.retry_after(),
            refusal => refusal.refusal_retry_after(),
        }
    }
}

/// Why an attempt is being retried, as reported to listeners and `tracing`.
///
/// ```
/// use fusebox_policy::policy::{Retry, RetryReason};
/// use fusebox_core::{Error, TimedOut};
/// # use std::sync::{Arc, Mutex};
/// # use std::time::Duration;
/// let reasons = Arc::new(Mutex::new(Vec::new()));
/// let log = reasons.clone();
/// let retry = Retry::<(), ()>::builder()
///     .on_retry(move |e| log.lock().unwrap().push(e.reason))
///     .build()?;
/// let timed_out = Err(Error::Timeout(TimedOut { after: Duration::from_secs(1) }));
/// retry.attempts().next_delay(&timed_out);
/// assert_eq!(*reasons.lock().unwrap(), [RetryReason::Timeout]);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryReason {
    /// The call failed with the caller's error.
    Error,
    /// The call returned an `Ok` value classified as retryable (a 503 response, say).
    Value,
    /// An inner timeout expired.
    Timeout,
    /// An inner breaker rejected the call.
    Rejected,
    /// An inner bulkhead was full.
    BulkheadFull,
    /// An inner cost guard refused the call.
    CostRejected,
    /// An inner rate limiter had no permit.
    RateLimited,
    /// An inner adaptive concurrency limit was reached.
    LimitExceeded,
    /// Inner client-side throttling shed the call.
    Throttled,
    /// Inner outlier ejection refused the call.
    Ejected,
}

impl RetryReason {
    pub(super) fn of<T, E>(result: &Result<T, Error<E>>) -> Self {
        match result {
            Ok(_) => RetryReason::Value,
            Err(Error::Inner(_)) => RetryReason::Error,
            Err(Error::Timeout(_)) => RetryReason::Timeout,
            Err(Error::Rejected(_)) => RetryReason::Rejected,
            Err(Error::BulkheadFull(_)) => RetryReason::BulkheadFull,
            Err(Error::CostRejected(_)) => RetryReason::CostRejected,
            Err(Error::RateLimited(_)) => RetryReason::RateLimited,
            Err(Error::LimitExceeded(_)) => RetryReason::LimitExceeded,
            Err(Error::Throttled(_)) => RetryReason::Throttled,
            Err(Error::Ejected(_)) => RetryReason::Ejected,
        }
    }

    /// Stable lower-case name.
    ///
    /// ```
    /// use fusebox_policy::policy::RetryReason;
    /// assert_eq!(RetryReason::Error.as_str(), "error");
    /// assert_eq!(RetryReason::BulkheadFull.as_str(), "bulkhead_full");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            RetryReason::Error => "error",
            RetryReason::Value => "value",
            RetryReason::Timeout => "timeout",
            RetryReason::Rejected => "rejected",
            RetryReason::BulkheadFull => "bulkhead_full",
            RetryReason::CostRejected => "cost_rejected",
            RetryReason::RateLimited => "rate_limited",
            RetryReason::LimitExceeded => "limit_exceeded",
            RetryReason::Throttled => "throttled",
            RetryReason::Ejected => "ejected",
        }
    }
}

/// One retry, as given to listeners.
///
/// ```
/// use fusebox_policy::policy::{Retry, RetryReason};
/// use fusebox_core::Error;
/// # use std::sync::{Arc, Mutex};
/// let events = Arc::new(Mutex::new(Vec::new()));
/// let log = events.clone();
/// let retry = Retry::<(), &str>::builder()
///     .on_retry(move |e| log.lock().unwrap().push(e.clone()))
///     .build()?;
/// let delay = retry.attempts().next_delay(&Err(Error::Inner("busy")));
/// let event = events.lock().unwrap()[0].clone();
/// assert_eq!((event.attempt, event.reason, Some(event.delay)), (2, RetryReason::Error, delay));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryEvent {
    /// The policy's name.
    pub name: Name,
    /// The attempt about to start (2 for the first retry).
    pub attempt: u32,
    /// The delay slept before it.
    pub delay: Duration,
    /// Why the previous attempt is retried.
    pub reason: RetryReason,
}

/// Why a retryable result was returned without retrying.
///
/// ```
/// use fusebox_core::backoff::Backoff;
/// use fusebox_policy::policy::{GiveUpReason, Retry};
/// use fusebox_core::Error;
/// # use std::sync::{Arc, Mutex};
/// # use std::time::Duration;
/// let reasons = Arc::new(Mutex::new(Vec::new()));
/// let log = reasons.clone();
/// let retry = Retry::<(), ()>::builder()
///     .backoff(Backoff::fixed(Duration::ZERO).max_delays(1).build()?)
///     .on_give_up(move |_, reason| log.lock().unwrap().push(reason))
///     .build()?;
/// let mut attempts = retry.attempts();
/// while attempts.next_delay(&Err(Error::Inner(()))).is_some() {}
/// assert_eq!(*reasons.lock().unwrap(), [GiveUpReason::Exhausted]); // one delay, then none
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// `max_retries` reached.
    MaxRetries,
    /// The next delay would pass `max_elapsed`, or the backoff has no more delays.
    Exhausted,
    /// The server asked for a longer wait than `max_retry_after`.
    RetryAfterTooLong,
    /// The retry budget is spent.
    BudgetExhausted,
}
