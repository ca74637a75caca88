//! Classification: how the result of a call becomes a success, a failure or nothing at all.

/// What a finished call means to a policy.
///
/// ```
/// use fusebox_core::Outcome;
/// assert_ne!(Outcome::Success, Outcome::Failure);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Outcome {
    /// The call worked.
    Success,
    /// The call failed in a way that says something about the dependency's health.
    Failure,
    /// The call says nothing about the dependency (a client-side validation error, a
    /// cancellation, a 404): it is not counted at all.
    Ignored,
}

/// Decides what a `Result<T, E>` means: success, failure or ignored.
///
/// Closures `Fn(&Result<T, E>) -> Outcome` are classifiers, and so is [`ErrIsFailure`], the
/// default. Classifiers are data: policies never hard-code what a failure is.
///
/// ```
/// use fusebox_core::{Classifier, Outcome};
///
/// // 404s are the caller's problem, not the dependency's.
/// let classify = |r: &Result<u16, u16>| match r {
///     Ok(_) => Outcome::Success,
///     Err(404) => Outcome::Ignored,
///     Err(_) => Outcome::Failure,
/// };
/// assert_eq!(classify.classify(&Err(404)), Outcome::Ignored);
/// assert_eq!(classify.classify(&Err(500)), Outcome::Failure);
/// ```
pub trait Classifier<T, E> {
    /// The meaning of one result.
    ///
    /// ```
    /// use fusebox_core::{Classifier, ErrIsFailure, FailureWhen, Outcome};
    /// let timeouts_only = FailureWhen(|e: &&str| *e == "timeout");
    /// assert_eq!(timeouts_only.classify(&Err::<(), _>("timeout")), Outcome::Failure);
    /// assert_eq!(timeouts_only.classify(&Err::<(), _>("bad input")), Outcome::Ignored);
    /// assert_eq!(ErrIsFailure.classify(&Err::<(), _>("bad input")), Outcome::Failure);
    /// ```
    fn classify(&self, result: &Result<T, E>) -> Outcome;

    /// How long the server asked callers to stay away, for a result this classifier calls a
    /// failure (an HTTP `Retry-After`, gRPC retry info); `None` (the default) when it did not
    /// say. Asked only for failures, and only by a breaker built with
    /// [`open_for_retry_after`](crate::breaker::BreakerBuilder::open_for_retry_after).
    ///
    /// ```
    /// use fusebox_core::{Classifier, Outcome};
    /// use std::time::Duration;
    ///
    /// struct Busy; // a downstream error that may carry a delay in seconds
    /// impl Classifier<(), Option<u64>> for Busy {
    ///     fn classify(&self, r: &Result<(), Option<u64>>) -> Outcome {
    ///         if r.is_ok() { Outcome::Success } else { Outcome::Failure }
    ///     }
    ///     fn retry_after(&self, r: &Result<(), Option<u64>>) -> Option<Duration> {
    ///         r.as_ref().err().copied().flatten().map(Duration::from_secs)
    ///     }
    /// }
    /// assert_eq!(Busy.retry_after(&Err(Some(5))), Some(Duration::from_secs(5)));
    /// // A closure classifier says nothing about delays.
    /// let any_err = |r: &Result<(), ()>| if r.is_ok() { Outcome::Success } else { Outcome::Failure };
    /// assert_eq!(any_err.retry_after(&Err(())), None);
    /// ```
    fn retry_after(&self, result: &Result<T, E>) -> Option<std::time::Duration> {
        let _ = result;
        None
    }
}

impl<T, E, F> Classifier<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// The default classifier: `Ok` is a success, every `Err` a failure.
///
/// ```
/// use fusebox_core::{Classifier, ErrIsFailure, Outcome};
/// assert_eq!(ErrIsFailure.classify(&Ok::<_, ()>(1)), Outcome::Success);
/// assert_eq!(ErrIsFailure.classify(&Err::<(), _>("boom")), Outcome::Failure);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrIsFailure;

impl<T, E> Classifier<T, E> for ErrIsFailure {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

/// A classifier from a predicate over errors: `true` means the error counts as a failure,
/// `false` that it is ignored. `Ok` is always a success. This is the `should_handle` of the
/// systems fusebox replaces.
///
/// ```
/// use fusebox_core::{Classifier, FailureWhen, Outcome};
/// let c = FailureWhen(|e: &std::io::Error| e.kind() != std::io::ErrorKind::NotFound);
/// let not_found = std::io::Error::from(std::io::ErrorKind::NotFound);
/// assert_eq!(c.classify(&Err::<(), _>(not_found)), Outcome::Ignored);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FailureWhen<P>(pub P);

impl<T, E, P> Classifier<T, E> for FailureWhen<P>
where
    P: Fn(&E) -> bool,
{
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(e) if (self.0)(e) => Outcome::Failure,
            Err(_) => Outcome::Ignored,
        }
    }
}
