//! The sans-IO cost meter: window totals, reservations, baselines and events, with time
//! passed in.

use std::time::Duration;

use super::policy::{
    CostBaseline, CostDecision, CostPolicy, CostRejectReason, Geometry, UnknownCost,
};
use super::status::{BaselineReading, CostEventKind, CostEvents, CostStatus};
use super::ticket::{Admitted, CostRefusal, CostTicket, Settled};
use crate::ConfigError;
use crate::error::check;
use crate::guard::{EwmaBaseline, HourOfWeek, SeasonalBaseline, SpendLimitStatus, saturate};

#[derive(Debug, Clone, Copy)]
pub(super) struct Bucket {
    pub(super) epoch: u64,
    pub(super) spent: f64,
}

/// What a meter learns from closed periods.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BaselineState {
    None,
    /// Closed period totals, oldest first; capacity one more than kept, so the current
    /// window can be appended for a check without allocating.
    Recent(Vec<f64>),
    Ewma(EwmaBaseline),
    Seasonal(SeasonalBaseline),
}

/// The sans-IO core of a cost guard: accumulates costs in a window, reserves estimates for
/// calls in flight, learns a baseline from closed periods and decides admissions.
///
/// `&mut self`, no clock read, no I/O, no allocation after construction. Time is passed in
/// as nanoseconds; calendar windows read it as nanoseconds since the Unix epoch. A time
/// earlier than one already seen counts as no time passed.
///
/// ```
/// use fusebox_core::guard::{CostMeter, CostPolicy, CostRejectReason, CostWindow};
/// use std::time::Duration;
///
/// let policy = CostPolicy::builder(1000.0)
///     .window(CostWindow::Rolling { span: Duration::from_secs(60), buckets: 6 })
///     .build()?;
/// let mut meter = CostMeter::new(policy);
/// let sec = 1_000_000_000;
///
/// let admitted = meter.admit(0).unwrap();
/// meter.settle(0, admitted.ticket, Some(920.0));
/// assert!(meter.admit(sec).unwrap().warning); // 920 of 1000: a warning
/// # // (that admission's ticket is dropped: it only held a zero reservation)
///
/// meter.record(2 * sec, 100.0)?;
/// let refused = meter.admit(3 * sec).unwrap_err();
/// assert_eq!(refused.reason, CostRejectReason::BudgetBreached);
/// // The 920 leave the window once their bucket is a minute old.
/// assert_eq!(refused.retry_after, Some(Duration::from_secs(57)));
/// assert!(meter.admit(60 * sec).is_ok());
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CostMeter {
    pub(super) policy: CostPolicy,
    pub(super) geometry: Geometry,
    pub(super) buckets: Box<[Bucket]>,
    /// Index of the current period, and whether anything happened in it.
    pub(super) period: u64,
    pub(super) period_spent: f64,
    pub(super) period_active: bool,
    pub(super) baseline: BaselineState,
    pub(super) reserved: f64,
    pub(super) in_flight: u64,
    pub(super) blocked_until: Option<u64>,
    pub(super) unknown_costs: u64,
    /// Events already raised in the current period.
    pub(super) raised: CostEvents,
    pub(super) now: u64,
}

impl CostMeter {
    /// A meter with an empty window, judging by `policy`.
    ///
    /// ```
    /// use fusebox_core::guard::{CostMeter, CostPolicy};
    /// let mut meter = CostMeter::new(CostPolicy::builder(5.0).build()?);
    /// assert_eq!(meter.status(0).spent, 0.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(policy: CostPolicy) -> Self {
        let geometry = policy.geometry();
        let baseline = match policy.initial_baseline() {
            // Room for the current window beside the closed periods, reserved once.
            BaselineState::Recent(_) => BaselineState::Recent(Vec::with_capacity(
                policy
                    .baseline()
                    .map_or(0, |b| match b {
                        CostBaseline::Recent { periods, .. } => periods as usize,
                        _ => 0,
                    })
                    .saturating_add(1),
            )),
            other => other.clone(),
        };
        CostMeter {
            buckets: vec![
                Bucket {
                    epoch: 0,
                    spent: 0.0
                };
                geometry.buckets as usize
            ]
            .into_boxed_slice(),
            geometry,
            period: 0,
            period_spent: 0.0,
            period_active: false,
            baseline,
            reserved: 0.0,
            in_flight: 0,
            blocked_until: None,
            unknown_costs: 0,
            raised: CostEvents::default(),
            now: 0,
            policy,
        }
    }

    /// The policy.
    ///
    /// ```
    /// use fusebox_core::guard::{CostMeter, CostPolicy};
    /// let meter = CostMeter::new(CostPolicy::builder(5.0).build()?);
    /// assert_eq!(meter.policy().budget().limit, 5.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn policy(&self) -> &CostPolicy {
        &self.policy
    }

    /// Asks to make a call at `now`. Admitted, it reserves the policy's estimated cost until
    /// [`settle`](Self::settle) or [`cancel`](Self::cancel).
    ///
    /// # Errors
    /// [`CostRefusal`] when the policy rejects the call (see [`CostPolicy::decide`]).
    ///
    /// ```
    /// use fusebox_core::guard::{CostMeter, CostPolicy};
    /// let mut meter = CostMeter::new(CostPolicy::builder(2.0).estimated_cost(1.0).build()?);
    /// let first = meter.admit(0).unwrap().ticket;
    /// let second = meter.admit(0).unwrap().ticket;
    /// assert!(meter.admit(0).is_err()); // two reservations of 1.0 fill a limit of 2.0
    /// meter.cancel(first);
    /// assert!(meter.admit(0).is_ok());
    /// # drop(second);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    // Both outcomes carry the full status and are about the same size; boxing the refusal
    // would allocate on the path that must stay cheap when a budget is spent.
    #[allow(clippy::result_large_err)]
    pub fn admit(&mut self, now: u64) -> Result<Admitted, CostRefusal> {
        let now = self.advance(now);
        let status = self.status_at(now);
        let events = self.raise(&status);
        match self.policy.decide(&status) {
            CostDecision::Reject(reason) => Err(CostRefusal {
                retry_after: self.retry_after(now, &reason),
                reason,
                status,
                events,
            }),
            decision => {
                // Only admitted calls make a period count for the baseline: one in which
                // every call was refused says nothing about normal spend.
                self.period_active = true;
                let estimate = self.policy.estimated_cost();
                self.reserved = saturate(self.reserved + estimate);
                self.in_flight = self.in_flight.saturating_add(1);
                Ok(Admitted {
                    ticket: CostTicket { reserved: estimate },
                    warning: decision == CostDecision::AdmitWithWarning,
                    status,
                    events,
                })
            }
        }
    }

    /// Settles an admitted call at `now` with its cost: `None`, or a negative, NaN or
    /// infinite number, is an unknown cost and counts as the policy's [`UnknownCost`] says.
    ///
    /// The cost is counted in the window current at `now`, whenever the call started.
    ///
    /// ```
    /// use fusebox_core::guard::{CostMeter, CostPolicy};
    /// let mut meter = CostMeter::new(CostPolicy::builder(10.0).build()?);
    /// let ticket = meter.admit(0).unwrap().ticket;
    /// let settled = meter.settle(5, ticket, Some(2.5));
    /// assert_eq!((settled.counted, settled.unknown), (2.5, false));
    /// assert_eq!(meter.status(5).spent, 2.5);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn settle(&mut self, now: u64, ticket: CostTicket, cost: Option<f64>) -> Settled {
        self.release(ticket);
        let now = self.advance(now);
        self.period_active = true;
        let known = cost.filter(|c| c.is_finite() && *c >= 0.0);
        let mut events = CostEvents::default();
        let counted = match known {
            Some(cost) => cost,
            None => {
                self.unknown_costs = self.unknown_costs.saturating_add(1);
                events = events.with(CostEventKind::UnknownCost);
                match self.policy.unknown_cost() {
                    UnknownCost::Assume(cost) => cost,
                    UnknownCost::Reject => {
                        let until = self.bucket_expiry(self.epoch(now));
                        self.blocked_until =
                            Some(self.blocked_until.map_or(until, |u| u.max(until)));
                        0.0
                    }
                    UnknownCost::Ignore => 0.0,
                }
            }
        };
        self.add(now, counted);
        let status = self.status_at(now);
        events = CostEvents(events.0 | self.raise(&status).0);
        Settled {
            counted,
            unknown: known.is_none(),
            status,
            events,
        }
    }

    /// Releases an admitted call's reservation without counting anything, for a call known
    /// not to have run (refused further in, say).
    ///
    /// ```
    /// use fusebox_core::guard::{CostMeter, CostPolicy};
    /// let mut meter = CostMeter::new(CostPolicy::builder(10.0).estimated_cost(4.0).build()?);
    /// let ticket = meter.admit(0).unwrap().ticket;
    /// meter.cancel(ticket);
    /// let status = meter.status(0);
    /// assert_eq!((status.spent, status.reserved, status.in_flight), (0.0, 0.0, 0));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn cancel(&mut self, ticket: CostTicket) {
        self.release(ticket);
    }

    /// Records a cost at `now` that no admitted call reserved: one known out of band (a
    /// billing record, a call made around the guard).
    ///
    /// # Errors
    /// `cost` is negative or not finite (field `cost`); nothing is recorded.
    ///
    /// ```
    /// use fusebox_core::guard::{CostMeter, CostPolicy};
    /// let mut meter = CostMeter::new(CostPolicy::builder(10.0).build()?);
    /// assert_eq!(meter.record(0, 3.0)?.status.spent, 3.0);
    /// assert_eq!(meter.record(0, f64::NAN).unwrap_err().field(), Some("cost"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn record(&mut self, now: u64, cost: f64) -> Result<Settled, ConfigError> {
        check::non_negative("cost", cost)?;
        let now = self.advance(now);
        self.period_active = true;
        self.add(now, cost);
        let status = self.status_at(now);
        let events = self.raise(&status);
        Ok(Settled {
            counted: cost,
            unknown: false,
            status,
            events,
        })
    }

    /// The totals at `now`, without admitting anything or raising events.
    ///
    /// ```
    /// use fusebox_core::guard::{CostMeter, CostPolicy, CostWindow};
    /// let hour = 3_600_000_000_000;
    /// let mut meter = CostMeter::new(CostPolicy::builder(10.0).window(CostWindow::CalendarHour).build()?);
    /// meter.record(hour + 5, 4.0)?;
    /// assert_eq!(meter.status(2 * hour - 1).spent, 4.0);
    /// assert_eq!(meter.status(2 * hour).spent, 0.0); // a new hour
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn status(&mut self, now: u64) -> CostStatus {
        let now = self.advance(now);
        self.status_at(now)
    }

    /// Lifts the block an unknown cost put on the window ([`UnknownCost::Reject`]); true if
    /// there was one.
    ///
    /// ```
    /// use fusebox_core::guard::{CostMeter, CostPolicy, UnknownCost};
    /// let policy = CostPolicy::builder(10.0).unknown_cost(UnknownCost::Reject).build()?;
    /// let mut meter = CostMeter::new(policy);
    /// let ticket = meter.admit(0).unwrap().ticket;
    /// meter.settle(0, ticket, None);
    /// assert!(meter.admit(0).is_err());
    /// assert!(meter.clear_unknown());
    /// assert!(meter.admit(0).is_ok());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clear_unknown(&mut self) -> bool {
        self.blocked_until
            .take()
            .is_some_and(|until| until > self.now)
    }

    pub(super) fn release(&mut self, ticket: CostTicket) {
        self.in_flight = self.in_flight.saturating_sub(1);
        // Adding and subtracting varied estimates leaves rounding dust; with nothing in
        // flight the exact answer is zero.
        self.reserved = if self.in_flight == 0 {
            0.0
        } else {
            (self.reserved - ticket.reserved).max(0.0)
        };
    }

    pub(super) fn epoch(&self, now: u64) -> u64 {
        now / self.geometry.bucket_nanos
    }

    /// When spend recorded in bucket `epoch` leaves the window.
    pub(super) fn bucket_expiry(&self, epoch: u64) -> u64 {
        epoch
            .saturating_add(u64::from(self.geometry.buckets))
            .saturating_mul(self.geometry.bucket_nanos)
    }

    /// Moves time forward to `now` (never back), closing the period left behind.
    pub(super) fn advance(&mut self, now: u64) -> u64 {
        let now = now.max(self.now);
        self.now = now;
        let period = now / self.geometry.period_nanos();
        if period != self.period {
            if self.period_active {
                self.close_period();
            }
            self.period = period;
            self.period_spent = 0.0;
            self.period_active = false;
            self.raised = CostEvents::default();
        }
        now
    }

    pub(super) fn close_period(&mut self) {
        let spent = self.period_spent;
        let hour = self.hour_of_period(self.period);
        match (&mut self.baseline, self.policy.baseline()) {
            (BaselineState::Recent(history), Some(CostBaseline::Recent { periods, .. })) => {
                if history.len() >= periods as usize {
                    history.remove(0);
                }
                history.push(spent);
            }
            (BaselineState::Ewma(baseline), Some(CostBaseline::Ewma { config, .. })) => {
                // Inputs are validated: a finite, non-negative total under a checked config.
                let _ = baseline.observe(&config, spent);
            }
            (BaselineState::Seasonal(baseline), Some(CostBaseline::Seasonal { config, .. })) => {
                if let Some(hour) = hour {
                    let _ = baseline.observe(&config, hour, spent);
                }
            }
            _ => {}
        }
    }

    pub(super) fn hour_of_period(&self, period: u64) -> Option<HourOfWeek> {
        let start_secs = period.saturating_mul(self.geometry.period_nanos()) / 1_000_000_000;
        HourOfWeek::from_unix_seconds(i64::try_from(start_secs).ok()?).ok()
    }

    pub(super) fn add(&mut self, now: u64, cost: f64) {
        let epoch = self.epoch(now);
        let buckets = u64::from(self.geometry.buckets);
        let Some(bucket) = self.buckets.get_mut((epoch % buckets) as usize) else {
            return;
        };
        if bucket.epoch != epoch {
            *bucket = Bucket { epoch, spent: 0.0 };
        }
        bucket.spent = saturate(bucket.spent + cost);
        self.period_spent = saturate(self.period_spent + cost);
    }

    /// Whether a bucket still counts at epoch `current`.
    pub(super) fn live(&self, bucket: &Bucket, current: u64) -> bool {
        bucket.epoch <= current && current - bucket.epoch < u64::from(self.geometry.buckets)
    }

    pub(super) fn spent(&self, now: u64) -> f64 {
        let current = self.epoch(now);
        let total: f64 = self
            .buckets
            .iter()
            .filter(|b| self.live(b, current))
            .map(|b| b.spent)
            .sum();
        saturate(total)
    }

    pub(super) fn status_at(&mut self, now: u64) -> CostStatus {
        let spent = self.spent(now);
        let committed = saturate(spent + self.reserved);
        let budget = self.policy.budget();
        let budget = budget.evaluate(committed).unwrap_or(SpendLimitStatus {
            // Unreachable with a validated policy and finite totals; fail closed if not.
            current_spend: committed,
            limit: budget.limit,
            warning_ratio: budget.warning_ratio,
            usage_ratio: f64::MAX,
            remaining: 0.0,
            is_warning: true,
            is_breached: true,
        });
        let period_nanos = self.geometry.period_nanos();
        let period_start_nanos = self.period.saturating_mul(period_nanos);
        CostStatus {
            spent,
            reserved: self.reserved,
            in_flight: self.in_flight,
            budget,
            baseline: self.reading(committed),
            period_start_nanos,
            period_end_nanos: period_start_nanos.saturating_add(period_nanos),
            unknown_costs: self.unknown_costs,
            blocked_for: self
                .blocked_until
                .filter(|&until| until > now)
                .map(|until| Duration::from_nanos(until - now)),
        }
    }

    pub(super) fn reading(&mut self, committed: f64) -> Option<BaselineReading> {
        let hour = self.hour_of_period(self.period);
        match (&mut self.baseline, self.policy.baseline()) {
            (BaselineState::Recent(history), Some(CostBaseline::Recent { check, periods })) => {
                if history.len() < periods as usize {
                    return None;
                }
                history.push(committed);
                let report = check.evaluate(history);
                history.pop();
                report.ok().map(BaselineReading::Recent)
            }
            (BaselineState::Ewma(baseline), Some(CostBaseline::Ewma { config, .. })) => baseline
                .assess(&config, committed)
                .ok()
                .map(BaselineReading::Ewma),
            (BaselineState::Seasonal(baseline), Some(CostBaseline::Seasonal { config, .. })) => {
                baseline
                    .assess(&config, hour?, committed)
                    .ok()
                    .map(BaselineReading::Ewma)
            }
            _ => None,
        }
    }

    /// Raises the warning, breach and spike events not yet raised in this period.
    pub(super) fn raise(&mut self, status: &CostStatus) -> CostEvents {
        let mut now = CostEvents::default();
        if status.budget.is_warning {
            now = now.with(CostEventKind::Warning);
        }
        if status.budget.is_breached {
            now = now.with(CostEventKind::Breach);
        }
        if status.baseline.is_some_and(|r| r.is_spike()) {
            now = now.with(CostEventKind::Spike);
        }
        let new = CostEvents(now.0 & !self.raised.0);
        self.raised = CostEvents(self.raised.0 | now.0);
        new
    }

    pub(super) fn retry_after(&self, now: u64, reason: &CostRejectReason) -> Option<Duration> {
        let until = match *reason {
            CostRejectReason::UnknownCost => self.blocked_until?,
            CostRejectReason::BudgetBreached => {
                let limit = self.policy.budget().limit;
                self.when_total(now, |committed| committed < limit)?
            }
            CostRejectReason::Spike { threshold, .. } => {
                self.when_total(now, |committed| committed <= threshold)?
            }
        };
        Some(Duration::from_nanos(until.saturating_sub(now)))
    }

    /// The first time at which, with no new spend, the window's total plus reservations
    /// satisfies `fits` as its buckets expire oldest first.
    pub(super) fn when_total(&self, now: u64, fits: impl Fn(f64) -> bool) -> Option<u64> {
        let current = self.epoch(now);
        let count = u64::from(self.geometry.buckets);
        let mut total = self.spent(now);
        for epoch in current.saturating_sub(count - 1)..=current {
            let Some(bucket) = self
                .buckets
                .get((epoch % count) as usize)
                .filter(|b| b.epoch == epoch)
            else {
                continue;
            };
            total = (total - bucket.spent).max(0.0);
            if fits(total + self.reserved) {
                return Some(self.bucket_expiry(epoch));
            }
        }
        None
    }
}
