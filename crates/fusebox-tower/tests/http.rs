//! HTTP support: classification, idempotent retries, Retry-After and axum responses.
#![cfg(feature = "http")]

use std::error::Error as StdError;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use fusebox_core::backoff::Backoff;
use fusebox_core::breaker::Breaker;
use fusebox_core::{BulkheadFull, Classifier, Error, Outcome, Rejected, State, TimedOut};
use fusebox_policy::policy::RetryDecision;
use fusebox_tower::http::{
    self, HttpClassifier, IdempotentRequests, is_retryable_status, retry_after_at,
    retry_after_hint, should_retry,
};
use fusebox_tower::retry::{RetryLayer, RetryRequest};
use fusebox_tower::{BoxError, BreakerLayer};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt, service_fn};

use ::http::{HeaderValue, Method, Request, Response, StatusCode, Version};

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).expect("test statuses are valid")
}

fn response(code: u16) -> Response<()> {
    let mut response = Response::new(());
    *response.status_mut() = status(code);
    response
}

fn response_with_retry_after(code: u16, value: HeaderValue) -> Response<()> {
    let mut response = response(code);
    response
        .headers_mut()
        .insert(::http::header::RETRY_AFTER, value);
    response
}

fn request(method: Method) -> Request<()> {
    let mut request = Request::new(());
    *request.method_mut() = method;
    request
}

// ---------------------------------------------------------------------------------------
// HttpClassifier
// ---------------------------------------------------------------------------------------

#[test]
fn default_classifier_fails_5xx_429_and_408_and_passes_the_rest() {
    let classifier = HttpClassifier::<std::io::Error>::new();
    let table = [
        (100, Outcome::Success),
        (200, Outcome::Success),
        (204, Outcome::Success),
        (301, Outcome::Success),
        (304, Outcome::Success),
        (400, Outcome::Success),
        (401, Outcome::Success),
        (404, Outcome::Success),
        (407, Outcome::Success),
        (408, Outcome::Failure),
        (409, Outcome::Success),
        (428, Outcome::Success),
        (429, Outcome::Failure),
        (430, Outcome::Success),
        (499, Outcome::Success),
        (500, Outcome::Failure),
        (501, Outcome::Failure),
        (503, Outcome::Failure),
        (504, Outcome::Failure),
        (599, Outcome::Failure),
        (600, Outcome::Success),
        (999, Outcome::Success),
    ];
    for (code, expected) in table {
        assert_eq!(
            classifier.classify(&Ok(response(code))),
            expected,
            "status {code}"
        );
    }
}

#[test]
fn default_classifier_counts_every_error_as_a_failure() {
    let classifier = HttpClassifier::<std::io::Error>::new();
    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        classifier.classify(&Err::<Response<()>, _>(refused)),
        Outcome::Failure
    );
}

#[test]
fn statuses_and_ranges_override_the_defaults_in_the_order_given() {
    let classifier = HttpClassifier::<()>::builder()
        .statuses(400..=499, Outcome::Ignored)
        .status(StatusCode::NOT_FOUND, Outcome::Failure)
        .status(StatusCode::SERVICE_UNAVAILABLE, Outcome::Success)
        .statuses(..200, Outcome::Ignored)
        .statuses(598.., Outcome::Ignored)
        .build()
        .expect("valid configuration");
    let table = [
        (101, Outcome::Ignored),
        (199, Outcome::Ignored),
        (200, Outcome::Success),
        (400, Outcome::Ignored),
        (404, Outcome::Failure),
        (408, Outcome::Ignored), // the range came after the default
        (429, Outcome::Ignored),
        (500, Outcome::Failure),
        (503, Outcome::Success),
        (597, Outcome::Failure),
        (598, Outcome::Ignored),
        (999, Outcome::Ignored),
    ];
    for (code, expected) in table {
        assert_eq!(
            classifier.status_outcome(status(code)),
            expected,
            "status {code}"
        );
    }
}

#[test]
fn exclusive_range_ends_are_respected() {
    let classifier = HttpClassifier::<()>::builder()
        .statuses(500..503, Outcome::Success)
        .build()
        .expect("valid configuration");
    assert_eq!(classifier.status_outcome(status(502)), Outcome::Success);
    assert_eq!(classifier.status_outcome(status(503)), Outcome::Failure);
}

#[test]
fn ranges_outside_the_status_space_or_empty_are_rejected() {
    let ranges: [(u16, u16); 4] = [(0, 599), (500, 1000), (503, 500), (99, 99)];
    for (first, last) in ranges {
        let built = HttpClassifier::<()>::builder()
            .statuses(first..=last, Outcome::Failure)
            .build();
        let error = built.expect_err("invalid range");
        assert_eq!(error.field(), Some("statuses"), "{first}..={last}");
    }
    let empty = HttpClassifier::<()>::builder().statuses(500..500, Outcome::Failure);
    assert!(empty.build().is_err());
    let nothing_below_zero = HttpClassifier::<()>::builder().statuses(..0, Outcome::Failure);
    assert!(nothing_below_zero.build().is_err());
    let nothing_after_max = HttpClassifier::<()>::builder().statuses(
        (
            std::ops::Bound::Excluded(u16::MAX),
            std::ops::Bound::Unbounded,
        ),
        Outcome::Failure,
    );
    assert!(nothing_after_max.build().is_err());
}

#[test]
fn a_status_predicate_decides_every_status() {
    let classifier = HttpClassifier::<()>::builder()
        .classify_status(|s| {
            if s == StatusCode::BAD_GATEWAY {
                Outcome::Failure
            } else {
                Outcome::Ignored
            }
        })
        .build()
        .expect("valid configuration");
    assert_eq!(classifier.status_outcome(status(502)), Outcome::Failure);
    assert_eq!(classifier.status_outcome(status(503)), Outcome::Ignored);
    assert_eq!(classifier.status_outcome(status(200)), Outcome::Ignored);
}

#[test]
fn a_status_predicate_and_table_edits_conflict() {
    let built = HttpClassifier::<()>::builder()
        .status(StatusCode::NOT_FOUND, Outcome::Failure)
        .classify_status(|_| Outcome::Success)
        .build();
    assert!(matches!(
        built,
        Err(fusebox_core::ConfigError::Conflict { .. })
    ));
}

#[derive(Debug)]
enum ClientError {
    Cancelled,
    Connect,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl StdError for ClientError {}

#[test]
fn an_error_predicate_can_ignore_cancellations() {
    let classifier = HttpClassifier::<ClientError>::builder()
        .classify_error(|e| match e {
            ClientError::Cancelled => Outcome::Ignored,
            ClientError::Connect => Outcome::Failure,
        })
        .build()
        .expect("valid configuration");
    let cancelled: Result<Response<()>, _> = Err(ClientError::Cancelled);
    let refused: Result<Response<()>, _> = Err(ClientError::Connect);
    assert_eq!(classifier.classify(&cancelled), Outcome::Ignored);
    assert_eq!(classifier.classify(&refused), Outcome::Failure);
    // Responses still go through the default table.
    assert_eq!(classifier.classify(&Ok(response(502))), Outcome::Failure);
}

#[test]
fn clones_classify_alike() {
    let classifier = HttpClassifier::<()>::builder()
        .status(StatusCode::NOT_FOUND, Outcome::Ignored)
        .build()
        .expect("valid configuration");
    let clone = classifier.clone();
    for code in [200, 404, 429, 503] {
        assert_eq!(
            clone.status_outcome(status(code)),
            classifier.status_outcome(status(code))
        );
    }
}

#[tokio::test]
async fn breaker_layer_trips_on_5xx_not_on_4xx_nor_ignored_errors() {
    let breaker = Breaker::builder("upstream")
        .consecutive_failures(1)
        .build()
        .expect("valid breaker");
    let classifier = HttpClassifier::<ClientError>::builder()
        .classify_error(|e| match e {
            ClientError::Cancelled => Outcome::Ignored,
            ClientError::Connect => Outcome::Failure,
        })
        .build()
        .expect("valid classifier");
    // The request says what the upstream does: `Ok(status)` or `Err(cancelled?)`.
    let upstream = service_fn(|outcome: Result<u16, bool>| async move {
        match outcome {
            Ok(code) => Ok(response(code)),
            Err(true) => Err(ClientError::Cancelled),
            Err(false) => Err(ClientError::Connect),
        }
    });
    let svc = BreakerLayer::new(breaker.clone())
        .classifier(classifier)
        .layer(upstream);

    let not_found = svc.clone().oneshot(Ok(404)).await.expect("a response");
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    assert!(svc.clone().oneshot(Err(true)).await.is_err());
    assert_eq!(breaker.state(), State::Closed);

    let unavailable = svc.clone().oneshot(Ok(503)).await.expect("a response");
    assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(breaker.state(), State::Open);
    let rejected = svc.oneshot(Ok(200)).await.expect_err("open breaker");
    assert!(rejected.is::<Rejected>());
}

#[tokio::test]
async fn a_429_with_retry_after_opens_the_breaker_that_long() {
    let clock = fusebox_core::clock::ManualClock::new();
    let breaker = Breaker::builder("quotes")
        .consecutive_failures(1)
        .cooldown(Duration::from_secs(30))
        .open_for_retry_after(Duration::from_secs(600))
        .clock(clock.clone())
        .build()
        .expect("valid breaker");
    let upstream = service_fn(|seconds: &'static str| async move {
        Ok::<_, BoxError>(response_with_retry_after(
            429,
            HeaderValue::from_static(seconds),
        ))
    });
    let svc = BreakerLayer::new(breaker.clone())
        .classifier(HttpClassifier::new())
        .layer(upstream);
    let throttled = svc.clone().oneshot("120").await.expect("a response");
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let rejected = breaker.try_acquire().expect_err("open");
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(120)));
    clock.advance(Duration::from_secs(119));
    assert_eq!(breaker.state(), State::Open, "past the 30 s cooldown");
    clock.advance(Duration::from_secs(1));
    assert_eq!(breaker.state(), State::HalfOpen);
    // A malformed value is no hint: the trial's failure reopens for the cooldown.
    let _ = svc.clone().oneshot("soon").await.expect("a response");
    let rejected = breaker.try_acquire().expect_err("open again");
    assert_eq!(rejected.retry_after(), Some(Duration::from_secs(30)));
}

// ---------------------------------------------------------------------------------------
// IdempotentRequests
// ---------------------------------------------------------------------------------------

#[test]
fn only_idempotent_methods_are_retried_by_default() {
    let policy = IdempotentRequests::new();
    let purge = Method::from_bytes(b"PURGE").expect("valid method");
    let lower_get = Method::from_bytes(b"get").expect("valid method");
    let table = [
        (Method::GET, true),
        (Method::HEAD, true),
        (Method::OPTIONS, true),
        (Method::TRACE, true),
        (Method::PUT, true),
        (Method::DELETE, true),
        (Method::POST, false),
        (Method::PATCH, false),
        (Method::CONNECT, false),
        (purge, false),
        (lower_get, false), // method names are case-sensitive
    ];
    for (method, retryable) in table {
        let req = request(method.clone());
        assert_eq!(policy.is_retryable(&req), retryable, "{method}");
        assert_eq!(
            policy.clone_for_retry(&req).is_some(),
            retryable,
            "{method}"
        );
    }
}

fn with_header(method: Method, name: &'static str, value: &'static str) -> Request<()> {
    let mut req = request(method);
    req.headers_mut()
        .insert(name, HeaderValue::from_static(value));
    req
}

#[test]
fn an_idempotency_key_opts_post_and_patch_in() {
    let policy = IdempotentRequests::new();
    for method in [Method::POST, Method::PATCH] {
        assert!(policy.is_retryable(&with_header(method.clone(), "idempotency-key", "k1")));
        assert!(policy.is_retryable(&with_header(method.clone(), "Idempotency-Key", "k1")));
        // An empty key identifies nothing.
        assert!(!policy.is_retryable(&with_header(method.clone(), "idempotency-key", "")));
        assert!(!policy.is_retryable(&with_header(method, "x-other", "k1")));
    }
}

#[test]
fn the_key_header_can_be_renamed_or_ignored() {
    let renamed = IdempotentRequests::new()
        .idempotency_key_header(::http::HeaderName::from_static("x-idempotency-token"));
    assert!(renamed.is_retryable(&with_header(Method::POST, "x-idempotency-token", "t")));
    assert!(!renamed.is_retryable(&with_header(Method::POST, "idempotency-key", "t")));

    let ignoring = IdempotentRequests::new().ignore_idempotency_key();
    assert!(!ignoring.is_retryable(&with_header(Method::POST, "idempotency-key", "t")));
    assert!(ignoring.is_retryable(&request(Method::GET)));
}

#[test]
fn methods_can_be_opted_in_and_out() {
    let purge = Method::from_bytes(b"PURGE").expect("valid method");
    let policy = IdempotentRequests::new()
        .with_method(Method::POST)
        .with_method(purge.clone())
        .with_method(purge.clone())
        .without_method(Method::DELETE);
    assert!(policy.is_retryable(&request(Method::POST)));
    assert!(policy.is_retryable(&request(purge.clone())));
    assert!(!policy.is_retryable(&request(Method::DELETE)));
    assert!(!policy.is_retryable(&request(Method::PATCH)));
    // A method taken out is still retried with a key.
    assert!(policy.is_retryable(&with_header(Method::DELETE, "idempotency-key", "d")));

    let policy = policy.without_method(purge.clone());
    assert!(!policy.is_retryable(&request(purge)));
}

#[derive(Debug, Clone, PartialEq)]
struct TraceContext(&'static str);

#[tokio::test]
async fn a_retry_copy_keeps_method_uri_version_headers_extensions_and_body() {
    let mut original = Request::new(Full::new(Bytes::from_static(b"{\"qty\":2}")));
    *original.method_mut() = Method::PUT;
    *original.uri_mut() = "https://shop.example/cart/9?currency=EUR"
        .parse()
        .expect("valid uri");
    *original.version_mut() = Version::HTTP_2;
    let headers = original.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.append("accept", HeaderValue::from_static("application/json"));
    headers.append("accept", HeaderValue::from_static("text/plain"));
    original.extensions_mut().insert(TraceContext("span-17"));

    let copy = IdempotentRequests::new()
        .clone_for_retry(&original)
        .expect("PUT is idempotent");
    assert_eq!(copy.method(), original.method());
    assert_eq!(copy.uri(), original.uri());
    assert_eq!(copy.version(), original.version());
    assert_eq!(copy.headers(), original.headers());
    assert_eq!(copy.headers().get_all("accept").iter().count(), 2);
    assert_eq!(
        copy.extensions().get::<TraceContext>(),
        Some(&TraceContext("span-17"))
    );

    let copied_body = copy
        .into_body()
        .collect()
        .await
        .expect("infallible")
        .to_bytes();
    let original_body = original
        .into_body()
        .collect()
        .await
        .expect("infallible")
        .to_bytes();
    assert_eq!(copied_body, original_body);
    assert_eq!(&copied_body[..], b"{\"qty\":2}");
}

#[test]
fn a_non_idempotent_request_is_not_copied() {
    let post = Request::post("/orders")
        .body(Full::new(Bytes::from_static(b"{}")))
        .expect("valid request");
    assert!(IdempotentRequests::new().clone_for_retry(&post).is_none());
}

// ---------------------------------------------------------------------------------------
// Retry classification and Retry-After
// ---------------------------------------------------------------------------------------

#[test]
fn retryable_statuses() {
    for code in [408, 429, 500, 502, 503, 504, 507, 599] {
        assert!(is_retryable_status(status(code)), "status {code}");
    }
    for code in [200, 201, 301, 304, 400, 401, 404, 409, 501, 505, 600] {
        assert!(!is_retryable_status(status(code)), "status {code}");
    }
}

fn decide(result: Result<Response<()>, Error<BoxError>>) -> RetryDecision {
    should_retry(&result)
}

/// An error wrapping another, as a buffer or a client library would.
#[derive(Debug)]
struct Wrapped(BoxError);

impl fmt::Display for Wrapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wrapped: {}", self.0)
    }
}

impl StdError for Wrapped {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self.0.as_ref())
    }
}

/// An error whose source is itself: a broken implementation must not hang the retry.
#[derive(Debug)]
struct OwnSource;

impl fmt::Display for OwnSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("my own cause")
    }
}

impl StdError for OwnSource {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(self)
    }
}

fn rejected(retry_after: Option<Duration>) -> Rejected {
    Rejected::new("payments", State::Open, retry_after)
}

fn bulkhead_full() -> BulkheadFull {
    BulkheadFull {
        name: "db".into(),
        max_concurrent: 8,
        max_queued: 0,
    }
}

#[test]
fn should_retry_errors_timeouts_but_never_refusals() {
    let refused: BoxError = Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
    let timed_out = TimedOut {
        after: Duration::from_secs(1),
    };
    assert_eq!(decide(Err(Error::Inner(refused))), RetryDecision::Retry);
    assert_eq!(decide(Err(Error::Timeout(timed_out))), RetryDecision::Retry);
    assert_eq!(
        decide(Err(Error::Rejected(rejected(Some(Duration::from_secs(1)))))),
        RetryDecision::Stop
    );
    assert_eq!(
        decide(Err(Error::BulkheadFull(bulkhead_full()))),
        RetryDecision::Stop
    );
    // Refusals and timeouts are found under a wrapper too.
    let wrapped_rejection: BoxError = Box::new(Wrapped(Box::new(rejected(None))));
    assert_eq!(
        decide(Err(Error::Inner(wrapped_rejection))),
        RetryDecision::Stop
    );
    let wrapped_full: BoxError = Box::new(Wrapped(Box::new(Wrapped(Box::new(bulkhead_full())))));
    assert_eq!(decide(Err(Error::Inner(wrapped_full))), RetryDecision::Stop);
    let wrapped_limit: BoxError = Box::new(Wrapped(Box::new(fusebox_core::RateLimited {
        name: "api".into(),
        retry_after: Duration::from_millis(10),
    })));
    assert_eq!(
        decide(Err(Error::Inner(wrapped_limit))),
        RetryDecision::Stop
    );
    let wrapped_timeout: BoxError = Box::new(Wrapped(Box::new(timed_out)));
    assert_eq!(
        decide(Err(Error::Inner(wrapped_timeout))),
        RetryDecision::Retry
    );
    // A cyclic source chain ends.
    assert_eq!(
        decide(Err(Error::Inner(Box::new(OwnSource)))),
        RetryDecision::Retry
    );
}

#[test]
fn should_retry_responses_by_status() {
    assert_eq!(decide(Ok(response(503))), RetryDecision::Retry);
    assert_eq!(decide(Ok(response(429))), RetryDecision::Retry);
    assert_eq!(decide(Ok(response(501))), RetryDecision::Stop);
    assert_eq!(decide(Ok(response(200))), RetryDecision::Stop);
}

/// 2015-10-21 07:27:30 GMT.
const NOW_SECS: u64 = 1_445_412_450;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_SECS)
}

fn wait_asked(code: u16, value: &'static str) -> Option<Duration> {
    retry_after_at(
        &response_with_retry_after(code, HeaderValue::from_static(value)),
        now(),
    )
}

#[test]
fn retry_after_in_delta_seconds() {
    assert_eq!(wait_asked(503, "120"), Some(Duration::from_secs(120)));
    assert_eq!(wait_asked(429, "1"), Some(Duration::from_secs(1)));
    assert_eq!(wait_asked(429, "0"), Some(Duration::ZERO));
    assert_eq!(wait_asked(429, "007"), Some(Duration::from_secs(7)));
    assert_eq!(wait_asked(503, " 5 "), Some(Duration::from_secs(5)));
}

#[test]
fn retry_after_as_an_http_date() {
    // Half a minute ahead, in each of the three date formats HTTP accepts.
    let ahead = Some(Duration::from_secs(30));
    assert_eq!(wait_asked(503, "Wed, 21 Oct 2015 07:28:00 GMT"), ahead);
    assert_eq!(wait_asked(429, "Wednesday, 21-Oct-15 07:28:00 GMT"), ahead);
    assert_eq!(wait_asked(429, "Wed Oct 21 07:28:00 2015"), ahead);
    // Now and the past mean "go ahead".
    assert_eq!(
        wait_asked(503, "Wed, 21 Oct 2015 07:27:30 GMT"),
        Some(Duration::ZERO)
    );
    assert_eq!(
        wait_asked(503, "Thu, 01 Jan 1970 00:00:00 GMT"),
        Some(Duration::ZERO)
    );
}

#[test]
fn retry_after_relative_to_the_real_clock() {
    let in_an_hour = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3_600));
    let value = HeaderValue::from_str(&in_an_hour).expect("a valid header");
    let wait = http::retry_after(&response_with_retry_after(503, value)).expect("a date");
    assert!(wait <= Duration::from_secs(3_600), "{wait:?}");
    assert!(wait >= Duration::from_secs(3_590), "{wait:?}");
}

#[test]
fn unreadable_retry_after_is_ignored() {
    for garbage in [
        "",
        "soon",
        "-5",
        "+5",
        "1.5",
        "5s",
        "1e3",
        "5 5",
        "Wed, 32 Oct 2015 07:28:00 GMT",
        "Wed, 21 Oct 2015 25:28:00 GMT",
        "21 Oct 2015",
        "Wed, 21 Oct 2015 07:28:00 GMT trailing",
    ] {
        assert_eq!(wait_asked(503, garbage), None, "{garbage:?}");
    }
    let not_text = HeaderValue::from_bytes(b"\xff\xfe12").expect("opaque bytes are allowed");
    assert_eq!(
        retry_after_at(&response_with_retry_after(429, not_text), now()),
        None
    );
    assert_eq!(retry_after_at(&response(503), now()), None);
}

#[test]
fn huge_retry_after_saturates() {
    assert_eq!(
        wait_asked(503, "18446744073709551615"),
        Some(Duration::from_secs(u64::MAX))
    );
    assert_eq!(
        wait_asked(503, "99999999999999999999999999"),
        Some(Duration::MAX)
    );
    assert_eq!(
        wait_asked(429, "31536000"),
        Some(Duration::from_secs(365 * 24 * 3_600))
    );
}

#[test]
fn retry_after_is_read_only_on_429_and_503() {
    for code in [200, 301, 408, 500, 502, 504] {
        assert_eq!(wait_asked(code, "5"), None, "status {code}");
    }
    let throttled: Result<Response<()>, Error<BoxError>> = Ok(response_with_retry_after(
        429,
        HeaderValue::from_static("4"),
    ));
    assert_eq!(retry_after_hint(&throttled), Some(Duration::from_secs(4)));
    let failed: Result<Response<()>, Error<BoxError>> =
        Err(Error::Rejected(rejected(Some(Duration::from_secs(4)))));
    assert_eq!(retry_after_hint(&failed), None);
}

// ---------------------------------------------------------------------------------------
// End to end: RetryLayer + IdempotentRequests + retry_policy
// ---------------------------------------------------------------------------------------

/// What the fake upstream saw on each attempt.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    at: tokio::time::Instant,
    method: Method,
    headers: ::http::HeaderMap,
    trace: Option<TraceContext>,
    body: String,
}

/// Every request the fake upstream saw, in order.
type SeenLog = Arc<Mutex<Vec<Seen>>>;

/// An upstream answering with `statuses` in turn (the last one repeats), a `Retry-After`
/// of `retry_after` on its 429s and 503s, and recording every request it sees in `log`.
fn scripted_upstream(
    statuses: &'static [u16],
    retry_after: Option<&'static str>,
    log: SeenLog,
) -> impl tower::Service<
    Request<String>,
    Response = Response<String>,
    Error = std::io::Error,
    Future: Send,
> + Clone
+ Send
+ 'static {
    let calls = Arc::new(AtomicU32::new(0));
    service_fn(move |req: Request<String>| {
        let n = calls.fetch_add(1, Ordering::Relaxed) as usize;
        let code = statuses.get(n).or(statuses.last()).copied().unwrap_or(200);
        log.lock().expect("not poisoned").push(Seen {
            at: tokio::time::Instant::now(),
            method: req.method().clone(),
            headers: req.headers().clone(),
            trace: req.extensions().get::<TraceContext>().cloned(),
            body: req.body().clone(),
        });
        let mut response = Response::new(format!("attempt {}", n + 1));
        *response.status_mut() = status(code);
        if let (503 | 429, Some(value)) = (code, retry_after) {
            response
                .headers_mut()
                .insert(::http::header::RETRY_AFTER, HeaderValue::from_static(value));
        }
        async move { Ok::<_, std::io::Error>(response) }
    })
}

fn quick_retries(max_retries: u32) -> RetryLayer<Response<String>, IdempotentRequests> {
    let policy = http::retry_policy::<String>()
        .max_retries(max_retries)
        .backoff(
            Backoff::fixed(Duration::from_millis(10))
                .build()
                .expect("valid backoff"),
        )
        .build()
        .expect("valid policy");
    RetryLayer::new(policy).requests(IdempotentRequests::new())
}

#[tokio::test(start_paused = true)]
async fn a_get_is_retried_on_503_after_the_retry_after_delay() {
    let seen = SeenLog::default();
    let upstream = scripted_upstream(&[503, 200], Some("5"), seen.clone());
    let svc = quick_retries(2).layer(upstream);
    let mut req = Request::get("/stock?sku=42")
        .header("x-request-id", "r-1")
        .body(String::from("probe"))
        .expect("valid request");
    req.extensions_mut().insert(TraceContext("span-1"));

    let started = tokio::time::Instant::now();
    let response = svc.oneshot(req).await.expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), "attempt 2");

    let seen = seen.lock().expect("not poisoned").clone();
    assert_eq!(seen.len(), 2);
    // The server asked for five seconds; the backoff alone would have waited 10 ms.
    assert_eq!(seen[1].at - seen[0].at, Duration::from_secs(5));
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    // The retry sent the same request.
    assert_eq!(seen[1].method, Method::GET);
    assert_eq!(seen[1].headers, seen[0].headers);
    assert_eq!(seen[1].trace, Some(TraceContext("span-1")));
    assert_eq!(seen[1].body, "probe");
}

#[tokio::test(start_paused = true)]
async fn a_get_without_retry_after_uses_the_backoff() {
    let seen = SeenLog::default();
    let upstream = scripted_upstream(&[502, 504, 200], None, seen.clone());
    let response = quick_retries(3)
        .layer(upstream)
        .oneshot(
            Request::get("/")
                .body(String::new())
                .expect("valid request"),
        )
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    let seen = seen.lock().expect("not poisoned").clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[1].at - seen[0].at, Duration::from_millis(10));
    assert_eq!(seen[2].at - seen[1].at, Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn a_post_is_sent_once() {
    let seen = SeenLog::default();
    let upstream = scripted_upstream(&[503, 200], Some("1"), seen.clone());
    let response = quick_retries(3)
        .layer(upstream)
        .oneshot(
            Request::post("/orders")
                .body(String::from("{}"))
                .expect("valid request"),
        )
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(seen.lock().expect("not poisoned").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_post_with_an_idempotency_key_is_retried() {
    let seen = SeenLog::default();
    let upstream = scripted_upstream(&[503, 201], Some("1"), seen.clone());
    let req = Request::post("/orders")
        .header("idempotency-key", "order-7")
        .body(String::from("{\"sku\":42}"))
        .expect("valid request");
    let response = quick_retries(3)
        .layer(upstream)
        .oneshot(req)
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::CREATED);
    let seen = seen.lock().expect("not poisoned").clone();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].body, "{\"sku\":42}");
    assert_eq!(seen[1].headers["idempotency-key"], "order-7");
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_limit_returns_the_response_at_once() {
    let seen = SeenLog::default();
    let upstream = scripted_upstream(&[429, 200], Some("99999999999999999999999"), seen.clone());
    let started = tokio::time::Instant::now();
    let response = quick_retries(3)
        .layer(upstream)
        .oneshot(
            Request::get("/")
                .body(String::new())
                .expect("valid request"),
        )
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(seen.lock().expect("not poisoned").len(), 1);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_at_the_first_breaker_rejection() {
    let seen = SeenLog::default();
    let upstream = scripted_upstream(&[503], None, seen.clone());
    let breaker = Breaker::builder("inventory")
        .consecutive_failures(2)
        .build()
        .expect("valid breaker");
    let svc = tower::ServiceBuilder::new()
        .layer(quick_retries(5))
        .layer(BreakerLayer::new(breaker).classifier(HttpClassifier::new()))
        .service(upstream);
    let error = svc
        .oneshot(
            Request::get("/")
                .body(String::new())
                .expect("valid request"),
        )
        .await
        .expect_err("the breaker opens");
    assert!(error.is::<Rejected>());
    assert_eq!(seen.lock().expect("not poisoned").len(), 2);
}

// ---------------------------------------------------------------------------------------
// axum responses
// ---------------------------------------------------------------------------------------

#[cfg(feature = "axum")]
mod axum_responses {
    use super::*;
    use axum::Router;
    use axum::error_handling::HandleErrorLayer;
    use axum::routing::get;
    use axum_core::response::IntoResponse;
    use fusebox_tower::http::axum::{ErrorResponse, RejectedResponse, handle_error};

    async fn body_text(response: axum_core::response::Response) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a readable body")
            .to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8 body")
    }

    fn retry_after_header(response: &axum_core::response::Response) -> Option<&str> {
        response
            .headers()
            .get(::http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn a_rejection_is_a_503_with_retry_after_in_whole_seconds() {
        let cases = [
            (Some(Duration::from_millis(2_500)), Some("3")),
            (Some(Duration::from_secs(10)), Some("10")),
            (Some(Duration::from_millis(1)), Some("1")),
            (Some(Duration::ZERO), Some("1")),
            // A rejection holds a wait of at most u64::MAX - 1 ns (about 584 years).
            (Some(Duration::MAX), Some("18446744074")),
            (None, None),
        ];
        for (wait, header) in cases {
            let response = handle_error(Box::new(rejected(wait))).await;
            assert_eq!(
                response.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "{wait:?}"
            );
            assert_eq!(retry_after_header(&response), header, "{wait:?}");
            assert_eq!(
                response.headers()["content-type"],
                "text/plain; charset=utf-8"
            );
            let body = body_text(response).await;
            assert!(body.contains("`payments`"), "{body}");
        }
    }

    #[tokio::test]
    async fn rejected_response_matches_handle_error() {
        let response = RejectedResponse(rejected(Some(Duration::from_secs(4)))).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after_header(&response), Some("4"));
        assert_eq!(
            body_text(response).await,
            "service unavailable: circuit breaker `payments` is open"
        );
    }

    #[tokio::test]
    async fn a_full_bulkhead_is_a_503_without_retry_after() {
        let response = handle_error(Box::new(bulkhead_full())).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after_header(&response), None);
        assert_eq!(
            body_text(response).await,
            "service unavailable: bulkhead `db` is full"
        );
    }

    #[tokio::test]
    async fn a_timeout_is_a_504() {
        let timed_out = TimedOut {
            after: Duration::from_secs(2),
        };
        let response = handle_error(Box::new(timed_out)).await;
        assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(retry_after_header(&response), None);
    }

    #[tokio::test]
    async fn other_errors_are_a_500_that_keeps_the_details_on_the_server() {
        let response = handle_error("password for db-7 rejected".into()).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_text(response).await;
        assert_eq!(body, "internal server error");
    }

    #[tokio::test]
    async fn error_response_covers_every_fusebox_error() {
        let inner = ErrorResponse(Error::Inner(std::io::Error::other("secret path /srv/x")));
        let response = inner.into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!body_text(response).await.contains("secret"));

        let from_error: ErrorResponse<std::io::Error> =
            Error::Rejected(rejected(Some(Duration::from_secs(1)))).into();
        let response = from_error.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after_header(&response), Some("1"));

        let timeout: ErrorResponse<std::io::Error> = ErrorResponse(Error::Timeout(TimedOut {
            after: Duration::from_secs(1),
        }));
        assert_eq!(
            timeout.into_response().status(),
            StatusCode::GATEWAY_TIMEOUT
        );
    }

    #[tokio::test]
    async fn load_shedding_refusals_answer_429_or_503_through_handle_error() {
        use fusebox_core::{Ejected, LimitExceeded, RateLimited, Throttled};

        // Boxed as a tower service returns them: handle_error recovers each.
        let limited = RateLimited {
            name: "search".into(),
            retry_after: Duration::from_millis(1_200),
        };
        let response = handle_error(Box::new(limited)).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after_header(&response), Some("2"), "rounded up");
        assert!(body_text(response).await.contains("`search`"));

        let ejected = Ejected {
            name: "10.0.0.7:443".into(),
            retry_after: Duration::from_secs(30),
        };
        let response = handle_error(Box::new(ejected)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after_header(&response), Some("30"));

        let exceeded = LimitExceeded {
            name: "db".into(),
            limit: 4,
            in_flight: 4,
        };
        let response = handle_error(Box::new(exceeded)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after_header(&response), None);

        let throttled: ErrorResponse<std::io::Error> = ErrorResponse(Error::Throttled(Throttled {
            name: "quotes".into(),
            probability: 0.5,
        }));
        let response = throttled.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(body_text(response).await.contains("`quotes`"));
    }

    #[tokio::test]
    async fn an_axum_router_answers_503_once_its_breaker_opens() {
        let breaker = Breaker::builder("handler")
            .consecutive_failures(1)
            .cooldown(Duration::from_secs(30))
            .build()
            .expect("valid breaker");
        let app = Router::new()
            .route(
                "/",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "the database is down") }),
            )
            .layer(
                tower::ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(handle_error))
                    .layer(BreakerLayer::new(breaker.clone()).classifier(HttpClassifier::new())),
            );
        let get_root = || {
            Request::get("/")
                .body(axum::body::Body::empty())
                .expect("valid request")
        };

        let first = app.clone().oneshot(get_root()).await.expect("infallible");
        assert_eq!(first.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(breaker.state(), State::Open);

        let second = app.oneshot(get_root()).await.expect("infallible");
        assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
        let wait: u64 = retry_after_header(&second)
            .and_then(|v| v.parse().ok())
            .expect("a Retry-After in seconds");
        assert!((1..=30).contains(&wait), "{wait}");
        assert!(body_text(second).await.contains("`handler`"));
    }
}
