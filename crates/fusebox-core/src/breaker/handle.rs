//! The concurrent breaker: what users hold. Lock-free on the CLOSED path; transitions take a
//! short slow path and are published with a generation number so each is reported once.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use super::Name;
use super::algorithm::Manual;
use super::builder::BreakerBuilder;
use super::config::{BreakerConfig, BreakerSettings};
use super::gate::HalfOpenGate;
use super::link::FleetLink;
use super::listener::BreakerListener;
use super::permit::{OwnedPermit, Permit};
use super::reconfigure::Tuning;
use super::rejected::Rejected;
use super::shared::{Shared, SlowPath};
use super::stats::{Snapshot, State};
use super::window::{AtomicWindow, OutcomeLog, Padded};
use super::word::{encode, state_of};
use crate::clock::ClockHandle;
use crate::error::Error;
use crate::outcome::{Classifier, ErrIsFailure, Outcome};
use crate::revisions::Revisions;
use crate::sync::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Mutex};

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
    pub(super) shared: Arc<Shared>,
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

    pub(super) fn from_parts(
        name: Name,
        config: BreakerConfig,
        clock: ClockHandle,
        listeners: Vec<Arc<dyn BreakerListener>>,
        fleet: Option<Box<FleetLink>>,
    ) -> Breaker {
        let window = config.window.map(|kind| Arc::new(AtomicWindow::new(kind)));
        // Outcomes and rejections are logged apart, as many of each.
        let new_log =
            || (config.outcome_log > 0).then(|| OutcomeLog::new(config.outcome_log as usize));
        let (log, rejections) = (new_log(), new_log());
        let rng = crate::rng::small_rng(config.seed);
        let reports_outcomes = listeners.iter().any(|l| l.wants_outcomes());
        let tuning = Tuning::new(config, window, &listeners, log.is_some());
        Breaker {
            shared: Arc::new(Shared {
                state: Padded(AtomicU64::new(encode(State::Closed, 0))),
                consecutive: Padded(AtomicU32::new(0)),
                gate: Padded(HalfOpenGate::new()),
                below_minimum: AtomicBool::new(true),
                flags: AtomicU8::new(tuning.flags.0),
                tuning: Revisions::new(tuning),
                open_until: AtomicU64::new(0),
                half_open_since: AtomicU64::new(0),
                last_failure: AtomicU64::new(0),
                log,
                rejections,
                slow: Mutex::new(SlowPath {
                    consecutive_trips: 0,
                    rng,
                }),
                name,
                clock,
                listeners: listeners.into_boxed_slice(),
                fleet,
                reports_outcomes,
                shadow_rejections: AtomicU64::new(0),
                retry_hint_until: AtomicU64::new(0),
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
        &self.shared.tuning().config
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
    pub(super) fn admit<'a, R>(
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
        permit.record_classified(classifier, &result);
        result.map_err(Error::Inner)
    }

    /// Runs `inner` (already mapped to fusebox errors) through the breaker, recording what
    /// `classify` makes of its result: the breaker's part of a policy stack, for composers
    /// (fusebox-policy's stacks and pipelines) that hand it the rest of the stack.
    ///
    /// ```
    /// use fusebox_core::{Breaker, Error, Outcome};
    /// # futures_lite_block_on(async {
    /// let b = Breaker::builder("db").consecutive_failures(1).build()?;
    /// let r: Result<u8, Error<&str>> =
    ///     b.around(|r: &Result<u8, Error<&str>>| if r.is_ok() { Outcome::Success } else { Outcome::Failure },
    ///              || async { Err(Error::Inner("down")) }).await;
    /// assert!(r.is_err());
    /// assert!(b.try_acquire().is_err()); // the failure tripped it
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// # }).unwrap();
    /// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    /// # }
    /// ```
    #[inline]
    // Not an async fn, which would keep its arguments twice in its future.
    #[allow(clippy::manual_async_fn)]
    pub fn around<C, F, Fut, T, E>(
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
                permit.record_classified(classifier, &result);
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
