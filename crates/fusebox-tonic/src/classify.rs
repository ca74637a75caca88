//! What a gRPC status or a transport error means to a circuit breaker.

use std::fmt;

use fusebox_core::{Classifier, ConfigError, Error, Outcome};
use tonic::{Code, Status};

/// How many codes gRPC defines (`OK` = 0 to `UNAUTHENTICATED` = 16).
const CODE_COUNT: usize = 17;

/// Every gRPC code, in numeric order.
pub const ALL_CODES: [Code; CODE_COUNT] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

/// The codes that say the server (or the path to it) is unwell, failures by default.
const DEFAULT_FAILURES: [Code; 6] = [
    Code::Unavailable,
    Code::DeadlineExceeded,
    Code::ResourceExhausted,
    Code::Internal,
    Code::DataLoss,
    Code::Unknown,
];

/// The slot of `code` in a table of [`CODE_COUNT`] outcomes.
fn slot(code: Code) -> usize {
    // Every `Code` is 0..=16; anything else would be a new code in a future tonic, which
    // the caller reads as `Unknown`.
    usize::try_from(i32::from(code))
        .ok()
        .filter(|&i| i < CODE_COUNT)
        .unwrap_or(Code::Unknown as usize)
}

/// Classifies gRPC outcomes for a circuit breaker, by status code.
///
/// By default `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`, `INTERNAL`,
/// `DATA_LOSS` and `UNKNOWN` are failures: the server, or the way to it, is in trouble.
/// `CANCELLED` is ignored (the caller gave up, which says nothing about the server).
/// Every other code — `NOT_FOUND`, `INVALID_ARGUMENT`, `ALREADY_EXISTS`,
/// `PERMISSION_DENIED`, `UNAUTHENTICATED`, `FAILED_PRECONDITION`, … — is the server
/// answering about the request, so it counts as a success, like `OK`. A transport error
/// (no status at all: connection refused, reset, TLS failure) is a failure.
///
/// One classifier serves every way of calling: as a [`Classifier`] over
/// `Result<T, tonic::Status>` (a generated client's `Result<tonic::Response<T>, Status>`)
/// for [`Breaker::call_with`](fusebox_core::Breaker::call_with), over
/// `Result<T, fusebox_core::Error<Status>>` for stacks and pipelines, and inside
/// [`GrpcBreakerLayer`](crate::GrpcBreakerLayer), which reads the `grpc-status` header or
/// trailer. It is `Copy`: a table of 17 outcomes.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_core::breaker::{Breaker, State};
/// use fusebox_tonic::GrpcClassifier;
/// use tonic::{Response, Status};
///
/// let breaker = Breaker::builder("users").consecutive_failures(1).build()?;
/// let classifier = GrpcClassifier::new();
/// // NOT_FOUND is an answer: the breaker stays closed.
/// let missing = breaker
///     .call_with(&classifier, || async { Err::<Response<()>, _>(Status::not_found("no user 7")) })
///     .await;
/// assert!(missing.is_err());
/// assert_eq!(breaker.state(), State::Closed);
/// // UNAVAILABLE trips it.
/// let _ = breaker
///     .call_with(&classifier, || async { Err::<Response<()>, _>(Status::unavailable("down")) })
///     .await;
/// assert_eq!(breaker.state(), State::Open);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct GrpcClassifier {
    codes: [Outcome; CODE_COUNT],
    transport: Outcome,
}

impl GrpcClassifier {
    /// The default classification (see the [type docs](Self)).
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tonic::GrpcClassifier;
    /// use tonic::Code;
    ///
    /// let classifier = GrpcClassifier::new();
    /// assert_eq!(classifier.code_outcome(Code::DeadlineExceeded), Outcome::Failure);
    /// assert_eq!(classifier.code_outcome(Code::PermissionDenied), Outcome::Success);
    /// assert_eq!(classifier.code_outcome(Code::Cancelled), Outcome::Ignored);
    /// assert_eq!(classifier.transport_outcome(), Outcome::Failure);
    /// ```
    pub const fn new() -> Self {
        let mut codes = [Outcome::Success; CODE_COUNT];
        codes[Code::Cancelled as usize] = Outcome::Ignored;
        let mut i = 0;
        while i < DEFAULT_FAILURES.len() {
            codes[DEFAULT_FAILURES[i] as usize] = Outcome::Failure;
            i += 1;
        }
        GrpcClassifier {
            codes,
            transport: Outcome::Failure,
        }
    }

    /// Starts from the default classification.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tonic::GrpcClassifier;
    /// use tonic::Code;
    ///
    /// // This service answers RESOURCE_EXHAUSTED for a caller's own quota: not the
    /// // server's health. And an unimplemented method means a wrong deployment.
    /// let classifier = GrpcClassifier::builder()
    ///     .code(Code::ResourceExhausted, Outcome::Ignored)
    ///     .code(Code::Unimplemented, Outcome::Failure)
    ///     .build()?;
    /// assert_eq!(classifier.code_outcome(Code::ResourceExhausted), Outcome::Ignored);
    /// assert_eq!(classifier.code_outcome(Code::Unimplemented), Outcome::Failure);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder() -> GrpcClassifierBuilder {
        GrpcClassifierBuilder {
            classifier: GrpcClassifier::new(),
            invalid: None,
        }
    }

    /// What a status with `code` means.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tonic::GrpcClassifier;
    /// use tonic::Code;
    ///
    /// assert_eq!(GrpcClassifier::new().code_outcome(Code::Ok), Outcome::Success);
    /// assert_eq!(GrpcClassifier::new().code_outcome(Code::Unavailable), Outcome::Failure);
    /// ```
    #[inline]
    pub fn code_outcome(&self, code: Code) -> Outcome {
        self.codes[slot(code)]
    }

    /// What a `Status` means: the outcome of its code.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tonic::GrpcClassifier;
    /// use tonic::Status;
    ///
    /// let classifier = GrpcClassifier::new();
    /// assert_eq!(classifier.status_outcome(&Status::internal("oops")), Outcome::Failure);
    /// assert_eq!(classifier.status_outcome(&Status::already_exists("dup")), Outcome::Success);
    /// ```
    #[inline]
    pub fn status_outcome(&self, status: &Status) -> Outcome {
        self.code_outcome(status.code())
    }

    /// What a transport error (no gRPC status at all) means; a failure unless
    /// [`transport_errors`](GrpcClassifierBuilder::transport_errors) says otherwise.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tonic::GrpcClassifier;
    /// assert_eq!(GrpcClassifier::new().transport_outcome(), Outcome::Failure);
    /// ```
    #[inline]
    pub fn transport_outcome(&self) -> Outcome {
        self.transport
    }
}

impl Default for GrpcClassifier {
    fn default() -> Self {
        GrpcClassifier::new()
    }
}

impl fmt::Debug for GrpcClassifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let failures: Vec<Code> = ALL_CODES
            .into_iter()
            .filter(|&c| self.code_outcome(c) == Outcome::Failure)
            .collect();
        let ignored: Vec<Code> = ALL_CODES
            .into_iter()
            .filter(|&c| self.code_outcome(c) == Outcome::Ignored)
            .collect();
        f.debug_struct("GrpcClassifier")
            .field("failures", &failures)
            .field("ignored", &ignored)
            .field("transport", &self.transport)
            .finish()
    }
}

/// A generated client's result (`Result<tonic::Response<T>, Status>`), or any result whose
/// error is a `Status`: `Ok` is a success, an `Err` the outcome of its code.
impl<T> Classifier<T, Status> for GrpcClassifier {
    #[inline]
    fn classify(&self, result: &Result<T, Status>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(status) => self.status_outcome(status),
        }
    }

    /// The status's retry info or pushback (see [`retry_after_from`](crate::retry_after_from)).
    fn retry_after(&self, result: &Result<T, Status>) -> Option<std::time::Duration> {
        result.as_ref().err().and_then(crate::retry_after_from)
    }
}

/// A result inside a fusebox stack or pipeline: the caller's `Status` by its code, a
/// fusebox timeout like `DEADLINE_EXCEEDED` (a failure by default), and a refusal by another
/// policy (a breaker further in, a full bulkhead, a cost guard) ignored, since the call never
/// reached the server.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_core::breaker::{Breaker, State};
/// use fusebox_core::Classifier;
/// use fusebox_policy::stack::Stack;
/// use fusebox_tonic::GrpcClassifier;
/// use tonic::Status;
///
/// let breaker = Breaker::builder("search").consecutive_failures(1).build()?;
/// let classifier = GrpcClassifier::new();
/// let stack = Stack::new().breaker_with(breaker.clone(), move |r: &Result<(), _>| classifier.classify(r));
/// let _ = stack.call(|| async { Err(Status::invalid_argument("empty query")) }).await;
/// assert_eq!(breaker.state(), State::Closed);
/// let _ = stack.call(|| async { Err(Status::deadline_exceeded("slow")) }).await;
/// assert_eq!(breaker.state(), State::Open);
/// # Ok(())
/// # }
/// ```
impl<T> Classifier<T, Error<Status>> for GrpcClassifier {
    #[inline]
    fn classify(&self, result: &Result<T, Error<Status>>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(Error::Inner(status)) => self.status_outcome(status),
            Err(Error::Timeout(_)) => self.code_outcome(Code::DeadlineExceeded),
            // Refused before it reached the server: says nothing about the server.
            Err(
                Error::Rejected(_)
                | Error::BulkheadFull(_)
                | Error::CostRejected(_)
                | Error::RateLimited(_)
                | Error::LimitExceeded(_)
                | Error::Throttled(_)
                | Error::Ejected(_),
            ) => Outcome::Ignored,
        }
    }
}

/// Builds a [`GrpcClassifier`], starting from its defaults; later settings override
/// earlier ones.
#[must_use]
#[derive(Debug, Clone)]
pub struct GrpcClassifierBuilder {
    classifier: GrpcClassifier,
    invalid: Option<ConfigError>,
}

impl GrpcClassifierBuilder {
    /// Sets what one code means. `Code::Ok` may be a success or ignored, never a failure
    /// ([`build`](Self::build) fails).
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tonic::GrpcClassifier;
    /// use tonic::Code;
    ///
    /// let classifier = GrpcClassifier::builder().code(Code::Aborted, Outcome::Failure).build()?;
    /// assert_eq!(classifier.code_outcome(Code::Aborted), Outcome::Failure);
    /// assert!(GrpcClassifier::builder().code(Code::Ok, Outcome::Failure).build().is_err());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn code(mut self, code: Code, outcome: Outcome) -> Self {
        if code == Code::Ok && outcome == Outcome::Failure {
            self.invalid.get_or_insert(ConfigError::invalid(
                "codes",
                "OK is a success or ignored, never a failure",
            ));
        }
        self.classifier.codes[slot(code)] = outcome;
        self
    }

    /// Sets what several codes mean.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tonic::GrpcClassifier;
    /// use tonic::Code;
    ///
    /// let classifier = GrpcClassifier::builder()
    ///     .codes([Code::Unauthenticated, Code::PermissionDenied], Outcome::Ignored)
    ///     .build()?;
    /// assert_eq!(classifier.code_outcome(Code::Unauthenticated), Outcome::Ignored);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn codes(mut self, codes: impl IntoIterator<Item = Code>, outcome: Outcome) -> Self {
        for code in codes {
            self = self.code(code, outcome);
        }
        self
    }

    /// Sets what a code given by number means (from configuration, say). Numbers outside
    /// `0..=16` make [`build`](Self::build) fail rather than silently mean `UNKNOWN`.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tonic::GrpcClassifier;
    /// use tonic::Code;
    ///
    /// let classifier = GrpcClassifier::builder().code_number(5, Outcome::Ignored).build()?;
    /// assert_eq!(classifier.code_outcome(Code::NotFound), Outcome::Ignored);
    /// let error = GrpcClassifier::builder().code_number(42, Outcome::Failure).build().unwrap_err();
    /// assert_eq!(error.field(), Some("codes"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn code_number(mut self, number: i32, outcome: Outcome) -> Self {
        match usize::try_from(number) {
            Ok(i) if i < CODE_COUNT => self.code(ALL_CODES[i], outcome),
            _ => {
                self.invalid.get_or_insert(ConfigError::invalid(
                    "codes",
                    format!("gRPC codes are 0..=16, got {number}"),
                ));
                self
            }
        }
    }

    /// Sets what a transport error means (by default a failure). Ignore them when another
    /// layer already counts them, or when the caller's own cancellations surface as one.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tonic::GrpcClassifier;
    ///
    /// let classifier = GrpcClassifier::builder().transport_errors(Outcome::Ignored).build()?;
    /// assert_eq!(classifier.transport_outcome(), Outcome::Ignored);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn transport_errors(mut self, outcome: Outcome) -> Self {
        self.classifier.transport = outcome;
        self
    }

    /// Validates and builds the classifier.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_tonic::GrpcClassifier;
    ///
    /// let error = GrpcClassifier::builder().code_number(-1, Outcome::Failure).build().unwrap_err();
    /// assert!(error.to_string().contains("got -1"));
    /// ```
    pub fn build(self) -> Result<GrpcClassifier, ConfigError> {
        match self.invalid {
            Some(error) => Err(error),
            None => Ok(self.classifier),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_table_is_in_numeric_order_and_complete() {
        for (i, code) in ALL_CODES.into_iter().enumerate() {
            assert_eq!(usize::try_from(i32::from(code)).unwrap(), i);
            assert_eq!(Code::from_i32(i as i32), code);
        }
        // Numbers past the table read as UNKNOWN, the same slot the classifier uses.
        assert_eq!(Code::from_i32(17), Code::Unknown);
    }
}
