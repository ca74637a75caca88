use super::BudgetConfig;
use super::algorithm::{
    self, Kind, Recorded, Rules, SLOT_COUNT_LIMIT, SLOTS, SlotStore, Totals, slot_index,
};

/// The pure retry budget: deterministic, single-owner, time passed in as nanoseconds since any
/// fixed origin. [`RetryBudget`](super::RetryBudget) is its concurrent counterpart.
///
/// A time earlier than one already seen counts as no time passed.
///
/// ```
/// use fusebox_core::budget::{BudgetConfig, BudgetLedger};
///
/// let config = BudgetConfig::builder().ratio(0.5).min_retries_per_second(0.0).build()?;
/// let mut ledger = BudgetLedger::new(config);
/// ledger.deposit(0);
/// assert!(!ledger.try_withdraw(0)); // half a retry is not a retry
/// ledger.deposit(0);
/// assert!(ledger.try_withdraw(0));
/// assert!(!ledger.try_withdraw(0));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BudgetLedger {
    config: BudgetConfig,
    rules: Rules,
    newest_epoch: u64,
    slots: [Slot; SLOTS],
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    epoch: u64,
    deposits: u32,
    withdrawals: u32,
}

impl BudgetLedger {
    /// An empty ledger: only the per-second floor is available.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, BudgetLedger};
    ///
    /// let ledger = BudgetLedger::new(BudgetConfig::default());
    /// assert_eq!(ledger.available(0), 100); // 10 per second over 10 s
    /// ```
    pub fn new(config: BudgetConfig) -> Self {
        BudgetLedger {
            rules: Rules::new(&config),
            config,
            newest_epoch: 0,
            slots: [Slot::default(); SLOTS],
        }
    }

    /// The settings this ledger enforces.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, BudgetLedger};
    ///
    /// let ledger = BudgetLedger::new(BudgetConfig::default());
    /// assert_eq!(ledger.config(), &BudgetConfig::default());
    /// ```
    pub fn config(&self) -> &BudgetConfig {
        &self.config
    }

    /// Records a first attempt, which earns `ratio` of a retry for one window.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, BudgetLedger};
    ///
    /// let config = BudgetConfig::builder().ratio(1.0).min_retries_per_second(0.0).build()?;
    /// let mut ledger = BudgetLedger::new(config);
    /// ledger.deposit(0);
    /// assert_eq!(ledger.available(0), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn deposit(&mut self, now_nanos: u64) {
        let rules = self.rules;
        algorithm::deposit(self, &rules, now_nanos);
    }

    /// Asks for one retry: `true` spends it, `false` means the budget is spent and the caller
    /// should give up.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, BudgetLedger};
    ///
    /// let config = BudgetConfig::builder().ratio(0.0).min_retries_per_second(0.2).build()?;
    /// let mut ledger = BudgetLedger::new(config); // 0.2 per second over 10 s: 2 retries
    /// assert!(ledger.try_withdraw(0));
    /// assert!(ledger.try_withdraw(0));
    /// assert!(!ledger.try_withdraw(0));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn try_withdraw(&mut self, now_nanos: u64) -> bool {
        let rules = self.rules;
        algorithm::try_withdraw(self, &rules, now_nanos)
    }

    /// How many retries [`try_withdraw`](Self::try_withdraw) would grant at `now_nanos`.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, BudgetLedger};
    /// use std::time::Duration;
    ///
    /// let config = BudgetConfig::builder()
    ///     .ratio(1.0)
    ///     .min_retries_per_second(0.0)
    ///     .window(Duration::from_secs(10))
    ///     .build()?;
    /// let mut ledger = BudgetLedger::new(config);
    /// ledger.deposit(0);
    /// assert_eq!(ledger.available(9_999_999_999), 1);
    /// assert_eq!(ledger.available(10_000_000_000), 0); // a window later it has expired
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn available(&self, now_nanos: u64) -> u64 {
        algorithm::available(self, &self.rules, now_nanos)
    }

    /// The slot for `epoch`, emptied first if it still holds an epoch that has expired.
    fn slot_at(&mut self, epoch: u64) -> &mut Slot {
        let slot = &mut self.slots[slot_index(epoch)];
        if slot.epoch != epoch {
            *slot = Slot {
                epoch,
                ..Slot::default()
            };
        }
        slot
    }
}

impl SlotStore for BudgetLedger {
    fn advance(&mut self, epoch: u64) -> u64 {
        self.newest_epoch = self.newest_epoch.max(epoch);
        self.newest_epoch
    }

    fn newest(&self) -> u64 {
        self.newest_epoch
    }

    fn totals(&self, epoch: u64) -> Totals {
        self.slots
            .iter()
            .filter(|slot| epoch.saturating_sub(slot.epoch) < SLOTS as u64)
            .fold(Totals::default(), |totals, slot| Totals {
                deposits: totals.deposits + u64::from(slot.deposits),
                withdrawals: totals.withdrawals + u64::from(slot.withdrawals),
            })
    }

    fn record(&mut self, kind: Kind, epoch: u64) -> Recorded {
        let slot = self.slot_at(epoch);
        let count = match kind {
            Kind::Deposit => &mut slot.deposits,
            Kind::Withdrawal => &mut slot.withdrawals,
        };
        if *count >= SLOT_COUNT_LIMIT {
            return Recorded::SlotFull;
        }
        *count += 1;
        Recorded::Yes
    }

    fn undo_withdrawal(&mut self, epoch: u64) {
        let slot = &mut self.slots[slot_index(epoch)];
        if slot.epoch == epoch && slot.withdrawals > 0 {
            slot.withdrawals -= 1;
        }
    }
}
