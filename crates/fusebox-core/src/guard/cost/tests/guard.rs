//! Tests of the concurrent guard: its listeners, its permits, and its rejection message.

use super::*;
use crate::clock::ManualClock;
use std::sync::{Arc, Mutex};

#[test]
fn listeners_see_each_event_once_with_the_guard_name() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let events = Arc::clone(&seen);
    let rejections = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::clone(&rejections);
    let policy = CostPolicy::builder(100.0)
        .window(CostWindow::CalendarHour)
        .unknown_cost(UnknownCost::Ignore)
        .build()
        .unwrap();
    let guard = CostGuard::builder("llm", policy)
        .clock(ManualClock::new())
        .on_event(move |e| {
            assert_eq!(e.name, "llm");
            events.lock().unwrap().push(e.kind)
        })
        .on_rejection(move |r| refused.lock().unwrap().push(r.reason))
        .build()
        .unwrap();
    guard.try_acquire().unwrap().record_cost(95.0);
    guard.try_acquire().unwrap().record_unknown();
    guard.try_acquire().unwrap().record_cost(5.0);
    assert!(guard.try_acquire().is_err());
    assert!(guard.try_acquire().is_err());
    assert_eq!(
        *seen.lock().unwrap(),
        [
            CostEventKind::Warning,
            CostEventKind::UnknownCost,
            CostEventKind::Breach
        ]
    );
    assert_eq!(
        *rejections.lock().unwrap(),
        [CostRejectReason::BudgetBreached; 2]
    );
}

#[test]
fn a_dropped_permit_is_an_unknown_cost_and_cancel_is_not() {
    let policy = CostPolicy::builder(10.0)
        .estimated_cost(1.0)
        .unknown_cost(UnknownCost::Reject)
        .build()
        .unwrap();
    let guard = CostGuard::builder("llm", policy)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    guard.try_acquire().unwrap().cancel();
    guard.try_acquire_owned().unwrap().cancel();
    assert_eq!(
        guard.status().unknown_costs,
        0,
        "cancelled permits count nothing"
    );
    drop(guard.try_acquire_owned().unwrap());
    let rejected = guard.try_acquire().unwrap_err();
    assert_eq!(rejected.reason, CostRejectReason::UnknownCost);
    assert_eq!(guard.status().unknown_costs, 1);
    assert_eq!(guard.status().reserved, 0.0);
}

#[test]
fn rejection_message_names_guard_reason_and_wait() {
    let clock = ManualClock::new();
    let policy = CostPolicy::builder(10.0)
        .window(rolling(60, 6))
        .build()
        .unwrap();
    let guard = CostGuard::builder(String::from("gpt"), policy)
        .clock(clock.clone())
        .build()
        .unwrap();
    guard.record_cost(12.5).unwrap();
    clock.advance(Duration::from_secs(5));
    let rejected = guard.try_acquire().unwrap_err();
    assert_eq!(
        rejected.to_string(),
        "cost guard `gpt` refused the call: budget breached (12.5 of 10 spent); retry after 55s"
    );
}
