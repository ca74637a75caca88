//! The concurrent breaker: what users hold. Lock-free on the CLOSED path; transitions take a
//! short slow path and are published with a generation number so each is reported once.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;

use crate::ConfigError;
use crate::clock::{ClockHandle, IntoClock};
use crate::error::Error;
use crate::outcome::{Classifier, ErrIsFailure, Outcome};
use crate::sync::{AtomicU32, AtomicU64, Mutex, Ordering};

use super::Name;
use super::algorithm::{
    Manual, after_trial, due, enter, is_slow, judges, retry_after, trial_counts, trip,
};
use super::config::{BreakerConfig, BreakerSettings, CustomRule, WindowKind};
use super::gate::{Admission, HalfOpenGate};
use super::link::{FleetLink, Totals};
use super::stats::{
    LoggedOutcome, OutcomeEntry, OutcomeEvent, Snapshot, State, Transition, TransitionReason,
    WindowStats,
};
use super::window::{AtomicWindow, Mark, OutcomeLog, Padded};

/// A call refused by a breaker, with what a caller needs to back off.
///
/// ```
/// use fusebox_core::breaker::{Breaker, State};
/// use fusebox_core::clock::ManualClock;
/// use std::time::Duration;
///
/// let b = Breaker::builder("search")
///     .consecutive_failures(1)
///     .cooldown(Duration::from_secs(10))
///     .clock(ManualClock::new())
///     .build()?;
/// b.record_failure();
/// let rejected = b.try_acquire().unwrap_err();
/// assert_eq!(rejected.name(), "search");
/// assert_eq!(rejected.state(), State::Open);
/// assert_eq!(rejected.retry_after(), Some(Duration::from_secs(10)));
/// assert_eq!(rejected.to_string(), "circuit breaker `search` is open; retry after 10s");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker `{name}` is {}{}", self.state(), RetryHint(self.retry_after()))]
pub struct Rejected {
    name: Name,
    // The state's code and the wait in nanoseconds, rather than a `State` and an
    // `Option<Duration>`: every field a full word, so a rejection written field by field
    // and then copied as words (into a caller's `Result`, through a pipeline) reads back
    // exactly what was stored, instead of stalling store-to-load forwarding on a one-byte
    // state or a four-byte nanosecond field. The wait is also only divided into a
    // `Duration` when someone asks for it.
    state: u64,
    // Nanoseconds, `NO_HINT` when unknown.
    retry_after: u64,
}

impl Rejected {
    /// The `retry_after` word of a rejection without a hint.
    const NO_HINT: u64 = u64::MAX;

    /// A rejection by the breaker `name` in `state`, admitting calls again after
    /// `retry_after` if known: for tests, and for layers that refuse calls on a breaker's
    /// behalf. A wait is kept to the nanosecond up to `u64::MAX - 1` ns (about 584 years),
    /// and saturates there.
    ///
    /// ```
    /// use fusebox_core::breaker::{Rejected, State};
    /// use std::time::Duration;
    /// let r = Rejected::new("db", State::Open, Some(Duration::from_millis(250)));
    /// assert_eq!(r.name(), "db");
    /// assert_eq!(r.state(), State::Open);
    /// assert_eq!(r.retry_after(), Some(Duration::from_millis(250)));
    /// assert_eq!(Rejected::new("db", State::ForcedOpen, None).retry_after(), None);
    /// ```
    pub fn new(name: impl Into<Name>, state: State, retry_after: Option<Duration>) -> Self {
        // Saturates just below the "no hint" word, so a very long wait stays a wait.
        let retry_after = retry_after.map_or(Self::NO_HINT, |d| {
            u64::try_from(d.as_nanos()).map_or(Self::NO_HINT - 1, |n| n.min(Self::NO_HINT - 1))
        });
        Rejected {
            name: name.into(),
            state: state.code(),
            retry_after,
        }
    }

    /// The breaker that rejected the call.
    ///
    /// ```
    /// use fusebox_core::breaker::{Rejected, State};
    /// let r = Rejected::new("search", State::Open, None);
    /// assert_eq!(r.name(), "search");
    /// assert_eq!(r.name().as_str(), "search");
    /// ```
    #[inline]
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The breaker's state when it rejected the call.
    ///
    /// ```
    /// use fusebox_core::breaker::{Rejected, State};
    /// assert_eq!(Rejected::new("x", State::HalfOpen, None).state(), State::HalfOpen);
    /// ```
    #[inline]
    pub fn state(&self) -> State {
        State::from_code(self.state)
    }

    /// When calls may be admitted again, if known: the rest of an OPEN breaker's cooldown.
    ///
    /// ```
    /// use fusebox_core::breaker::{Rejected, State};
    /// use std::time::Duration;
    /// let r = Rejected::new("x", State::Open, Some(Duration::from_secs(3)));
    /// assert_eq!(r.retry_after(), Some(Duration::from_secs(3)));
    /// ```
    #[inline]
    pub fn retry_after(&self) -> Option<Duration> {
        (self.retry_after != Self::NO_HINT).then(|| Duration::from_nanos(self.retry_after))
    }

    /// A rejection built from the breaker's own words, on its hot path.
    #[inline(always)]
    fn from_words(name: Name, state: u64, retry_after_nanos: u64) -> Self {
        Rejected {
            name,
            state,
            retry_after: retry_after_nanos.min(Self::NO_HINT - 1),
        }
    }
}

impl fmt::Debug for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejected")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("retry_after", &self.retry_after())
            .finish()
    }
}

/// Formats a retry-after hint as `; retry after 10s`, or nothing when there is none.
pub(crate) struct RetryHint(pub(crate) Option<Duration>);

impl fmt::Display for RetryHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            // Whole milliseconds, rounded up: a coarse clock's nanoseconds are noise.
            Some(d) if d >= Duration::from_millis(1) => {
                let ms = d.as_nanos().div_ceil(1_000_000);
                write!(f, "; retry after {:?}", Duration::from_millis(ms as u64))
            }
            Some(d) => write!(f, "; retry after {d:?}"),
            None => Ok(()),
        }
    }
}

/// Receives a breaker's state changes and rejections.
///
/// Listeners run on the thread that caused the event, after the state has changed and with
/// no lock held, so they may call back into the breaker. Listeners on different threads may
/// run at once; [`Transition::generation`] orders transitions.
///
/// ```
/// use fusebox_core::breaker::{Breaker, BreakerListener, Rejected, Transition};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// #[derive(Default)]
/// struct Counter(AtomicUsize);
/// impl BreakerListener for Counter {
///     fn on_rejection(&self, _: &Rejected) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// let counter = Arc::new(Counter::default());
/// let b = Breaker::builder("x").listener(counter.clone()).build()?;
/// b.force_open();
/// assert!(b.try_acquire().is_err());
/// assert_eq!(counter.0.load(Ordering::Relaxed), 1);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub trait BreakerListener: Send + Sync + 'static {
    /// A state change.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, BreakerListener, State, Transition};
    /// # use std::sync::{Arc, Mutex};
    /// struct LastState(Mutex<Option<State>>);
    /// impl BreakerListener for LastState {
    ///     fn on_transition(&self, t: &Transition) {
    ///         *self.0.lock().unwrap() = Some(t.to);
    ///     }
    /// }
    /// let last = Arc::new(LastState(Mutex::new(None)));
    /// Breaker::builder("x").listener(last.clone()).build()?.disable();
    /// assert_eq!(*last.0.lock().unwrap(), Some(State::Disabled));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    fn on_transition(&self, transition: &Transition) {
        let _ = transition;
    }
    /// A rejected call.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, BreakerListener, Rejected, State};
    /// # use std::sync::{Arc, Mutex};
    /// struct Refusals(Mutex<Vec<State>>);
    /// impl BreakerListener for Refusals {
    ///     fn on_rejection(&self, r: &Rejected) {
    ///         self.0.lock().unwrap().push(r.state());
    ///     }
    /// }
    /// let refusals = Arc::new(Refusals(Mutex::new(Vec::new())));
    /// let b = Breaker::builder("x").listener(refusals.clone()).build()?;
    /// b.force_open();
    /// assert!(b.try_acquire().is_err());
    /// assert_eq!(*refusals.0.lock().unwrap(), [State::ForcedOpen]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    fn on_rejection(&self, rejected: &Rejected) {
        let _ = rejected;
    }
    /// Whether this listener receives [`on_outcome`](Self::on_outcome), asked once when the
    /// breaker is built. Off by default: a breaker with such a listener reads the clock when
    /// it admits a call, to time it.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerListener;
    /// struct Quiet;
    /// impl BreakerListener for Quiet {}
    /// assert!(!Quiet.wants_outcomes());
    /// ```
    fn wants_outcomes(&self) -> bool {
        false
    }
    /// A recorded outcome (success, failure or ignored), when
    /// [`wants_outcomes`](Self::wants_outcomes) says so. See [`OutcomeEvent`].
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, BreakerListener, OutcomeEvent};
    /// # use std::sync::{Arc, Mutex};
    /// struct SlowCalls(Mutex<u32>);
    /// impl BreakerListener for SlowCalls {
    ///     fn wants_outcomes(&self) -> bool {
    ///         true
    ///     }
    ///     fn on_outcome(&self, event: &OutcomeEvent) {
    ///         *self.0.lock().unwrap() += u32::from(event.slow);
    ///     }
    /// }
    /// let slow = Arc::new(SlowCalls(Mutex::new(0)));
    /// let b = Breaker::builder("x").listener(slow.clone()).build()?;
    /// b.try_acquire()?.success();
    /// assert_eq!(*slow.0.lock().unwrap(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn on_outcome(&self, event: &OutcomeEvent) {
        let _ = event;
    }
}

struct OnTransition<F>(F);
impl<F: Fn(&Transition) + Send + Sync + 'static> BreakerListener for OnTransition<F> {
    fn on_transition(&self, transition: &Transition) {
        (self.0)(transition)
    }
}

struct OnRejection<F>(F);
impl<F: Fn(&Rejected) + Send + Sync + 'static> BreakerListener for OnRejection<F> {
    fn on_rejection(&self, rejected: &Rejected) {
        (self.0)(rejected)
    }
}

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
    name: Name,
    settings: BreakerSettings,
    custom: Option<CustomRule>,
    clock: Option<ClockHandle>,
    listeners: Vec<Arc<dyn BreakerListener>>,
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
    /// Replaces every setting with `settings` (for instance loaded from TOML).
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
    /// Trips after `n` failures in a row. This is the default rule, with `n = 5`, when no
    /// other rule is set.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("db").consecutive_failures(2).build()?;
    /// b.record_failure();
    /// b.record_success(); // a success resets the run
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Closed);
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.settings.consecutive_failures = Some(n);
        self
    }
    /// Trips when `failures` of the last `calls` calls failed ("3 of the last 10").
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("api").failures_in_last(2, 5).build()?;
    /// b.record_failure();
    /// b.record_success();
    /// assert_eq!(b.state(), State::Closed);
    /// b.record_failure(); // 2 of the last 3 calls, not in a row
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn failures_in_last(mut self, failures: u32, calls: u32) -> Self {
        self.settings.failures_in_window = Some(failures);
        self.settings.window_calls = Some(calls);
        self.settings.window_span = None;
        self
    }
    /// Trips when the failure rate over the window reaches `rate` (within `(0, 1]`), once the
    /// window holds [`min_calls`](Self::min_calls) calls.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("api").count_window(4).failure_rate(0.5).build()?;
    /// b.record_success();
    /// b.record_failure();
    /// b.record_failure(); // 2 of 3 failed, but the window does not hold 4 calls yet
    /// assert_eq!(b.state(), State::Closed);
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.settings.failure_rate = Some(rate);
        self
    }
    /// Measures rates over the last `calls` calls (default 100 when a rate rule is set).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, WindowKind};
    /// let b = Breaker::builder("w").count_window(50).failure_rate(0.2).build()?;
    /// assert_eq!(b.config().window(), Some(WindowKind::Count { calls: 50 }));
    /// // Without a count window, a rate is measured over the last 100 calls.
    /// let default = Breaker::builder("w").failure_rate(0.2).build()?;
    /// assert_eq!(default.config().window(), Some(WindowKind::Count { calls: 100 }));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn count_window(mut self, calls: u32) -> Self {
        self.settings.window_calls = Some(calls);
        self
    }
    /// Measures rates over the last `span`, in `buckets` buckets (e.g. 60 s in 10).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, WindowKind};
    /// use std::time::Duration;
    /// let span = Duration::from_secs(60);
    /// let b = Breaker::builder("w").time_window(span, 10).failure_rate(0.5).build()?;
    /// assert_eq!(b.config().window(), Some(WindowKind::Time { span, buckets: 10 }));
    /// assert_eq!(b.config().min_calls(), 20); // the default for a time-based window
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn time_window(mut self, span: Duration, buckets: u32) -> Self {
        self.settings.window_span = Some(span);
        self.settings.window_buckets = Some(buckets);
        self
    }
    /// Calls needed in the window before a rate is judged.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("m").count_window(10).failure_rate(0.5).min_calls(2).build()?;
    /// b.record_failure(); // a 100 % failure rate over one call is not judged
    /// assert_eq!(b.state(), State::Closed);
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn min_calls(mut self, calls: u32) -> Self {
        self.settings.min_calls = Some(calls);
        self
    }
    /// Counts a call lasting `threshold` or more as slow, and trips when the slow-call rate
    /// over the window reaches `rate`.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let (clock, secs) = (ManualClock::new(), Duration::from_secs);
    /// let b = Breaker::builder("slow").slow_calls(secs(2), 1.0).count_window(1);
    /// let b = b.clock(clock.clone()).build()?;
    /// let permit = b.try_acquire()?;
    /// clock.advance(secs(3));
    /// permit.success(); // a success, but a slow one
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn slow_calls(mut self, threshold: Duration, rate: f64) -> Self {
        self.settings.slow_call_threshold = Some(threshold);
        self.settings.slow_call_rate = Some(rate);
        self
    }
    /// Adds a custom trip rule over the window statistics, judged after every failure or
    /// slow call.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("custom")
    ///     .trip_when(|s| s.failures >= 2 && s.failure_rate() > 0.5)
    ///     .build()?;
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Closed);
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn trip_when<F>(mut self, rule: F) -> Self
    where
        F: Fn(&WindowStats) -> bool + Send + Sync + 'static,
    {
        self.custom = Some(CustomRule(Arc::new(rule)));
        self
    }
    /// Time in OPEN before trials (default 30 s).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let b = Breaker::builder("c").cooldown(Duration::from_secs(10)).clock(clock.clone());
    /// let b = b.build()?;
    /// b.trip("drill");
    /// clock.advance(Duration::from_secs(9));
    /// assert_eq!(b.state(), State::Open);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(b.state(), State::HalfOpen);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.settings.cooldown = Some(cooldown);
        self
    }
    /// A cooldown that grows by `factor` with each consecutive trip, from `initial` up to
    /// `max`, and starts over once the breaker closes.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let (clock, secs) = (ManualClock::new(), Duration::from_secs);
    /// let b = Breaker::builder("g").cooldown_growing(secs(1), secs(60), 2.0);
    /// let b = b.clock(clock.clone()).build()?;
    /// b.trip("first");
    /// assert_eq!(b.snapshot().remaining_cooldown, Some(secs(1)));
    /// clock.advance(secs(1));
    /// b.try_acquire()?.failure(); // the trial fails: a second trip in a row
    /// assert_eq!(b.snapshot().remaining_cooldown, Some(secs(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cooldown_growing(mut self, initial: Duration, max: Duration, factor: f64) -> Self {
        self.settings.cooldown = Some(initial);
        self.settings.cooldown_max = Some(max);
        self.settings.cooldown_factor = Some(factor);
        self
    }
    /// Spreads each cooldown randomly by ± `fraction` so a fleet does not probe in step.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let b = Breaker::builder("j")
    ///     .cooldown(Duration::from_secs(10))
    ///     .cooldown_jitter(0.1)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// b.trip("drill");
    /// let left = b.snapshot().remaining_cooldown.unwrap();
    /// assert!(left >= Duration::from_secs(9) && left <= Duration::from_secs(11));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn cooldown_jitter(mut self, fraction: f64) -> Self {
        self.settings.cooldown_jitter = Some(fraction);
        self
    }
    /// Closes after `successes` of `trials` trial calls succeed ("5 of 5", "3 of 5"); a
    /// failure that makes this unreachable reopens at once. Default: 1 of 1.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let b = Breaker::builder("h").half_open_trials(2, 3).clock(clock.clone()).build()?;
    /// b.trip("drill");
    /// clock.advance(Duration::from_secs(30));
    /// b.try_acquire()?.failure(); // one failure is tolerated by "2 of 3"
    /// b.try_acquire()?.success();
    /// b.try_acquire()?.success();
    /// assert_eq!(b.state(), State::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn half_open_trials(mut self, successes: u32, trials: u32) -> Self {
        self.settings.half_open_successes = Some(successes);
        self.settings.half_open_trials = Some(trials);
        self
    }
    /// Trial calls allowed in flight at once (default: all the trials).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let b = Breaker::builder("h").half_open_trials(3, 3).half_open_concurrency(1);
    /// let b = b.clock(clock.clone()).build()?;
    /// b.trip("drill");
    /// clock.advance(Duration::from_secs(30));
    /// let trial = b.try_acquire()?;
    /// assert_eq!(b.try_acquire().unwrap_err().state(), State::HalfOpen); // one at a time
    /// trial.success();
    /// assert!(b.try_acquire().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn half_open_concurrency(mut self, n: u32) -> Self {
        self.settings.half_open_concurrency = Some(n);
        self
    }
    /// Reopens when half-open lasts longer than `max` without a verdict.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let (clock, secs) = (ManualClock::new(), Duration::from_secs);
    /// let b = Breaker::builder("h").half_open_max_duration(secs(5));
    /// let b = b.clock(clock.clone()).build()?;
    /// b.trip("drill");
    /// clock.advance(secs(30));
    /// let _stuck = b.try_acquire()?; // a trial that never reports
    /// clock.advance(secs(5));
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn half_open_max_duration(mut self, max: Duration) -> Self {
        self.settings.half_open_max_duration = Some(max);
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
    /// let machine = Machine::new(config);
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

    /// Builds the breaker with a link to a fleet sync task.
    pub(crate) fn build_linked(self, link: FleetLink) -> Result<Breaker, ConfigError> {
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

const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const DISABLED: u64 = 4;
const STATE_BITS: u64 = 3;
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;

#[inline]
fn encode(state: State, generation: u64) -> u64 {
    (generation << STATE_BITS) | state.code()
}
#[inline]
fn state_of(word: u64) -> State {
    State::from_code(word & STATE_MASK)
}
#[inline]
fn generation_of(word: u64) -> u64 {
    word >> STATE_BITS
}

/// Everything a permit needs to record its outcome later, in two words: a permit is three,
/// and so is every breaker's level in a pipeline call.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    /// The generation admitted in, shifted left once, with the low bit set for a half-open
    /// trial. Packed into a full word, not beside a `bool`: a one-byte store followed by the
    /// ticket being copied as words stalls store-to-load forwarding on every call.
    key: u64,
    started: u64,
}

impl Ticket {
    #[inline]
    fn new(generation: u64, trial: bool, started: u64) -> Ticket {
        // Generations have at most 64 - STATE_BITS bits: the shift loses nothing.
        Ticket {
            key: generation << 1 | u64::from(trial),
            started,
        }
    }

    #[inline]
    fn generation(self) -> u64 {
        self.key >> 1
    }

    #[inline]
    fn is_trial(self) -> bool {
        self.key & 1 != 0
    }
}

struct SlowPath {
    consecutive_trips: u32,
    rng: SmallRng,
}

pub(crate) struct Shared {
    state: Padded<AtomicU64>,
    consecutive: Padded<AtomicU32>,
    gate: Padded<HalfOpenGate>,
    window: Option<AtomicWindow>,
    open_until: AtomicU64,
    half_open_since: AtomicU64,
    /// Time of the last failure plus one; 0 means never.
    last_failure: AtomicU64,
    log: Option<OutcomeLog>,
    slow: Mutex<SlowPath>,
    config: BreakerConfig,
    name: Name,
    clock: ClockHandle,
    listeners: Box<[Arc<dyn BreakerListener>]>,
    /// Whether a permit must note its start time (slow-call rule).
    times_calls: bool,
    /// Whether recording any outcome needs the time (time window, outcome log, slow rule).
    records_time: bool,
    /// No listener and no outcome log: a rejection has nothing to report beyond `tracing`.
    quiet_rejections: bool,
    /// The link to a fleet store's sync task, when the breaker is shared by a fleet.
    fleet: Option<Box<FleetLink>>,
    /// Some listener wants every outcome (and so every call timed).
    reports_outcomes: bool,
}

/// A circuit breaker: named, cheap to clone, shared by every clone.
///
/// The CLOSED path is lock-free and allocation-free: admitting a call is one atomic load;
/// recording a success costs a load (consecutive-failure rule), one add and one store
/// (count-based window) or one add on the calling thread's own stripe (time-based window).
///
/// ```
/// use fusebox_core::breaker::{Breaker, State};
/// use fusebox_core::clock::ManualClock;
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let breaker = Breaker::builder("payments")
///     .consecutive_failures(2)
///     .cooldown(Duration::from_secs(30))
///     .clock(clock.clone())
///     .build()?;
///
/// assert!(breaker.call_sync(|| Err::<(), _>("timeout")).is_err());
/// assert!(breaker.call_sync(|| Err::<(), _>("timeout")).is_err());
/// assert_eq!(breaker.state(), State::Open);
/// assert!(breaker.call_sync(|| Ok::<_, ()>(1)).unwrap_err().is_rejected());
///
/// clock.advance(Duration::from_secs(30));
/// assert_eq!(breaker.state(), State::HalfOpen);
/// assert_eq!(breaker.call_sync(|| Ok::<_, ()>(1)).unwrap(), 1);
/// assert_eq!(breaker.state(), State::Closed);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Breaker {
    shared: Arc<Shared>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("name", &self.shared.name)
            .field("state", &self.state())
            .finish()
    }
}

impl Breaker {
    /// Starts building a breaker called `name` (a `&'static str` costs nothing to carry in
    /// rejections; a `String` is shared).
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let tenant = 42;
    /// let b = Breaker::builder(format!("tenant-{tenant}")).build()?;
    /// assert_eq!(b.name(), "tenant-42");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder(name: impl Into<Name>) -> BreakerBuilder {
        BreakerBuilder {
            name: name.into(),
            settings: BreakerSettings::default(),
            custom: None,
            clock: None,
            listeners: Vec::new(),
        }
    }

    /// A breaker from an already validated config, with the default clock and no listeners.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let config = Breaker::builder("a").consecutive_failures(3).build_config()?;
    /// let b = Breaker::from_config("a", config);
    /// assert_eq!(b.config().consecutive_failures(), Some(3));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn from_config(name: impl Into<Name>, config: BreakerConfig) -> Breaker {
        Breaker::from_parts(
            name.into(),
            config,
            ClockHandle::Monotonic,
            Vec::new(),
            None,
        )
    }

    fn from_parts(
        name: Name,
        config: BreakerConfig,
        clock: ClockHandle,
        listeners: Vec<Arc<dyn BreakerListener>>,
        fleet: Option<Box<FleetLink>>,
    ) -> Breaker {
        let window = config.window.map(AtomicWindow::new);
        let log = (config.outcome_log > 0).then(|| OutcomeLog::new(config.outcome_log as usize));
        let rng = match config.seed {
            Some(seed) => SmallRng::seed_from_u64(seed),
            None => SmallRng::from_os_rng(),
        };
        let reports_outcomes = listeners.iter().any(|l| l.wants_outcomes());
        let times_calls = config.measures_duration() || reports_outcomes;
        let records_time =
            times_calls || log.is_some() || matches!(config.window, Some(WindowKind::Time { .. }));
        let quiet_rejections = listeners.is_empty() && log.is_none();
        Breaker {
            shared: Arc::new(Shared {
                state: Padded(AtomicU64::new(encode(State::Closed, 0))),
                consecutive: Padded(AtomicU32::new(0)),
                gate: Padded(HalfOpenGate::new()),
                window,
                open_until: AtomicU64::new(0),
                half_open_since: AtomicU64::new(0),
                last_failure: AtomicU64::new(0),
                log,
                slow: Mutex::new(SlowPath {
                    consecutive_trips: 0,
                    rng,
                }),
                config,
                name,
                clock,
                listeners: listeners.into_boxed_slice(),
                times_calls,
                records_time,
                quiet_rejections,
                fleet,
                reports_outcomes,
            }),
        }
    }

    /// The breaker's name.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let b = Breaker::builder("payments").build()?;
    /// assert_eq!(b.name(), "payments");
    /// assert_eq!(b.clone().name().as_str(), "payments");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &Name {
        &self.shared.name
    }

    /// The validated configuration.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, Cooldown};
    /// use std::time::Duration;
    /// let b = Breaker::builder("c").cooldown(Duration::from_secs(5)).build()?;
    /// let expected = Cooldown::Fixed { duration: Duration::from_secs(5), jitter: 0.0 };
    /// assert_eq!(b.config().cooldown(), expected);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }

    /// The current state. An OPEN breaker whose cooldown has elapsed moves to HALF_OPEN here
    /// (and reports the transition), so every read of the state is correct without a timer.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let b = Breaker::builder("s").cooldown(Duration::from_secs(1)).clock(clock.clone());
    /// let b = b.build()?;
    /// b.trip("drill");
    /// assert_eq!(b.state(), State::Open);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(b.state(), State::HalfOpen); // no call needed
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn state(&self) -> State {
        state_of(self.shared.settle())
    }

    /// Asks to make one call. On success the [`Permit`] records the outcome; a permit dropped
    /// without recording (a cancelled future, a panic) counts as nothing and frees its
    /// half-open trial slot.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let b = Breaker::builder("p").build()?;
    /// let permit = b.try_acquire()?;
    /// permit.success();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        self.admit(Ok, Err)
    }

    /// [`Shared::admit`] with the ticket already in a borrowed permit.
    #[inline(always)]
    fn admit<'a, R>(
        &'a self,
        admitted: impl FnOnce(Permit<'a>) -> R,
        rejected: impl FnOnce(Rejected) -> R,
    ) -> R {
        let shared = &*self.shared;
        shared.admit(|ticket| admitted(Permit { shared, ticket }), rejected)
    }

    /// Like [`try_acquire`](Self::try_acquire), but the permit owns a handle to the breaker,
    /// for futures that must be `'static` (tower services, spawned tasks).
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let b = Breaker::builder("p").build()?;
    /// let permit = b.try_acquire_owned()?;
    /// std::thread::spawn(move || permit.failure()).join().unwrap();
    /// assert_eq!(b.snapshot().consecutive_failures, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_acquire_owned(&self) -> Result<OwnedPermit, Rejected> {
        self.shared.admit(
            |ticket| {
                Ok(OwnedPermit {
                    shared: Arc::clone(&self.shared),
                    ticket,
                    armed: true,
                })
            },
            Err,
        )
    }

    /// Low-level admission for manual wiring: `true` when a call may go ahead. Follow it with
    /// [`record_success`](Self::record_success) or [`record_failure`](Self::record_failure).
    /// Prefer permits, which cannot leak a half-open trial slot.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let b = Breaker::builder("manual").consecutive_failures(1).build()?;
    /// assert!(b.allow_request());
    /// b.record_failure();
    /// assert!(!b.allow_request());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn allow_request(&self) -> bool {
        match self.try_acquire() {
            Ok(permit) => {
                // The slot stays claimed until record_* releases it.
                std::mem::forget(permit);
                true
            }
            Err(_) => false,
        }
    }

    /// Records a success without a permit (manual wiring).
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let b = Breaker::builder("m").failures_in_last(3, 10).build()?;
    /// if b.allow_request() {
    ///     b.record_success();
    /// }
    /// assert_eq!(b.snapshot().window.calls, 1);
    /// assert_eq!(b.snapshot().window.failures, 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn record_success(&self) {
        self.shared.record_unticketed(Outcome::Success);
    }

    /// Records a failure without a permit (manual wiring).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("m").consecutive_failures(2).build()?;
    /// b.record_failure();
    /// assert_eq!(b.snapshot().consecutive_failures, 1);
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn record_failure(&self) {
        self.shared.record_unticketed(Outcome::Failure);
    }

    /// Runs an async call through the breaker; `Err` is a failure.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_core::breaker::Breaker;
    /// let b = Breaker::builder("http").build()?;
    /// let n = b.call(|| async { Ok::<_, std::io::Error>(42) }).await?;
    /// assert_eq!(n, 42);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, f: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_with(&ErrIsFailure, f).await
    }

    /// Runs an async call through the breaker, classifying its result with `classifier`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_core::Outcome;
    ///
    /// let b = Breaker::builder("users").consecutive_failures(1).build()?;
    /// // A 404 is ignored: it says nothing about the service's health.
    /// let classify = |r: &Result<(), u16>| match r {
    ///     Err(404) => Outcome::Ignored,
    ///     Err(_) => Outcome::Failure,
    ///     Ok(_) => Outcome::Success,
    /// };
    /// let _ = b.call_with(&classify, || async { Err::<(), u16>(404) }).await;
    /// assert!(b.try_acquire().is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call_with<C, F, Fut, T, E>(&self, classifier: &C, f: F) -> Result<T, Error<E>>
    where
        C: Classifier<T, E> + ?Sized,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.admit(Ok, |rejected| Err(Error::Rejected(rejected)))?;
        let result = f().await;
        permit.record(classifier.classify(&result));
        result.map_err(Error::Inner)
    }

    /// Runs `inner` (already mapped to fusebox errors) through the breaker, recording what
    /// `classify` makes of its result: the breaker's part of a policy stack.
    #[cfg(feature = "tokio")]
    #[inline]
    // Not an async fn, which would keep its arguments twice in its future.
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn around<C, F, Fut, T, E>(
        &self,
        classify: C,
        inner: F,
    ) -> impl Future<Output = Result<T, Error<E>>>
    where
        C: FnOnce(&Result<T, Error<E>>) -> Outcome,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        async move {
            let permit = self.admit(Ok, |rejected| Err(Error::Rejected(rejected)))?;
            let result = inner().await;
            permit.record(classify(&result));
            result
        }
    }

    /// Runs a blocking call through the breaker; `Err` is a failure.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let b = Breaker::builder("disk").build()?;
    /// let r: Result<u8, _> = b.call_sync(|| Err("io"));
    /// assert_eq!(r.unwrap_err().into_inner(), Some("io"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[inline(always)]
    pub fn call_sync<F, T, E>(&self, f: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Result<T, E>,
    {
        self.call_sync_with(&ErrIsFailure, f)
    }

    /// Runs a blocking call through the breaker, classifying its result with `classifier`.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_core::FailureWhen;
    /// let b = Breaker::builder("disk").consecutive_failures(1).build()?;
    /// let only_timeouts = FailureWhen(|e: &&str| *e == "timeout");
    /// let _ = b.call_sync_with(&only_timeouts, || Err::<(), _>("bad input"));
    /// assert!(b.try_acquire().is_ok());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[inline(always)]
    pub fn call_sync_with<C, F, T, E>(&self, classifier: &C, f: F) -> Result<T, Error<E>>
    where
        C: Classifier<T, E> + ?Sized,
        F: FnOnce() -> Result<T, E>,
    {
        self.admit(
            |permit| {
                let result = f();
                permit.record(classifier.classify(&result));
                result.map_err(Error::Inner)
            },
            |rejected| Err(Error::Rejected(rejected)),
        )
    }

    /// Opens the breaker by hand (isolates the dependency) until [`reset`](Self::reset).
    /// Returns whether the state changed.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("x").build()?;
    /// assert!(b.force_open());
    /// assert_eq!(b.state(), State::ForcedOpen);
    /// assert!(b.reset());
    /// assert_eq!(b.state(), State::Closed);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn force_open(&self) -> bool {
        self.shared.manual(Manual::ForceOpen)
    }

    /// Switches the breaker off: it admits every call and keeps measuring, but never trips.
    /// Returns whether the state changed.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("x").consecutive_failures(1).build()?;
    /// b.disable();
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Disabled);
    /// assert_eq!(b.snapshot().consecutive_failures, 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn disable(&self) -> bool {
        self.shared.manual(Manual::Disable)
    }

    /// Back to CLOSED with every counter cleared, from any state. Returns whether the state
    /// changed (a closed breaker's counters are cleared all the same).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("r").consecutive_failures(3).build()?;
    /// b.trip("drill");
    /// assert!(b.reset());
    /// assert_eq!(b.state(), State::Closed);
    /// b.record_failure();
    /// assert!(!b.reset()); // already closed, but the failure run is cleared
    /// assert_eq!(b.snapshot().consecutive_failures, 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn reset(&self) -> bool {
        self.shared.manual(Manual::Reset)
    }

    /// Opens the breaker on an external signal (an operator, a health check, an overload
    /// detector) with no failure recorded. It then recovers like after any trip: cooldown,
    /// trials, close. Returns whether the state changed (not when already open or forced
    /// open).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State, TransitionReason, TripReason};
    /// let b = Breaker::builder("x").build()?;
    /// assert!(b.trip("health check failed"));
    /// assert_eq!(b.state(), State::Open);
    /// assert!(!b.trip("again"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn trip(&self, reason: impl Into<Cow<'static, str>>) -> bool {
        self.shared.manual(Manual::Trip(reason.into()))
    }

    /// A point-in-time view: state, window statistics, rates, cooldown left, trials and the
    /// recent-outcome log.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let b = Breaker::builder("s").consecutive_failures(1).clock(clock.clone()).build()?;
    /// b.record_failure();
    /// clock.advance(Duration::from_secs(10));
    /// let s = b.snapshot();
    /// assert_eq!((s.state, s.consecutive_trips), (State::Open, 1));
    /// assert_eq!(s.remaining_cooldown, Some(Duration::from_secs(20)));
    /// assert_eq!(s.since_last_failure, Some(Duration::from_secs(10)));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        self.shared.snapshot()
    }
}

/// Permission for one call, from [`Breaker::try_acquire`]. Record the outcome with
/// [`success`](Self::success), [`failure`](Self::failure), [`ignore`](Self::ignore) or
/// [`record`](Self::record); dropped unrecorded, it counts as nothing.
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// use fusebox_core::Outcome;
/// let b = Breaker::builder("p").build()?;
/// b.try_acquire()?.record(Outcome::Failure);
/// drop(b.try_acquire()?); // cancelled: not counted
/// assert_eq!(b.snapshot().consecutive_failures, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a permit records nothing unless its outcome is recorded"]
pub struct Permit<'a> {
    shared: &'a Shared,
    ticket: Ticket,
}

/// A [`Permit`] that owns a handle to its breaker (`'static`), from
/// [`Breaker::try_acquire_owned`].
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// let b = Breaker::builder("p").build()?;
/// let permit = b.try_acquire_owned()?;
/// assert!(!permit.is_trial());
/// permit.success();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a permit records nothing unless its outcome is recorded"]
pub struct OwnedPermit {
    shared: Arc<Shared>,
    ticket: Ticket,
    armed: bool,
}

macro_rules! permit_methods {
    () => {
        /// Records the outcome.
        ///
        /// ```
        /// use fusebox_core::breaker::Breaker;
        /// use fusebox_core::Outcome;
        /// let b = Breaker::builder("p").build()?;
        /// b.try_acquire()?.record(Outcome::Failure);
        /// b.try_acquire_owned()?.record(Outcome::Failure);
        /// b.try_acquire()?.record(Outcome::Ignored);
        /// assert_eq!(b.snapshot().consecutive_failures, 2);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        #[inline]
        pub fn record(self, outcome: Outcome) {
            self.finish_once(outcome);
        }
        /// Records a success.
        ///
        /// ```
        /// use fusebox_core::breaker::Breaker;
        /// let b = Breaker::builder("p").build()?;
        /// b.record_failure();
        /// b.try_acquire()?.success(); // ends the run of failures
        /// assert_eq!(b.snapshot().consecutive_failures, 0);
        /// b.record_failure();
        /// b.try_acquire_owned()?.success();
        /// assert_eq!(b.snapshot().consecutive_failures, 0);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        #[inline]
        pub fn success(self) {
            self.record(Outcome::Success)
        }
        /// Records a failure.
        ///
        /// ```
        /// use fusebox_core::breaker::{Breaker, State};
        /// let b = Breaker::builder("p").consecutive_failures(2).build()?;
        /// b.try_acquire()?.failure();
        /// b.try_acquire_owned()?.failure();
        /// assert_eq!(b.state(), State::Open);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        #[inline]
        pub fn failure(self) {
            self.record(Outcome::Failure)
        }
        /// Records nothing and frees the permit (an outcome that says nothing about the
        /// dependency).
        ///
        /// ```
        /// use fusebox_core::breaker::{Breaker, State};
        /// let b = Breaker::builder("p").consecutive_failures(1).build()?;
        /// b.try_acquire()?.ignore();
        /// b.try_acquire_owned()?.ignore();
        /// assert_eq!(b.state(), State::Closed);
        /// assert_eq!(b.snapshot().consecutive_failures, 0);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        #[inline]
        pub fn ignore(self) {
            self.record(Outcome::Ignored)
        }
        /// Whether this call is a half-open trial.
        ///
        /// ```
        /// use fusebox_core::breaker::Breaker;
        /// use fusebox_core::clock::ManualClock;
        /// use std::time::Duration;
        /// let clock = ManualClock::new();
        /// let b = Breaker::builder("p").half_open_trials(2, 2).clock(clock.clone()).build()?;
        /// assert!(!b.try_acquire()?.is_trial());
        /// b.trip("drill");
        /// clock.advance(Duration::from_secs(30));
        /// assert!(b.try_acquire()?.is_trial());
        /// assert!(b.try_acquire_owned()?.is_trial());
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn is_trial(&self) -> bool {
            self.ticket.is_trial()
        }
    };
}

impl Permit<'_> {
    permit_methods!();

    #[inline]
    fn finish_once(self, outcome: Outcome) {
        // Not dropped: `Drop` would release the permit as unrecorded. A borrowed permit owns
        // nothing else, so forgetting it leaks nothing (and spares a drop flag).
        let this = std::mem::ManuallyDrop::new(self);
        this.shared.finish(this.ticket, outcome);
    }
}

impl OwnedPermit {
    permit_methods!();

    #[inline]
    fn finish_once(mut self, outcome: Outcome) {
        self.armed = false;
        self.shared.finish(self.ticket, outcome);
    }
}

impl Drop for Permit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.shared.release(self.ticket);
    }
}

impl Drop for OwnedPermit {
    #[inline]
    fn drop(&mut self) {
        if self.armed {
            self.shared.release(self.ticket);
        }
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.shared.name)
            .field("trial", &(self.ticket.is_trial()))
            .finish()
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("breaker", &self.shared.name)
            .field("trial", &(self.ticket.is_trial()))
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    // The guarded data stays consistent across a panic (plain counters), so a poisoned
    // lock is still usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    #[inline]
    fn now(&self) -> u64 {
        self.clock.now_nanos()
    }

    /// Admits a call or refuses it, and hands the outcome to `admitted` or `rejected`, whose
    /// result is returned as is. The caller builds its final result (`Result<T, Error<E>>`
    /// for `call_sync`) right where the decision is made: a rejection is not first returned
    /// as a `Result<Ticket, Rejected>` and then moved into the caller's error, a copy that
    /// read the rejection's narrow fields back in wide loads and stalled store-to-load
    /// forwarding.
    #[inline(always)]
    fn admit<R>(
        &self,
        admitted: impl FnOnce(Ticket) -> R,
        rejected: impl FnOnce(Rejected) -> R,
    ) -> R {
        let word = self.state.load(Ordering::Acquire);
        let code = word & STATE_MASK;
        let ticket = if code == CLOSED || code == DISABLED {
            let started = if self.times_calls { self.now() } else { 0 };
            Ticket::new(generation_of(word), false, started)
        } else {
            if code == OPEN && self.quiet_rejections {
                // While a dependency is down rejections are the common path: two loads, no
                // clock read, no call into the cold path until the cooldown is over.
                let recent = self.clock.recent_nanos();
                let until = self.open_until.load(Ordering::Acquire);
                if recent < until {
                    if tracing::level_enabled!(tracing::Level::TRACE) {
                        self.trace_rejection(State::Open);
                    }
                    return rejected(Rejected::from_words(
                        self.name.clone(),
                        OPEN,
                        until - recent,
                    ));
                }
            }
            match self.acquire_slow(word) {
                Ok(ticket) => ticket,
                Err(r) => return rejected(r),
            }
        };
        admitted(ticket)
    }

    #[cold]
    fn acquire_slow(&self, mut word: u64) -> Result<Ticket, Rejected> {
        // Each pass either admits, rejects, or follows a transition; transitions out of one
        // state cannot chain forever, but bound the loop anyway.
        for _ in 0..8 {
            match state_of(word) {
                State::Closed | State::Disabled => {
                    let started = if self.times_calls { self.now() } else { 0 };
                    return Ok(Ticket::new(generation_of(word), false, started));
                }
                State::ForcedOpen => return Err(self.reject(State::ForcedOpen, None, None)),
                State::Open => {
                    // Rejections are the flood while a dependency is down: judge the
                    // cooldown on the recent time, and read the clock only to end it.
                    let recent = self.clock.recent_nanos();
                    let until = self.open_until.load(Ordering::Acquire);
                    match due(&self.config, State::Open, until, 0, recent) {
                        Some((to, reason)) => {
                            self.transition(word, to, reason, self.now().max(recent));
                        }
                        None => {
                            let left = retry_after(State::Open, until, recent);
                            return Err(self.reject(State::Open, left, Some(recent)));
                        }
                    }
                }
                State::HalfOpen => {
                    let generation = generation_of(word);
                    let c = &self.config;
                    let trials = match &self.fleet {
                        // The fleet counts trials: only slots it granted this instance.
                        Some(link) if link.defers_trials() => {
                            link.granted(generation).min(c.close.trials)
                        }
                        _ => c.close.trials,
                    };
                    match self
                        .gate
                        .try_admit(generation, c.half_open_concurrency, trials)
                    {
                        Admission::Admitted => {
                            return Ok(Ticket::new(generation, true, self.now()));
                        }
                        Admission::Full => {
                            if let Some(link) = &self.fleet
                                && link.defers_trials()
                                && trials < c.close.trials
                            {
                                link.want_trial();
                            }
                            if !self.half_open_expired(word) {
                                return Err(self.reject(State::HalfOpen, None, None));
                            }
                        }
                        Admission::Stale => {}
                    }
                }
            }
            word = self.state.load(Ordering::Acquire);
        }
        Err(self.reject(state_of(word), None, None))
    }

    /// Reopens a half-open breaker that has gone past its maximum duration; true if it did.
    fn half_open_expired(&self, word: u64) -> bool {
        self.config.half_open_max_nanos.is_some() && self.apply_due(word)
    }

    /// Makes the transition time has made due in state `word`, if any; true if it did
    /// (or another thread moved first).
    fn apply_due(&self, word: u64) -> bool {
        let state = state_of(word);
        if state == State::HalfOpen && self.fleet.as_ref().is_some_and(|l| l.defers_trials()) {
            return false; // the fleet times its own episode out
        }
        if !matches!(state, State::Open | State::HalfOpen) {
            return false;
        }
        let now = self.now();
        let until = self.open_until.load(Ordering::Acquire);
        let since = self.half_open_since.load(Ordering::Acquire);
        match due(&self.config, state, until, since, now) {
            Some((to, reason)) => {
                self.transition(word, to, reason, now);
                true
            }
            None => false,
        }
    }

    /// Applies the lazy, time-driven transitions and returns the current state word.
    fn settle(&self) -> u64 {
        let mut word = self.state.load(Ordering::Acquire);
        for _ in 0..4 {
            if !self.apply_due(word) {
                return word;
            }
            word = self.state.load(Ordering::Acquire);
        }
        word
    }

    fn reject(&self, state: State, retry_after: Option<Duration>, now: Option<u64>) -> Rejected {
        let rejected = Rejected::new(self.name.clone(), state, retry_after);
        if let Some(log) = &self.log {
            let now = now.unwrap_or_else(|| self.now());
            log.push(LoggedOutcome::Rejected.code(), now);
        }
        if !self.listeners.is_empty() {
            for l in self.listeners.iter() {
                l.on_rejection(&rejected);
            }
        }
        if tracing::level_enabled!(tracing::Level::TRACE) {
            self.trace_rejection(state);
        }
        rejected
    }

    // Out of line, behind a check of the global level filter: the event's machinery would
    // otherwise swell the inlined fast path.
    #[cold]
    #[inline(never)]
    fn trace_rejection(&self, state: State) {
        tracing::trace!(breaker = %self.name, state = state.as_str(), "call rejected");
    }

    #[inline]
    fn finish(&self, ticket: Ticket, outcome: Outcome) {
        // The listener's clock read serves the rest of the recording too.
        let reported = if self.reports_outcomes {
            Some(self.report_outcome(ticket, outcome))
        } else {
            None
        };
        if ticket.is_trial() {
            return self.finish_trial(ticket, outcome, reported);
        }
        if outcome == Outcome::Ignored {
            return;
        }
        let word = self.state.load(Ordering::Acquire);
        if generation_of(word) != ticket.generation() {
            return; // admitted before a transition: says nothing about the new state
        }
        let failure = outcome == Outcome::Failure;
        // A slow-call rule needs the exact time; a window bucket or a log entry does not.
        let now = if let Some(now) = reported {
            now
        } else if self.times_calls {
            self.now()
        } else if self.records_time || failure {
            self.clock.recent_nanos()
        } else {
            0
        };
        let slow = is_slow(&self.config, ticket.started, now);
        if let Some(window) = &self.window {
            window.record(Mark { failure, slow }, now);
        }
        if let Some(link) = &self.fleet {
            link.count(failure, slow);
        }
        self.log_outcome(failure, slow, now);
        let judging = judges(state_of(word), failure, slow);
        if failure {
            self.last_failure
                .store(now.saturating_add(1), Ordering::Relaxed);
            let run = self
                .consecutive
                .fetch_add(1, Ordering::AcqRel)
                .saturating_add(1);
            if judging {
                self.judge(word, run, now);
            }
        } else {
            // A load, not a write, on the common path: the line stays shared between cores.
            if self.consecutive.load(Ordering::Relaxed) != 0 {
                self.consecutive.store(0, Ordering::Relaxed);
            }
            if judging {
                self.judge(word, 0, now);
            }
        }
    }

    // Cold and out of line so a breaker that reports nothing keeps its fast path as it was.
    /// Returns the time it read.
    #[cold]
    fn report_outcome(&self, ticket: Ticket, outcome: Outcome) -> u64 {
        let now = self.now();
        let event = OutcomeEvent {
            name: self.name.clone(),
            outcome,
            slow: outcome != Outcome::Ignored && is_slow(&self.config, ticket.started, now),
            trial: ticket.is_trial(),
            duration: Duration::from_nanos(now.saturating_sub(ticket.started)),
        };
        for l in self.listeners.iter() {
            l.on_outcome(&event);
        }
        now
    }

    #[inline]
    fn log_outcome(&self, failure: bool, slow: bool, now: u64) {
        if let Some(log) = &self.log {
            let kind = match (failure, slow) {
                (false, false) => LoggedOutcome::Success,
                (true, false) => LoggedOutcome::Failure,
                (false, true) => LoggedOutcome::SlowSuccess,
                (true, true) => LoggedOutcome::SlowFailure,
            };
            log.push(kind.code(), now);
        }
    }

    #[cold]
    fn judge(&self, word: u64, consecutive: u32, now: u64) {
        let stats = self.window_stats(now);
        if let Some((to, reason)) = trip(&self.config.rules, consecutive, &stats) {
            self.transition(word, to, reason, now);
        }
    }

    fn window_stats(&self, now: u64) -> WindowStats {
        match &self.window {
            Some(w) => w.stats(now),
            None => WindowStats::default(),
        }
    }

    #[cold]
    fn finish_trial(&self, ticket: Ticket, outcome: Outcome, now: Option<u64>) {
        let now = now.unwrap_or_else(|| self.now());
        let failure = outcome == Outcome::Failure;
        let slow = outcome != Outcome::Ignored && is_slow(&self.config, ticket.started, now);
        if outcome != Outcome::Ignored {
            self.log_outcome(failure, slow, now);
        }
        if failure {
            self.last_failure
                .store(now.saturating_add(1), Ordering::Relaxed);
        }
        let counted = trial_counts(outcome, slow);
        let Some(tally) = self.gate.finish(ticket.generation(), counted) else {
            return;
        };
        let Some(success) = counted else {
            return;
        };
        if let Some(link) = &self.fleet {
            link.count(failure, slow);
            if link.defers_trials() {
                link.note_trial(success);
                return;
            }
        }
        if let Some((to, reason)) = after_trial(self.config.close, tally.successes, tally.failures)
        {
            let expected = encode(State::HalfOpen, ticket.generation());
            self.transition(expected, to, reason, now);
        }
    }

    #[inline]
    fn release(&self, ticket: Ticket) {
        if ticket.is_trial() {
            self.gate.finish(ticket.generation(), None);
        }
    }

    fn record_unticketed(&self, outcome: Outcome) {
        let word = self.settle();
        let now = self.now();
        let ticket = Ticket::new(generation_of(word), state_of(word) == State::HalfOpen, now);
        self.finish(ticket, outcome);
    }

    /// Moves from the exact state word `expected` to `to`. Returns false when another thread
    /// moved first (the caller's view was stale): that thread reports its own transition,
    /// so every change is reported exactly once.
    fn transition(&self, expected: u64, to: State, reason: TransitionReason, now: u64) -> bool {
        self.transition_until(expected, to, reason, now, None)
    }

    /// [`transition`](Self::transition), with the end of an OPEN state's cooldown given
    /// (adopted from a fleet) instead of drawn.
    fn transition_until(
        &self,
        expected: u64,
        to: State,
        reason: TransitionReason,
        now: u64,
        open_until: Option<u64>,
    ) -> bool {
        let stats = self.window_stats(now);
        let new_word;
        {
            let mut slow = lock(&self.slow);
            if self.state.load(Ordering::Acquire) != expected {
                return false;
            }
            let generation = generation_of(expected) + 1;
            let slow = &mut *slow;
            let rng = &mut slow.rng;
            let entry = enter(to, slow.consecutive_trips, now, open_until, |trips| {
                self.config.cooldown.draw(trips, rng)
            });
            slow.consecutive_trips = entry.consecutive_trips;
            if let Some(until) = entry.open_until {
                self.open_until.store(until, Ordering::Release);
            }
            if let Some(since) = entry.half_open_since {
                self.gate.reset(generation);
                self.half_open_since.store(since, Ordering::Release);
            }
            if entry.clears_counts {
                self.clear_counts();
            }
            new_word = encode(to, generation);
            self.state.store(new_word, Ordering::Release);
        }
        let transition = Transition {
            name: self.name.clone(),
            from: state_of(expected),
            to,
            reason,
            generation: generation_of(new_word),
            at_nanos: now,
            stats,
        };
        tracing::info!(
            breaker = %self.name,
            from = transition.from.as_str(),
            to = to.as_str(),
            reason = %transition.reason,
            generation = transition.generation,
            calls = stats.calls,
            failures = stats.failures,
            slow_calls = stats.slow_calls,
            "circuit breaker state changed"
        );
        for l in self.listeners.iter() {
            l.on_transition(&transition);
        }
        if let Some(link) = &self.fleet {
            link.wake();
        }
        true
    }

    /// The counters a close clears (the trips are cleared by the caller, under its lock).
    fn clear_counts(&self) {
        if let Some(w) = &self.window {
            w.reset();
        }
        self.consecutive.store(0, Ordering::Release);
    }

    fn manual(&self, manual: Manual) -> bool {
        loop {
            let word = self.state.load(Ordering::Acquire);
            let from = state_of(word);
            if !manual.allowed_from(from) {
                return false;
            }
            if !manual.changes_state(from) {
                // A reset of a closed breaker: counters cleared, no change to report.
                let mut slow = lock(&self.slow);
                if self.state.load(Ordering::Acquire) != word {
                    continue;
                }
                self.clear_counts();
                slow.consecutive_trips = 0;
                return false;
            }
            if self.transition(word, manual.target(), manual.clone().reason(), self.now()) {
                return true;
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let word = self.settle();
        let now = self.now();
        let state = state_of(word);
        let window = self.window_stats(now);
        let last_failure = self.last_failure.load(Ordering::Relaxed);
        let remaining_cooldown = (state == State::Open).then(|| {
            Duration::from_nanos(self.open_until.load(Ordering::Acquire).saturating_sub(now))
        });
        let tally = self.gate.tally();
        let in_half_open =
            state == State::HalfOpen && tally.tag == super::gate::tag_of(generation_of(word));
        let recent = match &self.log {
            Some(log) => log
                .entries()
                .into_iter()
                .filter_map(|(at, code)| {
                    Some(OutcomeEntry {
                        outcome: LoggedOutcome::from_code(code)?,
                        age: Duration::from_nanos(now.saturating_sub(at)),
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        Snapshot {
            name: self.name.clone(),
            state,
            generation: generation_of(word),
            window,
            failure_rate: window.failure_rate(),
            slow_rate: window.slow_rate(),
            consecutive_failures: self.consecutive.load(Ordering::Acquire),
            since_last_failure: (last_failure != 0)
                .then(|| Duration::from_nanos(now.saturating_sub(last_failure - 1))),
            remaining_cooldown,
            consecutive_trips: lock(&self.slow).consecutive_trips,
            trials_in_flight: if in_half_open { tally.in_flight } else { 0 },
            trial_successes: if in_half_open { tally.successes } else { 0 },
            trial_failures: if in_half_open { tally.failures } else { 0 },
            recent,
        }
    }
}

/// What a fleet sync task needs from the breaker it keeps in step. None of it is on a
/// caller's path.
impl Breaker {
    pub(crate) fn link(&self) -> Option<&FleetLink> {
        self.shared.fleet.as_deref()
    }

    pub(crate) fn downgrade(&self) -> std::sync::Weak<Shared> {
        Arc::downgrade(&self.shared)
    }

    pub(crate) fn upgrade(weak: &std::sync::Weak<Shared>) -> Option<Breaker> {
        weak.upgrade().map(|shared| Breaker { shared })
    }

    /// Outcome totals of this instance's own calls (zero without a fleet link).
    pub(crate) fn own_totals(&self) -> Totals {
        self.link().map(FleetLink::totals).unwrap_or_default()
    }

    /// The state after any lazy, time-driven transition, with its local generation.
    pub(crate) fn settled_state(&self) -> (State, u64) {
        let word = self.shared.settle();
        (state_of(word), generation_of(word))
    }

    /// Moves to `to` on the fleet's word; an OPEN state ends after `open_for` instead of a
    /// drawn cooldown. Already in `to`, only the cooldown is realigned. Returns whether the
    /// state changed.
    pub(crate) fn adopt(
        &self,
        to: State,
        open_for: Option<Duration>,
        reason: Cow<'static, str>,
    ) -> bool {
        let shared = &self.shared;
        for _ in 0..8 {
            let word = shared.state.load(Ordering::Acquire);
            let now = shared.now();
            let until = open_for.map(|d| now.saturating_add(crate::clock::nanos(d)));
            if state_of(word) == to {
                if let (State::Open, Some(until)) = (to, until) {
                    shared.open_until.store(until, Ordering::Release);
                }
                return false;
            }
            let why = TransitionReason::Fleet(reason.clone());
            if shared.transition_until(word, to, why, now, until) {
                return true;
            }
        }
        false
    }

    /// Trials started (in flight or finished) in the local half-open episode `generation`.
    pub(crate) fn trials_started(&self, generation: u64) -> u32 {
        let tally = self.shared.gate.tally();
        if tally.tag == super::gate::tag_of(generation) {
            tally.in_flight + tally.successes + tally.failures
        } else {
            0
        }
    }

    /// Adds outcomes other instances reported to the window (pooled fleets) and judges it.
    pub(crate) fn ingest(&self, successes: u64, failures: u64, slow: u64) {
        let shared = &self.shared;
        let word = shared.state.load(Ordering::Acquire);
        if !matches!(state_of(word), State::Closed | State::Disabled) {
            return; // outcomes say nothing about a state they were not made in
        }
        let now = shared.now();
        // Which of the calls were slow is not reported; count slow successes first.
        let slow_successes = slow.min(successes);
        let slow_failures = (slow - slow_successes).min(failures);
        if let Some(w) = &shared.window {
            let marks = [
                (false, false, successes - slow_successes),
                (false, true, slow_successes),
                (true, false, failures - slow_failures),
                (true, true, slow_failures),
            ];
            // Successes first, then failures: a batch that ends in failures is the
            // pessimistic reading of an order nobody knows.
            for (failure, slow, n) in marks {
                if n > 0 {
                    w.record_many(Mark { failure, slow }, n, now);
                }
            }
        }
        if successes > 0 {
            shared.consecutive.store(0, Ordering::Release);
        }
        let run = if failures > 0 {
            let add = u32::try_from(failures).unwrap_or(u32::MAX);
            shared
                .consecutive
                .fetch_add(add, Ordering::AcqRel)
                .saturating_add(add)
        } else {
            shared.consecutive.load(Ordering::Acquire)
        };
        if failures > 0 {
            shared
                .last_failure
                .store(now.saturating_add(1), Ordering::Relaxed);
        }
        if judges(state_of(word), failures > 0, slow > 0) {
            shared.judge(word, run, now);
        }
    }
}

#[cfg(loom)]
impl Breaker {
    /// Test hook for loom models: the number of trial slots in flight.
    pub(crate) fn trials_in_flight(&self) -> u32 {
        self.shared.gate.tally().in_flight
    }
}
