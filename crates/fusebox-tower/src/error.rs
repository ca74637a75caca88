use fusebox_core::{
    BulkheadFull, CostRejected, Ejected, Error, LimitExceeded, RateLimited, Rejected, Throttled,
    TimedOut,
};

/// The error type of every fusebox service: tower's usual boxed error.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Recovers fusebox's typed reasons from a boxed error: a rejection, a timeout, a full
/// bulkhead, a cost guard's refusal and the load-adaptive policies' refusals become their
/// [`Error`] variants; anything else is the caller's error.
///
/// ```
/// use fusebox_tower::{classify_error, BoxError};
/// use fusebox_core::{Error, TimedOut};
/// use std::time::Duration;
///
/// let boxed: BoxError = Box::new(TimedOut { after: Duration::from_secs(1) });
/// assert!(matches!(classify_error(boxed), Error::Timeout(_)));
/// let boxed: BoxError = "connection reset".into();
/// assert!(matches!(classify_error(boxed), Error::Inner(_)));
/// ```
pub fn classify_error(error: BoxError) -> Error<BoxError> {
    let error = match error.downcast::<Rejected>() {
        Ok(r) => return Error::Rejected(*r),
        Err(e) => e,
    };
    let error = match error.downcast::<TimedOut>() {
        Ok(t) => return Error::Timeout(*t),
        Err(e) => e,
    };
    let error = match error.downcast::<BulkheadFull>() {
        Ok(b) => return Error::BulkheadFull(*b),
        Err(e) => e,
    };
    let error = match error.downcast::<CostRejected>() {
        Ok(c) => return Error::CostRejected(c),
        Err(e) => e,
    };
    let error = match error.downcast::<RateLimited>() {
        Ok(r) => return Error::RateLimited(*r),
        Err(e) => e,
    };
    let error = match error.downcast::<LimitExceeded>() {
        Ok(l) => return Error::LimitExceeded(*l),
        Err(e) => e,
    };
    let error = match error.downcast::<Throttled>() {
        Ok(t) => return Error::Throttled(*t),
        Err(e) => e,
    };
    match error.downcast::<Ejected>() {
        Ok(e) => Error::Ejected(*e),
        Err(e) => Error::Inner(e),
    }
}

/// The inverse of [`classify_error`]: boxes a fusebox error back into a service's error.
pub(crate) fn into_box(error: Error<BoxError>) -> BoxError {
    match error {
        Error::Inner(e) => e,
        Error::Rejected(r) => Box::new(r),
        Error::Timeout(t) => Box::new(t),
        Error::BulkheadFull(b) => Box::new(b),
        Error::CostRejected(c) => c,
        Error::RateLimited(r) => Box::new(r),
        Error::LimitExceeded(l) => Box::new(l),
        Error::Throttled(t) => Box::new(t),
        Error::Ejected(e) => Box::new(e),
    }
}
