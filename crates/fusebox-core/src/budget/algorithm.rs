//! The retry budget's algorithm, written once: the arithmetic of allowances and the steps
//! of a deposit and a withdrawal, over any [`SlotStore`]. The pure
//! [`BudgetLedger`](super::BudgetLedger) runs it over plain counts, the concurrent
//! [`RetryBudget`](super::RetryBudget) over atomic ones.

use super::BudgetConfig;

/// Slots per window: expiry happens a tenth of a window at a time.
pub(super) const SLOTS: usize = 10;

/// Allowances are kept in millionths of a retry, so that ratios such as 0.2 add up exactly.
pub(super) const MILLIONTHS: u128 = 1_000_000;

/// A slot stops counting events past this many, erring on the side of fewer retries, so that
/// its 32-bit counter can never overflow in the concurrent shell.
pub(super) const SLOT_COUNT_LIMIT: u32 = 1 << 31;

/// The arithmetic shared by the ledger and the concurrent shell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Rules {
    slot_nanos: u64,
    pub(super) ratio_millionths: u128,
    pub(super) reserve_millionths: u128,
}

impl Rules {
    pub(super) fn new(config: &BudgetConfig) -> Self {
        let window_nanos = u64::try_from(config.window.as_nanos()).unwrap_or(u64::MAX);
        let reserve = config.min_retries_per_second * config.window.as_secs_f64();
        Rules {
            slot_nanos: (window_nanos / SLOTS as u64).max(1),
            ratio_millionths: millionths(config.ratio),
            reserve_millionths: millionths(reserve),
        }
    }

    pub(super) fn epoch(&self, now_nanos: u64) -> u64 {
        now_nanos / self.slot_nanos
    }

    fn allowance_millionths(&self, deposits: u64) -> u128 {
        // At most 2^64 * 10^9 + 2^64 * 10^6: far below u128::MAX.
        self.reserve_millionths + self.ratio_millionths * u128::from(deposits)
    }

    pub(super) fn allows(&self, totals: Totals) -> bool {
        u128::from(totals.withdrawals) * MILLIONTHS <= self.allowance_millionths(totals.deposits)
    }

    pub(super) fn available(&self, totals: Totals) -> u64 {
        let allowed = self.allowance_millionths(totals.deposits) / MILLIONTHS;
        let left = allowed.saturating_sub(u128::from(totals.withdrawals));
        u64::try_from(left).unwrap_or(u64::MAX)
    }
}

/// Non-negative and finite by validation; `as` saturates anything too large for a `u64`.
fn millionths(value: f64) -> u128 {
    u128::from((value * 1e6).round() as u64)
}

/// Deposits and withdrawals still inside the window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Totals {
    pub(super) deposits: u64,
    pub(super) withdrawals: u64,
}

impl Totals {
    pub(super) fn with_one_more_withdrawal(self) -> Totals {
        Totals {
            withdrawals: self.withdrawals.saturating_add(1),
            ..self
        }
    }
}

pub(super) fn slot_index(epoch: u64) -> usize {
    (epoch % SLOTS as u64) as usize
}

/// Which count an event goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A first attempt.
    Deposit,
    /// A retry.
    Withdrawal,
}

/// What recording one event in the slot of `epoch` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recorded {
    /// Counted.
    Yes,
    /// The slot holds [`SLOT_COUNT_LIMIT`] events already: not counted.
    SlotFull,
    /// Time moved to a newer epoch meanwhile: record there instead.
    EpochMoved(u64),
}

/// Where a budget keeps its counts: one slot per tenth of the window, each holding the
/// epoch it counts for. A slot found holding an expired epoch is emptied before it counts.
pub(super) trait SlotStore {
    /// Moves the newest epoch seen up to `epoch`; returns the newest.
    fn advance(&mut self, epoch: u64) -> u64;
    /// The newest epoch seen.
    fn newest(&self) -> u64;
    /// Live deposits and withdrawals as of `epoch`.
    fn totals(&self, epoch: u64) -> Totals;
    /// Counts one event in the slot of `epoch`.
    fn record(&mut self, kind: Kind, epoch: u64) -> Recorded;
    /// Takes back one withdrawal recorded in `epoch`, unless its slot has moved on.
    fn undo_withdrawal(&mut self, epoch: u64);
    /// Orders this withdrawal after every other one, before it is rechecked: of two racing
    /// withdrawals, the later one here sees the other's record. Nothing to do for one owner.
    fn order_withdrawal(&mut self) {}
}

/// Records a first attempt at `now_nanos`.
#[inline]
pub(super) fn deposit(store: &mut impl SlotStore, rules: &Rules, now_nanos: u64) {
    let mut epoch = store.advance(rules.epoch(now_nanos));
    while let Recorded::EpochMoved(newest) = store.record(Kind::Deposit, epoch) {
        epoch = newest;
    }
}

/// Asks for one retry at `now_nanos`: recorded first and checked after, so that racing
/// callers can never both spend the last retry (they may both be refused).
pub(super) fn try_withdraw(store: &mut impl SlotStore, rules: &Rules, now_nanos: u64) -> bool {
    let mut epoch = store.advance(rules.epoch(now_nanos));
    loop {
        // Cheap refusal first: when the budget is spent, most calls end here.
        if !rules.allows(store.totals(epoch).with_one_more_withdrawal()) {
            return false;
        }
        match store.record(Kind::Withdrawal, epoch) {
            Recorded::Yes => {}
            Recorded::SlotFull => return false,
            Recorded::EpochMoved(newest) => {
                epoch = newest;
                continue;
            }
        }
        store.order_withdrawal();
        let totals = store.totals(epoch);
        let newest = store.newest();
        if newest != epoch {
            // Time moved on while counting: recount in the newer window.
            store.undo_withdrawal(epoch);
            epoch = newest;
            continue;
        }
        if rules.allows(totals) {
            return true;
        }
        store.undo_withdrawal(epoch);
        return false;
    }
}

/// How many retries a withdrawal would find at `now_nanos`.
pub(super) fn available(store: &impl SlotStore, rules: &Rules, now_nanos: u64) -> u64 {
    let epoch = store.newest().max(rules.epoch(now_nanos));
    rules.available(store.totals(epoch))
}
