//! Error types shared across fusebox: configuration errors from validated builders and the
//! call error that keeps the caller's own error intact beside fusebox's reasons.

use std::borrow::Cow;

/// A configuration value was rejected by a builder or a pure check.
///
/// Every variant names the offending field so the message points straight at the setting.
///
/// ```
/// use fusebox_core::ConfigError;
///
/// let err = ConfigError::invalid("failure_rate", "must be within [0, 1], got 1.5");
/// assert_eq!(err.field(), Some("failure_rate"));
/// assert_eq!(err.to_string(), "invalid `failure_rate`: must be within [0, 1], got 1.5");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// One field holds a value outside its allowed range.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// Name of the field, as spelled in the builder method or config key.
        field: &'static str,
        /// What was expected and what was given.
        reason: Cow<'static, str>,
    },
    /// Two or more settings cannot be used together.
    #[error("conflicting settings `{first}` and `{second}`: {reason}")]
    Conflict {
        /// The first setting involved.
        first: &'static str,
        /// The second setting involved.
        second: &'static str,
        /// Why they conflict.
        reason: Cow<'static, str>,
    },
}

impl ConfigError {
    /// Builds an [`ConfigError::Invalid`] for `field`.
    ///
    /// ```
    /// # use fusebox_core::ConfigError;
    /// let e = ConfigError::invalid("window", "must not be zero");
    /// assert!(matches!(e, ConfigError::Invalid { field: "window", .. }));
    /// ```
    pub fn invalid(field: &'static str, reason: impl Into<Cow<'static, str>>) -> Self {
        ConfigError::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Builds a [`ConfigError::Conflict`] between two settings.
    ///
    /// ```
    /// # use fusebox_core::ConfigError;
    /// let e = ConfigError::conflict("count_window", "time_window", "pick one window");
    /// assert!(e.to_string().contains("pick one window"));
    /// ```
    pub fn conflict(
        first: &'static str,
        second: &'static str,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        ConfigError::Conflict {
            first,
            second,
            reason: reason.into(),
        }
    }

    /// The field this error is about (the first one for a conflict).
    ///
    /// ```
    /// # use fusebox_core::ConfigError;
    /// assert_eq!(ConfigError::invalid("alpha", "NaN").field(), Some("alpha"));
    /// ```
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { field, .. } => Some(field),
            ConfigError::Conflict { first, .. } => Some(first),
        }
    }
}

/// Validation helpers used by every builder, so that messages read the same everywhere.
/// Crates that build policies on fusebox use them too.
///
/// ```
/// use fusebox_core::check;
/// assert_eq!(check::unit("ratio", 0.5).unwrap(), 0.5);
/// let err = check::unit("ratio", f64::NAN).unwrap_err();
/// assert_eq!(err.field(), Some("ratio"));
/// ```
pub mod check {
    use super::ConfigError;
    use std::time::Duration;

    /// A finite number (not NaN, not infinite).
    ///
    /// ```
    /// assert!(fusebox_core::check::finite("x", f64::INFINITY).is_err());
    /// ```
    pub fn finite(field: &'static str, value: f64) -> Result<f64, ConfigError> {
        if value.is_finite() {
            Ok(value)
        } else {
            Err(ConfigError::invalid(
                field,
                format!("must be a finite number, got {value}"),
            ))
        }
    }

    /// A finite number `>= 0`.
    ///
    /// ```
    /// assert!(fusebox_core::check::non_negative("x", -1.0).is_err());
    /// ```
    pub fn non_negative(field: &'static str, value: f64) -> Result<f64, ConfigError> {
        finite(field, value)?;
        if value < 0.0 {
            return Err(ConfigError::invalid(
                field,
                format!("must not be negative, got {value}"),
            ));
        }
        Ok(value)
    }

    /// A finite number `> 0`.
    ///
    /// ```
    /// assert!(fusebox_core::check::positive("x", 0.0).is_err());
    /// ```
    pub fn positive(field: &'static str, value: f64) -> Result<f64, ConfigError> {
        finite(field, value)?;
        if value <= 0.0 {
            return Err(ConfigError::invalid(
                field,
                format!("must be greater than zero, got {value}"),
            ));
        }
        Ok(value)
    }

    /// A ratio within `[0, 1]`.
    ///
    /// ```
    /// assert!(fusebox_core::check::unit("x", 1.5).is_err());
    /// ```
    pub fn unit(field: &'static str, value: f64) -> Result<f64, ConfigError> {
        finite(field, value)?;
        if !(0.0..=1.0).contains(&value) {
            return Err(ConfigError::invalid(
                field,
                format!("must be within [0, 1], got {value}"),
            ));
        }
        Ok(value)
    }

    /// A ratio within `(0, 1]`.
    ///
    /// ```
    /// assert!(fusebox_core::check::unit_open_low("x", 0.0).is_err());
    /// assert!(fusebox_core::check::unit_open_low("x", 1.0).is_ok());
    /// ```
    pub fn unit_open_low(field: &'static str, value: f64) -> Result<f64, ConfigError> {
        finite(field, value)?;
        if !(value > 0.0 && value <= 1.0) {
            return Err(ConfigError::invalid(
                field,
                format!("must be within (0, 1], got {value}"),
            ));
        }
        Ok(value)
    }

    /// A count that must not be zero.
    ///
    /// ```
    /// assert!(fusebox_core::check::nonzero("x", 0).is_err());
    /// ```
    pub fn nonzero(field: &'static str, value: u64) -> Result<u64, ConfigError> {
        if value == 0 {
            Err(ConfigError::invalid(field, "must be at least 1, got 0"))
        } else {
            Ok(value)
        }
    }

    /// A duration that must not be zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(fusebox_core::check::nonzero_duration("x", Duration::ZERO).is_err());
    /// ```
    pub fn nonzero_duration(field: &'static str, value: Duration) -> Result<Duration, ConfigError> {
        if value.is_zero() {
            Err(ConfigError::invalid(field, "must be longer than zero"))
        } else {
            Ok(value)
        }
    }
}

/// The error of a call made through fusebox: the caller's own error, intact, or the reason
/// fusebox stopped the call.
///
/// ```
/// use fusebox_core::Error;
/// let e: Error<std::io::Error> = Error::Inner(std::io::Error::other("disk"));
/// assert!(!e.is_rejected());
/// assert_eq!(e.into_inner().unwrap().to_string(), "disk");
/// ```
#[derive(Debug, thiserror::Error)]
// Exhaustive on purpose: the composers in other crates (policies, tower layers) match every
// variant, so a new one is a compile error there rather than a silent default.
pub enum Error<E> {
    /// The protected call ran and failed with the caller's error.
    #[error(transparent)]
    Inner(E),
    /// A circuit breaker refused the call.
    #[error(transparent)]
    Rejected(crate::breaker::Rejected),
    /// A timeout policy gave up waiting.
    #[error(transparent)]
    Timeout(TimedOut),
    /// A bulkhead had no room for the call.
    #[error(transparent)]
    BulkheadFull(BulkheadFull),
    /// A cost guard refused the call: budget breached, a spend spike, or an unknown cost
    /// blocking the window. Boxed: it is the largest refusal by far, and rare; carried
    /// inline it would make every call's result half as large again, a cost paid by every
    /// call through a breaker or a pipeline whether or not a cost guard is in it.
    #[error(transparent)]
    CostRejected(Box<crate::guard::CostRejected>),
    /// A rate limiter had no permit for the call.
    #[error(transparent)]
    RateLimited(crate::shed::RateLimited),
    /// An adaptive concurrency limit was reached.
    #[error(transparent)]
    LimitExceeded(crate::shed::LimitExceeded),
    /// Client-side throttling shed the call.
    #[error(transparent)]
    Throttled(crate::shed::Throttled),
    /// Outlier ejection refused the call: its endpoint is ejected.
    #[error(transparent)]
    Ejected(crate::shed::Ejected),
}

/// A call that took longer than its timeout.
///
/// ```
/// use fusebox_core::TimedOut;
/// use std::time::Duration;
/// let e = TimedOut { after: Duration::from_millis(250) };
/// assert_eq!(e.to_string(), "timed out after 250ms");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {after:?}")]
pub struct TimedOut {
    /// The timeout that expired.
    pub after: std::time::Duration,
}

/// A bulkhead refused a call: every slot was busy and the wait queue full (or waiting
/// took too long).
///
/// ```
/// use fusebox_core::BulkheadFull;
/// let e = BulkheadFull { name: "db".into(), max_concurrent: 8, max_queued: 0 };
/// assert_eq!(e.to_string(), "bulkhead `db` is full (8 calls running, 0 may wait)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bulkhead `{name}` is full ({max_concurrent} calls running, {max_queued} may wait)")]
pub struct BulkheadFull {
    /// The bulkhead's name.
    pub name: crate::breaker::Name,
    /// Calls allowed at once.
    pub max_concurrent: u32,
    /// Calls allowed to wait.
    pub max_queued: u32,
}

impl<E> Error<E> {
    /// Whether a breaker refused the call.
    ///
    /// ```
    /// # use fusebox_core::Error;
    /// assert!(!Error::Inner(()).is_rejected());
    /// ```
    pub fn is_rejected(&self) -> bool {
        matches!(self, Error::Rejected(_))
    }

    /// The caller's error, if the call ran and failed.
    ///
    /// ```
    /// # use fusebox_core::Error;
    /// assert_eq!(Error::Inner(7).inner(), Some(&7));
    /// ```
    pub fn inner(&self) -> Option<&E> {
        match self {
            Error::Inner(e) => Some(e),
            _ => None,
        }
    }

    /// The caller's error, if the call ran and failed.
    ///
    /// ```
    /// # use fusebox_core::Error;
    /// assert_eq!(Error::Inner("x").into_inner(), Some("x"));
    /// ```
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Inner(e) => Some(e),
            _ => None,
        }
    }

    /// Which fusebox policy stopped the call: `"breaker"`, `"timeout"`, `"bulkhead"`,
    /// `"cost_guard"`, `"rate_limit"`, `"concurrency_limit"`, `"throttle"` or
    /// `"outlier_ejection"`; `None` when the call itself failed.
    ///
    /// ```
    /// # use fusebox_core::{Error, TimedOut};
    /// let e: Error<()> = Error::Timeout(TimedOut { after: std::time::Duration::from_secs(1) });
    /// assert_eq!(e.stopped_by(), Some("timeout"));
    /// assert_eq!(Error::Inner(()).stopped_by(), None);
    /// ```
    pub fn stopped_by(&self) -> Option<&'static str> {
        match self {
            Error::Inner(_) => None,
            Error::Rejected(_) => Some("breaker"),
            Error::Timeout(_) => Some("timeout"),
            Error::BulkheadFull(_) => Some("bulkhead"),
            Error::CostRejected(_) => Some("cost_guard"),
            Error::RateLimited(_) => Some("rate_limit"),
            Error::LimitExceeded(_) => Some("concurrency_limit"),
            Error::Throttled(_) => Some("throttle"),
            Error::Ejected(_) => Some("outlier_ejection"),
        }
    }

    /// Whether a policy shed the call to protect the dependency or the caller (a breaker,
    /// a full bulkhead, a cost guard, a rate limit, a concurrency limit, throttling, an
    /// ejection) before it ran: the dependency never saw it, so it says nothing about the
    /// dependency's health. A timeout and the caller's own error are not refusals.
    ///
    /// ```
    /// # use fusebox_core::{Error, RateLimited, TimedOut};
    /// use std::time::Duration;
    /// let limited: Error<()> = Error::RateLimited(RateLimited {
    ///     name: "api".into(),
    ///     retry_after: Duration::from_millis(5),
    /// });
    /// assert!(limited.is_refusal());
    /// let timed_out: Error<()> = Error::Timeout(TimedOut { after: Duration::from_secs(1) });
    /// assert!(!timed_out.is_refusal());
    /// assert!(!Error::Inner(()).is_refusal());
    /// ```
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Error::Inner(_) | Error::Timeout(_))
    }

    /// How long the refusing policy asked the caller to wait, when it said: a breaker's
    /// open time, a cost guard's window, a rate limiter's next permit, an ejection's end.
    /// `None` for the caller's own error, whatever it carries (a retry reads that through
    /// `RetryAfterHint`).
    ///
    /// ```
    /// # use fusebox_core::{Ejected, Error};
    /// use std::time::Duration;
    /// let e: Error<()> = Error::Ejected(Ejected {
    ///     name: "10.0.0.7:443".into(),
    ///     retry_after: Duration::from_secs(30),
    /// });
    /// assert_eq!(e.refusal_retry_after(), Some(Duration::from_secs(30)));
    /// assert_eq!(Error::Inner(()).refusal_retry_after(), None);
    /// ```
    pub fn refusal_retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Error::Rejected(r) => r.retry_after(),
            Error::CostRejected(c) => c.retry_after,
            Error::RateLimited(r) => Some(r.retry_after),
            Error::Ejected(e) => Some(e.retry_after),
            Error::Inner(_)
            | Error::Timeout(_)
            | Error::BulkheadFull(_)
            | Error::LimitExceeded(_)
            | Error::Throttled(_) => None,
        }
    }

    /// The rejection, if a breaker refused the call.
    ///
    /// ```
    /// # use fusebox_core::Error;
    /// assert!(Error::Inner(()).rejection().is_none());
    /// ```
    pub fn rejection(&self) -> Option<&crate::breaker::Rejected> {
        match self {
            Error::Rejected(r) => Some(r),
            _ => None,
        }
    }

    /// The refusal, if a cost guard refused the call.
    ///
    /// ```
    /// # use fusebox_core::Error;
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?).build()?;
    /// guard.record_cost(1.0)?;
    /// let e: Error<()> = Error::CostRejected(Box::new(guard.try_acquire().unwrap_err()));
    /// assert_eq!(e.cost_rejection().map(|r| r.limit), Some(1.0));
    /// assert_eq!(e.stopped_by(), Some("cost_guard"));
    /// assert!(Error::Inner(()).cost_rejection().is_none());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn cost_rejection(&self) -> Option<&crate::guard::CostRejected> {
        match self {
            Error::CostRejected(r) => Some(r.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every call through a breaker or a pipeline returns a `Result<T, Error<E>>` and moves
    /// it a few times on its way out: no refusal may make it wider than a breaker's.
    #[test]
    fn a_call_result_is_no_wider_than_a_breaker_refusal() {
        let widest_inline = size_of::<crate::breaker::Rejected>() + size_of::<usize>();
        assert!(size_of::<Error<()>>() <= widest_inline);
        assert!(size_of::<Result<u64, Error<u32>>>() <= widest_inline);
    }
}
