//! What a cost meter reports: its status, baseline readings and the events it raises.

use std::time::Duration;

use crate::guard::{EwmaReading, SpendLimitStatus, SpikeReport};

/// How the current window compares with its baseline.
///
/// ```
/// use fusebox_core::guard::{BaselineReading, SpikeCheck};
///
/// let report = SpikeCheck::default().evaluate(&[120.0, 125.0, 118.0, 260.0])?;
/// let reading = BaselineReading::Recent(report);
/// assert!(reading.is_spike());
/// assert_eq!((reading.latest(), reading.baseline(), reading.threshold()), (260.0, 121.0, 181.5));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum BaselineReading {
    /// Against the mean of recent closed periods ([`CostBaseline::Recent`](super::CostBaseline::Recent)).
    Recent(SpikeReport),
    /// Against an EWMA, plain or seasonal ([`CostBaseline::Ewma`](super::CostBaseline::Ewma), [`CostBaseline::Seasonal`](super::CostBaseline::Seasonal)).
    Ewma(EwmaReading),
}

impl BaselineReading {
    /// Whether the current window spikes.
    ///
    /// ```
    /// use fusebox_core::guard::{BaselineReading, EwmaBaseline, EwmaConfig};
    /// let reading = EwmaBaseline::seeded(10.0)?.assess(&EwmaConfig::default(), 31.0)?;
    /// assert!(BaselineReading::Ewma(reading).is_spike());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn is_spike(&self) -> bool {
        match self {
            BaselineReading::Recent(r) => r.is_spike,
            BaselineReading::Ewma(r) => r.is_anomaly,
        }
    }

    /// Spend in the current window (with the estimates of calls in flight).
    ///
    /// ```
    /// use fusebox_core::guard::{BaselineReading, EwmaBaseline, EwmaConfig};
    /// let reading = EwmaBaseline::seeded(10.0)?.assess(&EwmaConfig::default(), 4.0)?;
    /// assert_eq!(BaselineReading::Ewma(reading).latest(), 4.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn latest(&self) -> f64 {
        match self {
            BaselineReading::Recent(r) => r.latest,
            BaselineReading::Ewma(r) => r.current_spend,
        }
    }

    /// The baseline the window was judged against.
    ///
    /// ```
    /// use fusebox_core::guard::{BaselineReading, EwmaBaseline, EwmaConfig};
    /// let reading = EwmaBaseline::seeded(10.0)?.assess(&EwmaConfig::default(), 4.0)?;
    /// assert_eq!(BaselineReading::Ewma(reading).baseline(), 10.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn baseline(&self) -> f64 {
        match self {
            BaselineReading::Recent(r) => r.baseline,
            BaselineReading::Ewma(r) => r.baseline,
        }
    }

    /// The spend above which the window spikes.
    ///
    /// ```
    /// use fusebox_core::guard::{BaselineReading, EwmaBaseline, EwmaConfig};
    /// let reading = EwmaBaseline::seeded(10.0)?.assess(&EwmaConfig::default(), 4.0)?;
    /// assert_eq!(BaselineReading::Ewma(reading).threshold(), 30.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn threshold(&self) -> f64 {
        match self {
            BaselineReading::Recent(r) => r.threshold,
            BaselineReading::Ewma(r) => r.threshold,
        }
    }
}

/// The totals of a cost meter at one instant: what a [`CostPolicy`](super::CostPolicy) decides from.
///
/// ```
/// use fusebox_core::guard::{CostMeter, CostPolicy};
///
/// let mut meter = CostMeter::new(CostPolicy::builder(100.0).estimated_cost(5.0).build()?);
/// meter.record(0, 30.0)?;
/// let _ticket = meter.admit(0).unwrap().ticket;
/// let status = meter.status(0);
/// assert_eq!((status.spent, status.reserved, status.in_flight), (30.0, 5.0, 1));
/// assert_eq!(status.budget.current_spend, 35.0); // judged with the reservation
/// assert_eq!(status.period_end_nanos, 86_400_000_000_000);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct CostStatus {
    /// Cost recorded in the window.
    pub spent: f64,
    /// Estimated cost of the calls in flight.
    pub reserved: f64,
    /// Calls admitted and not yet settled.
    pub in_flight: u64,
    /// The budget judged on `spent + reserved`.
    pub budget: SpendLimitStatus,
    /// The window against its baseline; `None` without a baseline, or before a
    /// [`Recent`](super::CostBaseline::Recent) baseline has enough closed periods.
    pub baseline: Option<BaselineReading>,
    /// Start of the current period, in the clock's nanoseconds.
    pub period_start_nanos: u64,
    /// End of the current period, in the clock's nanoseconds.
    pub period_end_nanos: u64,
    /// Calls whose cost was unknown, since the meter was made.
    pub unknown_costs: u64,
    /// How much longer an unknown cost blocks the window ([`UnknownCost::Reject`](super::UnknownCost::Reject)).
    pub blocked_for: Option<Duration>,
}

/// Kinds of spend events.
///
/// ```
/// use fusebox_core::guard::CostEventKind;
/// assert_eq!(CostEventKind::Breach.as_str(), "breach");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum CostEventKind {
    /// Spend reached the warning ratio of the limit. At most once per period.
    Warning,
    /// Spend reached the limit. At most once per period.
    Breach,
    /// The window spiked over its baseline. At most once per period.
    Spike,
    /// A call's cost was unknown. Every time.
    UnknownCost,
}

impl CostEventKind {
    const ALL: [CostEventKind; 4] = [
        CostEventKind::Warning,
        CostEventKind::Breach,
        CostEventKind::Spike,
        CostEventKind::UnknownCost,
    ];

    pub(super) fn bit(self) -> u8 {
        match self {
            CostEventKind::Warning => 1,
            CostEventKind::Breach => 2,
            CostEventKind::Spike => 4,
            CostEventKind::UnknownCost => 8,
        }
    }

    /// Stable lower-case name: `warning`, `breach`, `spike` or `unknown_cost`.
    ///
    /// ```
    /// use fusebox_core::guard::CostEventKind;
    /// assert_eq!(CostEventKind::UnknownCost.as_str(), "unknown_cost");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            CostEventKind::Warning => "warning",
            CostEventKind::Breach => "breach",
            CostEventKind::Spike => "spike",
            CostEventKind::UnknownCost => "unknown_cost",
        }
    }
}

/// The events one step of a [`CostMeter`](super::CostMeter) raised: a small set, no allocation.
///
/// ```
/// use fusebox_core::guard::{CostEventKind, CostMeter, CostPolicy};
///
/// let mut meter = CostMeter::new(CostPolicy::builder(10.0).build()?);
/// let settled = meter.record(0, 12.0)?;
/// assert!(settled.events.contains(CostEventKind::Warning));
/// assert!(settled.events.contains(CostEventKind::Breach));
/// assert_eq!(settled.events.iter().count(), 2);
/// // Raised once per period: more spend does not raise them again.
/// assert!(meter.record(0, 1.0)?.events.is_empty());
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CostEvents(pub(super) u8);

impl CostEvents {
    /// Whether `kind` was raised.
    ///
    /// ```
    /// use fusebox_core::guard::{CostEventKind, CostEvents};
    /// assert!(!CostEvents::default().contains(CostEventKind::Spike));
    /// ```
    pub fn contains(self, kind: CostEventKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Whether nothing was raised.
    ///
    /// ```
    /// use fusebox_core::guard::CostEvents;
    /// assert!(CostEvents::default().is_empty());
    /// ```
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds raised, in a fixed order: warning, breach, spike, unknown cost.
    ///
    /// ```
    /// use fusebox_core::guard::CostEvents;
    /// assert_eq!(CostEvents::default().iter().count(), 0);
    /// ```
    pub fn iter(self) -> impl Iterator<Item = CostEventKind> {
        CostEventKind::ALL
            .into_iter()
            .filter(move |kind| self.contains(*kind))
    }

    pub(super) fn with(self, kind: CostEventKind) -> Self {
        CostEvents(self.0 | kind.bit())
    }
}
