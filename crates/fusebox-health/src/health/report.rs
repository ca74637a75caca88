//! The health report and its parts.

use std::fmt;

use fusebox_core::breaker::State;
use fusebox_rule::{Schema, Value, Variables};

/// Healthy, degraded or unhealthy; ordered from best to worst.
///
/// ```
/// use fusebox_health::health::HealthStatus;
/// assert!(HealthStatus::Healthy < HealthStatus::Degraded);
/// assert_eq!(HealthStatus::Unhealthy.as_str(), "unhealthy");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum HealthStatus {
    /// Working as intended.
    Healthy,
    /// Working with reduced capacity or a fallback.
    Degraded,
    /// Not working.
    Unhealthy,
}

impl HealthStatus {
    /// Stable lower-case name.
    ///
    /// ```
    /// use fusebox_health::health::HealthStatus;
    /// assert_eq!(HealthStatus::Degraded.as_str(), "degraded");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of component a report line is about.
///
/// ```
/// use fusebox_health::health::ComponentKind;
/// assert_eq!(ComponentKind::Check.as_str(), "check");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ComponentKind {
    /// A circuit breaker.
    Breaker,
    /// A bulkhead.
    Bulkhead,
    /// A retry policy's recent counts.
    Retry,
    /// A user-supplied check.
    Check,
}

impl ComponentKind {
    /// Stable lower-case name.
    ///
    /// ```
    /// use fusebox_health::health::ComponentKind;
    /// assert_eq!(ComponentKind::Breaker.as_str(), "breaker");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Breaker => "breaker",
            ComponentKind::Bulkhead => "bulkhead",
            ComponentKind::Retry => "retry",
            ComponentKind::Check => "check",
        }
    }
}

/// One component's line in a [`HealthReport`].
///
/// ```
/// use fusebox_health::health::{ComponentHealth, ComponentKind, HealthStatus};
/// let line = ComponentHealth::new("db", ComponentKind::Check, HealthStatus::Healthy);
/// assert_eq!((line.name.as_str(), line.critical), ("db", false));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ComponentHealth {
    /// The registered name.
    pub name: String,
    /// What it is.
    pub kind: ComponentKind,
    /// Its status.
    pub status: HealthStatus,
    /// Whether its being unhealthy makes the whole report unhealthy.
    pub critical: bool,
    /// A breaker's state.
    #[cfg_attr(
        feature = "serde",
        serde(skip_serializing_if = "Option::is_none", default)
    )]
    pub state: Option<State>,
    /// A retry policy's retries in the last hour.
    #[cfg_attr(
        feature = "serde",
        serde(skip_serializing_if = "Option::is_none", default)
    )]
    pub retries_last_hour: Option<u64>,
    /// A retry policy's give-ups in the last hour.
    #[cfg_attr(
        feature = "serde",
        serde(skip_serializing_if = "Option::is_none", default)
    )]
    pub give_ups_last_hour: Option<u64>,
    /// A human-readable explanation (a check's error, a breaker's cooldown...).
    #[cfg_attr(
        feature = "serde",
        serde(skip_serializing_if = "Option::is_none", default)
    )]
    pub detail: Option<String>,
    /// How long a check took, in milliseconds.
    #[cfg_attr(
        feature = "serde",
        serde(skip_serializing_if = "Option::is_none", default)
    )]
    pub elapsed_ms: Option<u64>,
}

impl ComponentHealth {
    /// A line with only a name, a kind and a status.
    ///
    /// ```
    /// use fusebox_health::health::{ComponentHealth, ComponentKind, HealthStatus};
    /// let line = ComponentHealth::new("cache", ComponentKind::Check, HealthStatus::Degraded);
    /// assert_eq!(line.detail, None);
    /// ```
    pub fn new(name: impl Into<String>, kind: ComponentKind, status: HealthStatus) -> Self {
        ComponentHealth {
            name: name.into(),
            kind,
            status,
            critical: false,
            state: None,
            retries_last_hour: None,
            give_ups_last_hour: None,
            detail: None,
            elapsed_ms: None,
        }
    }
}

/// The aggregate health of every registered component.
///
/// It is also the set of variables [mode rules](crate::mode) read (see
/// [`HealthReport::schema`]).
///
/// ```
/// use fusebox_health::health::{ComponentHealth, ComponentKind, HealthReport, HealthStatus};
/// let report = HealthReport::from_components(vec![
///     ComponentHealth::new("a", ComponentKind::Check, HealthStatus::Healthy),
///     ComponentHealth::new("b", ComponentKind::Check, HealthStatus::Unhealthy),
/// ]);
/// assert_eq!(report.status, HealthStatus::Degraded); // b is not critical
/// assert_eq!(report.failed_components, 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct HealthReport {
    /// The aggregate status.
    pub status: HealthStatus,
    /// Components that are unhealthy.
    pub failed_components: u32,
    /// Components that are degraded.
    pub degraded_components: u32,
    /// Breakers that are open or forced open.
    pub open_breakers: u32,
    /// Retries started in the last hour, over every registered retry policy.
    pub retries_last_hour: u64,
    /// Retryable results given up on in the last hour, over every registered retry policy.
    pub give_ups_last_hour: u64,
    /// Every component, in registration order.
    pub components: Vec<ComponentHealth>,
}

impl HealthReport {
    /// Aggregates component lines into a report.
    ///
    /// ```
    /// use fusebox_health::health::{ComponentHealth, ComponentKind, HealthReport, HealthStatus};
    /// let mut db = ComponentHealth::new("db", ComponentKind::Check, HealthStatus::Unhealthy);
    /// db.critical = true;
    /// assert_eq!(HealthReport::from_components(vec![db]).status, HealthStatus::Unhealthy);
    /// assert_eq!(HealthReport::from_components(vec![]).status, HealthStatus::Healthy);
    /// ```
    pub fn from_components(components: Vec<ComponentHealth>) -> Self {
        let count = |status| components.iter().filter(|c| c.status == status).count() as u32;
        let critical_down = components
            .iter()
            .any(|c| c.critical && c.status == HealthStatus::Unhealthy);
        let worst = components.iter().map(|c| c.status).max();
        let status = match worst {
            _ if critical_down => HealthStatus::Unhealthy,
            Some(HealthStatus::Healthy) | None => HealthStatus::Healthy,
            Some(_) => HealthStatus::Degraded,
        };
        HealthReport {
            status,
            failed_components: count(HealthStatus::Unhealthy),
            degraded_components: count(HealthStatus::Degraded),
            open_breakers: components
                .iter()
                .filter(|c| matches!(c.state, Some(State::Open | State::ForcedOpen)))
                .count() as u32,
            retries_last_hour: components.iter().filter_map(|c| c.retries_last_hour).sum(),
            give_ups_last_hour: components.iter().filter_map(|c| c.give_ups_last_hour).sum(),
            components,
        }
    }

    /// The worst breaker state, as rules see it in `state`: `open` (forced open included),
    /// then `half_open`, then `closed`; `closed` when no breaker is registered or every one
    /// is disabled.
    ///
    /// ```
    /// use fusebox_core::breaker::State;
    /// use fusebox_health::health::HealthReport;
    /// assert_eq!(HealthReport::from_components(vec![]).worst_breaker_state(), State::Closed);
    /// ```
    pub fn worst_breaker_state(&self) -> State {
        let rank = |s: State| match s {
            State::Open | State::ForcedOpen => 2,
            State::HalfOpen => 1,
            State::Closed | State::Disabled => 0,
        };
        match self
            .components
            .iter()
            .filter_map(|c| c.state)
            .max_by_key(|s| rank(*s))
        {
            Some(State::Open | State::ForcedOpen) => State::Open,
            Some(State::HalfOpen) => State::HalfOpen,
            _ => State::Closed,
        }
    }

    /// The variables a rule over a report may read, with their types:
    ///
    /// | variable | type | value |
    /// | --- | --- | --- |
    /// | `status` | string | `healthy`, `degraded` or `unhealthy` |
    /// | `state` | string | the worst breaker state: `open`, `half_open` or `closed` |
    /// | `open_breakers` | number | breakers open or forced open |
    /// | `failed_components` | number | unhealthy components |
    /// | `degraded_components` | number | degraded components |
    /// | `retries_1h` | number | retries in the last hour |
    /// | `give_ups_1h` | number | retries given up in the last hour |
    ///
    /// ```
    /// use fusebox_health::health::HealthReport;
    /// use fusebox_rule::{Rule, ValueType};
    /// let schema = HealthReport::schema();
    /// assert_eq!(schema.get("retries_1h"), Some(ValueType::Number));
    /// assert!(Rule::compile("latency > 3", &schema).is_err()); // not whitelisted
    /// ```
    pub fn schema() -> Schema {
        Schema::builder()
            .string("status")
            .string("state")
            .number("open_breakers")
            .number("failed_components")
            .number("degraded_components")
            .number("retries_1h")
            .number("give_ups_1h")
            .build()
            .expect("the report's variable names are valid identifiers")
    }
}

impl Variables for HealthReport {
    fn get(&self, name: &str) -> Option<Value<'_>> {
        Some(match name {
            "status" => self.status.as_str().into(),
            "state" => self.worst_breaker_state().as_str().into(),
            "open_breakers" => self.open_breakers.into(),
            "failed_components" => self.failed_components.into(),
            "degraded_components" => self.degraded_components.into(),
            "retries_1h" => self.retries_last_hour.into(),
            "give_ups_1h" => self.give_ups_last_hour.into(),
            _ => return None,
        })
    }
}
