//! The cost policy: the validated settings a cost meter judges by, and the pure decision.
//! Its builder and the checks of `build` are in `builder`.

mod builder;

pub use builder::CostPolicyBuilder;

use std::time::Duration;

use super::meter::BaselineState;
use super::status::CostStatus;
use crate::ConfigError;
use crate::error::check;
use crate::guard::{EwmaBaseline, EwmaConfig, SeasonalBaseline, SpendLimitCheck, SpikeCheck};

const NANOS_PER_HOUR: u64 = 3_600_000_000_000;
const NANOS_PER_DAY: u64 = 24 * NANOS_PER_HOUR;

/// How the spend of calls is grouped in time.
///
/// Every window is cut into *periods*: a calendar hour or day, or one span of a rolling window.
/// The budget is judged on the spend in the window; the spike rule compares it with earlier,
/// closed periods.
///
/// ```
/// use fusebox_core::guard::CostWindow;
/// use std::time::Duration;
///
/// let rolling = CostWindow::Rolling { span: Duration::from_secs(60), buckets: 6 };
/// assert_eq!(rolling.period(), Duration::from_secs(60));
/// assert!(!rolling.is_calendar());
/// assert_eq!(CostWindow::CalendarDay.period(), Duration::from_secs(86_400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CostWindow {
    /// The spend of the last `span`, kept in `buckets` buckets that expire one at a time
    /// (`span / buckets` of accuracy). Periods are consecutive spans from the clock's origin.
    Rolling {
        /// How far back spend counts; longer than zero.
        span: Duration,
        /// Buckets the span is cut into, from 1 to [`CostWindow::MAX_BUCKETS`].
        buckets: u32,
    },
    /// The current hour in UTC (from hh:00:00): the whole budget is available again on the hour.
    CalendarHour,
    /// The current day in UTC (from 00:00:00): the whole budget is available again at midnight.
    CalendarDay,
}

impl CostWindow {
    /// Most buckets a rolling window may have.
    pub const MAX_BUCKETS: u32 = 3600;

    /// Whether periods are aligned to UTC hours or days, which needs a clock counting from
    /// the Unix epoch (see [`UnixClock`](crate::clock::UnixClock)).
    ///
    /// ```
    /// use fusebox_core::guard::CostWindow;
    /// assert!(CostWindow::CalendarHour.is_calendar());
    /// ```
    pub fn is_calendar(&self) -> bool {
        matches!(self, CostWindow::CalendarHour | CostWindow::CalendarDay)
    }

    /// The length of one period: the span of a rolling window (rounded down to whole
    /// nanoseconds per bucket), an hour, or a day.
    ///
    /// ```
    /// use fusebox_core::guard::CostWindow;
    /// assert_eq!(CostWindow::CalendarHour.period().as_secs(), 3600);
    /// ```
    pub fn period(&self) -> Duration {
        let geometry = self.geometry_unchecked();
        Duration::from_nanos(geometry.period_nanos())
    }

    fn geometry_unchecked(&self) -> Geometry {
        match *self {
            CostWindow::Rolling { span, buckets } => {
                let buckets = buckets.max(1);
                Geometry {
                    bucket_nanos: (crate::clock::nanos(span) / u64::from(buckets)).max(1),
                    buckets,
                }
            }
            CostWindow::CalendarHour => Geometry {
                bucket_nanos: NANOS_PER_HOUR,
                buckets: 1,
            },
            CostWindow::CalendarDay => Geometry {
                bucket_nanos: NANOS_PER_DAY,
                buckets: 1,
            },
        }
    }

    fn geometry(&self) -> Result<Geometry, ConfigError> {
        if let CostWindow::Rolling { span, buckets } = *self {
            check::nonzero_duration("span", span)?;
            if buckets == 0 || buckets > Self::MAX_BUCKETS {
                return Err(ConfigError::invalid(
                    "buckets",
                    format!("must be within [1, {}], got {buckets}", Self::MAX_BUCKETS),
                ));
            }
            if crate::clock::nanos(span) < u64::from(buckets) {
                return Err(ConfigError::invalid(
                    "span",
                    format!("must be at least one nanosecond per bucket, got {span:?}"),
                ));
            }
        }
        Ok(self.geometry_unchecked())
    }
}

/// Bucket width and count of a window, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub(crate) bucket_nanos: u64,
    pub(crate) buckets: u32,
}

impl Geometry {
    pub(crate) fn period_nanos(self) -> u64 {
        self.bucket_nanos.saturating_mul(u64::from(self.buckets))
    }
}

/// What the spend of the current window is compared with to spot a spike.
///
/// The baseline learns from *closed* periods (see [`CostWindow`]) in which the guard admitted
/// a call or recorded a cost; other periods (slept through, or refused throughout) are
/// skipped rather than counted as zero, so an idle night does not make the morning look like
/// a spike.
///
/// ```
/// use fusebox_core::guard::{CostBaseline, SpikeCheck};
///
/// // The spend so far this hour against the mean of the last 3 hours, at 1.5x.
/// let baseline = CostBaseline::Recent { check: SpikeCheck::default(), periods: 3 };
/// assert!(matches!(baseline, CostBaseline::Recent { periods: 3, .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum CostBaseline {
    /// A [`SpikeCheck`] of the current window against the mean of the last `periods` closed
    /// periods. Judged only once that many periods have closed.
    Recent {
        /// Multiplier and floor of the spike check.
        check: SpikeCheck,
        /// Closed periods the mean is taken over, from 1 to [`CostBaseline::MAX_PERIODS`].
        periods: u32,
    },
    /// An EWMA of closed periods, starting at `seed` (a known average spend per period, so the
    /// first periods do not alarm); a spike is above `config.multiplier` times the baseline.
    Ewma {
        /// Alpha and multiplier.
        config: EwmaConfig,
        /// Cold-start value of the baseline; finite and `>= 0`.
        seed: f64,
    },
    /// Like [`Ewma`](Self::Ewma), one baseline per hour of the week, so Monday 9:00 is judged
    /// against earlier Mondays at 9:00. Needs [`CostWindow::CalendarHour`].
    Seasonal {
        /// Alpha and multiplier.
        config: EwmaConfig,
        /// Cold-start value of every hour's baseline; finite and `>= 0`.
        seed: f64,
    },
}

impl CostBaseline {
    /// Most closed periods a [`Recent`](Self::Recent) baseline may average.
    pub const MAX_PERIODS: u32 = 1024;

    /// Checks the settings and seeds the state a meter starts from.
    fn seed(&self, window: &CostWindow) -> Result<BaselineState, ConfigError> {
        match *self {
            CostBaseline::Recent { check, periods } => {
                check.validate()?;
                if periods == 0 || periods > Self::MAX_PERIODS {
                    return Err(ConfigError::invalid(
                        "periods",
                        format!("must be within [1, {}], got {periods}", Self::MAX_PERIODS),
                    ));
                }
                Ok(BaselineState::Recent(Vec::new()))
            }
            CostBaseline::Ewma { config, seed } => {
                config.validate()?;
                check::non_negative("seed", seed)?;
                Ok(BaselineState::Ewma(EwmaBaseline::seeded(seed)?))
            }
            CostBaseline::Seasonal { config, seed } => {
                config.validate()?;
                check::non_negative("seed", seed)?;
                if *window != CostWindow::CalendarHour {
                    return Err(ConfigError::conflict(
                        "baseline",
                        "window",
                        "a seasonal baseline keeps one bucket per hour of the week, so the \
                         window must be CostWindow::CalendarHour",
                    ));
                }
                Ok(BaselineState::Seasonal(SeasonalBaseline::seeded(seed)?))
            }
        }
    }
}

/// What a call whose cost is unknown counts as.
///
/// A cost is unknown when the extractor returns `None` or an invalid number (negative, NaN,
/// infinite), when [`record_unknown`](super::CostPermit::record_unknown) is called, or when a
/// permit is dropped without a cost: a cancelled call may still have run, and been billed.
///
/// ```
/// use fusebox_core::guard::{CostPolicy, UnknownCost};
///
/// let policy = CostPolicy::builder(100.0).estimated_cost(2.0).build()?;
/// assert_eq!(policy.unknown_cost(), UnknownCost::Assume(2.0)); // the estimate by default
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum UnknownCost {
    /// Counts nothing (fails open).
    Ignore,
    /// Counts this pessimistic cost; finite and `>= 0`. The default is the policy's
    /// [estimated cost](CostPolicyBuilder::estimated_cost).
    Assume(f64),
    /// Fails closed: the window's total can no longer be trusted, so every call is rejected
    /// until the unknown cost would have left the window (the end of a calendar period, or
    /// one span later for a rolling window), or until
    /// [`clear_unknown`](super::CostGuard::clear_unknown) is called.
    Reject,
}

/// What a [`CostPolicy`] decides for a call, from a [`CostStatus`] alone.
///
/// ```
/// use fusebox_core::guard::{CostDecision, CostRejectReason};
///
/// assert!(CostDecision::AdmitWithWarning.admits());
/// assert!(!CostDecision::Reject(CostRejectReason::BudgetBreached).admits());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CostDecision {
    /// The call may go ahead.
    Admit,
    /// The call may go ahead, but spend has reached the warning ratio of the limit.
    AdmitWithWarning,
    /// The call is refused.
    Reject(CostRejectReason),
}

impl CostDecision {
    /// Whether the call may go ahead.
    ///
    /// ```
    /// use fusebox_core::guard::CostDecision;
    /// assert!(CostDecision::Admit.admits());
    /// ```
    pub fn admits(&self) -> bool {
        !matches!(self, CostDecision::Reject(_))
    }
}

/// Why a cost guard refused a call.
///
/// ```
/// use fusebox_core::guard::CostRejectReason;
///
/// let reason = CostRejectReason::Spike { latest: 260.0, threshold: 181.5 };
/// assert_eq!(reason.to_string(), "spend spike: 260 in the current window, above 181.5");
/// assert_eq!(reason.as_str(), "spike");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum CostRejectReason {
    /// Spend in the window (with the estimates of calls in flight) reached the limit.
    BudgetBreached,
    /// Spend in the current window is above the threshold derived from the baseline.
    Spike {
        /// Spend in the current window, with the estimates of calls in flight.
        latest: f64,
        /// The threshold it exceeded.
        threshold: f64,
    },
    /// An earlier call's cost is unknown and the policy fails closed ([`UnknownCost::Reject`]).
    UnknownCost,
}

impl CostRejectReason {
    /// Stable lower-case name: `budget_breached`, `spike` or `unknown_cost`.
    ///
    /// ```
    /// use fusebox_core::guard::CostRejectReason;
    /// assert_eq!(CostRejectReason::BudgetBreached.as_str(), "budget_breached");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            CostRejectReason::BudgetBreached => "budget_breached",
            CostRejectReason::Spike { .. } => "spike",
            CostRejectReason::UnknownCost => "unknown_cost",
        }
    }
}

impl std::fmt::Display for CostRejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CostRejectReason::BudgetBreached => f.write_str("budget breached"),
            CostRejectReason::Spike { latest, threshold } => write!(
                f,
                "spend spike: {latest} in the current window, above {threshold}"
            ),
            CostRejectReason::UnknownCost => f.write_str("the cost of an earlier call is unknown"),
        }
    }
}

/// The validated settings of a cost guard: limit, warning ratio, window, spike baseline,
/// estimated cost of a call and what an unknown cost counts as.
///
/// ```
/// use fusebox_core::guard::{CostBaseline, CostPolicy, CostWindow, SpikeCheck, UnknownCost};
///
/// let policy = CostPolicy::builder(50.0)          // dollars a day
///     .warning_ratio(0.8)
///     .window(CostWindow::CalendarDay)
///     .baseline(CostBaseline::Recent { check: SpikeCheck::default(), periods: 7 })
///     .estimated_cost(0.25)                       // reserved while a call runs
///     .unknown_cost(UnknownCost::Reject)
///     .build()?;
/// assert_eq!(policy.budget().limit, 50.0);
///
/// let err = CostPolicy::builder(50.0).warning_ratio(1.5).build().unwrap_err();
/// assert_eq!(err.field(), Some("warning_ratio"));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CostPolicy {
    budget: SpendLimitCheck,
    window: CostWindow,
    geometry: Geometry,
    baseline: Option<CostBaseline>,
    initial: BaselineState,
    unknown: UnknownCost,
    estimate: f64,
}

impl CostPolicy {
    /// Starts a policy with a spending `limit` per window (finite, `> 0`, checked by
    /// [`build`](CostPolicyBuilder::build)).
    ///
    /// ```
    /// use fusebox_core::guard::CostPolicy;
    /// let err = CostPolicy::builder(-1.0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("limit"));
    /// ```
    pub fn builder(limit: f64) -> CostPolicyBuilder {
        CostPolicyBuilder {
            budget: SpendLimitCheck::new(limit),
            window: CostWindow::CalendarDay,
            baseline: None,
            unknown: None,
            estimate: 0.0,
        }
    }

    /// The limit and warning ratio.
    ///
    /// ```
    /// use fusebox_core::guard::CostPolicy;
    /// assert_eq!(CostPolicy::builder(7.0).build()?.budget().limit, 7.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn budget(&self) -> SpendLimitCheck {
        self.budget
    }

    /// The window.
    ///
    /// ```
    /// use fusebox_core::guard::{CostPolicy, CostWindow};
    /// let policy = CostPolicy::builder(1.0).window(CostWindow::CalendarHour).build()?;
    /// assert_eq!(policy.window(), CostWindow::CalendarHour);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn window(&self) -> CostWindow {
        self.window
    }

    /// The spike baseline, if any.
    ///
    /// ```
    /// use fusebox_core::guard::CostPolicy;
    /// assert!(CostPolicy::builder(1.0).build()?.baseline().is_none());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn baseline(&self) -> Option<CostBaseline> {
        self.baseline
    }

    /// What an unknown cost counts as.
    ///
    /// ```
    /// use fusebox_core::guard::{CostPolicy, UnknownCost};
    /// assert_eq!(CostPolicy::builder(1.0).build()?.unknown_cost(), UnknownCost::Assume(0.0));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn unknown_cost(&self) -> UnknownCost {
        self.unknown
    }

    /// The cost reserved for each call while it runs.
    ///
    /// ```
    /// use fusebox_core::guard::CostPolicy;
    /// assert_eq!(CostPolicy::builder(1.0).estimated_cost(0.1).build()?.estimated_cost(), 0.1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn estimated_cost(&self) -> f64 {
        self.estimate
    }

    pub(crate) fn geometry(&self) -> Geometry {
        self.geometry
    }

    pub(crate) fn initial_baseline(&self) -> &BaselineState {
        &self.initial
    }

    /// Decides a call from the window's totals alone: refused while an unknown cost blocks
    /// the window ([`UnknownCost::Reject`]), then when spend reached the limit, then when the
    /// window spikes over its baseline; admitted with a warning at the warning ratio;
    /// admitted otherwise.
    ///
    /// A pure function: the [`CostMeter`](super::CostMeter) supplies this instance's totals,
    /// and a shared store can supply a fleet's.
    ///
    /// ```
    /// use fusebox_core::guard::{CostDecision, CostMeter, CostPolicy, CostRejectReason};
    ///
    /// let policy = CostPolicy::builder(1000.0).build()?;
    /// let mut meter = CostMeter::new(policy.clone());
    /// meter.record(0, 920.0)?;
    /// assert_eq!(policy.decide(&meter.status(0)), CostDecision::AdmitWithWarning);
    /// meter.record(0, 80.0)?;
    /// assert_eq!(
    ///     policy.decide(&meter.status(0)),
    ///     CostDecision::Reject(CostRejectReason::BudgetBreached)
    /// );
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn decide(&self, status: &CostStatus) -> CostDecision {
        if status.blocked_for.is_some() {
            return CostDecision::Reject(CostRejectReason::UnknownCost);
        }
        if status.budget.is_breached {
            return CostDecision::Reject(CostRejectReason::BudgetBreached);
        }
        if let Some(reading) = status.baseline.filter(|r| r.is_spike()) {
            return CostDecision::Reject(CostRejectReason::Spike {
                latest: reading.latest(),
                threshold: reading.threshold(),
            });
        }
        if status.budget.is_warning {
            CostDecision::AdmitWithWarning
        } else {
            CostDecision::Admit
        }
    }
}
