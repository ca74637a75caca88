//! The builder of a [`ModeController`]: the modes, their rules and callbacks, and the
//! checks [`build`](ModeControllerBuilder::build) makes before a controller exists.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use super::{
    Callback, Inner, MemoryModeStore, ModeController, ModeStore, ModeTransition, Selection,
};
use crate::health::HealthReport;
use fusebox_core::ConfigError;
use fusebox_core::breaker::Name;
use fusebox_core::clock::{IntoClock, SharedClock, UnixClock};
use fusebox_rule::{Rule, Schema};

/// Builds a [`ModeController`]; [`build`](Self::build) checks the modes, compiles the rules
/// against the schema and reports the first problem as a [`ConfigError`].
///
/// ```
/// use fusebox_health::mode::ModeController;
/// let err = ModeController::builder("c", ["PRIMARY", "SAFE"])
///     .rule("SAFE", "latency_ms > 300") // not a report variable
///     .build()
///     .unwrap_err();
/// assert_eq!(err.field(), Some("rule"));
/// assert!(err.to_string().contains("latency_ms"));
/// ```
#[must_use]
pub struct ModeControllerBuilder {
    pub(super) name: Name,
    pub(super) modes: Vec<String>,
    pub(super) rules: Vec<(String, String)>,
    pub(super) schema: Option<Schema>,
    pub(super) on_enter: Vec<(Option<String>, Callback)>,
    pub(super) store: Option<Arc<dyn ModeStore>>,
    pub(super) history: usize,
    pub(super) clock: Option<SharedClock>,
}

impl fmt::Debug for ModeControllerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModeControllerBuilder")
            .field("name", &self.name)
            .field("modes", &self.modes)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl ModeControllerBuilder {
    /// Adds a rule that selects `mode` when it holds. A mode may have several rules (any of
    /// them selects it); the first mode, the default, takes none.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// let c = ModeController::builder("c", ["PRIMARY", "SAFE"])
    ///     .rule("SAFE", "failed_components >= 2")
    ///     .rule("SAFE", r#"status == "unhealthy""#)
    ///     .build()?;
    /// assert_eq!(c.rules().len(), 2);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn rule(mut self, mode: impl Into<String>, source: impl Into<String>) -> Self {
        self.rules.push((mode.into(), source.into()));
        self
    }

    /// The variables rules may read (default: [`HealthReport::schema`]); evaluate with
    /// [`ModeController::evaluate`] over values that supply them.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// use fusebox_rule::{Schema, Value};
    /// let schema = Schema::builder().number("queue_depth").build()?;
    /// let c = ModeController::builder("ingest", ["NORMAL", "SHED"])
    ///     .schema(schema)
    ///     .rule("SHED", "queue_depth > 1000")
    ///     .build()?;
    /// c.evaluate(&[("queue_depth", Value::from(5000))])?;
    /// assert_eq!(c.mode(), "SHED");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn schema(mut self, schema: Schema) -> Self {
        self.schema = Some(schema);
        self
    }

    /// Calls `f` each time the controller enters `mode`.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// # use std::sync::{Arc, Mutex};
    /// let entered = Arc::new(Mutex::new(Vec::new()));
    /// let log = entered.clone();
    /// let c = ModeController::builder("c", ["PRIMARY", "SAFE"])
    ///     .on_enter("SAFE", move |t| log.lock().unwrap().push(t.reason.clone()))
    ///     .build()?;
    /// c.set_override("SAFE", "drill")?;
    /// assert_eq!(*entered.lock().unwrap(), ["override: drill"]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_enter<F>(mut self, mode: impl Into<String>, f: F) -> Self
    where
        F: Fn(&ModeTransition) + Send + Sync + 'static,
    {
        self.on_enter.push((Some(mode.into()), Arc::new(f)));
        self
    }

    /// Calls `f` on every change of mode.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// # use std::sync::{Arc, Mutex};
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let c = ModeController::builder("c", ["PRIMARY", "SAFE"])
    ///     .on_change(move |t| log.lock().unwrap().push(t.to.clone()))
    ///     .build()?;
    /// c.set_override("SAFE", "drill")?;
    /// c.clear_override();
    /// assert_eq!(*seen.lock().unwrap(), ["SAFE", "PRIMARY"]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_change<F>(mut self, f: F) -> Self
    where
        F: Fn(&ModeTransition) + Send + Sync + 'static,
    {
        self.on_enter.push((None, Arc::new(f)));
        self
    }

    /// Keeps transitions in `store` instead of the default in-memory log.
    ///
    /// ```
    /// use fusebox_health::mode::{MemoryModeStore, ModeController, ModeStore};
    /// use std::sync::Arc;
    /// let store = Arc::new(MemoryModeStore::new(1000)?);
    /// let c = ModeController::builder("c", ["PRIMARY", "SAFE"]).store(store.clone()).build()?;
    /// c.set_override("SAFE", "drill")?;
    /// assert_eq!(store.recent(10).len(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn store(mut self, store: Arc<dyn ModeStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// How many transitions the default in-memory log keeps (default 100, at least 1).
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// let err = ModeController::builder("c", ["A", "B"]).history(0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("history"));
    /// ```
    pub fn history(mut self, capacity: usize) -> Self {
        self.history = capacity;
        self
    }

    /// The clock that timestamps transitions (default: [`UnixClock`], nanoseconds since the
    /// Unix epoch).
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_health::mode::ModeController;
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let c = ModeController::builder("c", ["A", "B"]).clock(clock.clone()).build()?;
    /// clock.advance(Duration::from_secs(2));
    /// let t = c.set_override("B", "drill")?.unwrap();
    /// assert_eq!(t.at_nanos, 2_000_000_000);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clock(mut self, clock: impl IntoClock) -> Self {
        self.clock = Some(clock.into_handle());
        self
    }

    /// Checks the modes, compiles every rule and builds the controller, in the first mode.
    ///
    /// ```
    /// use fusebox_health::mode::ModeController;
    /// let c = ModeController::builder("c", ["PRIMARY", "SAFE"]).build()?;
    /// assert_eq!(c.mode(), "PRIMARY");
    /// let twice = ModeController::builder("c", ["A", "A"]).build().unwrap_err();
    /// assert_eq!(twice.field(), Some("modes"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<ModeController, ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::invalid("name", "must not be empty"));
        }
        if self.modes.is_empty() {
            return Err(ConfigError::invalid("modes", "needs at least one mode"));
        }
        for (i, mode) in self.modes.iter().enumerate() {
            if mode.is_empty() {
                return Err(ConfigError::invalid(
                    "modes",
                    "a mode name must not be empty",
                ));
            }
            if self.modes[..i].contains(mode) {
                return Err(ConfigError::invalid(
                    "modes",
                    format!("`{mode}` is listed twice"),
                ));
            }
        }
        let index_of = |field: &'static str, mode: &str| {
            self.modes
                .iter()
                .position(|m| m == mode)
                .ok_or_else(|| ConfigError::invalid(field, format!("`{mode}` is not a mode")))
        };
        let schema = self.schema.clone().unwrap_or_else(HealthReport::schema);
        let mut rules = Vec::with_capacity(self.rules.len());
        for (mode, source) in &self.rules {
            let index = index_of("rule", mode)?;
            if index == 0 {
                return Err(ConfigError::invalid(
                    "rule",
                    format!(
                        "`{mode}` is the default mode, chosen when no rule holds; it takes no rule"
                    ),
                ));
            }
            let rule = Rule::compile(source, &schema)
                .map_err(|e| ConfigError::invalid("rule", format!("rule for `{mode}`: {e}")))?;
            rules.push((index, rule));
        }
        // Most degraded first: the first rule that holds decides.
        rules.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
        let mut callbacks = Vec::with_capacity(self.on_enter.len());
        for (mode, f) in self.on_enter {
            let index = match mode {
                Some(mode) => Some(index_of("on_enter", &mode)?),
                None => None,
            };
            callbacks.push((index, f));
        }
        let store: Arc<dyn ModeStore> = match self.store {
            Some(store) => store,
            None => Arc::new(MemoryModeStore::new(self.history)?),
        };
        let controller = ModeController {
            inner: Arc::new(Inner {
                name: self.name,
                modes: self.modes,
                rules,
                callbacks,
                store,
                clock: self.clock.unwrap_or_else(|| UnixClock::new().into_handle()),
                state: Mutex::new(Selection {
                    chosen: 0,
                    pinned: None,
                }),
                transitions: AtomicU64::new(0),
            }),
        };
        controller.publish(0);
        Ok(controller)
    }
}
