//! fusebox's refusals as gRPC statuses, and the retry delay read back from a status.

use std::time::Duration;

use fusebox_core::{Error, Rejected};
use prost::Message;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, RetryInfo, StatusExt, pb};

/// The trailer in which gRPC's retry design lets a server push back a client's retries: a
/// whole number of milliseconds to wait. Rejections carry it beside `RetryInfo`, for gRPC
/// clients whose built-in retry policies read only this one.
pub const RETRY_PUSHBACK_HEADER: &str = "grpc-retry-pushback-ms";

/// The longest retry delay [`retry_after_from`] returns: a longer one is clamped to it.
/// A server asking for more than a day is more likely broken than patient, and a caller
/// sleeping that long has stopped serving anyone.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// The status a breaker's rejection is answered with: `UNAVAILABLE`, the rejection's text as
/// the message, and, when the breaker knows when it will admit calls again, a
/// `google.rpc.RetryInfo` detail and a `grpc-retry-pushback-ms` trailer with that delay,
/// rounded up to whole milliseconds.
///
/// The breaker's default clock ticks every 1 to 4 ms, so a client that comes back after
/// exactly this delay may still find it open for a tick: such a late rejection carries the
/// few milliseconds left, and a retry loop honouring it gets through on the next attempt.
///
/// ```
/// use fusebox_core::breaker::{Rejected, State};
/// use fusebox_tonic::{rejection_status, retry_after_from};
/// use std::time::Duration;
/// use tonic::Code;
///
/// let rejected = Rejected::new("payments", State::Open, Some(Duration::from_millis(2_500)));
/// let status = rejection_status(&rejected);
/// assert_eq!(status.code(), Code::Unavailable);
/// assert_eq!(status.message(), "circuit breaker `payments` is open; retry after 2.5s");
/// assert_eq!(retry_after_from(&status), Some(Duration::from_millis(2_500)));
/// assert_eq!(status.metadata().get("grpc-retry-pushback-ms").unwrap(), "2500");
/// ```
pub fn rejection_status(rejected: &Rejected) -> Status {
    unavailable_after(rejected.to_string(), rejected.retry_after())
}

/// `UNAVAILABLE` with `message`, and the retry delay when there is one.
fn unavailable_after(message: String, retry_after: Option<Duration>) -> Status {
    with_retry_delay(Code::Unavailable, message, retry_after)
}

fn with_retry_delay(code: Code, message: String, retry_after: Option<Duration>) -> Status {
    let Some(delay) = retry_after else {
        return Status::new(code, message);
    };
    // Whole milliseconds, rounded up, in both places and as the message says: a client
    // waiting exactly as long finds the breaker ready rather than a nanosecond early.
    let millis = u64::try_from(delay.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
    let mut status = Status::with_error_details(
        code,
        message,
        ErrorDetails::with_retry_info(Some(Duration::from_millis(millis))),
    );
    status
        .metadata_mut()
        .insert(RETRY_PUSHBACK_HEADER, MetadataValue::from(millis));
    status
}

/// Turns the error of a fusebox call around a gRPC call into the `Status` a tonic server
/// answers with, for handlers that protect a downstream with a breaker, a stack or a
/// pipeline:
///
/// | error | status |
/// |---|---|
/// | the downstream's own `Status` | unchanged |
/// | breaker rejection | `UNAVAILABLE` with `RetryInfo` (see [`rejection_status`]) |
/// | full bulkhead | `UNAVAILABLE` |
/// | cost guard refusal | `RESOURCE_EXHAUSTED`, with `RetryInfo` when the guard knows |
/// | timeout | `DEADLINE_EXCEEDED` |
/// | rate limited | `RESOURCE_EXHAUSTED` with `RetryInfo` until a permit |
/// | concurrency limit, throttled | `UNAVAILABLE` |
/// | endpoint ejected | `UNAVAILABLE` with `RetryInfo` for the ejection left |
///
/// Messages name the breaker, bulkhead, guard or limit, never spend figures.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_core::breaker::Breaker;
/// use fusebox_tonic::{error_status, retry_after_from, GrpcClassifier};
/// use tonic::{Code, Response, Status};
///
/// let downstream = Breaker::builder("inventory").consecutive_failures(1).build()?;
/// let classifier = GrpcClassifier::new();
/// // Inside a tonic handler: call the downstream, answer its failure or our refusal.
/// let handle = || async {
///     downstream
///         .call_with(&classifier, || async { Err::<Response<u32>, _>(Status::unavailable("db down")) })
///         .await
///         .map_err(error_status)
/// };
/// assert_eq!(handle().await.unwrap_err().message(), "db down");
/// let refused = handle().await.unwrap_err();
/// assert_eq!(refused.code(), Code::Unavailable);
/// assert!(retry_after_from(&refused).is_some());
/// # Ok(())
/// # }
/// ```
pub fn error_status(error: Error<Status>) -> Status {
    match error {
        Error::Inner(status) => status,
        Error::Rejected(rejected) => rejection_status(&rejected),
        Error::BulkheadFull(full) => Status::unavailable(full.to_string()),
        Error::CostRejected(refusal) => with_retry_delay(
            Code::ResourceExhausted,
            format!("cost guard `{}` refused the call", refusal.name),
            refusal.retry_after,
        ),
        Error::Timeout(timed_out) => Status::deadline_exceeded(timed_out.to_string()),
        Error::RateLimited(limited) => with_retry_delay(
            Code::ResourceExhausted,
            limited.to_string(),
            Some(limited.retry_after),
        ),
        Error::LimitExceeded(exceeded) => Status::unavailable(exceeded.to_string()),
        Error::Throttled(throttled) => Status::unavailable(throttled.to_string()),
        Error::Ejected(ejected) => with_retry_delay(
            Code::Unavailable,
            ejected.to_string(),
            Some(ejected.retry_after),
        ),
    }
}

/// The delay a status asks its caller to wait before retrying, for a retry policy that
/// honours it: the `google.rpc.RetryInfo` detail if there is one, else the
/// `grpc-retry-pushback-ms` trailer. Never panics on what a server sends:
///
/// - a delay above [`MAX_RETRY_AFTER`] (up to the protobuf's `i64` seconds) is clamped to it;
/// - a `RetryInfo` with a negative delay, nanoseconds outside `0..1e9` or no delay, or a
///   pushback that is negative, not a whole number, or not text, gives `None` (no hint, so
///   the caller's own backoff applies); an unusable `RetryInfo` is not overruled by a
///   pushback;
/// - details that do not decode are skipped (the pushback is read instead);
/// - a status with neither gives `None`.
///
/// ```
/// use fusebox_tonic::{retry_after_from, MAX_RETRY_AFTER};
/// use std::time::Duration;
/// use tonic::Status;
///
/// let mut status = Status::unavailable("busy");
/// assert_eq!(retry_after_from(&status), None);
/// status.metadata_mut().insert("grpc-retry-pushback-ms", "1500".parse().unwrap());
/// assert_eq!(retry_after_from(&status), Some(Duration::from_millis(1500)));
/// status.metadata_mut().insert("grpc-retry-pushback-ms", "-1".parse().unwrap());
/// assert_eq!(retry_after_from(&status), None);
/// status.metadata_mut().insert("grpc-retry-pushback-ms", "99999999999999999999".parse().unwrap());
/// assert_eq!(retry_after_from(&status), Some(MAX_RETRY_AFTER));
/// ```
pub fn retry_after_from(status: &Status) -> Option<Duration> {
    retry_after_capped(status, MAX_RETRY_AFTER)
}

/// [`retry_after_from`] with your own ceiling instead of [`MAX_RETRY_AFTER`].
///
/// ```
/// use fusebox_core::breaker::{Rejected, State};
/// use fusebox_tonic::{rejection_status, retry_after_capped};
/// use std::time::Duration;
///
/// let rejected = Rejected::new("db", State::Open, Some(Duration::from_secs(90)));
/// let status = rejection_status(&rejected);
/// assert_eq!(retry_after_capped(&status, Duration::from_secs(30)), Some(Duration::from_secs(30)));
/// ```
pub fn retry_after_capped(status: &Status, max: Duration) -> Option<Duration> {
    let delay = match retry_info_delay(status) {
        Some(found) => found,
        None => pushback_delay(status.metadata()),
    }?;
    Some(delay.min(max))
}

/// For a retry policy's `retry_after_from` (fusebox-policy's `RetryBuilder`): the delay a
/// failed call's `Status` or a breaker's rejection asks for, clamped to [`MAX_RETRY_AFTER`].
///
/// ```
/// use fusebox_core::breaker::{Rejected, State};
/// use fusebox_core::Error;
/// use fusebox_policy::policy::Retry;
/// use fusebox_tonic::{rejection_status, retry_hint};
/// use std::time::Duration;
/// use tonic::Status;
///
/// let retry = Retry::<(), Status>::builder().max_retries(3).retry_after_from(retry_hint).build()?;
/// // A server that shed the call with its breaker's remaining cooldown:
/// let shed = rejection_status(&Rejected::new("api", State::Open, Some(Duration::from_secs(4))));
/// let delay = retry.attempts().next_delay(&Err(Error::Inner(shed)));
/// assert_eq!(delay, Some(Duration::from_secs(4)));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn retry_hint<T>(result: &Result<T, Error<Status>>) -> Option<Duration> {
    match result {
        Ok(_) => None,
        Err(Error::Inner(status)) => retry_after_from(status),
        Err(refusal) => refusal
            .refusal_retry_after()
            .map(|d| d.min(MAX_RETRY_AFTER)),
    }
}

/// `Some(None)` when the status carries a `RetryInfo` whose delay is unusable (so the
/// pushback is not consulted against it), `None` when it carries none.
fn retry_info_delay(status: &Status) -> Option<Option<Duration>> {
    if status.details().is_empty() {
        return None;
    }
    let decoded = pb::Status::decode(status.details()).ok()?;
    let info = decoded
        .details
        .iter()
        .find(|any| any.type_url == RetryInfo::TYPE_URL)?;
    let delay = pb::RetryInfo::decode(info.value.as_slice())
        .ok()
        .and_then(|info| info.retry_delay)
        .and_then(|delay| duration_from_parts(delay.seconds, delay.nanos));
    Some(delay)
}

/// A protobuf `Duration`'s parts as a `Duration`: `None` when negative or when the
/// nanoseconds are out of their range; any non-negative `i64` seconds fit a `Duration`.
fn duration_from_parts(seconds: i64, nanos: i32) -> Option<Duration> {
    let seconds = u64::try_from(seconds).ok()?;
    let nanos = u32::try_from(nanos).ok().filter(|&n| n < 1_000_000_000)?;
    Some(Duration::new(seconds, nanos))
}

/// The `grpc-retry-pushback-ms` trailer: decimal milliseconds; a number too large for a
/// `u64` saturates (the caller clamps it), anything else that is not a plain non-negative
/// number is no hint.
fn pushback_delay(metadata: &MetadataMap) -> Option<Duration> {
    let text = metadata.get(RETRY_PUSHBACK_HEADER)?.to_str().ok()?.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().map_or(Duration::MAX, Duration::from_millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protobuf_durations_are_checked_not_trusted() {
        assert_eq!(duration_from_parts(0, 0), Some(Duration::ZERO));
        assert_eq!(duration_from_parts(3, 500), Some(Duration::new(3, 500)));
        assert_eq!(duration_from_parts(-1, 0), None);
        assert_eq!(duration_from_parts(0, -1), None);
        assert_eq!(duration_from_parts(0, 1_000_000_000), None);
        assert_eq!(duration_from_parts(i64::MIN, i32::MIN), None);
        assert_eq!(
            duration_from_parts(i64::MAX, 999_999_999),
            Some(Duration::new(i64::MAX as u64, 999_999_999))
        );
    }
}
