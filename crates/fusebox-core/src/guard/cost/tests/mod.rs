//! Unit tests of the cost meter, the policy and the guard. The baselines (`baseline`) and
//! the concurrent guard (`guard`) have files of their own.

mod baseline;
mod guard;

use super::*;
use crate::guard::{EwmaConfig, HourOfWeek, SpikeCheck};
use std::time::Duration;

const SEC: u64 = 1_000_000_000;
const HOUR: u64 = 3600 * SEC;
const DAY: u64 = 24 * HOUR;
/// 2024-01-01 00:00:00 UTC, a Monday, in nanoseconds.
const MONDAY: u64 = 1_704_067_200 * SEC;

fn rolling(span_secs: u64, buckets: u32) -> CostWindow {
    CostWindow::Rolling {
        span: Duration::from_secs(span_secs),
        buckets,
    }
}

fn meter(builder: CostPolicyBuilder) -> CostMeter {
    CostMeter::new(builder.build().unwrap())
}

fn admit_and_settle(meter: &mut CostMeter, now: u64, cost: f64) -> Settled {
    let ticket = meter.admit(now).unwrap().ticket;
    meter.settle(now, ticket, Some(cost))
}

#[test]
fn rolling_window_sums_live_buckets_and_expires_them_one_at_a_time() {
    let mut m = meter(CostPolicy::builder(1000.0).window(rolling(60, 6)));
    m.record(0, 10.0).unwrap();
    m.record(15 * SEC, 20.0).unwrap();
    m.record(59 * SEC, 30.0).unwrap();
    assert_eq!(m.status(59 * SEC).spent, 60.0);
    // The bucket of [0 s, 10 s) leaves at 60 s, the one of [10 s, 20 s) at 70 s...
    assert_eq!(m.status(60 * SEC - 1).spent, 60.0);
    assert_eq!(m.status(60 * SEC).spent, 50.0);
    assert_eq!(m.status(70 * SEC).spent, 30.0);
    // ...and the one of [50 s, 60 s) at 110 s.
    assert_eq!(m.status(110 * SEC - 1).spent, 30.0);
    assert_eq!(m.status(110 * SEC).spent, 0.0);
}

#[test]
fn a_bucket_slot_reused_after_a_full_turn_starts_from_zero() {
    let mut m = meter(CostPolicy::builder(1000.0).window(rolling(60, 6)));
    m.record(5 * SEC, 7.0).unwrap();
    // Epoch 6 lands in the slot epoch 0 used.
    m.record(65 * SEC, 1.0).unwrap();
    assert_eq!(m.status(65 * SEC).spent, 1.0);
}

#[test]
fn calendar_hour_rolls_over_on_the_hour_in_utc() {
    let mut m = meter(CostPolicy::builder(100.0).window(CostWindow::CalendarHour));
    let nine = MONDAY + 9 * HOUR;
    m.record(nine, 40.0).unwrap();
    m.record(nine + HOUR - 1, 50.0).unwrap();
    let status = m.status(nine + HOUR - 1);
    assert_eq!(status.spent, 90.0);
    assert_eq!(
        (status.period_start_nanos, status.period_end_nanos),
        (nine, nine + HOUR)
    );
    let ten = m.status(nine + HOUR);
    assert_eq!(ten.spent, 0.0);
    assert_eq!(ten.period_start_nanos, nine + HOUR);
}

#[test]
fn calendar_day_rolls_over_at_midnight_utc() {
    let mut m = meter(CostPolicy::builder(100.0).window(CostWindow::CalendarDay));
    m.record(MONDAY + 1, 30.0).unwrap();
    m.record(MONDAY + DAY - SEC, 60.0).unwrap(); // 23:59:59
    assert_eq!(m.status(MONDAY + DAY - 1).spent, 90.0);
    assert_eq!(m.status(MONDAY + DAY).spent, 0.0);
    assert_eq!(m.status(MONDAY + DAY).period_start_nanos, MONDAY + DAY);
}

#[test]
fn nine_hundred_twenty_of_a_thousand_is_a_warning_then_the_limit_is_a_breach() {
    let mut m = meter(CostPolicy::builder(1000.0));
    let settled = admit_and_settle(&mut m, 0, 920.0);
    assert_eq!(
        settled.events.iter().collect::<Vec<_>>(),
        [CostEventKind::Warning]
    );
    let admitted = m.admit(1).unwrap();
    assert!(admitted.warning);
    assert_eq!(admitted.status.budget.usage_ratio, 0.92);
    assert_eq!(admitted.status.budget.remaining, 80.0);
    assert!(
        admitted.events.is_empty(),
        "a warning is raised once per period"
    );
    let settled = m.settle(1, admitted.ticket, Some(80.0));
    assert_eq!(
        settled.events.iter().collect::<Vec<_>>(),
        [CostEventKind::Breach]
    );
    let refused = m.admit(2).unwrap_err();
    assert_eq!(refused.reason, CostRejectReason::BudgetBreached);
    assert_eq!(refused.status.budget.current_spend, 1000.0);
    assert!(refused.events.is_empty());
}

#[test]
fn events_are_raised_again_in_the_next_period() {
    let mut m = meter(CostPolicy::builder(10.0).window(CostWindow::CalendarHour));
    assert!(
        m.record(0, 9.0)
            .unwrap()
            .events
            .contains(CostEventKind::Warning)
    );
    assert!(m.record(1, 0.5).unwrap().events.is_empty());
    let next_hour = m.record(HOUR, 9.5).unwrap();
    assert!(next_hour.events.contains(CostEventKind::Warning));
}

#[test]
fn breach_retry_after_is_the_end_of_the_calendar_period() {
    let mut m = meter(CostPolicy::builder(10.0).window(CostWindow::CalendarDay));
    m.record(MONDAY + HOUR, 10.0).unwrap();
    let refused = m.admit(MONDAY + 2 * HOUR).unwrap_err();
    assert_eq!(refused.retry_after, Some(Duration::from_secs(22 * 3600)));
    assert!(m.admit(MONDAY + DAY).is_ok());
}

#[test]
fn breach_retry_after_waits_for_just_enough_buckets_to_expire() {
    let mut m = meter(CostPolicy::builder(100.0).window(rolling(60, 6)));
    m.record(0, 30.0).unwrap();
    m.record(10 * SEC, 30.0).unwrap();
    m.record(20 * SEC, 45.0).unwrap();
    // 105 of 100: dropping the first bucket (at 60 s) leaves 75, enough.
    let refused = m.admit(25 * SEC).unwrap_err();
    assert_eq!(refused.retry_after, Some(Duration::from_secs(35)));
    m.record(26 * SEC, 30.0).unwrap();
    // 135: the first two buckets must go (at 70 s), leaving 75.
    let refused = m.admit(30 * SEC).unwrap_err();
    assert_eq!(refused.retry_after, Some(Duration::from_secs(40)));
    assert!(m.admit(70 * SEC - 1).is_err());
    assert!(m.admit(70 * SEC).is_ok());
}

#[test]
fn reservations_count_until_settled_and_keep_a_burst_within_the_budget() {
    let mut m = meter(CostPolicy::builder(10.0).estimated_cost(3.0));
    let tickets: Vec<CostTicket> = (0..4).map(|_| m.admit(0).unwrap().ticket).collect();
    // 4 x 3.0 = 12 reserved: the fifth call is refused before any cost is known.
    let refused = m.admit(0).unwrap_err();
    assert_eq!(refused.reason, CostRejectReason::BudgetBreached);
    assert_eq!(refused.status.reserved, 12.0);
    assert_eq!(refused.status.in_flight, 4);
    assert_eq!(
        refused.retry_after, None,
        "only settling the calls in flight helps"
    );
    for ticket in tickets {
        m.settle(0, ticket, Some(2.0));
    }
    let status = m.status(0);
    assert_eq!(
        (status.spent, status.reserved, status.in_flight),
        (8.0, 0.0, 0)
    );
    assert!(m.admit(0).is_ok());
}

#[test]
fn reservation_dust_is_cleared_when_nothing_is_in_flight() {
    let mut m = meter(CostPolicy::builder(10.0).estimated_cost(0.1));
    let a = m.admit(0).unwrap().ticket;
    let b = m.admit(0).unwrap().ticket;
    let c = m.admit(0).unwrap().ticket;
    m.cancel(a);
    m.cancel(b);
    assert!(m.status(0).reserved > 0.0);
    m.cancel(c);
    assert_eq!(m.status(0).reserved, 0.0);
}

#[test]
fn guards_and_permits_can_be_shared_across_threads() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn sendable<T: Send + 'static>() {}
    shareable::<CostGuard>();
    shareable::<CostPolicy>();
    sendable::<OwnedCostPermit>();
    sendable::<CostMeter>();
}

#[test]
fn unknown_cost_ignore_counts_nothing() {
    let mut m = meter(CostPolicy::builder(10.0).unknown_cost(UnknownCost::Ignore));
    let ticket = m.admit(0).unwrap().ticket;
    let settled = m.settle(0, ticket, None);
    assert!(settled.unknown);
    assert_eq!(settled.counted, 0.0);
    assert!(settled.events.contains(CostEventKind::UnknownCost));
    assert_eq!(settled.status.unknown_costs, 1);
}

#[test]
fn unknown_cost_defaults_to_the_estimate() {
    let mut m = meter(CostPolicy::builder(10.0).estimated_cost(2.5));
    let ticket = m.admit(0).unwrap().ticket;
    assert_eq!(m.settle(0, ticket, None).status.spent, 2.5);
}

#[test]
fn invalid_costs_are_unknown_costs() {
    let mut m = meter(CostPolicy::builder(10.0).unknown_cost(UnknownCost::Assume(1.0)));
    for bad in [f64::NAN, -1.0, f64::INFINITY, f64::NEG_INFINITY] {
        let ticket = m.admit(0).unwrap().ticket;
        let settled = m.settle(0, ticket, Some(bad));
        assert!(settled.unknown, "{bad}");
        assert_eq!(settled.counted, 1.0);
    }
    assert_eq!(m.status(0).spent, 4.0);
    assert_eq!(m.status(0).unknown_costs, 4);
}

#[test]
fn unknown_cost_reject_blocks_a_calendar_window_until_its_end() {
    let policy = CostPolicy::builder(10.0)
        .window(CostWindow::CalendarHour)
        .unknown_cost(UnknownCost::Reject);
    let mut m = meter(policy);
    let ticket = m.admit(MONDAY).unwrap().ticket;
    m.settle(MONDAY + 60 * SEC, ticket, None);
    let refused = m.admit(MONDAY + 120 * SEC).unwrap_err();
    assert_eq!(refused.reason, CostRejectReason::UnknownCost);
    assert_eq!(refused.retry_after, Some(Duration::from_secs(3480)));
    assert_eq!(refused.status.blocked_for, Some(Duration::from_secs(3480)));
    assert_eq!(refused.status.spent, 0.0, "nothing was counted");
    assert!(m.admit(MONDAY + HOUR).is_ok());
}

#[test]
fn unknown_cost_reject_blocks_a_rolling_window_until_the_cost_would_have_expired() {
    let policy = CostPolicy::builder(10.0)
        .window(rolling(60, 6))
        .unknown_cost(UnknownCost::Reject);
    let mut m = meter(policy);
    let ticket = m.admit(15 * SEC).unwrap().ticket;
    m.settle(15 * SEC, ticket, None);
    // Recorded in the bucket of [10 s, 20 s), which leaves the window at 70 s.
    let refused = m.admit(20 * SEC).unwrap_err();
    assert_eq!(refused.retry_after, Some(Duration::from_secs(50)));
    assert!(m.admit(70 * SEC - 1).is_err());
    assert!(m.admit(70 * SEC).is_ok());
}

#[test]
fn clear_unknown_lifts_the_block_and_reports_whether_there_was_one() {
    let mut m = meter(CostPolicy::builder(10.0).unknown_cost(UnknownCost::Reject));
    assert!(!m.clear_unknown());
    let ticket = m.admit(0).unwrap().ticket;
    m.settle(0, ticket, None);
    assert!(m.clear_unknown());
    assert!(m.admit(0).is_ok());
}

#[test]
fn time_going_backwards_counts_as_no_time_passed() {
    let mut m = meter(CostPolicy::builder(100.0).window(CostWindow::CalendarHour));
    m.record(HOUR + 5, 10.0).unwrap();
    m.record(3, 5.0).unwrap(); // counted in the current hour, not a past one
    let status = m.status(0);
    assert_eq!(status.spent, 15.0);
    assert_eq!(status.period_start_nanos, HOUR);
}

#[test]
fn huge_costs_saturate_instead_of_overflowing() {
    let mut m = meter(CostPolicy::builder(f64::MAX).window(rolling(60, 2)));
    m.record(0, f64::MAX).unwrap();
    m.record(0, f64::MAX).unwrap();
    m.record(31 * SEC, f64::MAX).unwrap();
    let status = m.status(31 * SEC);
    assert_eq!(status.spent, f64::MAX);
    assert!(status.budget.is_breached);
    assert!(status.spent.is_finite());
}

#[test]
fn record_rejects_invalid_costs_by_name() {
    let mut m = meter(CostPolicy::builder(10.0));
    for bad in [-0.5, f64::NAN, f64::INFINITY] {
        assert_eq!(m.record(0, bad).unwrap_err().field(), Some("cost"));
    }
    assert_eq!(m.status(0).spent, 0.0);
}

#[test]
fn every_invalid_setting_names_its_field() {
    let cases: Vec<(CostPolicyBuilder, &str)> = vec![
        (CostPolicy::builder(0.0), "limit"),
        (CostPolicy::builder(f64::NAN), "limit"),
        (CostPolicy::builder(1.0).warning_ratio(0.0), "warning_ratio"),
        (CostPolicy::builder(1.0).warning_ratio(1.1), "warning_ratio"),
        (CostPolicy::builder(1.0).window(rolling(0, 1)), "span"),
        (CostPolicy::builder(1.0).window(rolling(60, 0)), "buckets"),
        (
            CostPolicy::builder(1.0).window(rolling(60, 3601)),
            "buckets",
        ),
        (
            CostPolicy::builder(1.0).window(CostWindow::Rolling {
                span: Duration::from_nanos(3),
                buckets: 4,
            }),
            "span",
        ),
        (
            CostPolicy::builder(1.0).baseline(CostBaseline::Recent {
                check: SpikeCheck::default(),
                periods: 0,
            }),
            "periods",
        ),
        (
            CostPolicy::builder(1.0).baseline(CostBaseline::Recent {
                check: SpikeCheck::default(),
                periods: 1025,
            }),
            "periods",
        ),
        (
            CostPolicy::builder(1.0).baseline(CostBaseline::Recent {
                check: SpikeCheck::default().with_multiplier(1.0),
                periods: 3,
            }),
            "multiplier",
        ),
        (
            CostPolicy::builder(1.0).baseline(CostBaseline::Recent {
                check: SpikeCheck::default().with_min_baseline(-1.0),
                periods: 3,
            }),
            "min_baseline",
        ),
        (
            CostPolicy::builder(1.0).baseline(CostBaseline::Ewma {
                config: EwmaConfig::default().with_alpha(0.0),
                seed: 1.0,
            }),
            "alpha",
        ),
        (
            CostPolicy::builder(1.0).baseline(CostBaseline::Ewma {
                config: EwmaConfig::default(),
                seed: -1.0,
            }),
            "seed",
        ),
        (
            CostPolicy::builder(1.0).baseline(CostBaseline::Seasonal {
                config: EwmaConfig::default(),
                seed: 1.0,
            }),
            "baseline",
        ),
        (
            CostPolicy::builder(1.0).estimated_cost(f64::NAN),
            "estimated_cost",
        ),
        (
            CostPolicy::builder(1.0).unknown_cost(UnknownCost::Assume(-2.0)),
            "unknown_cost",
        ),
    ];
    for (builder, field) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.field(), Some(field), "{err}");
    }
}

#[test]
fn decide_follows_the_documented_order() {
    let policy = CostPolicy::builder(10.0).build().unwrap();
    let mut m = CostMeter::new(policy.clone());
    assert_eq!(policy.decide(&m.status(0)), CostDecision::Admit);
    m.record(0, 9.0).unwrap();
    assert_eq!(policy.decide(&m.status(0)), CostDecision::AdmitWithWarning);
    let mut status = m.status(0);
    status.blocked_for = Some(Duration::from_secs(1));
    status.budget.is_breached = true;
    assert_eq!(
        policy.decide(&status),
        CostDecision::Reject(CostRejectReason::UnknownCost)
    );
}
