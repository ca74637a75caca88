//! Progressive degradation: a controller that moves a service between ordered modes
//! (`PRIMARY -> HEURISTIC -> SAFE`) by rules over its health, or by hand.
//!
//! Modes are listed from normal to most degraded. Each mode but the first has rules in the
//! [rule language](fusebox_rule); on every evaluation the most degraded mode with a rule that
//! holds wins, and the first mode when none does. An operator or a coordinator may pin a mode
//! with [`ModeController::set_override`]; rules keep being evaluated underneath, and
//! [`ModeController::clear_override`] returns to what they chose.
//!
//! Rules read the variables of a [`HealthReport`] by default (`state`, `failed_components`,
//! `retries_1h`..., see [`HealthReport::schema`]); any other name is refused when the
//! controller is built.
//!
//! ```
//! use fusebox_health::health::{ComponentHealth, ComponentKind, HealthReport, HealthStatus};
//! use fusebox_health::mode::ModeController;
//!
//! let modes = ModeController::builder("checkout", ["PRIMARY", "HEURISTIC", "SAFE"])
//!     .rule("HEURISTIC", r#"(state == "open" or retries_1h > 10) and failed_components < 2"#)
//!     .rule("SAFE", "failed_components >= 2")
//!     .build()?;
//!
//! let down = |name| ComponentHealth::new(name, ComponentKind::Check, HealthStatus::Unhealthy);
//! let report = HealthReport::from_components(vec![down("db"), down("search")]);
//! let change = modes.evaluate(&report)?.expect("two failed components");
//! assert_eq!((change.from.as_str(), change.to.as_str()), ("PRIMARY", "SAFE"));
//! assert_eq!(modes.mode(), "SAFE");
//! assert!(modes.is_degraded());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The controller's builder and its checks are in `builder`; the stores of its history in
//! `store`.

mod builder;
mod store;
#[cfg(test)]
mod tests;

pub use builder::ModeControllerBuilder;
pub use store::{MemoryModeStore, ModeStore};

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[cfg(doc)]
use crate::health::HealthReport;
use fusebox_core::ConfigError;
use fusebox_core::breaker::Name;
use fusebox_core::clock::SharedClock;
use fusebox_rule::{EvalError, Rule, Variables};

/// One change of mode.
///
/// ```
/// use fusebox_health::mode::ModeTransition;
/// let t = ModeTransition::new("PRIMARY", "SAFE", "operator drill", 1_700_000_000_000_000_000);
/// assert_eq!(t.to, "SAFE");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ModeTransition {
    /// The mode left.
    pub from: String,
    /// The mode entered.
    pub to: String,
    /// Why: the rule that matched, `no rule matched`, or the override's reason.
    pub reason: String,
    /// When, in nanoseconds on the controller's clock (by default, since the Unix epoch).
    pub at_nanos: u64,
    /// Whether an override (set or cleared) caused it.
    pub manual: bool,
}

impl ModeTransition {
    /// A transition record (for stores and tests).
    ///
    /// ```
    /// use fusebox_health::mode::ModeTransition;
    /// assert!(!ModeTransition::new("A", "B", "rule", 0).manual);
    /// ```
    pub fn new(
        from: impl Into<String>,
        to: impl Into<String>,
        reason: impl Into<String>,
        at_nanos: u64,
    ) -> Self {
        ModeTransition {
            from: from.into(),
            to: to.into(),
            reason: reason.into(),
            at_nanos,
            manual: false,
        }
    }
}

type Callback = Arc<dyn Fn(&ModeTransition) + Send + Sync>;

struct Selection {
    /// The mode the rules chose last.
    chosen: usize,
    /// The mode an override pins, if any.
    pinned: Option<usize>,
}

impl Selection {
    fn current(&self) -> usize {
        self.pinned.unwrap_or(self.chosen)
    }
}

struct Inner {
    name: Name,
    modes: Vec<String>,
    /// (mode index, rule), most degraded mode first.
    rules: Vec<(usize, Rule)>,
    /// (mode entered, or every change; callback)
    callbacks: Vec<(Option<usize>, Callback)>,
    store: Arc<dyn ModeStore>,
    clock: SharedClock,
    state: Mutex<Selection>,
    transitions: AtomicU64,
}

/// Moves between ordered modes by rules over health, or by hand; see the
/// [module docs](self). Cheap to clone; clones share the mode.
///
/// ```
/// use fusebox_health::mode::ModeController;
/// let c = ModeController::builder("search", ["PRIMARY", "HEURISTIC", "SAFE"]).build()?;
/// c.set_override("HEURISTIC", "index rebuild")?;
/// assert_eq!(c.mode(), "HEURISTIC");
/// assert_eq!(c.history()[0].reason, "override: index rebuild");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ModeController {
    inner: Arc<Inner>,
}

impl fmt::Debug for ModeController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModeController")
            .field("name", &self.inner.name)
            .field("mode", &self.mode())
            .field("overridden", &self.is_overridden())
            .finish()
    }
}

impl ModeController {
    /// Starts a controller called `name` over `modes`, listed from normal to most degraded.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// let c = ModeController::builder("c", ["PRIMARY", "SAFE"]).build()?;
    /// assert_eq!(c.modes(), ["PRIMARY", "SAFE"]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder<I, S>(name: impl Into<Name>, modes: I) -> ModeControllerBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ModeControllerBuilder {
            name: name.into(),
            modes: modes.into_iter().map(Into::into).collect(),
            rules: Vec::new(),
            schema: None,
            on_enter: Vec::new(),
            store: None,
            history: 100,
            clock: None,
        }
    }

    /// The controller's name.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// assert_eq!(ModeController::builder("c", ["A"]).build()?.name(), "c");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    /// Every mode, from normal to most degraded.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// assert_eq!(ModeController::builder("c", ["A", "B"]).build()?.modes().len(), 2);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn modes(&self) -> &[String] {
        &self.inner.modes
    }

    /// The rules, most degraded mode first, as `(mode, rule)`.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// let c = ModeController::builder("c", ["A", "B"]).rule("B", "open_breakers > 0").build()?;
    /// assert_eq!(c.rules()[0].0, "B");
    /// assert_eq!(c.rules()[0].1.source(), "open_breakers > 0");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn rules(&self) -> Vec<(&str, &Rule)> {
        self.inner
            .rules
            .iter()
            .map(|(index, rule)| (self.inner.modes[*index].as_str(), rule))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Selection> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The current mode.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// assert_eq!(ModeController::builder("c", ["A", "B"]).build()?.mode(), "A");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn mode(&self) -> &str {
        let index = self.lock().current();
        &self.inner.modes[index]
    }

    /// The current mode's position, 0 being normal.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// let c = ModeController::builder("c", ["A", "B"]).build()?;
    /// c.set_override("B", "drill")?;
    /// assert_eq!(c.mode_index(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn mode_index(&self) -> usize {
        self.lock().current()
    }

    /// Whether the current mode is any but the first.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// assert!(!ModeController::builder("c", ["A", "B"]).build()?.is_degraded());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn is_degraded(&self) -> bool {
        self.mode_index() != 0
    }

    /// Whether an override pins the mode.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// let c = ModeController::builder("c", ["A", "B"]).build()?;
    /// c.set_override("A", "freeze")?;
    /// assert!(c.is_overridden());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn is_overridden(&self) -> bool {
        self.lock().pinned.is_some()
    }

    /// Mode changes since the controller was built.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// let c = ModeController::builder("c", ["A", "B"]).build()?;
    /// c.set_override("B", "drill")?;
    /// c.set_override("B", "drill again")?; // no change
    /// assert_eq!(c.transition_count(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn transition_count(&self) -> u64 {
        self.inner.transitions.load(Ordering::Relaxed)
    }

    /// The transitions the store keeps, oldest first.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// let c = ModeController::builder("c", ["A", "B"]).build()?;
    /// assert!(c.history().is_empty());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn history(&self) -> Vec<ModeTransition> {
        self.inner.store.recent(usize::MAX)
    }

    /// Evaluates the rules over `variables` (a [`HealthReport`] by default) and moves to the
    /// mode they choose; returns the transition, if the mode changed. While an override pins
    /// the mode, the choice is remembered for when it is cleared. On an error (a variable
    /// missing from a custom source) the mode stays as it is.
    ///
    /// ```
    /// use fusebox_health::health::HealthReport;
    /// use fusebox_health::mode::ModeController;
    /// let c = ModeController::builder("c", ["A", "B"]).rule("B", "open_breakers > 0").build()?;
    /// let all_well = HealthReport::from_components(vec![]);
    /// assert_eq!(c.evaluate(&all_well)?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn evaluate<V: Variables + ?Sized>(
        &self,
        variables: &V,
    ) -> Result<Option<ModeTransition>, EvalError> {
        let mut chosen = (0, None);
        for (index, rule) in &self.inner.rules {
            if rule.evaluate(variables)? {
                chosen = (*index, Some(rule));
                break;
            }
        }
        let (index, rule) = chosen;
        let reason = match rule {
            Some(rule) => format!("rule `{}` holds", rule.source()),
            None => "no rule holds".to_owned(),
        };
        Ok(self.change(|s| s.chosen = index, reason, false))
    }

    /// Pins `mode` until [`clear_override`](Self::clear_override), whatever the rules say;
    /// returns the transition, if the mode changed.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// let c = ModeController::builder("c", ["A", "B"]).build()?;
    /// let t = c.set_override("B", "failover drill")?.unwrap();
    /// assert!(t.manual);
    /// assert!(c.set_override("C", "typo").is_err());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn set_override(
        &self,
        mode: &str,
        reason: impl fmt::Display,
    ) -> Result<Option<ModeTransition>, ConfigError> {
        let index = self
            .inner
            .modes
            .iter()
            .position(|m| m == mode)
            .ok_or_else(|| ConfigError::invalid("mode", format!("`{mode}` is not a mode")))?;
        Ok(self.change(
            |s| s.pinned = Some(index),
            format!("override: {reason}"),
            true,
        ))
    }

    /// Lifts an override: the mode the rules chose last applies again. Returns the
    /// transition, if the mode changed.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// let c = ModeController::builder("c", ["A", "B"]).build()?;
    /// c.set_override("B", "drill")?;
    /// let back = c.clear_override().unwrap();
    /// assert_eq!((back.to.as_str(), back.reason.as_str()), ("A", "override cleared"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clear_override(&self) -> Option<ModeTransition> {
        self.change(|s| s.pinned = None, "override cleared".to_owned(), true)
    }

    /// Builds a report from `registry` and evaluates the rules over it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_health::health::HealthRegistry;
    /// use fusebox_health::mode::ModeController;
    ///
    /// let db = Breaker::builder("db").build()?;
    /// let registry = HealthRegistry::new();
    /// registry.add_breaker(&db)?;
    /// let modes = ModeController::builder("api", ["PRIMARY", "CACHED"])
    ///     .rule("CACHED", r#"state == "open""#)
    ///     .build()?;
    /// db.trip("probe failed");
    /// modes.update(&registry).await?;
    /// assert_eq!(modes.mode(), "CACHED");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn update(
        &self,
        registry: &crate::health::HealthRegistry,
    ) -> Result<Option<ModeTransition>, EvalError> {
        let report = registry.report().await;
        self.evaluate(&report)
    }

    /// Applies `edit` to the selection and, if the current mode changed, records and reports
    /// the transition.
    fn change(
        &self,
        edit: impl FnOnce(&mut Selection),
        reason: String,
        manual: bool,
    ) -> Option<ModeTransition> {
        let transition = {
            let mut selection = self.lock();
            let from = selection.current();
            edit(&mut selection);
            let to = selection.current();
            if from == to {
                return None;
            }
            let transition = ModeTransition {
                from: self.inner.modes[from].clone(),
                to: self.inner.modes[to].clone(),
                reason,
                at_nanos: self.inner.clock.now_nanos(),
                manual,
            };
            // Under the lock, so the store sees changes in the order they happened.
            self.inner.store.record(&transition);
            self.inner.transitions.fetch_add(1, Ordering::Relaxed);
            self.publish(to);
            transition
        };
        tracing::warn!(
            controller = %self.inner.name,
            from = %transition.from,
            to = %transition.to,
            reason = %transition.reason,
            manual = transition.manual,
            "mode changed"
        );
        #[cfg(feature = "metrics")]
        self.count_transition(&transition);
        let entered = self.mode_position(&transition.to);
        for (mode, callback) in &self.inner.callbacks {
            if mode.is_none() || *mode == entered {
                callback(&transition);
            }
        }
        Some(transition)
    }

    fn mode_position(&self, mode: &str) -> Option<usize> {
        self.inner.modes.iter().position(|m| m == mode)
    }

    #[cfg(feature = "metrics")]
    fn publish(&self, index: usize) {
        use fusebox_core::observe::names;
        // Rare (a mode change, or a controller's start): described each time, so the
        // descriptions reach whichever recorder is installed.
        fusebox_core::observe::describe_metrics();
        let label = [metrics::Label::new(
            names::LABEL_CONTROLLER,
            self.inner.name.label_value(),
        )];
        metrics::gauge!(names::MODE, label.iter()).set(index as f64);
        metrics::gauge!(names::MODE_DEGRADED, label.iter()).set(if index == 0 { 0.0 } else { 1.0 });
    }

    #[cfg(not(feature = "metrics"))]
    fn publish(&self, _index: usize) {}

    #[cfg(feature = "metrics")]
    fn count_transition(&self, transition: &ModeTransition) {
        use fusebox_core::observe::names;
        let labels = [
            metrics::Label::new(names::LABEL_CONTROLLER, self.inner.name.label_value()),
            metrics::Label::new(names::LABEL_FROM, transition.from.clone()),
            metrics::Label::new(names::LABEL_TO, transition.to.clone()),
        ];
        metrics::counter!(names::MODE_TRANSITIONS, labels.iter()).increment(1);
    }
}
