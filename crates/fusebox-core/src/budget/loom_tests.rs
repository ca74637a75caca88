//! Exhaustive interleavings of the concurrent shell, under `--cfg loom`.

use super::*;
use loom::thread;

const SECOND: u64 = 1_000_000_000;

fn budget(ratio: f64, per_second: f64) -> RetryBudget {
    let config = BudgetConfig::builder()
        .ratio(ratio)
        .min_retries_per_second(per_second)
        .window(Duration::from_secs(10))
        .build()
        .unwrap();
    RetryBudget::new(config)
}

fn model(test: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(test);
}

/// Two callers race for the only retry at times `here` and `there`; afterwards one more is
/// asked for at the later time. Exactly one of the three may succeed.
fn race_for_the_last_retry(here: u64, there: u64) {
    model(move || {
        let budget = budget(0.0, 0.1); // 0.1 per second over 10 s: one retry
        let other = budget.clone();
        let racer = thread::spawn(move || other.try_withdraw(there));
        let mine = budget.try_withdraw(here);
        let theirs = racer.join().unwrap();
        assert!(!(mine && theirs), "the last retry was spent twice");
        let leftover = budget.try_withdraw(here.max(there));
        assert_eq!(u8::from(mine) + u8::from(theirs) + u8::from(leftover), 1);
    });
}

#[test]
fn racing_withdrawals_cannot_share_the_last_retry() {
    race_for_the_last_retry(0, 0);
}

#[test]
fn racing_withdrawals_in_neighbouring_slots_cannot_share_the_last_retry() {
    race_for_the_last_retry(0, SECOND + SECOND / 2);
}

#[test]
fn a_withdrawal_racing_a_deposit_spends_it_at_most_once() {
    model(|| {
        let budget = budget(1.0, 0.0);
        let depositor = budget.clone();
        let deposit = thread::spawn(move || depositor.deposit(0));
        let mine = budget.try_withdraw(0);
        deposit.join().unwrap();
        let leftover = budget.try_withdraw(0);
        assert_eq!(u8::from(mine) + u8::from(leftover), 1);
    });
}

#[test]
fn a_deposit_racing_a_slot_takeover_is_kept_or_dropped_whole() {
    model(|| {
        let budget = budget(1.0, 0.0);
        let late = budget.clone();
        // Ten slots later, the same slot is taken over for a new epoch.
        let takeover = thread::spawn(move || late.deposit(10 * SECOND));
        budget.deposit(0);
        takeover.join().unwrap();
        let live = budget.available(10 * SECOND);
        assert!(live == 1 || live == 2, "{live} deposits live");
        assert_eq!(budget.available(20 * SECOND), 0);
    });
}
