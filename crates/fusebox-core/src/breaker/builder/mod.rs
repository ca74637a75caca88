//! The breaker's builder: settings checked once, at `build`.
//!
//! The trip rules and windows (`trip`) and the cooldown and half-open trials (`recovery`)
//! are set in files of their own; this one holds the rest and `build`.

mod recovery;
mod trip;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::Name;
use super::config::{BreakerConfig, BreakerSettings, CustomRule};
use super::handle::Breaker;
use super::link::FleetLink;
use super::listener::{BreakerListener, OnRejection, OnTransition};
use super::rejected::Rejected;
use super::stats::Transition;
use crate::ConfigError;
use crate::clock::{ClockHandle, IntoClock};

/// Builds a [`Breaker`]; every setting is checked once, by [`build`](Self::build).
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// use std::time::Duration;
///
/// let breaker = Breaker::builder("inventory")
///     .failures_in_last(3, 10) // trip when 3 of the last 10 calls failed
///     .cooldown(Duration::from_secs(5))
///     .half_open_trials(5, 5) // close after 5 of 5 trial calls succeed
///     .build()?;
/// assert_eq!(breaker.config().close_rule().successes, 5);
///
/// // Invalid settings name the field.
/// let err = Breaker::builder("bad").failures_in_last(11, 10).build().unwrap_err();
/// assert_eq!(err.field(), Some("failures_in_window"));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use]
pub struct BreakerBuilder {
    pub(super) name: Name,
    pub(super) settings: BreakerSettings,
    pub(super) custom: Option<CustomRule>,
    pub(super) clock: Option<ClockHandle>,
    pub(super) listeners: Vec<Arc<dyn BreakerListener>>,
}

impl fmt::Debug for BreakerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerBuilder")
            .field("name", &self.name)
            .field("settings", &self.settings)
            .field("custom", &self.custom)
            .field("clock", &self.clock)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

impl BreakerBuilder {
    /// Replaces every setting with `settings` (for instance loaded from TOML): the settings
    /// of earlier builder calls are dropped, whether or not `settings` sets them. What
    /// settings cannot hold (a [`trip_when`](Self::trip_when) rule, the clock, listeners) is
    /// kept. To let a file override only what it sets, use
    /// [`merge_settings`](Self::merge_settings).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, BreakerSettings};
    /// let settings = BreakerSettings { consecutive_failures: Some(2), ..Default::default() };
    /// // Earlier builder calls are replaced, not merged.
    /// let b = Breaker::builder("s").failures_in_last(3, 10).settings(settings).build()?;
    /// assert_eq!(b.config().consecutive_failures(), Some(2));
    /// assert_eq!(b.config().window(), None);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn settings(mut self, settings: BreakerSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Lays `settings` over the builder's: every field `settings` sets wins, every field it
    /// leaves unset keeps what earlier builder calls chose. Code gives the defaults, a file
    /// or the environment overrides them. Rules add up: a file that sets
    /// `consecutive_failures` over a builder with `failures_in_last` keeps both trip rules.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, BreakerSettings, Cooldown, WindowKind};
    /// use std::time::Duration;
    /// let from_file = BreakerSettings {
    ///     cooldown: Some(Duration::from_secs(10)),
    ///     ..Default::default()
    /// };
    /// let b = Breaker::builder("s")
    ///     .failures_in_last(3, 10)
    ///     .cooldown(Duration::from_secs(5))
    ///     .merge_settings(from_file)
    ///     .build()?;
    /// assert_eq!(b.config().window(), Some(WindowKind::Count { calls: 10 })); // kept
    /// assert_eq!(b.config().failures_in_window(), Some(3));                   // kept
    /// assert!(matches!(b.config().cooldown(), Cooldown::Fixed { duration, .. }
    ///     if duration == Duration::from_secs(10)));                             // overridden
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn merge_settings(mut self, settings: BreakerSettings) -> Self {
        self.settings = settings.over(std::mem::take(&mut self.settings));
        self
    }
    /// Keeps the last `n` outcomes for [`Breaker::snapshot`] (costs a clock read and two
    /// atomic writes per call; off by default).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, LoggedOutcome};
    /// use fusebox_core::clock::ManualClock;
    /// let b = Breaker::builder("log").outcome_log(2).clock(ManualClock::new()).build()?;
    /// b.record_success();
    /// b.record_failure();
    /// b.record_success();
    /// let kinds: Vec<_> = b.snapshot().recent.iter().map(|e| e.outcome).collect();
    /// assert_eq!(kinds, [LoggedOutcome::Failure, LoggedOutcome::Success]); // the last 2
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn outcome_log(mut self, n: u32) -> Self {
        self.settings.outcome_log = Some(n);
        self
    }
    /// Shadow mode, for tuning thresholds in production before enforcing them: the breaker
    /// counts, trips, cools down and runs its trials exactly as it would, reports every
    /// transition, but admits the calls it would have rejected. Each such call is counted
    /// ([`Snapshot::shadow_rejections`](super::Snapshot::shadow_rejections)), reported to
    /// listeners ([`BreakerListener::on_shadow_rejection`](super::BreakerListener::on_shadow_rejection),
    /// a metrics counter) and traced; its outcome is not recorded, since an enforcing
    /// breaker would not have seen it. An operator's [`force_open`](super::Breaker::force_open)
    /// still rejects: it is a command, not a decision of the breaker's.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("payments").consecutive_failures(2).shadow(true).build()?;
    /// b.record_failure();
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Open); // it decided to open...
    /// assert!(b.try_acquire().is_ok()); // ...but lets the call through,
    /// assert_eq!(b.snapshot().shadow_rejections, 1); // and counts it
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn shadow(mut self, shadow: bool) -> Self {
        self.settings.shadow = Some(shadow);
        self
    }
    /// Lets a failure's server-given delay (an HTTP `Retry-After` on a 429 or 503, gRPC
    /// retry info) set how long the breaker opens, instead of its cooldown, up to `max`. The
    /// delay comes from the classifier ([`Classifier::retry_after`](crate::Classifier::retry_after):
    /// fusebox's HTTP, reqwest and gRPC classifiers read it) or from
    /// [`Permit::failure_with_retry_after`](super::Permit::failure_with_retry_after).
    ///
    /// The breaker opens until the latest such deadline when it trips or a trial fails,
    /// whether that is sooner or later than its cooldown (the server knows when it will be
    /// back); a trip with no live hint uses the cooldown. A longer delay is cut to `max`; a
    /// zero `max` is refused, naming `retry_after_max`.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let b = Breaker::builder("quotes")
    ///     .consecutive_failures(1)
    ///     .cooldown(Duration::from_secs(30))
    ///     .open_for_retry_after(Duration::from_secs(600))
    ///     .clock(clock.clone())
    ///     .build()?;
    /// // A 429 answered with `Retry-After: 120`:
    /// b.try_acquire()?.failure_with_retry_after(Some(Duration::from_secs(120)));
    /// assert_eq!(b.state(), State::Open);
    /// clock.advance(Duration::from_secs(30)); // the cooldown alone would end here
    /// assert_eq!(b.state(), State::Open);
    /// clock.advance(Duration::from_secs(90));
    /// assert_eq!(b.state(), State::HalfOpen);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open_for_retry_after(mut self, max: Duration) -> Self {
        self.settings.retry_after_max = Some(max);
        self
    }
    /// Seeds the cooldown jitter.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_core::clock::ManualClock;
    /// let build = || {
    ///     let b = Breaker::builder("s").cooldown_jitter(0.5).seed(7);
    ///     b.clock(ManualClock::new()).build()
    /// };
    /// let (a, b) = (build()?, build()?);
    /// a.trip("drill");
    /// b.trip("drill");
    /// assert_eq!(a.snapshot().remaining_cooldown, b.snapshot().remaining_cooldown);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.settings.seed = Some(seed);
        self
    }
    /// The clock (default: [`MonotonicClock`](crate::clock::MonotonicClock), or
    /// [`PreciseClock`](crate::clock::PreciseClock) when a slow-call threshold under 50 ms is
    /// set).
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let b = Breaker::builder("c")
    ///     .cooldown(Duration::from_secs(5))
    ///     .clock(clock.clone())
    ///     .build()?;
    /// b.trip("drill");
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(Duration::from_secs(3)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clock(mut self, clock: impl IntoClock) -> Self {
        self.clock = Some(clock.into_handle().0);
        self
    }
    /// Adds a listener for transitions and rejections.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, BreakerListener, Transition};
    /// # use std::sync::Arc;
    /// # use std::sync::atomic::{AtomicU64, Ordering};
    /// struct Generation(AtomicU64);
    /// impl BreakerListener for Generation {
    ///     fn on_transition(&self, t: &Transition) {
    ///         self.0.store(t.generation, Ordering::Relaxed);
    ///     }
    /// }
    /// let seen = Arc::new(Generation(AtomicU64::new(0)));
    /// let b = Breaker::builder("l").listener(seen.clone()).build()?;
    /// b.force_open();
    /// b.reset();
    /// assert_eq!(seen.0.load(Ordering::Relaxed), 2);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn listener(mut self, listener: Arc<dyn BreakerListener>) -> Self {
        self.listeners.push(listener);
        self
    }
    /// Calls `f` on every state change.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, TransitionReason};
    /// # use std::sync::{Arc, Mutex};
    /// let reasons = Arc::new(Mutex::new(Vec::new()));
    /// let log = reasons.clone();
    /// let b = Breaker::builder("t")
    ///     .on_transition(move |t| log.lock().unwrap().push(t.reason.clone()))
    ///     .build()?;
    /// b.force_open();
    /// b.reset();
    /// let expected = [TransitionReason::ForcedOpen, TransitionReason::Reset];
    /// assert_eq!(*reasons.lock().unwrap(), expected);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_transition<F>(self, f: F) -> Self
    where
        F: Fn(&Transition) + Send + Sync + 'static,
    {
        self.listener(Arc::new(OnTransition(f)))
    }
    /// Calls `f` on every rejected call.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// # use std::sync::{Arc, Mutex};
    /// let rejected = Arc::new(Mutex::new(Vec::new()));
    /// let log = rejected.clone();
    /// let b = Breaker::builder("r")
    ///     .on_rejection(move |r| log.lock().unwrap().push(r.state()))
    ///     .build()?;
    /// b.force_open();
    /// assert!(b.call_sync(|| Ok::<_, ()>(())).is_err());
    /// assert_eq!(*rejected.lock().unwrap(), [State::ForcedOpen]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_rejection<F>(self, f: F) -> Self
    where
        F: Fn(&Rejected) + Send + Sync + 'static,
    {
        self.listener(Arc::new(OnRejection(f)))
    }

    /// Validates the settings into a [`BreakerConfig`] without building a breaker, for the
    /// sans-IO [`Machine`](super::Machine) and [`decide`](super::decide).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Machine};
    /// let config = Breaker::builder("m").consecutive_failures(2).build_config()?;
    /// let machine = Machine::new("m", config);
    /// assert_eq!(machine.config().consecutive_failures(), Some(2));
    /// let err = Breaker::builder("m").half_open_trials(6, 5).build_config().unwrap_err();
    /// assert_eq!(err.field(), Some("half_open_successes"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build_config(&self) -> Result<BreakerConfig, ConfigError> {
        self.settings.validate(self.custom.clone())
    }

    /// Validates every setting and builds the breaker.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("orders").build()?;
    /// assert_eq!(b.state(), State::Closed);
    /// assert_eq!(Breaker::builder("").build().unwrap_err().field(), Some("name"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<Breaker, ConfigError> {
        self.build_with(None)
    }

    /// Builds the breaker with a [`FleetLink`] to an engine that keeps it in step with other
    /// instances (see [`link`](super::link)).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, FleetLink};
    /// let b = Breaker::builder("db").build_linked(FleetLink::new(Box::new(|| {})))?;
    /// assert!(b.link().is_some());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build_linked(self, link: FleetLink) -> Result<Breaker, ConfigError> {
        self.build_with(Some(Box::new(link)))
    }

    fn build_with(self, fleet: Option<Box<FleetLink>>) -> Result<Breaker, ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::invalid("name", "must not be empty"));
        }
        let config = self.build_config()?;
        let clock = self.clock.unwrap_or_else(|| match config.rules.slow {
            Some(slow) if slow.threshold_nanos < 50_000_000 => ClockHandle::Precise,
            _ => ClockHandle::Monotonic,
        });
        Ok(Breaker::from_parts(
            self.name,
            config,
            clock,
            self.listeners,
            fleet,
        ))
    }
}

impl BreakerSettings {
    /// These settings laid over `base`: each field set here wins, each field left unset takes
    /// `base`'s value. What [`BreakerBuilder::merge_settings`]
    /// does to a builder's settings.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// let base = BreakerSettings { consecutive_failures: Some(5), min_calls: Some(10), ..Default::default() };
    /// let file = BreakerSettings { consecutive_failures: Some(3), ..Default::default() };
    /// let merged = file.over(base);
    /// assert_eq!((merged.consecutive_failures, merged.min_calls), (Some(3), Some(10)));
    /// ```
    pub fn over(self, base: BreakerSettings) -> BreakerSettings {
        // Destructured, so that a new field cannot be forgotten here.
        let BreakerSettings {
            consecutive_failures,
            failures_in_window,
            failure_rate,
            min_calls,
            window_calls,
            window_span,
            window_buckets,
            slow_call_threshold,
            slow_call_rate,
            cooldown,
            cooldown_max,
            cooldown_factor,
            cooldown_jitter,
            half_open_successes,
            half_open_trials,
            half_open_concurrency,
            half_open_max_duration,
            outcome_log,
            seed,
            shadow,
            retry_after_max,
        } = self;
        BreakerSettings {
            consecutive_failures: consecutive_failures.or(base.consecutive_failures),
            failures_in_window: failures_in_window.or(base.failures_in_window),
            failure_rate: failure_rate.or(base.failure_rate),
            min_calls: min_calls.or(base.min_calls),
            window_calls: window_calls.or(base.window_calls),
            window_span: window_span.or(base.window_span),
            window_buckets: window_buckets.or(base.window_buckets),
            slow_call_threshold: slow_call_threshold.or(base.slow_call_threshold),
            slow_call_rate: slow_call_rate.or(base.slow_call_rate),
            cooldown: cooldown.or(base.cooldown),
            cooldown_max: cooldown_max.or(base.cooldown_max),
            cooldown_factor: cooldown_factor.or(base.cooldown_factor),
            cooldown_jitter: cooldown_jitter.or(base.cooldown_jitter),
            half_open_successes: half_open_successes.or(base.half_open_successes),
            half_open_trials: half_open_trials.or(base.half_open_trials),
            half_open_concurrency: half_open_concurrency.or(base.half_open_concurrency),
            half_open_max_duration: half_open_max_duration.or(base.half_open_max_duration),
            outcome_log: outcome_log.or(base.outcome_log),
            seed: seed.or(base.seed),
            shadow: shadow.or(base.shadow),
            retry_after_max: retry_after_max.or(base.retry_after_max),
        }
    }
}
