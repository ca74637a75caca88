use std::fmt;
use std::sync::Arc;

use super::BudgetConfig;
use super::algorithm::{
    self, Kind, Recorded, Rules, SLOT_COUNT_LIMIT, SLOTS, SlotStore, Totals, slot_index,
};
use crate::sync::{AtomicU64, Ordering};

/// The retry budget that policies share: a cheap `Arc` clone, `Send + Sync`, lock-free.
///
/// It keeps the rules of [`BudgetLedger`](super::BudgetLedger) and, used from one thread, gives
/// the same answers. Under contention it never grants more: two callers racing for the last
/// retry may both be refused, never both served. Time is passed in, as nanoseconds since the
/// origin of the caller's clock; a time earlier than one already seen counts as no time passed.
///
/// ```
/// use fusebox_core::budget::{BudgetConfig, RetryBudget};
/// use std::thread;
///
/// let config = BudgetConfig::builder().ratio(0.5).min_retries_per_second(0.0).build()?;
/// let budget = RetryBudget::new(config);
/// let workers: Vec<_> = (0..4)
///     .map(|_| {
///         let budget = budget.clone();
///         thread::spawn(move || {
///             for _ in 0..100 {
///                 budget.deposit(0);
///             }
///         })
///     })
///     .collect();
/// for worker in workers {
///     worker.join().unwrap();
/// }
/// assert_eq!(budget.available(0), 200);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RetryBudget {
    shared: Arc<Shared>,
}

/// Each slot is one word: the low 32 bits of its epoch (the tag) above a 32-bit count, so a
/// count and the epoch it belongs to always change together.
///
/// Invariant: a slot is only ever written with an epoch that `newest_epoch` already holds or
/// passed, so a slot read before `newest_epoch` never looks newer than it.
struct Shared {
    config: BudgetConfig,
    rules: Rules,
    newest_epoch: AtomicU64,
    /// Every first attempt writes here; kept off the line the other fields live on.
    deposits: OwnCacheLine<[AtomicU64; SLOTS]>,
    withdrawals: OwnCacheLine<[AtomicU64; SLOTS]>,
    /// Bumped by every withdrawal between recording it and checking it; see `try_withdraw`.
    withdrawal_order: AtomicU64,
}

#[repr(align(128))]
struct OwnCacheLine<T>(T);

impl RetryBudget {
    /// A budget with only the per-second floor available.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, RetryBudget};
    ///
    /// let budget = RetryBudget::new(BudgetConfig::default());
    /// assert_eq!(budget.available(0), 100);
    /// ```
    pub fn new(config: BudgetConfig) -> Self {
        RetryBudget {
            shared: Arc::new(Shared {
                rules: Rules::new(&config),
                config,
                newest_epoch: AtomicU64::new(0),
                deposits: OwnCacheLine(std::array::from_fn(|_| AtomicU64::new(0))),
                withdrawals: OwnCacheLine(std::array::from_fn(|_| AtomicU64::new(0))),
                withdrawal_order: AtomicU64::new(0),
            }),
        }
    }

    /// The settings this budget enforces.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, RetryBudget};
    ///
    /// let budget = RetryBudget::new(BudgetConfig::default());
    /// assert_eq!(budget.config().ratio(), 0.2);
    /// ```
    pub fn config(&self) -> &BudgetConfig {
        &self.shared.config
    }

    /// Records a first attempt, which earns `ratio` of a retry for one window. On the common
    /// path this is two loads and one atomic add.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, RetryBudget};
    ///
    /// let config = BudgetConfig::builder().ratio(0.25).min_retries_per_second(0.0).build()?;
    /// let budget = RetryBudget::new(config);
    /// for _ in 0..8 {
    ///     budget.deposit(0);
    /// }
    /// assert_eq!(budget.available(0), 2);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn deposit(&self, now_nanos: u64) {
        algorithm::deposit(&mut &*self.shared, &self.shared.rules, now_nanos);
    }

    /// Asks for one retry: `true` spends it, `false` means the budget is spent and the caller
    /// should give up.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, RetryBudget};
    ///
    /// let config = BudgetConfig::builder().ratio(0.0).min_retries_per_second(0.1).build()?;
    /// let budget = RetryBudget::new(config); // 0.1 per second over 10 s: 1 retry
    /// assert!(budget.try_withdraw(0));
    /// assert!(!budget.try_withdraw(0));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn try_withdraw(&self, now_nanos: u64) -> bool {
        algorithm::try_withdraw(&mut &*self.shared, &self.shared.rules, now_nanos)
    }

    /// How many retries [`try_withdraw`](Self::try_withdraw) would grant at `now_nanos`, as of
    /// the moment it looks: other threads may change it right after.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, RetryBudget};
    ///
    /// let budget = RetryBudget::new(BudgetConfig::default());
    /// let before = budget.available(0);
    /// assert!(budget.try_withdraw(0));
    /// assert_eq!(budget.available(0), before - 1);
    /// ```
    pub fn available(&self, now_nanos: u64) -> u64 {
        algorithm::available(&&*self.shared, &self.shared.rules, now_nanos)
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryBudget")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// The atomic slots: a shared reference is the store, so every caller runs the algorithm
/// on the same counts at once.
impl SlotStore for &Shared {
    fn advance(&mut self, epoch: u64) -> u64 {
        let newest = self.newest_epoch.load(Ordering::Acquire);
        if epoch <= newest {
            return newest;
        }
        self.newest_epoch
            .fetch_max(epoch, Ordering::AcqRel)
            .max(epoch)
    }

    fn newest(&self) -> u64 {
        self.newest_epoch.load(Ordering::Acquire)
    }

    fn totals(&self, epoch: u64) -> Totals {
        let live_count = |slot: &AtomicU64| {
            let (tag, count) = unpack(slot.load(Ordering::Acquire));
            let age = tag_of(epoch).wrapping_sub(tag);
            if (age as usize) < SLOTS {
                u64::from(count)
            } else {
                0
            }
        };
        Totals {
            deposits: self.deposits.0.iter().map(live_count).sum(),
            withdrawals: self.withdrawals.0.iter().map(live_count).sum(),
        }
    }

    fn record(&mut self, kind: Kind, epoch: u64) -> Recorded {
        let slots = match kind {
            Kind::Deposit => &self.deposits.0,
            Kind::Withdrawal => &self.withdrawals.0,
        };
        let slot = &slots[slot_index(epoch)];
        let mut word = slot.load(Ordering::Acquire);
        loop {
            let (tag, count) = unpack(word);
            let next = if tag == tag_of(epoch) {
                if count >= SLOT_COUNT_LIMIT {
                    return Recorded::SlotFull;
                }
                if kind == Kind::Deposit {
                    // A first attempt costs one add: it leaves the tag alone, and readers
                    // order themselves after the write that set it, which this add continues.
                    slot.fetch_add(1, Ordering::Relaxed);
                    return Recorded::Yes;
                }
                word + 1
            } else {
                // By the invariant on `Shared`, unless `newest_epoch` moved, the slot's epoch
                // is older: the slot starts over for this one.
                let newest = self.newest_epoch.load(Ordering::Acquire);
                if newest != epoch {
                    return Recorded::EpochMoved(newest);
                }
                pack(epoch, 1)
            };
            match slot.compare_exchange(word, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Recorded::Yes,
                Err(actual) => word = actual,
            }
        }
    }

    fn undo_withdrawal(&mut self, epoch: u64) {
        let slot = &self.withdrawals.0[slot_index(epoch)];
        let mut word = slot.load(Ordering::Acquire);
        loop {
            let (tag, count) = unpack(word);
            // A slot taken over by a later epoch no longer counts the record at all.
            if tag != tag_of(epoch) || count == 0 {
                return;
            }
            match slot.compare_exchange(word, word - 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(actual) => word = actual,
            }
        }
    }

    fn order_withdrawal(&mut self) {
        self.withdrawal_order.fetch_add(1, Ordering::AcqRel);
    }
}

/// The low 32 bits of an epoch. Tags repeat every 2^32 slots (136 years of 1 s slots, 50 days of
/// 1 ms ones): a slot left untouched for within ten slots of a multiple of that would count its
/// old events for one more window. Accepted, for a word-sized slot.
fn tag_of(epoch: u64) -> u32 {
    epoch as u32
}

fn pack(epoch: u64, count: u32) -> u64 {
    (u64::from(tag_of(epoch)) << 32) | u64::from(count)
}

fn unpack(word: u64) -> (u32, u32) {
    ((word >> 32) as u32, word as u32)
}
