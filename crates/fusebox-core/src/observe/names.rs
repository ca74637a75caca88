//! Metric names and label keys, stable across releases.
//!
//! | name | type | labels | what |
//! | --- | --- | --- | --- |
//! | `fusebox_calls_total` | counter | `breaker`, `outcome` | calls by outcome: `success`, `failure`, `ignored`, `rejected` |
//! | `fusebox_slow_calls_total` | counter | `breaker` | calls past the slow-call threshold (also counted as success or failure) |
//! | `fusebox_call_duration_seconds` | histogram | `breaker` | from admission to the recorded outcome |
//! | `fusebox_breaker_state` | gauge | `breaker` | 0 closed, 1 open, 2 half_open, 3 forced_open, 4 disabled |
//! | `fusebox_breaker_transitions_total` | counter | `breaker`, `from`, `to` | state changes |
//! | `fusebox_breaker_shadow_rejections_total` | counter | `breaker` | calls a breaker in shadow mode would have rejected and let through |
//! | `fusebox_retries_total` | counter | `policy`, `reason` | retries started |
//! | `fusebox_retry_give_ups_total` | counter | `policy`, `reason` | retryable results returned without a retry |
//! | `fusebox_bulkhead_rejections_total` | counter | `policy` | calls refused by a full bulkhead |
//! | `fusebox_rate_limited_total` | counter | `policy` | calls refused by a rate limiter (keyed limiters: labelled by the limiter, not the key) |
//! | `fusebox_throttled_total` | counter | `policy` | calls dropped by adaptive client-side throttling |
//! | `fusebox_outlier_ejections_total` | counter | `policy`, `reason` | endpoints ejected by an outlier detector (`consecutive_failures`, `failure_rate`) |
//! | `fusebox_outlier_ejected` | gauge | `policy` | endpoints an outlier detector holds out now |
//! | `fusebox_chaos_faults_total` | counter | `policy` | faults a chaos policy injected |
//! | `fusebox_chaos_delays_total` | counter | `policy` | delays a chaos policy injected |
//! | `fusebox_hedges_total` | counter | `policy` | hedged attempts started |
//! | `fusebox_hedge_wins_total` | counter | `policy` | calls a hedged attempt answered first |
//! | `fusebox_hedge_losers_cancelled_total` | counter | `policy` | attempts dropped in flight once another succeeded |
//! | `fusebox_hedges_refused_total` | counter | `policy` | hedges the retry budget refused |
//! | `fusebox_mode` | gauge | `controller` | index of the current degradation mode (0 = normal) |
//! | `fusebox_mode_degraded` | gauge | `controller` | 1 when the mode is not the first one |
//! | `fusebox_mode_transitions_total` | counter | `controller`, `from`, `to` | mode changes |
//!
//! ```
//! use fusebox_core::observe::names;
//! assert_eq!(names::CALLS, "fusebox_calls_total");
//! assert_eq!(names::LABEL_BREAKER, "breaker");
//! ```

/// Counter of calls by outcome (`success`, `failure`, `ignored`, `rejected`).
///
/// ```
/// assert!(fusebox_core::observe::names::CALLS.ends_with("_total"));
/// ```
pub const CALLS: &str = "fusebox_calls_total";
/// Counter of slow calls (a slow call is also counted as a success or a failure).
///
/// ```
/// assert_eq!(fusebox_core::observe::names::SLOW_CALLS, "fusebox_slow_calls_total");
/// ```
pub const SLOW_CALLS: &str = "fusebox_slow_calls_total";
/// Histogram of call durations, in seconds.
///
/// ```
/// assert!(fusebox_core::observe::names::CALL_DURATION.ends_with("_seconds"));
/// ```
pub const CALL_DURATION: &str = "fusebox_call_duration_seconds";
/// Gauge of a breaker's state: 0 closed, 1 open, 2 half_open, 3 forced_open, 4 disabled.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::BREAKER_STATE, "fusebox_breaker_state");
/// ```
pub const BREAKER_STATE: &str = "fusebox_breaker_state";
/// Counter of calls a breaker in shadow mode would have rejected, and let through.
///
/// ```
/// assert_eq!(
///     fusebox_core::observe::names::SHADOW_REJECTIONS,
///     "fusebox_breaker_shadow_rejections_total"
/// );
/// ```
pub const SHADOW_REJECTIONS: &str = "fusebox_breaker_shadow_rejections_total";
/// Gauge of a breaker's failure rate over its window, from 0 to 1; NaN while the rate is
/// not judged yet (fewer calls than `min_calls`). Set by
/// [`publish_state`](super::publish_state).
///
/// ```
/// assert_eq!(fusebox_core::observe::names::FAILURE_RATE, "fusebox_breaker_failure_rate");
/// ```
pub const FAILURE_RATE: &str = "fusebox_breaker_failure_rate";
/// Gauge of a breaker's slow-call rate over its window, as [`FAILURE_RATE`].
///
/// ```
/// assert_eq!(fusebox_core::observe::names::SLOW_RATE, "fusebox_breaker_slow_call_rate");
/// ```
pub const SLOW_RATE: &str = "fusebox_breaker_slow_call_rate";
/// Counter of breaker state changes.
///
/// ```
/// assert!(fusebox_core::observe::names::TRANSITIONS.ends_with("_total"));
/// ```
pub const TRANSITIONS: &str = "fusebox_breaker_transitions_total";
/// Counter of retries started.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::RETRIES, "fusebox_retries_total");
/// ```
pub const RETRIES: &str = "fusebox_retries_total";
/// Counter of retryable results returned without a retry (retries spent, budget empty...).
///
/// ```
/// assert!(fusebox_core::observe::names::RETRY_GIVE_UPS.ends_with("_total"));
/// ```
pub const RETRY_GIVE_UPS: &str = "fusebox_retry_give_ups_total";
/// Counter of calls refused by a full bulkhead.
///
/// ```
/// assert!(fusebox_core::observe::names::BULKHEAD_REJECTIONS.ends_with("_total"));
/// ```
pub const BULKHEAD_REJECTIONS: &str = "fusebox_bulkhead_rejections_total";
/// Counter of calls refused by a rate limiter.
///
/// ```
/// assert!(fusebox_core::observe::names::RATE_LIMITED.ends_with("_total"));
/// ```
pub const RATE_LIMITED: &str = "fusebox_rate_limited_total";
/// Counter of calls dropped by adaptive client-side throttling.
///
/// ```
/// assert!(fusebox_core::observe::names::THROTTLED.ends_with("_total"));
/// ```
pub const THROTTLED: &str = "fusebox_throttled_total";
/// Gauge of a mode controller's current mode, as its index (0 = normal).
///
/// ```
/// assert_eq!(fusebox_core::observe::names::MODE, "fusebox_mode");
/// ```
pub const MODE: &str = "fusebox_mode";
/// Gauge: 1 while a mode controller is in any mode but the first.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::MODE_DEGRADED, "fusebox_mode_degraded");
/// ```
pub const MODE_DEGRADED: &str = "fusebox_mode_degraded";
/// Counter of mode changes.
///
/// ```
/// assert!(fusebox_core::observe::names::MODE_TRANSITIONS.ends_with("_total"));
/// ```
pub const MODE_TRANSITIONS: &str = "fusebox_mode_transitions_total";

// Load-adaptive policies: adaptive concurrency limit.

/// Gauge of an adaptive concurrency limit's current limit.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::CONCURRENCY_LIMIT, "fusebox_concurrency_limit");
/// ```
pub const CONCURRENCY_LIMIT: &str = "fusebox_concurrency_limit";
/// Counter of calls refused by an adaptive concurrency limit.
///
/// ```
/// assert!(fusebox_core::observe::names::CONCURRENCY_LIMIT_REJECTIONS.ends_with("_total"));
/// ```
pub const CONCURRENCY_LIMIT_REJECTIONS: &str = "fusebox_concurrency_limit_rejections_total";

// Load-adaptive policies: outlier ejection.

/// Counter of endpoints ejected by an outlier detector, labelled by the rule that found
/// them (`consecutive_failures`, `failure_rate`).
///
/// ```
/// assert_eq!(fusebox_core::observe::names::OUTLIER_EJECTIONS, "fusebox_outlier_ejections_total");
/// ```
pub const OUTLIER_EJECTIONS: &str = "fusebox_outlier_ejections_total";
/// Gauge of the endpoints an outlier detector holds out now.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::OUTLIER_EJECTED, "fusebox_outlier_ejected");
/// ```
pub const OUTLIER_EJECTED: &str = "fusebox_outlier_ejected";

// Chaos: injected faults and delays.

/// Counter of faults a chaos policy injected.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::CHAOS_FAULTS, "fusebox_chaos_faults_total");
/// ```
pub const CHAOS_FAULTS: &str = "fusebox_chaos_faults_total";
/// Counter of delays a chaos policy injected.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::CHAOS_DELAYS, "fusebox_chaos_delays_total");
/// ```
pub const CHAOS_DELAYS: &str = "fusebox_chaos_delays_total";
// Hedged requests.

/// Counter of hedged attempts started.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::HEDGES, "fusebox_hedges_total");
/// ```
pub const HEDGES: &str = "fusebox_hedges_total";
/// Counter of calls a hedged attempt answered first.
///
/// ```
/// assert!(fusebox_core::observe::names::HEDGE_WINS.ends_with("_total"));
/// ```
pub const HEDGE_WINS: &str = "fusebox_hedge_wins_total";
/// Counter of attempts dropped in flight because another attempt of the call succeeded.
///
/// ```
/// assert!(fusebox_core::observe::names::HEDGE_LOSERS_CANCELLED.ends_with("_total"));
/// ```
pub const HEDGE_LOSERS_CANCELLED: &str = "fusebox_hedge_losers_cancelled_total";
/// Counter of hedges not sent because the retry budget refused them.
///
/// ```
/// assert!(fusebox_core::observe::names::HEDGES_REFUSED.ends_with("_total"));
/// ```
pub const HEDGES_REFUSED: &str = "fusebox_hedges_refused_total";

/// Every series fusebox publishes, for tools that check dashboards and alerts against
/// them. A histogram's samples add `_bucket`, `_sum` and `_count` to its name.
///
/// ```
/// use fusebox_core::observe::names;
/// assert!(names::ALL.contains(&names::CALLS));
/// assert_eq!(names::ALL.len(), 26);
/// ```
pub const ALL: [&str; 26] = [
    CALLS,
    SLOW_CALLS,
    CALL_DURATION,
    BREAKER_STATE,
    FAILURE_RATE,
    SLOW_RATE,
    TRANSITIONS,
    SHADOW_REJECTIONS,
    RETRIES,
    RETRY_GIVE_UPS,
    BULKHEAD_REJECTIONS,
    RATE_LIMITED,
    THROTTLED,
    MODE,
    MODE_DEGRADED,
    MODE_TRANSITIONS,
    CONCURRENCY_LIMIT,
    CONCURRENCY_LIMIT_REJECTIONS,
    OUTLIER_EJECTIONS,
    OUTLIER_EJECTED,
    CHAOS_FAULTS,
    CHAOS_DELAYS,
    HEDGES,
    HEDGE_WINS,
    HEDGE_LOSERS_CANCELLED,
    HEDGES_REFUSED,
];

/// Label: the breaker's name.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::LABEL_BREAKER, "breaker");
/// ```
pub const LABEL_BREAKER: &str = "breaker";
/// Label: a retry policy's or bulkhead's name.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::LABEL_POLICY, "policy");
/// ```
pub const LABEL_POLICY: &str = "policy";
/// Label: a mode controller's name.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::LABEL_CONTROLLER, "controller");
/// ```
pub const LABEL_CONTROLLER: &str = "controller";
/// Label: a call's outcome.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::LABEL_OUTCOME, "outcome");
/// ```
pub const LABEL_OUTCOME: &str = "outcome";
/// Label: the state or mode before a change.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::LABEL_FROM, "from");
/// ```
pub const LABEL_FROM: &str = "from";
/// Label: the state or mode after a change.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::LABEL_TO, "to");
/// ```
pub const LABEL_TO: &str = "to";
/// Label: why a retry started or stopped.
///
/// ```
/// assert_eq!(fusebox_core::observe::names::LABEL_REASON, "reason");
/// ```
pub const LABEL_REASON: &str = "reason";
