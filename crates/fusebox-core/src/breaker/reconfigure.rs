//! Reconfiguring a live breaker: its config, its window and the flags derived from them
//! form one revision ([`Tuning`]); a reconfiguration publishes a new one and keeps the
//! state and counts, by the rules of [`algorithm::retune`](super::algorithm::retune).

use std::sync::Arc;

use super::algorithm::{WindowChange, after_retune, retune};
use super::config::{BreakerConfig, BreakerSettings, WindowKind};
use super::handle::Breaker;
use super::listener::BreakerListener;
use super::shared::{Shared, lock};
use super::stats::State;
use super::window::AtomicWindow;
use super::word::{generation_of, state_of};
use crate::ConfigError;
use crate::sync::Ordering;

/// One revision of a breaker's settings, with what the hot paths derive from them.
pub(super) struct Tuning {
    pub(super) config: BreakerConfig,
    /// Shared between revisions that keep the same window.
    pub(super) window: Option<Arc<AtomicWindow>>,
    pub(super) flags: Flags,
}

/// What the fast paths need to know of a tuning, packed in a byte the breaker keeps beside
/// its state word.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Flags(pub(super) u8);

impl Flags {
    /// A permit must note its start time (a slow-call rule, or a listener of outcomes).
    const TIMES_CALLS: u8 = 1;
    /// Recording any outcome needs the time (time window, outcome log, slow rule).
    const RECORDS_TIME: u8 = 1 << 1;
    /// Some rule a success can make fire (a rate or custom rule, over a window).
    const JUDGES_SUCCESSES: u8 = 1 << 2;
    /// There is a window to record into.
    const HAS_WINDOW: u8 = 1 << 3;
    /// No listener, no outcome log, no shadow mode: a rejection has nothing to report
    /// beyond `tracing`.
    const QUIET_REJECTIONS: u8 = 1 << 4;

    #[inline(always)]
    pub(super) fn times_calls(self) -> bool {
        self.0 & Self::TIMES_CALLS != 0
    }
    #[inline(always)]
    pub(super) fn records_time(self) -> bool {
        self.0 & Self::RECORDS_TIME != 0
    }
    #[inline(always)]
    pub(super) fn judges_successes(self) -> bool {
        self.0 & Self::JUDGES_SUCCESSES != 0
    }
    #[inline(always)]
    pub(super) fn quiet_rejections(self) -> bool {
        self.0 & Self::QUIET_REJECTIONS != 0
    }
    /// Recording an outcome reads the tuning: a window to record into, or a slow-call rule
    /// to judge the duration by.
    #[inline(always)]
    pub(super) fn uses_tuning(self) -> bool {
        self.0 & (Self::HAS_WINDOW | Self::TIMES_CALLS) != 0
    }
}

impl Tuning {
    /// The revision for `config` with `window`, on a breaker with these `listeners` that
    /// `logs` outcomes or not (both fixed at build).
    pub(super) fn new(
        config: BreakerConfig,
        window: Option<Arc<AtomicWindow>>,
        listeners: &[Arc<dyn BreakerListener>],
        logs: bool,
    ) -> Tuning {
        let reports_outcomes = listeners.iter().any(|l| l.wants_outcomes());
        let times_calls = config.measures_duration() || reports_outcomes;
        let records_time =
            times_calls || logs || matches!(config.window, Some(WindowKind::Time { .. }));
        let judges_successes = window.is_some() && config.rules.judges_successes();
        // A shadow breaker's rejections are counted and reported: never the quiet path.
        let quiet_rejections = listeners.is_empty() && !logs && !config.shadow;
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        let flags = Flags(
            flag(times_calls, Flags::TIMES_CALLS)
                | flag(records_time, Flags::RECORDS_TIME)
                | flag(judges_successes, Flags::JUDGES_SUCCESSES)
                | flag(window.is_some(), Flags::HAS_WINDOW)
                | flag(quiet_rejections, Flags::QUIET_REJECTIONS),
        );
        Tuning {
            config,
            window,
            flags,
        }
    }
}

/// What a reconfiguration did, returned by [`Breaker::reconfigure`] and
/// [`Machine::reconfigure`](super::Machine::reconfigure).
///
/// ```
/// use fusebox_core::breaker::{algorithm::WindowChange, Breaker, State};
/// let breaker = Breaker::builder("db").failures_in_last(5, 20).build()?;
/// let done = breaker.reconfigure(Breaker::builder("db").failures_in_last(3, 20).build_config()?)?;
/// assert_eq!((done.revision, done.window, done.state), (1, WindowChange::Kept, State::Closed));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconfigured {
    /// How many times the breaker has been reconfigured, this one included.
    pub revision: usize,
    /// What became of the outcome window.
    pub window: WindowChange,
    /// The state right after, once the new rules were judged on the kept counts.
    pub state: State,
}

impl Shared {
    /// Publishes `config` as the current revision, by the rules of `retune`, then judges the
    /// new rules on the kept counts.
    pub(super) fn reconfigure(&self, config: BreakerConfig) -> Result<Reconfigured, ConfigError> {
        let (revision, change) = {
            // Under the transition lock: a trip cannot interleave with the swap of windows.
            let _slow = lock(&self.slow);
            let current = self.tuning.current();
            let change = retune(&current.config, &config)?;
            let window = match change {
                WindowChange::Kept => current.window.clone(),
                WindowChange::Replaced | WindowChange::Started => {
                    config.window.map(|kind| Arc::new(AtomicWindow::new(kind)))
                }
                WindowChange::Dropped | WindowChange::None => None,
            };
            if window.is_some() && change != WindowChange::Kept {
                // A new, empty window: every success is judged until it holds `min_calls`.
                self.below_minimum.store(true, Ordering::Relaxed);
            }
            let tuning = Tuning::new(config, window, &self.listeners, self.log.is_some());
            let flags = tuning.flags;
            let revision = self.tuning.replace(tuning);
            // After the tuning: a flag never points at a window not yet published.
            self.flags.store(flags.0, Ordering::Release);
            (revision, change)
        };
        let tuning = self.tuning.current();
        tracing::info!(
            breaker = %self.name,
            revision,
            window = ?change,
            "circuit breaker reconfigured"
        );
        let word = self.settle();
        let now = self.now();
        let state = state_of(word);
        let stats = self.window_stats(now);
        let trials = self.gate.tally();
        let this_episode = trials.tag == super::gate::tag_of(generation_of(word));
        let (successes, failures) = match state {
            // A fleet judges its own trials; the link hands them over.
            State::HalfOpen if this_episode && !self.defers_trials() => {
                (trials.successes, trials.failures)
            }
            _ => (0, 0),
        };
        if state == State::Closed {
            self.below_minimum.store(
                super::algorithm::below_minimum(&tuning.config, &stats),
                Ordering::Relaxed,
            );
        }
        let consecutive = self.consecutive.load(Ordering::Acquire);
        if let Some((to, reason)) = after_retune(
            &tuning.config,
            state,
            consecutive,
            &stats,
            successes,
            failures,
        ) {
            self.transition(word, to, reason, now);
        }
        Ok(Reconfigured {
            revision,
            window: change,
            state: state_of(self.state.load(Ordering::Acquire)),
        })
    }

    fn defers_trials(&self) -> bool {
        self.fleet.as_ref().is_some_and(|link| link.defers_trials())
    }
}

impl Breaker {
    /// Replaces the breaker's configuration while it runs, keeping its state and the counts
    /// the new configuration can use; every clone (and every permit in flight) follows.
    ///
    /// What is kept and what resets is [`algorithm::retune`](super::algorithm::retune)'s rule:
    /// the state, the consecutive-failure count, the trip count and the half-open trials are
    /// kept; the window is kept when its kind and size stay, else a new one starts empty; the
    /// new rules are judged at once on the kept counts, so a lowered threshold the counts
    /// already reach opens the breaker now. An OPEN breaker keeps the end of the cooldown it
    /// drew; the new cooldown applies from the next trip. A call that started before and ends
    /// after is recorded under the new rules (it is slow only if it was timed from its start).
    ///
    /// A configuration that changes `outcome_log` or `seed` is refused with the field named,
    /// and the breaker keeps its configuration. Each revision stays allocated until the
    /// breaker is dropped (a few hundred bytes, plus the old window when it was replaced):
    /// reconfigure when settings change, not on every call.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    ///
    /// let breaker = Breaker::builder("payments").consecutive_failures(5).build()?;
    /// for _ in 0..3 {
    ///     breaker.try_acquire().expect("closed").failure();
    /// }
    /// assert_eq!(breaker.state(), State::Closed);
    ///
    /// // Three failures in a row were fine under five; a threshold of three trips at once.
    /// let stricter = Breaker::builder("payments").consecutive_failures(3).build_config()?;
    /// let done = breaker.reconfigure(stricter)?;
    /// assert_eq!(done.state, State::Open);
    /// assert_eq!(breaker.config().consecutive_failures(), Some(3));
    ///
    /// // Refused, naming the field: the old configuration stays.
    /// let logged = Breaker::builder("payments").outcome_log(64).build_config()?;
    /// assert_eq!(breaker.reconfigure(logged).unwrap_err().field(), Some("outcome_log"));
    /// assert_eq!(breaker.config().consecutive_failures(), Some(3));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn reconfigure(&self, config: BreakerConfig) -> Result<Reconfigured, ConfigError> {
        self.shared.reconfigure(config)
    }

    /// [`reconfigure`](Self::reconfigure) from raw settings (a reloaded file's), validated as
    /// [`BreakerBuilder::settings`](super::BreakerBuilder::settings) would; a rule given in
    /// code ([`trip_when`](super::BreakerBuilder::trip_when)) is kept. An invalid setting is
    /// refused with its field named, and the breaker keeps its configuration.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, BreakerSettings};
    /// use std::time::Duration;
    ///
    /// let breaker = Breaker::builder("search").failures_in_last(5, 20).build()?;
    /// let reloaded = BreakerSettings {
    ///     failures_in_window: Some(3),
    ///     window_calls: Some(20),
    ///     cooldown: Some(Duration::from_secs(10)),
    ///     ..Default::default()
    /// };
    /// breaker.reconfigure_settings(&reloaded)?;
    /// assert_eq!(breaker.config().failures_in_window(), Some(3));
    ///
    /// let bad = BreakerSettings { failure_rate: Some(1.5), ..reloaded };
    /// assert_eq!(breaker.reconfigure_settings(&bad).unwrap_err().field(), Some("failure_rate"));
    /// assert_eq!(breaker.config().failures_in_window(), Some(3)); // unchanged
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn reconfigure_settings(
        &self,
        settings: &BreakerSettings,
    ) -> Result<Reconfigured, ConfigError> {
        self.reconfigure(self.config_for(settings)?)
    }

    /// The configuration [`reconfigure_settings`](Self::reconfigure_settings) would apply:
    /// `settings` validated, with this breaker's code-given rule and, where the settings do
    /// not name them, its `outcome_log` and `seed`. Applying nothing, it lets a caller check
    /// many changes before making any.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, BreakerSettings};
    /// let breaker = Breaker::builder("a").outcome_log(8).build()?;
    /// let settings = BreakerSettings { consecutive_failures: Some(2), ..Default::default() };
    /// let config = breaker.config_for(&settings)?;
    /// assert_eq!((config.consecutive_failures(), config.outcome_log()), (Some(2), 8));
    /// assert_eq!(breaker.config().consecutive_failures(), Some(5)); // nothing applied
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn config_for(&self, settings: &BreakerSettings) -> Result<BreakerConfig, ConfigError> {
        let current = &self.shared.tuning.current().config;
        // What only a build sets stays as built unless the settings name it.
        let settings = BreakerSettings {
            outcome_log: settings.outcome_log.or(Some(current.outcome_log)),
            seed: settings.seed.or(current.seed),
            ..settings.clone()
        };
        settings.validate(current.rules.custom.clone())
    }

    /// How many times the breaker has been reconfigured (0: never).
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let breaker = Breaker::builder("a").build()?;
    /// assert_eq!(breaker.revision(), 0);
    /// breaker.reconfigure(Breaker::builder("a").consecutive_failures(2).build_config()?)?;
    /// assert_eq!(breaker.revision(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn revision(&self) -> usize {
        self.shared.tuning.revision()
    }
}
