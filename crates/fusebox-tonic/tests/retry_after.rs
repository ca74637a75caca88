//! Retry delays read back from statuses: what fusebox sends, and what a careless or hostile
//! server may send (huge, negative, malformed), locally and across a real connection.

mod support;

use std::time::Duration;

use fusebox_core::breaker::{Rejected, State};
use fusebox_core::guard::{CostGuard, CostPolicy};
use fusebox_core::{BulkheadFull, Error, TimedOut};
use fusebox_tonic::{
    MAX_RETRY_AFTER, RETRY_PUSHBACK_HEADER, error_status, rejection_status, retry_after_capped,
    retry_after_from, retry_hint,
};
use prost::Message;
use support::{Script, WAIT, check_request, scripted_server};
use tonic::{Code, Status};
use tonic_health::pb::health_client::HealthClient;
use tonic_types::{RetryInfo, pb};

/// A status whose details hold a `RetryInfo` with exactly these protobuf fields.
fn with_raw_retry_info(delay: Option<prost_types::Duration>) -> Status {
    let info = pb::RetryInfo { retry_delay: delay };
    details(vec![prost_types::Any {
        type_url: RetryInfo::TYPE_URL.into(),
        value: info.encode_to_vec(),
    }])
}

fn details(details: Vec<prost_types::Any>) -> Status {
    let status = pb::Status {
        code: Code::Unavailable as i32,
        message: "busy".into(),
        details,
    };
    Status::with_details(Code::Unavailable, "busy", status.encode_to_vec().into())
}

fn delay(seconds: i64, nanos: i32) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds, nanos })
}

fn with_pushback(value: &str) -> Status {
    let mut status = Status::unavailable("busy");
    status.metadata_mut().insert(
        RETRY_PUSHBACK_HEADER,
        value.parse().expect("a valid header value"),
    );
    status
}

#[test]
fn retry_info_delays_are_read_exactly_clamped_when_huge_and_dropped_when_invalid() {
    let read = |d| retry_after_from(&with_raw_retry_info(d));
    assert_eq!(
        read(delay(2, 500_000_000)),
        Some(Duration::from_millis(2_500))
    );
    assert_eq!(read(delay(0, 0)), Some(Duration::ZERO));
    // Huge: clamped, never an overflow.
    assert_eq!(read(delay(i64::MAX, 999_999_999)), Some(MAX_RETRY_AFTER));
    assert_eq!(read(delay(1_000_000_000_000, 0)), Some(MAX_RETRY_AFTER));
    // Negative or out-of-range parts: no hint (tonic-types would read a negative one as 0).
    assert_eq!(read(delay(-5, 0)), None);
    assert_eq!(read(delay(0, -1)), None);
    assert_eq!(read(delay(i64::MIN, i32::MIN)), None);
    assert_eq!(read(delay(1, 1_000_000_000)), None);
    assert_eq!(read(delay(1, i32::MAX)), None);
    assert_eq!(read(None), None, "a RetryInfo without a delay");
}

#[test]
fn undecodable_details_are_no_hint_and_never_a_panic() {
    let garbage = prost_types::Any {
        type_url: RetryInfo::TYPE_URL.into(),
        value: vec![0xff, 0xff, 0xff, 0xff],
    };
    assert_eq!(retry_after_from(&details(vec![garbage])), None);
    let other = prost_types::Any {
        type_url: "type.googleapis.com/google.rpc.DebugInfo".into(),
        value: vec![],
    };
    assert_eq!(retry_after_from(&details(vec![other])), None);
    let not_a_status = Status::with_details(Code::Unavailable, "busy", vec![0xff; 7].into());
    assert_eq!(retry_after_from(&not_a_status), None);
    // Undecodable details do not hide a valid pushback.
    let mut status = not_a_status;
    status
        .metadata_mut()
        .insert(RETRY_PUSHBACK_HEADER, "250".parse().unwrap());
    assert_eq!(retry_after_from(&status), Some(Duration::from_millis(250)));
}

#[test]
fn pushback_values_are_whole_milliseconds_or_no_hint() {
    assert_eq!(retry_after_from(&with_pushback("0")), Some(Duration::ZERO));
    assert_eq!(
        retry_after_from(&with_pushback("1500")),
        Some(Duration::from_millis(1500))
    );
    assert_eq!(
        retry_after_from(&with_pushback(" 40 ")),
        Some(Duration::from_millis(40))
    );
    for malformed in [
        "", "-1", "-0", "+5", "1.5", "1e3", "abc", "12ms", "0x10", "1 2",
    ] {
        assert_eq!(
            retry_after_from(&with_pushback(malformed)),
            None,
            "{malformed:?}"
        );
    }
    for huge in [
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999999999999999999",
    ] {
        assert_eq!(
            retry_after_from(&with_pushback(huge)),
            Some(MAX_RETRY_AFTER),
            "{huge}"
        );
    }
    let mut not_text = Status::unavailable("busy");
    not_text.metadata_mut().insert(
        RETRY_PUSHBACK_HEADER,
        tonic::metadata::MetadataValue::try_from(&[0x80u8, 0x81][..]).unwrap(),
    );
    assert_eq!(retry_after_from(&not_text), None);
}

#[test]
fn retry_info_wins_over_the_pushback_even_when_unusable() {
    let mut status = with_raw_retry_info(delay(7, 0));
    status
        .metadata_mut()
        .insert(RETRY_PUSHBACK_HEADER, "100".parse().unwrap());
    assert_eq!(retry_after_from(&status), Some(Duration::from_secs(7)));
    let mut status = with_raw_retry_info(delay(-7, 0));
    status
        .metadata_mut()
        .insert(RETRY_PUSHBACK_HEADER, "100".parse().unwrap());
    assert_eq!(
        retry_after_from(&status),
        None,
        "a server that said negative meant no"
    );
}

#[test]
fn ceilings_apply_to_both_sources() {
    let max = Duration::from_secs(1);
    assert_eq!(
        retry_after_capped(&with_raw_retry_info(delay(60, 0)), max),
        Some(max)
    );
    assert_eq!(retry_after_capped(&with_pushback("60000"), max), Some(max));
    assert_eq!(
        retry_after_capped(&with_pushback("60000"), Duration::ZERO),
        Some(Duration::ZERO)
    );
    assert_eq!(
        retry_after_capped(&with_pushback("10"), Duration::MAX),
        Some(Duration::from_millis(10))
    );
}

#[test]
fn rejections_round_trip_their_delay_whatever_its_size() {
    for (sent, read) in [
        (Duration::from_millis(1), Duration::from_millis(1)),
        (Duration::from_nanos(1), Duration::from_millis(1)),
        (
            Duration::from_micros(2_500_001),
            Duration::from_millis(2_501),
        ),
        (Duration::from_secs(30), Duration::from_secs(30)),
        (Duration::from_secs(10 * 24 * 3600), MAX_RETRY_AFTER),
        (Duration::MAX, MAX_RETRY_AFTER),
    ] {
        let status = rejection_status(&Rejected::new("db", State::Open, Some(sent)));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(retry_after_from(&status), Some(read), "{sent:?}");
    }
    // Sub-millisecond delays round up (RetryInfo and pushback alike), never down to zero.
    let status = rejection_status(&Rejected::new(
        "db",
        State::Open,
        Some(Duration::from_nanos(1)),
    ));
    assert_eq!(status.metadata().get(RETRY_PUSHBACK_HEADER).unwrap(), "1");
    // A breaker forced open has no end in sight: no hint at all.
    let forced = rejection_status(&Rejected::new("db", State::ForcedOpen, None));
    assert_eq!(forced.code(), Code::Unavailable);
    assert_eq!(retry_after_from(&forced), None);
    assert!(forced.details().is_empty());
    assert!(forced.metadata().get(RETRY_PUSHBACK_HEADER).is_none());
}

#[test]
fn every_fusebox_refusal_maps_to_a_status() {
    let rejected = error_status(Error::Rejected(Rejected::new(
        "db",
        State::HalfOpen,
        Some(Duration::from_secs(1)),
    )));
    assert_eq!(rejected.code(), Code::Unavailable);
    let full = error_status(Error::BulkheadFull(BulkheadFull {
        name: "pool".into(),
        max_concurrent: 4,
        max_queued: 0,
    }));
    assert_eq!(full.code(), Code::Unavailable);
    assert!(full.message().contains("bulkhead `pool`"));
    let timed_out = error_status(Error::Timeout(TimedOut {
        after: Duration::from_millis(800),
    }));
    assert_eq!(timed_out.code(), Code::DeadlineExceeded);
    let inner = error_status(Error::Inner(Status::not_found("no row")));
    assert_eq!((inner.code(), inner.message()), (Code::NotFound, "no row"));

    let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build().unwrap())
        .build()
        .unwrap();
    guard.record_cost(5.0).unwrap();
    let refusal = guard.try_acquire().unwrap_err();
    let status = error_status(Error::CostRejected(Box::new(refusal.clone())));
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(status.message().contains("`llm`"));
    assert!(
        !status.message().contains('5'),
        "no spend figures: {}",
        status.message()
    );
    // The guard's wait, in whole milliseconds rounded up, clamped.
    let expected = refusal.retry_after.map(|d| {
        let millis = u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX);
        Duration::from_millis(millis).min(MAX_RETRY_AFTER)
    });
    assert!(
        expected.is_some(),
        "a spent daily budget knows when it refills"
    );
    assert_eq!(retry_after_from(&status), expected);
}

#[test]
fn retry_hints_for_policies() {
    assert_eq!(retry_hint::<()>(&Ok(())), None);
    let timed_out = Error::Timeout(TimedOut {
        after: Duration::from_secs(1),
    });
    assert_eq!(retry_hint::<()>(&Err(timed_out)), None);
    let huge = Error::Rejected(Rejected::new("db", State::Open, Some(Duration::MAX)));
    assert_eq!(retry_hint::<()>(&Err(huge)), Some(MAX_RETRY_AFTER));
    let pushed = Error::Inner(with_pushback("750"));
    assert_eq!(
        retry_hint::<()>(&Err(pushed)),
        Some(Duration::from_millis(750))
    );
}

#[tokio::test]
async fn a_server_sending_hostile_delays_cannot_hurt_the_client() {
    let script = Script::new();
    let server = scripted_server(&script).await;
    let mut client = HealthClient::new(server.channel().await);
    let mut ask = async |status: Status| {
        script.answer(status);
        let error = tokio::time::timeout(WAIT, client.check(check_request()))
            .await
            .unwrap()
            .unwrap_err();
        retry_after_from(&error)
    };
    assert_eq!(
        ask(with_raw_retry_info(delay(i64::MAX, 999_999_999))).await,
        Some(MAX_RETRY_AFTER)
    );
    assert_eq!(ask(with_raw_retry_info(delay(-1, -1))).await, None);
    assert_eq!(
        ask(with_raw_retry_info(delay(0, 1_500_000_000))).await,
        None
    );
    assert_eq!(ask(with_pushback("-100")).await, None);
    assert_eq!(ask(with_pushback("1e9")).await, None);
    assert_eq!(
        ask(with_pushback("340282366920938463463374607431768211456")).await,
        Some(MAX_RETRY_AFTER)
    );
    let garbage = Status::with_details(Code::Unavailable, "busy", vec![0x0a, 0xff].into());
    assert_eq!(ask(garbage).await, None);
    assert_eq!(
        ask(with_raw_retry_info(delay(4, 0))).await,
        Some(Duration::from_secs(4))
    );
}
