//! Classification and retry decisions, on responses built in memory.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fusebox_core::breaker::Breaker;
use fusebox_core::{Classifier, Error, Outcome, TimedOut};
use fusebox_policy::policy::RetryDecision;
use fusebox_reqwest::{ReqwestClassifier, error_outcome, retry_after, should_retry};

fn response(status: u16, retry_after: Option<&str>) -> reqwest::Response {
    let mut builder = http::Response::builder().status(status);
    if let Some(value) = retry_after {
        builder = builder.header("retry-after", value);
    }
    builder.body("").expect("a response").into()
}

#[test]
fn statuses_follow_the_http_table() {
    let classifier = ReqwestClassifier::new();
    for status in 100..=999_u16 {
        let expected = if (500..=599).contains(&status) || status == 429 || status == 408 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        let result = Ok(response(status, None));
        assert_eq!(classifier.classify(&result), expected, "{status}");
        assert_eq!(
            classifier.clone().in_pipeline()(&Ok(response(status, None))),
            expected
        );
    }
}

#[test]
fn refusals_and_other_middleware_errors_are_ignored() {
    let breaker = Breaker::builder("x").build().expect("breaker");
    breaker.force_open();
    let rejected = breaker.try_acquire().unwrap_err();
    let error = reqwest_middleware::Error::middleware(rejected.clone());
    assert_eq!(error_outcome(&error), Outcome::Ignored);
    assert_eq!(should_retry(&Err(Error::Inner(error))), RetryDecision::Stop);

    let in_pipeline = ReqwestClassifier::new().in_pipeline();
    assert_eq!(
        in_pipeline(&Err(Error::Rejected(rejected))),
        Outcome::Ignored
    );
    let timed_out = Error::Timeout(TimedOut {
        after: Duration::from_secs(1),
    });
    assert_eq!(in_pipeline(&Err(timed_out)), Outcome::Failure);
}

#[test]
fn retry_decisions() {
    let decide = |status: u16, hint: Option<&str>| should_retry(&Ok(response(status, hint)));
    for status in [500, 502, 503, 504, 429, 408] {
        assert_eq!(decide(status, None), RetryDecision::Retry, "{status}");
    }
    for status in [200, 201, 301, 400, 401, 403, 404, 409, 422, 501, 505] {
        assert_eq!(decide(status, None), RetryDecision::Stop, "{status}");
    }
    assert_eq!(
        decide(429, Some("3")),
        RetryDecision::RetryAfter(Duration::from_secs(3))
    );
    assert_eq!(
        decide(503, Some("0")),
        RetryDecision::RetryAfter(Duration::ZERO)
    );
    // Malformed or negative: no hint, the backoff decides.
    for bad in ["soon", "-5", "1.5", "", "3 seconds"] {
        assert_eq!(decide(503, Some(bad)), RetryDecision::Retry, "{bad:?}");
    }
    // Too large to hold: saturates, for the policy's bound to refuse.
    assert_eq!(
        decide(429, Some("184467440737095516160")),
        RetryDecision::RetryAfter(Duration::MAX)
    );
    // A Retry-After on a status that is not retried changes nothing.
    assert_eq!(decide(400, Some("3")), RetryDecision::Stop);
}

#[test]
fn retry_after_reads_dates_against_now() {
    let now = UNIX_EPOCH + Duration::from_secs(1_445_412_450); // 2015-10-21 07:27:30 GMT
    let later = response(503, Some("Wed, 21 Oct 2015 07:28:00 GMT"));
    assert_eq!(retry_after(&later, now), Some(Duration::from_secs(30)));
    let past = response(429, Some("Wed, 21 Oct 2015 07:00:00 GMT"));
    assert_eq!(retry_after(&past, now), Some(Duration::ZERO));
    assert_eq!(retry_after(&response(500, Some("5")), now), None);
    assert_eq!(retry_after(&response(503, None), SystemTime::now()), None);
}
