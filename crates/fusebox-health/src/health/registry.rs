//! The registry of components and the checks it runs.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use fusebox_core::ConfigError;
use fusebox_core::breaker::{Breaker, Name, Snapshot, State};
use fusebox_core::check;
use fusebox_policy::policy::Bulkhead;

use super::report::{ComponentHealth, ComponentKind, HealthReport, HealthStatus};
use super::retry::RetryStats;

/// What a health check found.
///
/// A check may return a `CheckOutcome`, a [`HealthStatus`], or a `Result<(), E>` whose error
/// becomes the detail of an unhealthy outcome.
///
/// ```
/// use fusebox_health::health::{CheckOutcome, HealthStatus};
/// let down = CheckOutcome::from(Err::<(), _>("connection refused"));
/// assert_eq!(down, CheckOutcome::unhealthy("connection refused"));
/// assert_eq!(CheckOutcome::from(Ok::<(), String>(())).status, HealthStatus::Healthy);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckOutcome {
    /// The status found.
    pub status: HealthStatus,
    /// Why, if there is something to say.
    pub detail: Option<String>,
}

impl CheckOutcome {
    /// All is well.
    ///
    /// ```
    /// use fusebox_health::health::{CheckOutcome, HealthStatus};
    /// assert_eq!(CheckOutcome::healthy().status, HealthStatus::Healthy);
    /// ```
    pub fn healthy() -> Self {
        CheckOutcome {
            status: HealthStatus::Healthy,
            detail: None,
        }
    }

    /// Working, with less capacity or on a fallback.
    ///
    /// ```
    /// use fusebox_health::health::{CheckOutcome, HealthStatus};
    /// let slow = CheckOutcome::degraded("replica lag 40s");
    /// assert_eq!(slow.status, HealthStatus::Degraded);
    /// ```
    pub fn degraded(detail: impl Into<String>) -> Self {
        CheckOutcome {
            status: HealthStatus::Degraded,
            detail: Some(detail.into()),
        }
    }

    /// Not working.
    ///
    /// ```
    /// use fusebox_health::health::{CheckOutcome, HealthStatus};
    /// assert_eq!(CheckOutcome::unhealthy("disk full").detail.as_deref(), Some("disk full"));
    /// ```
    pub fn unhealthy(detail: impl Into<String>) -> Self {
        CheckOutcome {
            status: HealthStatus::Unhealthy,
            detail: Some(detail.into()),
        }
    }
}

impl From<HealthStatus> for CheckOutcome {
    fn from(status: HealthStatus) -> Self {
        CheckOutcome {
            status,
            detail: None,
        }
    }
}

impl<E: fmt::Display> From<Result<(), E>> for CheckOutcome {
    fn from(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => CheckOutcome::healthy(),
            Err(e) => CheckOutcome::unhealthy(e.to_string()),
        }
    }
}

type BoxedCheck = Pin<Box<dyn Future<Output = CheckOutcome> + Send>>;
type CheckFn = Arc<dyn Fn() -> BoxedCheck + Send + Sync>;

/// A named async health check with a timeout, from [`HealthCheck::builder`].
#[derive(Clone)]
pub struct HealthCheck {
    name: Name,
    timeout: Duration,
    critical: bool,
    run: CheckFn,
}

impl fmt::Debug for HealthCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthCheck")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .field("critical", &self.critical)
            .finish()
    }
}

/// Builds a [`HealthCheck`]: a timeout (default 5 s) and whether it is critical.
///
/// ```
/// use fusebox_health::health::HealthCheck;
/// use std::time::Duration;
/// let check = HealthCheck::builder("queue", || async { Ok::<(), String>(()) })
///     .timeout(Duration::from_millis(500))
///     .build()?;
/// assert_eq!(check.timeout(), Duration::from_millis(500));
/// let err = HealthCheck::builder("queue", || async { Ok::<(), String>(()) })
///     .timeout(Duration::ZERO)
///     .build()
///     .unwrap_err();
/// assert_eq!(err.field(), Some("timeout"));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use]
pub struct HealthCheckBuilder {
    check: HealthCheck,
}

impl fmt::Debug for HealthCheckBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HealthCheckBuilder")
            .field(&self.check)
            .finish()
    }
}

impl HealthCheck {
    /// Starts a check called `name` that runs `check` each time a report is made.
    ///
    /// ```
    /// use fusebox_health::health::{CheckOutcome, HealthCheck};
    /// let check = HealthCheck::builder("cache", || async { CheckOutcome::degraded("cold") })
    ///     .build()?;
    /// assert_eq!(check.name(), "cache");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder<F, Fut, O>(name: impl Into<Name>, check: F) -> HealthCheckBuilder
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = O> + Send + 'static,
        O: Into<CheckOutcome>,
    {
        let run: CheckFn = Arc::new(move || {
            let fut = check();
            Box::pin(async move { fut.await.into() })
        });
        HealthCheckBuilder {
            check: HealthCheck {
                name: name.into(),
                timeout: Duration::from_secs(5),
                critical: false,
                run,
            },
        }
    }

    /// The check's name.
    ///
    /// ```
    /// use fusebox_health::health::HealthCheck;
    /// let check = HealthCheck::builder("db", || async { Ok::<(), String>(()) }).build()?;
    /// assert_eq!(check.name(), "db");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// How long the check may take before it counts as unhealthy.
    ///
    /// ```
    /// use fusebox_health::health::HealthCheck;
    /// use std::time::Duration;
    /// let check = HealthCheck::builder("db", || async { Ok::<(), String>(()) }).build()?;
    /// assert_eq!(check.timeout(), Duration::from_secs(5));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Starts the check on its own task, within its timeout, timing it.
    fn start(&self) -> tokio::task::JoinHandle<(CheckOutcome, Duration)> {
        let check = (self.run)();
        let timeout = self.timeout;
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let outcome = match tokio::time::timeout(timeout, check).await {
                Ok(outcome) => outcome,
                Err(_elapsed) => CheckOutcome::unhealthy(format!("timed out after {timeout:?}")),
            };
            (outcome, started.elapsed())
        })
    }

    /// The report line of a finished check task: a panic is an unhealthy outcome, never a
    /// panic of the report.
    fn line(
        &self,
        finished: Result<(CheckOutcome, Duration), tokio::task::JoinError>,
    ) -> ComponentHealth {
        let (outcome, elapsed) = match finished {
            Ok((outcome, elapsed)) => (outcome, Some(elapsed)),
            Err(e) if e.is_panic() => (CheckOutcome::unhealthy("the check panicked"), None),
            Err(_) => (CheckOutcome::unhealthy("the check was cancelled"), None),
        };
        let mut line =
            ComponentHealth::new(self.name.as_str(), ComponentKind::Check, outcome.status);
        line.critical = self.critical;
        line.detail = outcome.detail;
        line.elapsed_ms = elapsed.map(|d| d.as_millis() as u64);
        line
    }
}

impl HealthCheckBuilder {
    /// How long the check may take (default 5 s); past it, it counts as unhealthy.
    ///
    /// ```
    /// use fusebox_health::health::HealthCheck;
    /// use std::time::Duration;
    /// let check = HealthCheck::builder("db", || async { Ok::<(), String>(()) })
    ///     .timeout(Duration::from_secs(2))
    ///     .build()?;
    /// assert_eq!(check.timeout(), Duration::from_secs(2));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.check.timeout = timeout;
        self
    }

    /// Makes the whole report unhealthy when this check is.
    ///
    /// ```
    /// use fusebox_health::health::HealthCheck;
    /// let check = HealthCheck::builder("db", || async { Ok::<(), String>(()) })
    ///     .critical()
    ///     .build()?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn critical(mut self) -> Self {
        self.check.critical = true;
        self
    }

    /// Validates the name and the timeout.
    ///
    /// ```
    /// use fusebox_health::health::HealthCheck;
    /// let err = HealthCheck::builder("", || async { Ok::<(), String>(()) }).build().unwrap_err();
    /// assert_eq!(err.field(), Some("name"));
    /// ```
    pub fn build(self) -> Result<HealthCheck, ConfigError> {
        if self.check.name.is_empty() {
            return Err(ConfigError::invalid("name", "must not be empty"));
        }
        check::nonzero_duration("timeout", self.check.timeout)?;
        Ok(self.check)
    }
}

#[derive(Clone)]
enum Component {
    Breaker { breaker: Breaker, critical: bool },
    Bulkhead(Bulkhead),
    Retry { name: Name, stats: RetryStats },
    Check(HealthCheck),
}

impl Component {
    fn name(&self) -> &str {
        match self {
            Component::Breaker { breaker, .. } => breaker.name(),
            Component::Bulkhead(bulkhead) => bulkhead.name(),
            Component::Retry { name, .. } => name,
            Component::Check(check) => check.name(),
        }
    }
}

/// Named breakers, bulkheads, retry policies and health checks, and the report over them.
///
/// Cheap to clone; clones share the registry (hand one to an HTTP handler). Names are
/// unique across every kind of component.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_core::breaker::Breaker;
/// use fusebox_health::health::{HealthRegistry, HealthStatus};
///
/// let registry = HealthRegistry::new();
/// let payments = Breaker::builder("payments").build()?;
/// registry.add_critical_breaker(&payments)?;
/// assert!(registry.add_breaker(&payments).is_err()); // the name is taken
///
/// payments.force_open();
/// assert_eq!(registry.report().await.status, HealthStatus::Unhealthy);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Default)]
pub struct HealthRegistry {
    components: Arc<RwLock<Vec<Component>>>,
}

impl fmt::Debug for HealthRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthRegistry")
            .field("components", &self.names())
            .finish()
    }
}

impl HealthRegistry {
    /// An empty registry.
    ///
    /// ```
    /// use fusebox_health::health::HealthRegistry;
    /// assert!(HealthRegistry::new().names().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, component: Component) -> Result<(), ConfigError> {
        let mut components = self
            .components
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if components.iter().any(|c| c.name() == component.name()) {
            return Err(ConfigError::invalid(
                "name",
                format!("`{}` is already registered", component.name()),
            ));
        }
        components.push(component);
        Ok(())
    }

    /// Registers a breaker: healthy when closed or disabled, degraded when half-open,
    /// unhealthy when open.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_health::health::HealthRegistry;
    /// let registry = HealthRegistry::new();
    /// registry.add_breaker(&Breaker::builder("search").build()?)?;
    /// assert_eq!(registry.names(), ["search"]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn add_breaker(&self, breaker: &Breaker) -> Result<(), ConfigError> {
        self.add(Component::Breaker {
            breaker: breaker.clone(),
            critical: false,
        })
    }

    /// Registers a breaker whose opening makes the whole report unhealthy.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_health::health::HealthRegistry;
    /// let registry = HealthRegistry::new();
    /// registry.add_critical_breaker(&Breaker::builder("db").build()?)?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn add_critical_breaker(&self, breaker: &Breaker) -> Result<(), ConfigError> {
        self.add(Component::Breaker {
            breaker: breaker.clone(),
            critical: true,
        })
    }

    /// Registers a bulkhead: degraded while every slot is busy.
    ///
    /// ```
    /// use fusebox_health::health::HealthRegistry;
    /// use fusebox_policy::policy::Bulkhead;
    /// let registry = HealthRegistry::new();
    /// registry.add_bulkhead(&Bulkhead::builder("pool").build()?)?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn add_bulkhead(&self, bulkhead: &Bulkhead) -> Result<(), ConfigError> {
        self.add(Component::Bulkhead(bulkhead.clone()))
    }

    /// Registers a retry policy's counts under `name`.
    ///
    /// ```
    /// use fusebox_health::health::{HealthRegistry, RetryStats};
    /// let registry = HealthRegistry::new();
    /// registry.add_retry("fetch", &RetryStats::new())?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn add_retry(&self, name: impl Into<Name>, stats: &RetryStats) -> Result<(), ConfigError> {
        let name = name.into();
        if name.is_empty() {
            return Err(ConfigError::invalid("name", "must not be empty"));
        }
        self.add(Component::Retry {
            name,
            stats: stats.clone(),
        })
    }

    /// Registers a health check.
    ///
    /// ```
    /// use fusebox_health::health::{HealthCheck, HealthRegistry};
    /// let registry = HealthRegistry::new();
    /// registry.add_check(HealthCheck::builder("db", || async { Ok::<(), String>(()) }).build()?)?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn add_check(&self, check: HealthCheck) -> Result<(), ConfigError> {
        self.add(Component::Check(check))
    }

    /// Unregisters the component called `name`; false if there was none.
    ///
    /// ```
    /// use fusebox_health::health::{HealthRegistry, RetryStats};
    /// let registry = HealthRegistry::new();
    /// registry.add_retry("fetch", &RetryStats::new())?;
    /// assert!(registry.remove("fetch"));
    /// assert!(!registry.remove("fetch"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn remove(&self, name: &str) -> bool {
        let mut components = self
            .components
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = components.len();
        components.retain(|c| c.name() != name);
        components.len() != before
    }

    /// Every registered name, in registration order.
    ///
    /// ```
    /// use fusebox_health::health::{HealthRegistry, RetryStats};
    /// let registry = HealthRegistry::new();
    /// registry.add_retry("a", &RetryStats::new())?;
    /// registry.add_retry("b", &RetryStats::new())?;
    /// assert_eq!(registry.names(), ["a", "b"]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn names(&self) -> Vec<String> {
        self.snapshot()
            .iter()
            .map(|c| c.name().to_owned())
            .collect()
    }

    fn snapshot(&self) -> Vec<Component> {
        self.components
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Reads every component and runs every check, concurrently, each within its timeout
    /// (on tasks of the current tokio runtime), and aggregates the result.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_health::health::{HealthCheck, HealthRegistry, HealthStatus};
    /// use std::time::Duration;
    ///
    /// let registry = HealthRegistry::new();
    /// let hangs = HealthCheck::builder("legacy", || std::future::pending::<Result<(), String>>())
    ///     .timeout(Duration::from_secs(1))
    ///     .build()?;
    /// registry.add_check(hangs)?;
    /// let report = registry.report().await;
    /// assert_eq!(report.components[0].status, HealthStatus::Unhealthy);
    /// assert_eq!(report.components[0].detail.as_deref(), Some("timed out after 1s"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn report(&self) -> HealthReport {
        enum Line<'a> {
            Ready(ComponentHealth),
            Running(
                &'a HealthCheck,
                tokio::task::JoinHandle<(CheckOutcome, Duration)>,
            ),
        }
        let components = self.snapshot();
        // Every check starts before any is awaited, so they run side by side.
        let lines: Vec<Line<'_>> = components
            .iter()
            .map(|component| match component {
                Component::Check(check) => Line::Running(check, check.start()),
                Component::Breaker { breaker, critical } => {
                    Line::Ready(breaker_line(breaker, *critical))
                }
                Component::Bulkhead(bulkhead) => Line::Ready(bulkhead_line(bulkhead)),
                Component::Retry { name, stats } => Line::Ready(retry_line(name, stats)),
            })
            .collect();
        let mut report = Vec::with_capacity(lines.len());
        for line in lines {
            report.push(match line {
                Line::Ready(line) => line,
                Line::Running(check, task) => check.line(task.await),
            });
        }
        HealthReport::from_components(report)
    }
}

fn breaker_line(breaker: &Breaker, critical: bool) -> ComponentHealth {
    let snapshot = breaker.snapshot();
    let status = match snapshot.state {
        State::Closed | State::Disabled => HealthStatus::Healthy,
        State::HalfOpen => HealthStatus::Degraded,
        State::Open | State::ForcedOpen => HealthStatus::Unhealthy,
    };
    let mut line = ComponentHealth::new(breaker.name().as_str(), ComponentKind::Breaker, status);
    line.critical = critical;
    line.state = Some(snapshot.state);
    line.detail = match (snapshot.state, snapshot.remaining_cooldown) {
        (State::Open, Some(left)) => Some(format!("open; trial calls in {left:?}")),
        (State::ForcedOpen, _) => Some("forced open by an operator".into()),
        (State::HalfOpen, _) => Some(format!(
            "probing: {} trial successes, {} failures",
            snapshot.trial_successes, snapshot.trial_failures
        )),
        (State::Closed, _) if breaker.config().window().is_some() => Some(rates(&snapshot)),
        _ => None,
    };
    line
}

/// A closed breaker's rates, or how far its window is from judging them.
fn rates(snapshot: &Snapshot) -> String {
    let calls = snapshot.window.calls;
    match (snapshot.failure_rate, snapshot.slow_rate) {
        (Some(failures), Some(slow)) => format!(
            "failure rate {:.1} %, slow {:.1} %, over {calls} calls",
            failures * 100.0,
            slow * 100.0
        ),
        _ => format!("rates not judged yet: {calls} calls in the window"),
    }
}

fn bulkhead_line(bulkhead: &Bulkhead) -> ComponentHealth {
    let capacity = bulkhead.full_error().max_concurrent as usize;
    let free = bulkhead.available();
    let status = if free == 0 {
        HealthStatus::Degraded
    } else {
        HealthStatus::Healthy
    };
    let mut line = ComponentHealth::new(bulkhead.name().as_str(), ComponentKind::Bulkhead, status);
    line.detail = Some(format!("{free} of {capacity} slots free"));
    line
}

fn retry_line(name: &Name, stats: &RetryStats) -> ComponentHealth {
    let mut line = ComponentHealth::new(name.as_str(), ComponentKind::Retry, HealthStatus::Healthy);
    line.retries_last_hour = Some(stats.retries_last_hour());
    line.give_ups_last_hour = Some(stats.give_ups_last_hour());
    line
}
