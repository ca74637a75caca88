//! The builder of a [`CostPolicy`], and the checks its `build` makes.

use super::{CostBaseline, CostPolicy, CostWindow, UnknownCost};
use crate::ConfigError;
use crate::error::check;
use crate::guard::SpendLimitCheck;
use crate::guard::cost::meter::BaselineState;

/// Builds a [`CostPolicy`]; every setting is checked by [`build`](Self::build).
///
/// Defaults: warning at 90% of the limit, a [calendar day](CostWindow::CalendarDay), no spike
/// baseline, an estimated cost of 0 and unknown costs counted as the estimate.
///
/// ```
/// use fusebox_core::guard::{CostPolicy, CostWindow};
///
/// let policy = CostPolicy::builder(10.0).build()?;
/// assert_eq!(policy.window(), CostWindow::CalendarDay);
/// assert_eq!(policy.budget().warning_ratio, 0.9);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct CostPolicyBuilder {
    pub(super) budget: SpendLimitCheck,
    pub(super) window: CostWindow,
    pub(super) baseline: Option<CostBaseline>,
    pub(super) unknown: Option<UnknownCost>,
    pub(super) estimate: f64,
}

impl CostPolicyBuilder {
    /// Share of the limit at which calls are admitted with a warning, within `(0, 1]`
    /// (default 0.9).
    ///
    /// ```
    /// use fusebox_core::guard::CostPolicy;
    /// let policy = CostPolicy::builder(100.0).warning_ratio(0.5).build()?;
    /// assert_eq!(policy.budget().warning_ratio, 0.5);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn warning_ratio(mut self, ratio: f64) -> Self {
        self.budget.warning_ratio = ratio;
        self
    }

    /// The window spend is accumulated in (default [`CostWindow::CalendarDay`]).
    ///
    /// ```
    /// use fusebox_core::guard::{CostPolicy, CostWindow};
    /// use std::time::Duration;
    /// let err = CostPolicy::builder(1.0)
    ///     .window(CostWindow::Rolling { span: Duration::from_secs(60), buckets: 0 })
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), Some("buckets"));
    /// ```
    pub fn window(mut self, window: CostWindow) -> Self {
        self.window = window;
        self
    }

    /// Compares the current window with a baseline and refuses calls while it spikes
    /// (default: no spike rule).
    ///
    /// ```
    /// use fusebox_core::guard::{CostBaseline, CostPolicy, EwmaConfig};
    /// let policy = CostPolicy::builder(100.0)
    ///     .baseline(CostBaseline::Ewma { config: EwmaConfig::default(), seed: 20.0 })
    ///     .build()?;
    /// assert!(policy.baseline().is_some());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn baseline(mut self, baseline: CostBaseline) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// What a call whose cost is unknown counts as (default:
    /// [`UnknownCost::Assume`] the estimated cost).
    ///
    /// ```
    /// use fusebox_core::guard::{CostPolicy, UnknownCost};
    /// let err = CostPolicy::builder(1.0)
    ///     .unknown_cost(UnknownCost::Assume(f64::NAN))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), Some("unknown_cost"));
    /// ```
    pub fn unknown_cost(mut self, unknown: UnknownCost) -> Self {
        self.unknown = Some(unknown);
        self
    }

    /// The cost reserved for each admitted call until its real cost is recorded (default 0).
    ///
    /// Admission counts reservations as spend, so a burst of concurrent calls cannot all be
    /// admitted against the same remaining budget. A good estimate is an upper bound on one
    /// call's cost (the maximum tokens of a request times the price).
    ///
    /// ```
    /// use fusebox_core::guard::CostPolicy;
    /// let err = CostPolicy::builder(1.0).estimated_cost(-0.5).build().unwrap_err();
    /// assert_eq!(err.field(), Some("estimated_cost"));
    /// ```
    pub fn estimated_cost(mut self, estimate: f64) -> Self {
        self.estimate = estimate;
        self
    }

    /// Checks every setting and builds the policy.
    ///
    /// # Errors
    /// The first invalid setting, by name: `limit`, `warning_ratio`, `span`, `buckets`,
    /// `periods`, `multiplier`, `min_baseline`, `alpha`, `seed`, `estimated_cost`,
    /// `unknown_cost`, or a conflict between `baseline` and `window`.
    ///
    /// ```
    /// use fusebox_core::guard::{CostBaseline, CostPolicy, CostWindow, EwmaConfig};
    /// let err = CostPolicy::builder(1.0)
    ///     .window(CostWindow::CalendarDay)
    ///     .baseline(CostBaseline::Seasonal { config: EwmaConfig::default(), seed: 1.0 })
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), Some("baseline"));
    /// ```
    pub fn build(self) -> Result<CostPolicy, ConfigError> {
        self.budget.validate()?;
        let geometry = self.window.geometry()?;
        let initial = match &self.baseline {
            Some(baseline) => baseline.seed(&self.window)?,
            None => BaselineState::None,
        };
        check::non_negative("estimated_cost", self.estimate)?;
        let unknown = self.unknown.unwrap_or(UnknownCost::Assume(self.estimate));
        if let UnknownCost::Assume(cost) = unknown {
            check::non_negative("unknown_cost", cost)?;
        }
        Ok(CostPolicy {
            budget: self.budget,
            window: self.window,
            geometry,
            baseline: self.baseline,
            initial,
            unknown,
            estimate: self.estimate,
        })
    }
}
