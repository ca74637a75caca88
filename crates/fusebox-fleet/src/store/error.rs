//! Why a store operation fails, and the span checks every store runs before it writes
//! a time, kept apart so that all stores refuse the same values with the same words.

/// Why a store operation failed.
///
/// ```
/// use fusebox_fleet::StoreError;
/// let e = StoreError::Unavailable("connection refused".into());
/// assert!(e.is_unavailable());
/// assert_eq!(e.to_string(), "store unavailable: connection refused");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or did not answer in time.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The store answered, but its schema or scripts are missing (run the setup first).
    #[error("store not set up: {0}")]
    NotSetUp(String),
    /// The store answered with something this version cannot read.
    #[error("store protocol error: {0}")]
    Protocol(String),
    /// The request itself was invalid (an empty breaker name, say).
    #[error("invalid store request: {0}")]
    Invalid(String),
}

impl StoreError {
    /// True for errors that a retry after a reconnect may cure.
    ///
    /// ```
    /// use fusebox_fleet::StoreError;
    /// assert!(!StoreError::Protocol("bad reply".into()).is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// The longest span, in milliseconds, that a value written to a store may cover: a forced
/// state's duration, an open cooldown, a lease. Ten years, far inside what every store's
/// arithmetic holds (Lua's exact integers below 2^53, PostgreSQL's `bigint` and its
/// timestamps, calendar dates before year 10000), so no store ever writes an overflowed time.
///
/// ```
/// use fusebox_fleet::MAX_STORE_SPAN_MS;
/// assert_eq!(MAX_STORE_SPAN_MS, 10 * 365 * 24 * 60 * 60 * 1000);
/// ```
pub const MAX_STORE_SPAN_MS: u64 = 10 * 365 * 24 * 60 * 60 * 1000;

/// Checks a forced state's duration before any store writes it: `None` (until reset) or
/// 1 ms to [`MAX_STORE_SPAN_MS`]. Every store calls it first, so they all refuse the same
/// values with the same words: a zero duration would mean "forever" to one store and
/// "already over" to another.
///
/// ```
/// use fusebox_fleet::{check_force_ms, MAX_STORE_SPAN_MS};
/// assert!(check_force_ms(None).is_ok());
/// assert!(check_force_ms(Some(1)).is_ok());
/// assert!(check_force_ms(Some(0)).is_err());
/// assert!(check_force_ms(Some(MAX_STORE_SPAN_MS + 1)).is_err());
/// ```
pub fn check_force_ms(for_ms: Option<u64>) -> Result<(), StoreError> {
    match for_ms {
        Some(ms) => check_span_ms("a forced state's duration", ms),
        None => Ok(()),
    }
}

/// Checks any span a store is asked to write (a lease's time to live, an open cooldown, a
/// forced state's duration): 1 ms to [`MAX_STORE_SPAN_MS`], named by `what` in the error.
///
/// ```
/// use fusebox_fleet::check_span_ms;
/// assert!(check_span_ms("lease_ttl_ms", 500).is_ok());
/// let e = check_span_ms("cooldown_ms", u64::MAX).unwrap_err();
/// assert!(e.to_string().contains("cooldown_ms"));
/// ```
pub fn check_span_ms(what: &str, ms: u64) -> Result<(), StoreError> {
    match ms {
        0 => Err(StoreError::Invalid(format!("{what} must be at least 1ms"))),
        ms if ms > MAX_STORE_SPAN_MS => Err(StoreError::Invalid(format!(
            "{what} must be at most {} days, got {} days",
            MAX_STORE_SPAN_MS / 86_400_000,
            ms / 86_400_000
        ))),
        _ => Ok(()),
    }
}

/// A forced state's duration in whole milliseconds, as stores take it: refused below 1 ms
/// or above [`MAX_STORE_SPAN_MS`], and rounded up to the next millisecond otherwise, so a
/// force never ends sooner than asked.
///
/// ```
/// use fusebox_fleet::force_millis;
/// use std::time::Duration;
/// assert_eq!(force_millis(Duration::from_micros(1_500)).unwrap(), 2);
/// assert_eq!(force_millis(Duration::from_secs(90)).unwrap(), 90_000);
/// assert!(force_millis(Duration::from_micros(500)).is_err());
/// assert!(force_millis(Duration::from_secs(u64::MAX)).is_err());
/// ```
pub fn force_millis(duration: std::time::Duration) -> Result<u64, StoreError> {
    if duration < std::time::Duration::from_millis(1) {
        return Err(StoreError::Invalid(format!(
            "a forced state's duration must be at least 1ms, got {duration:?}"
        )));
    }
    let whole = duration.as_millis();
    let ms = if duration.subsec_nanos().is_multiple_of(1_000_000) {
        whole
    } else {
        whole + 1
    };
    let ms = u64::try_from(ms).unwrap_or(u64::MAX);
    check_span_ms("a forced state's duration", ms)?;
    Ok(ms)
}
