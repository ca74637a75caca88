//! What an HTTP response or a transport error means to a circuit breaker.

use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use fusebox_core::{Classifier, ConfigError, Outcome};
use http::{Response, StatusCode};

/// The lowest and highest status codes [`StatusCode`] can hold.
const FIRST_STATUS: u16 = 100;
const LAST_STATUS: u16 = 999;
const STATUS_COUNT: usize = (LAST_STATUS - FIRST_STATUS + 1) as usize;

type StatusPredicate = Arc<dyn Fn(StatusCode) -> Outcome + Send + Sync>;
type ErrorPredicate<E> = Arc<dyn Fn(&E) -> Outcome + Send + Sync>;

/// Classifies HTTP responses and transport errors for a circuit breaker.
///
/// By default 5xx responses, `429 Too Many Requests` and `408 Request Timeout` are failures,
/// every other response a success, and every error from the inner service (the request got
/// no response at all) a failure. A 404 or 400 says the dependency is up and answering, so it
/// counts as a success. The builder changes single statuses or ranges, replaces the table
/// with a predicate, or classifies errors, e.g. to ignore a caller's own cancellations.
///
/// It is cloned into every call, so its configuration sits behind one shared pointer.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_core::breaker::Breaker;
/// use fusebox_tower::BreakerLayer;
/// use fusebox_tower::http::HttpClassifier;
/// use http::{Response, StatusCode};
/// use tower::{service_fn, Layer, ServiceExt};
///
/// let breaker = Breaker::builder("catalog").consecutive_failures(1).build()?;
/// let upstream = service_fn(|status: u16| async move {
///     Response::builder().status(status).body(()) // an `http::Error` if `status` is invalid
/// });
/// let svc = BreakerLayer::new(breaker.clone())
///     .classifier(HttpClassifier::new())
///     .layer(upstream);
///
/// // A 404 is the caller's business: the breaker stays closed.
/// assert_eq!(svc.clone().oneshot(404).await?.status(), StatusCode::NOT_FOUND);
/// // A 503 is returned to the caller as a response, and trips the breaker.
/// assert_eq!(svc.clone().oneshot(503).await?.status(), StatusCode::SERVICE_UNAVAILABLE);
/// assert!(svc.oneshot(200).await.unwrap_err().is::<fusebox_core::Rejected>());
/// # Ok(())
/// # }
/// ```
pub struct HttpClassifier<E> {
    rules: Arc<Rules<E>>,
}

struct Rules<E> {
    statuses: StatusRule,
    errors: Option<ErrorPredicate<E>>,
}

enum StatusRule {
    Table(StatusTable),
    Predicate(StatusPredicate),
}

/// One outcome per status code, from 100 to 999.
struct StatusTable {
    outcomes: Box<[Outcome; STATUS_COUNT]>,
}

impl StatusTable {
    fn defaults() -> Self {
        let mut table = StatusTable {
            outcomes: Box::new([Outcome::Success; STATUS_COUNT]),
        };
        table.set(500, 599, Outcome::Failure);
        table.set(408, 408, Outcome::Failure);
        table.set(429, 429, Outcome::Failure);
        table
    }

    /// Sets `first..=last`; callers have checked the bounds, and any slot outside the table
    /// is skipped rather than trusted.
    fn set(&mut self, first: u16, last: u16, outcome: Outcome) {
        let start = usize::from(first.saturating_sub(FIRST_STATUS));
        let end = usize::from(last.saturating_sub(FIRST_STATUS));
        for slot in self.outcomes.iter_mut().take(end + 1).skip(start) {
            *slot = outcome;
        }
    }

    fn get(&self, status: StatusCode) -> Outcome {
        let index = usize::from(status.as_u16().saturating_sub(FIRST_STATUS));
        // `StatusCode` only holds 100..=999, so the slot always exists; a status outside it
        // would be a server speaking nonsense, which is a failure.
        self.outcomes
            .get(index)
            .copied()
            .unwrap_or(Outcome::Failure)
    }
}

impl<E> HttpClassifier<E> {
    /// The default classification: 5xx, 429 and 408 are failures, other responses
    /// successes, errors failures.
    ///
    /// ```
    /// use fusebox_core::{Classifier, Outcome};
    /// use fusebox_tower::http::HttpClassifier;
    /// use http::{Response, StatusCode};
    ///
    /// let classifier = HttpClassifier::<std::io::Error>::new();
    /// let response = |status: StatusCode| {
    ///     let mut response = Response::new(());
    ///     *response.status_mut() = status;
    ///     Ok(response)
    /// };
    /// assert_eq!(classifier.classify(&response(StatusCode::OK)), Outcome::Success);
    /// assert_eq!(classifier.classify(&response(StatusCode::NOT_FOUND)), Outcome::Success);
    /// assert_eq!(classifier.classify(&response(StatusCode::TOO_MANY_REQUESTS)), Outcome::Failure);
    /// assert_eq!(classifier.classify(&response(StatusCode::BAD_GATEWAY)), Outcome::Failure);
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// assert_eq!(classifier.classify(&Err::<Response<()>, _>(refused)), Outcome::Failure);
    /// ```
    pub fn new() -> Self {
        HttpClassifier {
            rules: Arc::new(Rules {
                statuses: StatusRule::Table(StatusTable::defaults()),
                errors: None,
            }),
        }
    }

    /// Starts from the default classification.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tower::http::HttpClassifier;
    /// use http::StatusCode;
    ///
    /// let classifier = HttpClassifier::<std::io::Error>::builder()
    ///     .statuses(400..=499, Outcome::Ignored)
    ///     .status(StatusCode::TOO_MANY_REQUESTS, Outcome::Failure)
    ///     .build()?;
    /// assert_eq!(classifier.status_outcome(StatusCode::NOT_FOUND), Outcome::Ignored);
    /// assert_eq!(classifier.status_outcome(StatusCode::TOO_MANY_REQUESTS), Outcome::Failure);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder() -> HttpClassifierBuilder<E> {
        HttpClassifierBuilder {
            table: StatusTable::defaults(),
            table_changed: false,
            status_predicate: None,
            errors: None,
            invalid: None,
        }
    }

    /// What a response with `status` means.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tower::http::HttpClassifier;
    /// use http::StatusCode;
    ///
    /// let classifier = HttpClassifier::<()>::new();
    /// assert_eq!(classifier.status_outcome(StatusCode::GATEWAY_TIMEOUT), Outcome::Failure);
    /// assert_eq!(classifier.status_outcome(StatusCode::NO_CONTENT), Outcome::Success);
    /// ```
    pub fn status_outcome(&self, status: StatusCode) -> Outcome {
        match &self.rules.statuses {
            StatusRule::Table(table) => table.get(status),
            StatusRule::Predicate(predicate) => predicate(status),
        }
    }

    /// What an error from the inner service means: the error predicate's answer, or a
    /// failure when there is none.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tower::http::HttpClassifier;
    ///
    /// let classifier = HttpClassifier::<&str>::new();
    /// assert_eq!(classifier.error_outcome(&"connection reset"), Outcome::Failure);
    /// ```
    pub fn error_outcome(&self, error: &E) -> Outcome {
        match &self.rules.errors {
            Some(predicate) => predicate(error),
            None => Outcome::Failure,
        }
    }
}

impl<E> Default for HttpClassifier<E> {
    fn default() -> Self {
        HttpClassifier::new()
    }
}

impl<E> Clone for HttpClassifier<E> {
    fn clone(&self) -> Self {
        HttpClassifier {
            rules: Arc::clone(&self.rules),
        }
    }
}

impl<E> fmt::Debug for HttpClassifier<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let statuses = match self.rules.statuses {
            StatusRule::Table(_) => "table",
            StatusRule::Predicate(_) => "predicate",
        };
        f.debug_struct("HttpClassifier")
            .field("statuses", &statuses)
            .field("error_predicate", &self.rules.errors.is_some())
            .finish()
    }
}

impl<B, E> Classifier<Response<B>, E> for HttpClassifier<E> {
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        match result {
            Ok(response) => self.status_outcome(response.status()),
            Err(error) => self.error_outcome(error),
        }
    }

    /// A 429 or 503 response's `Retry-After` (see [`retry_after`](super::retry_after)).
    fn retry_after(&self, result: &Result<Response<B>, E>) -> Option<std::time::Duration> {
        result.as_ref().ok().and_then(super::retry_after)
    }
}

/// Builds an [`HttpClassifier`], starting from its defaults.
///
/// Statuses are changed one at a time or by range, later settings overriding earlier ones;
/// or [`classify_status`](Self::classify_status) replaces the whole table with a predicate
/// (using both is a configuration error, since one would silently hide the other).
#[must_use]
pub struct HttpClassifierBuilder<E> {
    table: StatusTable,
    table_changed: bool,
    status_predicate: Option<StatusPredicate>,
    errors: Option<ErrorPredicate<E>>,
    invalid: Option<ConfigError>,
}

impl<E> fmt::Debug for HttpClassifierBuilder<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClassifierBuilder")
            .field("table_changed", &self.table_changed)
            .field("status_predicate", &self.status_predicate.is_some())
            .field("error_predicate", &self.errors.is_some())
            .finish_non_exhaustive()
    }
}

impl<E> HttpClassifierBuilder<E> {
    /// Sets what one status means: `Outcome::Failure` adds it to the failures,
    /// `Outcome::Success` removes it, `Outcome::Ignored` leaves it uncounted.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tower::http::HttpClassifier;
    /// use http::StatusCode;
    ///
    /// // This upstream answers 503 while it warms up; that is not a sign of ill health.
    /// let classifier = HttpClassifier::<()>::builder()
    ///     .status(StatusCode::SERVICE_UNAVAILABLE, Outcome::Ignored)
    ///     .build()?;
    /// assert_eq!(classifier.status_outcome(StatusCode::SERVICE_UNAVAILABLE), Outcome::Ignored);
    /// assert_eq!(classifier.status_outcome(StatusCode::BAD_GATEWAY), Outcome::Failure);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn status(mut self, status: StatusCode, outcome: Outcome) -> Self {
        let code = status.as_u16();
        self.table.set(code, code, outcome);
        self.table_changed = true;
        self
    }

    /// Sets what a range of statuses means, e.g. `400..=499` or `..300`. Bounds must lie
    /// within `100..=999` and the range must not be empty, or [`build`](Self::build) fails.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tower::http::HttpClassifier;
    /// use http::StatusCode;
    ///
    /// let classifier = HttpClassifier::<()>::builder()
    ///     .statuses(400..500, Outcome::Failure)
    ///     .build()?;
    /// assert_eq!(classifier.status_outcome(StatusCode::NOT_FOUND), Outcome::Failure);
    ///
    /// let out_of_range = HttpClassifier::<()>::builder().statuses(0..=599, Outcome::Failure);
    /// assert!(out_of_range.build().is_err());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn statuses(mut self, range: impl RangeBounds<u16>, outcome: Outcome) -> Self {
        match status_bounds(&range) {
            Ok((first, last)) => {
                self.table.set(first, last, outcome);
                self.table_changed = true;
            }
            Err(error) => {
                self.invalid.get_or_insert(error);
            }
        }
        self
    }

    /// Replaces the status table with a predicate deciding every status.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tower::http::HttpClassifier;
    /// use http::StatusCode;
    ///
    /// let classifier = HttpClassifier::<()>::builder()
    ///     .classify_status(|status| match status {
    ///         s if s.is_server_error() => Outcome::Failure,
    ///         StatusCode::TOO_MANY_REQUESTS => Outcome::Ignored,
    ///         _ => Outcome::Success,
    ///     })
    ///     .build()?;
    /// assert_eq!(classifier.status_outcome(StatusCode::TOO_MANY_REQUESTS), Outcome::Ignored);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn classify_status<F>(mut self, predicate: F) -> Self
    where
        F: Fn(StatusCode) -> Outcome + Send + Sync + 'static,
    {
        self.status_predicate = Some(Arc::new(predicate));
        self
    }

    /// Decides what errors from the inner service mean (by default all are failures).
    ///
    /// ```
    /// use fusebox_core::{Classifier, Outcome};
    /// use fusebox_tower::http::HttpClassifier;
    /// use std::io::{Error, ErrorKind};
    ///
    /// // The caller hung up: that says nothing about the upstream.
    /// let classifier = HttpClassifier::<Error>::builder()
    ///     .classify_error(|e: &Error| match e.kind() {
    ///         ErrorKind::Interrupted => Outcome::Ignored,
    ///         _ => Outcome::Failure,
    ///     })
    ///     .build()?;
    /// let cancelled: Result<http::Response<()>, _> = Err(Error::from(ErrorKind::Interrupted));
    /// assert_eq!(classifier.classify(&cancelled), Outcome::Ignored);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn classify_error<F>(mut self, predicate: F) -> Self
    where
        F: Fn(&E) -> Outcome + Send + Sync + 'static,
    {
        self.errors = Some(Arc::new(predicate));
        self
    }

    /// Validates and builds the classifier.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tower::http::HttpClassifier;
    ///
    /// let both = HttpClassifier::<()>::builder()
    ///     .statuses(400..=499, Outcome::Ignored)
    ///     .classify_status(|_| Outcome::Success)
    ///     .build();
    /// assert!(both.is_err());
    /// ```
    pub fn build(self) -> Result<HttpClassifier<E>, ConfigError> {
        if let Some(error) = self.invalid {
            return Err(error);
        }
        let statuses = match self.status_predicate {
            Some(_) if self.table_changed => {
                return Err(ConfigError::conflict(
                    "statuses",
                    "classify_status",
                    "a status predicate replaces the whole table; set statuses in one or the other",
                ));
            }
            Some(predicate) => StatusRule::Predicate(predicate),
            None => StatusRule::Table(self.table),
        };
        Ok(HttpClassifier {
            rules: Arc::new(Rules {
                statuses,
                errors: self.errors,
            }),
        })
    }
}

/// The inclusive bounds of a status range, checked against what `StatusCode` can hold.
fn status_bounds(range: &impl RangeBounds<u16>) -> Result<(u16, u16), ConfigError> {
    let first = match range.start_bound() {
        Bound::Included(&n) => Some(n),
        Bound::Excluded(&n) => n.checked_add(1),
        Bound::Unbounded => Some(FIRST_STATUS),
    };
    let last = match range.end_bound() {
        Bound::Included(&n) => Some(n),
        Bound::Excluded(&n) => n.checked_sub(1),
        Bound::Unbounded => Some(LAST_STATUS),
    };
    match (first, last) {
        (Some(first), Some(last))
            if FIRST_STATUS <= first && first <= last && last <= LAST_STATUS =>
        {
            Ok((first, last))
        }
        (Some(first), Some(last)) => Err(ConfigError::invalid(
            "statuses",
            format!(
                "must be non-empty and within {FIRST_STATUS}..={LAST_STATUS}, got {first}..={last}"
            ),
        )),
        _ => Err(ConfigError::invalid(
            "statuses",
            "must be non-empty, got an empty range",
        )),
    }
}
