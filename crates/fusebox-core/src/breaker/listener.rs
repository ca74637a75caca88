//! Listeners: callbacks a breaker calls on its state changes, rejections and outcomes.

use super::rejected::Rejected;
use super::stats::{OutcomeEvent, Transition};

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
    /// A call a breaker in [shadow mode](super::BreakerBuilder::shadow) would have rejected,
    /// and let through: `would_reject` is the rejection it would have returned (its state,
    /// its retry time).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, BreakerListener, Rejected, State};
    /// # use std::sync::{Arc, Mutex};
    /// struct WouldReject(Mutex<Vec<State>>);
    /// impl BreakerListener for WouldReject {
    ///     fn on_shadow_rejection(&self, r: &Rejected) {
    ///         self.0.lock().unwrap().push(r.state());
    ///     }
    /// }
    /// let seen = Arc::new(WouldReject(Mutex::new(Vec::new())));
    /// let b = Breaker::builder("x").shadow(true).listener(seen.clone()).build()?;
    /// b.trip("drill");
    /// assert!(b.try_acquire().is_ok());
    /// assert_eq!(*seen.0.lock().unwrap(), [State::Open]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    fn on_shadow_rejection(&self, would_reject: &Rejected) {
        let _ = would_reject;
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

pub(super) struct OnTransition<F>(pub(super) F);
impl<F: Fn(&Transition) + Send + Sync + 'static> BreakerListener for OnTransition<F> {
    fn on_transition(&self, transition: &Transition) {
        (self.0)(transition)
    }
}

pub(super) struct OnRejection<F>(pub(super) F);
impl<F: Fn(&Rejected) + Send + Sync + 'static> BreakerListener for OnRejection<F> {
    fn on_rejection(&self, rejected: &Rejected) {
        (self.0)(rejected)
    }
}
