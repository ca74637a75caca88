//! What a fleet breaker does while its store cannot be reached, and the options one fleet
//! breaker is made with.

use std::fmt;

use crate::FleetMode;

/// What a breaker does while its store cannot be reached: set it for every breaker of an
/// instance with [`FleetBuilder::outage`](crate::FleetBuilder::outage), or for one breaker
/// with [`FleetMode::on_outage`]. The [crate docs](crate#outage) tell what each policy
/// means in each mode.
///
/// ```
/// use fusebox_fleet::OutagePolicy;
/// assert_eq!(OutagePolicy::default(), OutagePolicy::Local);
/// assert_eq!(OutagePolicy::Admit.to_string(), "admit");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OutagePolicy {
    /// Decide from local state alone: the breaker goes on judging its own outcomes, trips,
    /// waits and probes on them, as a breaker without a fleet would.
    #[default]
    Local,
    /// Reject every call until the store is back (fail-closed), whatever the local state.
    Reject,
    /// Admit every call until the store is back (fail-open): local trips are ignored, and
    /// outcomes are still counted and flushed once the store answers. A kill-switch
    /// (forced open) the instance applied before the outage still holds: fail-open is about
    /// the store's availability, not the operator's decision.
    Admit,
}

impl fmt::Display for OutagePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OutagePolicy::Local => "local",
            OutagePolicy::Reject => "reject",
            OutagePolicy::Admit => "admit",
        })
    }
}

/// How one breaker takes part in its fleet: its [`FleetMode`] and, when it differs from the
/// instance's, its own [`OutagePolicy`]. [`Fleet::breaker`](crate::Fleet::breaker) takes a
/// plain `FleetMode` too.
///
/// ```
/// use fusebox_fleet::{FleetBreakerOptions, FleetMode, OutagePolicy};
/// let payments = FleetMode::quorum(2, 0.5)?.on_outage(OutagePolicy::Reject);
/// assert_eq!(payments.outage_policy(), Some(OutagePolicy::Reject));
/// let search = FleetBreakerOptions::from(FleetMode::Any);
/// assert_eq!(search.outage_policy(), None); // the fleet's
/// assert_eq!(search.mode(), FleetMode::Any);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FleetBreakerOptions {
    mode: FleetMode,
    outage: Option<OutagePolicy>,
}

impl FleetBreakerOptions {
    /// A breaker shared in `mode`, with the fleet's outage policy.
    ///
    /// ```
    /// use fusebox_fleet::{FleetBreakerOptions, FleetMode};
    /// assert_eq!(FleetBreakerOptions::new(FleetMode::Pooled).mode(), FleetMode::Pooled);
    /// ```
    pub fn new(mode: FleetMode) -> Self {
        FleetBreakerOptions { mode, outage: None }
    }

    /// What this breaker does while the store is unreachable, instead of the fleet's
    /// policy.
    ///
    /// ```
    /// use fusebox_fleet::{FleetBreakerOptions, FleetMode, OutagePolicy};
    /// let o = FleetBreakerOptions::new(FleetMode::Any).outage(OutagePolicy::Admit);
    /// assert_eq!(o.outage_policy(), Some(OutagePolicy::Admit));
    /// ```
    pub fn outage(mut self, policy: OutagePolicy) -> Self {
        self.outage = Some(policy);
        self
    }

    /// The fleet mode.
    ///
    /// ```
    /// use fusebox_fleet::{FleetBreakerOptions, FleetMode};
    /// assert_eq!(FleetBreakerOptions::from(FleetMode::Any).mode(), FleetMode::Any);
    /// ```
    pub fn mode(&self) -> FleetMode {
        self.mode
    }

    /// The breaker's own outage policy; `None` follows the fleet's.
    ///
    /// ```
    /// use fusebox_fleet::{FleetBreakerOptions, FleetMode};
    /// assert_eq!(FleetBreakerOptions::from(FleetMode::Any).outage_policy(), None);
    /// ```
    pub fn outage_policy(&self) -> Option<OutagePolicy> {
        self.outage
    }
}

impl From<FleetMode> for FleetBreakerOptions {
    fn from(mode: FleetMode) -> Self {
        FleetBreakerOptions::new(mode)
    }
}
