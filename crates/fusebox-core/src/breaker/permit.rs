//! Permits: one admitted call each, recorded once or released when dropped.

use std::fmt;
use std::sync::Arc;

use super::shared::Shared;
use super::word::PermitKey;
use crate::outcome::Outcome;

/// Permission for one call, from [`Breaker::try_acquire`](super::Breaker::try_acquire). Record the outcome with
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
    pub(super) shared: &'a Shared,
    pub(super) ticket: PermitKey,
}

/// A [`Permit`] that owns a handle to its breaker (`'static`), from
/// [`Breaker::try_acquire_owned`](super::Breaker::try_acquire_owned).
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
    pub(super) shared: Arc<Shared>,
    pub(super) ticket: PermitKey,
    pub(super) armed: bool,
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
        /// Records the outcome of a call whose duration the caller measured itself (a
        /// middleware that already timed the request, a client reporting server time): the
        /// slow-call rule and the outcome listeners use `elapsed`, not the breaker's clock.
        ///
        /// ```
        /// use fusebox_core::breaker::{Breaker, State};
        /// use fusebox_core::Outcome;
        /// use std::time::Duration;
        /// let b = Breaker::builder("p")
        ///     .count_window(2)
        ///     .min_calls(2)
        ///     .slow_calls(Duration::from_millis(100), 1.0)
        ///     .build()?;
        /// b.try_acquire()?.record_measured(Outcome::Success, Duration::from_millis(250));
        /// b.try_acquire_owned()?.record_measured(Outcome::Success, Duration::from_millis(100));
        /// assert_eq!(b.snapshot().window.slow_calls, 2);
        /// assert_eq!(b.state(), State::Open); // every call slow
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        #[inline]
        pub fn record_measured(self, outcome: Outcome, elapsed: std::time::Duration) {
            self.finish_measured_once(outcome, elapsed);
        }
        /// Records a failure for which the server asked callers to wait `retry_after` (an
        /// HTTP `Retry-After`, gRPC retry info). A breaker built with
        /// [`open_for_retry_after`](super::BreakerBuilder::open_for_retry_after) opens that
        /// long (up to its maximum) when it trips; any other breaker records a plain failure.
        ///
        /// ```
        /// use fusebox_core::breaker::{Breaker, State};
        /// use std::time::Duration;
        /// let b = Breaker::builder("p")
        ///     .consecutive_failures(1)
        ///     .open_for_retry_after(Duration::from_secs(300))
        ///     .build()?;
        /// b.try_acquire()?.failure_with_retry_after(Some(Duration::from_secs(90)));
        /// let wait = b.try_acquire().unwrap_err().retry_after().unwrap();
        /// assert!(wait > Duration::from_secs(60), "{wait:?}"); // not the 30 s cooldown
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn failure_with_retry_after(self, retry_after: Option<std::time::Duration>) {
            if let Some(wait) = retry_after {
                self.shared.note_retry_after(wait);
            }
            self.record(Outcome::Failure)
        }
        /// Records what `classifier` makes of `result`, with the server's delay when it is
        /// a failure the classifier finds one in
        /// ([`Classifier::retry_after`](crate::Classifier::retry_after)) and the breaker uses
        /// them.
        ///
        /// ```
        /// use fusebox_core::breaker::Breaker;
        /// use fusebox_core::ErrIsFailure;
        /// let b = Breaker::builder("p").build()?;
        /// b.try_acquire()?.record_classified(&ErrIsFailure, &Err::<(), _>("refused"));
        /// assert_eq!(b.snapshot().consecutive_failures, 1);
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        #[inline]
        pub fn record_classified<C, T, E>(self, classifier: &C, result: &Result<T, E>)
        where
            C: crate::Classifier<T, E> + ?Sized,
        {
            let outcome = classifier.classify(result);
            if outcome == Outcome::Failure && self.shared.tuning().config.retry_after_max.is_some()
            {
                if let Some(wait) = classifier.retry_after(result) {
                    self.shared.note_retry_after(wait);
                }
            }
            self.record(outcome)
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

    fn finish_measured_once(self, outcome: Outcome, elapsed: std::time::Duration) {
        let this = std::mem::ManuallyDrop::new(self);
        this.shared.finish_measured(this.ticket, outcome, elapsed);
    }
}

impl OwnedPermit {
    permit_methods!();

    #[inline]
    fn finish_once(mut self, outcome: Outcome) {
        self.armed = false;
        self.shared.finish(self.ticket, outcome);
    }

    fn finish_measured_once(mut self, outcome: Outcome, elapsed: std::time::Duration) {
        self.armed = false;
        self.shared.finish_measured(self.ticket, outcome, elapsed);
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
