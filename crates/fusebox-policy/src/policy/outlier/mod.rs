//! Outlier ejection: over a set of endpoints (hosts, replicas), stop sending to one that keeps
//! failing while the others answer, for a while that grows each time it is ejected again.
//!
//! The rules (consecutive failures, failure rate, growing ejection time, the cap on how many
//! may be out at once) are in the lock-free [`algorithm`] part; [`OutlierDetector`] holds
//! them behind a mutex with a clock, listeners and permits.

mod algorithm;
mod permit;

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fusebox_core::breaker::Name;
use fusebox_core::clock::{IntoClock, PreciseClock, SharedClock};
use fusebox_core::{ConfigError, Ejected, Error, Outcome};

pub use algorithm::EjectionReason;
use algorithm::{Check, Endpoints, RateRule, Rules, Verdict};
pub use permit::{EjectionPermit, OwnedEjectionPermit};

/// What an [`OutlierDetector`] tells its listeners.
///
/// ```
/// use fusebox_policy::policy::{OutlierDetector, OutlierEvent};
/// let detector = OutlierDetector::<&str>::builder("replicas")
///     .on_event(|event| {
///         if let OutlierEvent::Ejected { key, ejected_for, .. } = event {
///             println!("{key} out for {ejected_for:?}");
///         }
///     })
///     .build()?;
/// # let _ = detector;
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OutlierEvent<'a, K> {
    /// `key` was ejected for `ejected_for`, its `ejections`-th ejection in a row;
    /// `ejected_now` endpoints are out counting it.
    Ejected {
        /// The endpoint.
        key: &'a K,
        /// Which rule found it.
        reason: EjectionReason,
        /// How long it stays out.
        ejected_for: Duration,
        /// Its ejections in a row (decayed), this one included.
        ejections: u32,
        /// Endpoints out now.
        ejected_now: usize,
    },
    /// `key` was found an outlier, but `max_ejection_percent` endpoints were already out:
    /// it stays in.
    Kept {
        /// The endpoint.
        key: &'a K,
        /// Which rule found it.
        reason: EjectionReason,
    },
    /// `key`'s ejection is over: it takes calls again, its counts cleared.
    Returned {
        /// The endpoint.
        key: &'a K,
        /// Endpoints out now.
        ejected_now: usize,
    },
}

type Listener<K> = Arc<dyn Fn(&OutlierEvent<'_, K>) + Send + Sync>;

struct Inner<K> {
    name: Name,
    clock: SharedClock,
    endpoints: Mutex<Endpoints<K>>,
    listeners: Vec<Listener<K>>,
}

/// Builds an [`OutlierDetector`].
///
/// ```
/// use fusebox_policy::policy::OutlierDetector;
/// use std::time::Duration;
/// let detector = OutlierDetector::<String>::builder("replicas")
///     .consecutive_failures(5)
///     .failure_rate(0.5, 20)
///     .base_ejection_time(Duration::from_secs(30))
///     .max_ejection_time(Duration::from_secs(300))
///     .max_ejection_percent(50)
///     .build()?;
/// assert_eq!(detector.name(), "replicas");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use]
pub struct OutlierDetectorBuilder<K> {
    name: Name,
    consecutive_failures: Option<u32>,
    failure_rate: Option<(f64, u32)>,
    window: Duration,
    base_ejection_time: Duration,
    max_ejection_time: Duration,
    max_ejection_percent: u32,
    clock: Option<SharedClock>,
    listeners: Vec<Listener<K>>,
}

impl<K> fmt::Debug for OutlierDetectorBuilder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutlierDetectorBuilder")
            .field("name", &self.name)
            .field("consecutive_failures", &self.consecutive_failures)
            .field("failure_rate", &self.failure_rate)
            .finish_non_exhaustive()
    }
}

impl<K> OutlierDetectorBuilder<K> {
    /// Ejects an endpoint after `n` failures in a row (default 5). Must be at least 1.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let err = OutlierDetector::<u8>::builder("a").consecutive_failures(0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("consecutive_failures"));
    /// ```
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = Some(n);
        self
    }

    /// Ejects only on the failure rate, never on a run of failures.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let err = OutlierDetector::<u8>::builder("a").no_consecutive_failures().build().unwrap_err();
    /// assert_eq!(err.field(), Some("failure_rate"), "one rule is needed");
    /// ```
    pub fn no_consecutive_failures(mut self) -> Self {
        self.consecutive_failures = None;
        self
    }

    /// Also ejects an endpoint whose failures reach `ratio` of its calls over the window
    /// (see [`failure_rate_window`](Self::failure_rate_window)), once it has at least
    /// `min_calls` (default: off). `ratio` must be within (0, 1], `min_calls` at least 1.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let err = OutlierDetector::<u8>::builder("a").failure_rate(f64::NAN, 10).build().unwrap_err();
    /// assert_eq!(err.field(), Some("failure_rate"));
    /// let err = OutlierDetector::<u8>::builder("a").failure_rate(0.5, 0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("min_calls"));
    /// ```
    pub fn failure_rate(mut self, ratio: f64, min_calls: u32) -> Self {
        self.failure_rate = Some((ratio, min_calls));
        self
    }

    /// The window the failure rate is counted over (default 10 s); the counts start over
    /// each time it is this old. Must be longer than zero.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// use std::time::Duration;
    /// let err = OutlierDetector::<u8>::builder("a").failure_rate_window(Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.field(), Some("failure_rate_window"));
    /// ```
    pub fn failure_rate_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How long a first ejection lasts (default 30 s); the `n`-th in a row lasts `n` times
    /// this. The count of ejections falls by one for each such interval an endpoint spends
    /// back in without being ejected. Must be longer than zero.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// use std::time::Duration;
    /// let err = OutlierDetector::<u8>::builder("a").base_ejection_time(Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.field(), Some("base_ejection_time"));
    /// ```
    pub fn base_ejection_time(mut self, time: Duration) -> Self {
        self.base_ejection_time = time;
        self
    }

    /// The longest an ejection lasts (default 300 s). Must not be shorter than the base
    /// ejection time.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// use std::time::Duration;
    /// let err = OutlierDetector::<u8>::builder("a").max_ejection_time(Duration::from_secs(1)).build().unwrap_err();
    /// assert_eq!(err.field(), Some("max_ejection_time"));
    /// ```
    pub fn max_ejection_time(mut self, time: Duration) -> Self {
        self.max_ejection_time = time;
        self
    }

    /// The most endpoints out at once, in percent of the known ones, rounded down but
    /// letting one out as soon as two are known (default 10). A lone endpoint is never
    /// ejected. Must be at most 100; 0 never ejects.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let err = OutlierDetector::<u8>::builder("a").max_ejection_percent(101).build().unwrap_err();
    /// assert_eq!(err.field(), Some("max_ejection_percent"));
    /// ```
    pub fn max_ejection_percent(mut self, percent: u32) -> Self {
        self.max_ejection_percent = percent;
        self
    }

    /// The clock ejections are timed on (default: [`PreciseClock`]).
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_policy::policy::OutlierDetector;
    /// let _ = OutlierDetector::<u8>::builder("a").clock(ManualClock::new()).build()?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clock(mut self, clock: impl IntoClock) -> Self {
        self.clock = Some(clock.into_handle());
        self
    }

    /// Calls `f` with every ejection, return and kept outlier, after the detector's lock is
    /// released.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let _ = OutlierDetector::<u8>::builder("a").on_event(|e| println!("{e:?}")).build()?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_event(mut self, f: impl Fn(&OutlierEvent<'_, K>) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// The detector's name.
    #[cfg(feature = "metrics")]
    pub(crate) fn detector_name(&self) -> Name {
        self.name.clone()
    }

    /// Validates the settings.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// assert_eq!(OutlierDetector::<u8>::builder("a").build()?.known(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<OutlierDetector<K>, ConfigError> {
        use fusebox_core::check;
        let consecutive_failures = match self.consecutive_failures {
            Some(n) => Some(check::nonzero("consecutive_failures", n.into())? as u32),
            None => None,
        };
        let window = check::nonzero_duration("failure_rate_window", self.window)?;
        let window_nanos = nanos("failure_rate_window", window)?;
        let rate = match self.failure_rate {
            Some((ratio, min_calls)) => Some(RateRule {
                ratio: check::unit_open_low("failure_rate", ratio)?,
                min_calls: check::nonzero("min_calls", min_calls.into())? as u32,
                window_nanos,
            }),
            None => None,
        };
        if consecutive_failures.is_none() && rate.is_none() {
            return Err(ConfigError::invalid(
                "failure_rate",
                "is needed when consecutive failures are off",
            ));
        }
        let base = check::nonzero_duration("base_ejection_time", self.base_ejection_time)?;
        if self.max_ejection_time < base {
            return Err(ConfigError::invalid(
                "max_ejection_time",
                "must not be shorter than base_ejection_time",
            ));
        }
        if self.max_ejection_percent > 100 {
            return Err(ConfigError::invalid(
                "max_ejection_percent",
                format!("must be at most 100, got {}", self.max_ejection_percent),
            ));
        }
        let rules = Rules {
            consecutive_failures,
            rate,
            base_nanos: nanos("base_ejection_time", base)?,
            max_nanos: nanos("max_ejection_time", self.max_ejection_time)?,
            max_percent: self.max_ejection_percent,
        };
        Ok(OutlierDetector {
            inner: Arc::new(Inner {
                name: self.name,
                clock: self.clock.unwrap_or_else(|| PreciseClock.into_handle()),
                endpoints: Mutex::new(Endpoints::new(rules)),
                listeners: self.listeners,
            }),
        })
    }
}

fn nanos(field: &'static str, d: Duration) -> Result<u64, ConfigError> {
    u64::try_from(d.as_nanos()).map_err(|_| ConfigError::invalid(field, "is too long"))
}

/// Ejects endpoints that keep failing while others answer, so a balancer sends elsewhere.
///
/// Before a call to an endpoint, [`admit`](Self::admit) it: an ejected endpoint is refused
/// with [`Ejected`] (how long it has left), any other gets a permit that records how the
/// call went. An endpoint is ejected after `consecutive_failures` failures in a row (5 by
/// default) or, if set, when its failure rate over a window reaches a ratio; the `n`-th
/// ejection in a row lasts `n × base_ejection_time`, up to `max_ejection_time`, and the count
/// falls by one per base interval spent back in. At most `max_ejection_percent` of the
/// known endpoints are out at once (at least one when two are known); outliers beyond stay
/// in. Endpoints become known when first admitted, recorded or passed to
/// [`available`](Self::available). Clones share the endpoints.
///
/// ```
/// use fusebox_core::clock::ManualClock;
/// use fusebox_policy::policy::OutlierDetector;
/// use std::time::Duration;
/// let clock = ManualClock::new();
/// let detector = OutlierDetector::builder("replicas")
///     .consecutive_failures(3)
///     .base_ejection_time(Duration::from_secs(30))
///     .clock(clock.clone())
///     .build()?;
/// let replicas = ["10.0.0.1:80", "10.0.0.2:80"];
/// assert_eq!(detector.available(&replicas).len(), 2);
/// for _ in 0..3 {
///     detector.admit(&replicas[0]).unwrap().failure();
/// }
/// assert_eq!(detector.available(&replicas), [&"10.0.0.2:80"]);
/// let ejected = detector.admit(&replicas[0]).unwrap_err();
/// assert_eq!(ejected.retry_after, Duration::from_secs(30));
/// clock.advance(Duration::from_secs(30));
/// assert!(detector.admit(&replicas[0]).is_ok()); // back, its counts cleared
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub struct OutlierDetector<K> {
    inner: Arc<Inner<K>>,
}

impl<K> Clone for OutlierDetector<K> {
    fn clone(&self) -> Self {
        OutlierDetector {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K> fmt::Debug for OutlierDetector<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutlierDetector")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl<K> OutlierDetector<K> {
    /// A builder for a detector called `name`.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::<String>::builder("replicas").build()?;
    /// # let _ = detector;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder(name: impl Into<Name>) -> OutlierDetectorBuilder<K> {
        OutlierDetectorBuilder {
            name: name.into(),
            consecutive_failures: Some(5),
            failure_rate: None,
            window: Duration::from_secs(10),
            base_ejection_time: Duration::from_secs(30),
            max_ejection_time: Duration::from_secs(300),
            max_ejection_percent: 10,
            clock: None,
            listeners: Vec::new(),
        }
    }

    /// The detector's name.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// assert_eq!(OutlierDetector::<u8>::builder("db").build()?.name(), "db");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    fn lock(&self) -> MutexGuard<'_, Endpoints<K>> {
        // Only counts and deadlines: a panic elsewhere leaves nothing half-updated.
        self.inner
            .endpoints
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> u64 {
        self.inner.clock.now_nanos()
    }

    fn tell(&self, event: &OutlierEvent<'_, K>) {
        for listener in &self.inner.listeners {
            listener(event);
        }
    }
}

impl<K: Hash + Eq + Clone + fmt::Display> OutlierDetector<K> {
    fn check(&self, key: &K) -> Result<(), Ejected> {
        let now = self.now();
        let mut endpoints = self.lock();
        match endpoints.check(key, now) {
            Check::Admit => Ok(()),
            Check::Returned => {
                let ejected_now = endpoints.ejected_count();
                drop(endpoints);
                self.returned(key, ejected_now);
                Ok(())
            }
            Check::Ejected { remaining_nanos } => {
                drop(endpoints);
                Err(Ejected {
                    name: Name::from(key.to_string()),
                    retry_after: Duration::from_nanos(remaining_nanos),
                })
            }
        }
    }

    fn returned(&self, key: &K, ejected_now: usize) {
        tracing::debug!(detector = %self.inner.name, endpoint = %key, "endpoint returned");
        self.tell(&OutlierEvent::Returned { key, ejected_now });
    }

    /// Admits a call to `key`, or refuses it while `key` is ejected. Record how the call
    /// went on the permit; a permit dropped unrecorded counts nothing (a cancellation).
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("replicas").build()?;
    /// detector.admit(&"a").unwrap().success();
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn admit<'a>(&'a self, key: &'a K) -> Result<EjectionPermit<'a, K>, Ejected> {
        self.check(key)?;
        Ok(EjectionPermit::new(self, key))
    }

    /// [`admit`](Self::admit) with a permit that owns the key and a handle on the
    /// detector, for futures that outlive the borrow (a tower layer's).
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("replicas").build()?;
    /// let permit = detector.admit_owned(String::from("a")).unwrap();
    /// permit.failure();
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn admit_owned(&self, key: K) -> Result<OwnedEjectionPermit<K>, Ejected> {
        self.check(&key)?;
        Ok(OwnedEjectionPermit::new(self.clone(), key))
    }

    /// Records a call's outcome for `key` without a permit: a failure counts toward
    /// ejection, a success ends a run of failures, [`Outcome::Ignored`] counts nothing.
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").consecutive_failures(1).build()?;
    /// detector.record(&"b", Outcome::Success);
    /// detector.record(&"a", Outcome::Failure);
    /// assert!(detector.is_ejected(&"a"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn record(&self, key: &K, outcome: Outcome) {
        let failed = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Ignored => return,
        };
        let now = self.now();
        let mut returned = Vec::new();
        let mut endpoints = self.lock();
        let verdict = endpoints.record(key, failed, now, |k| returned.push(k.clone()));
        let ejected_now = endpoints.ejected_count();
        drop(endpoints);
        for back in &returned {
            self.returned(back, ejected_now);
        }
        match verdict {
            Verdict::Stay => {}
            Verdict::Eject {
                reason,
                for_nanos,
                ejections,
            } => {
                let ejected_for = Duration::from_nanos(for_nanos);
                tracing::info!(
                    detector = %self.inner.name, endpoint = %key, reason = reason.as_str(),
                    ?ejected_for, "endpoint ejected"
                );
                self.tell(&OutlierEvent::Ejected {
                    key,
                    reason,
                    ejected_for,
                    ejections,
                    ejected_now,
                });
            }
            Verdict::Capped { reason } => {
                tracing::debug!(
                    detector = %self.inner.name, endpoint = %key,
                    "outlier kept: the ejection cap is reached"
                );
                self.tell(&OutlierEvent::Kept { key, reason });
            }
        }
    }

    /// Whether `key` is ejected now.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// assert!(!detector.is_ejected(&"unknown"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn is_ejected(&self, key: &K) -> bool {
        let now = self.now();
        self.lock().is_ejected(key, now)
    }

    /// The endpoints ejected now, in no particular order. Ejections found over are ended
    /// (and their returns told) on the way.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").consecutive_failures(1).build()?;
    /// detector.record(&"b", fusebox_core::Outcome::Success);
    /// detector.admit(&"a").unwrap().failure();
    /// assert_eq!(detector.ejected(), ["a"]);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn ejected(&self) -> Vec<K> {
        let now = self.now();
        let mut returned = Vec::new();
        let mut endpoints = self.lock();
        endpoints.sweep(now, |k| returned.push(k.clone()));
        let ejected = endpoints.ejected_keys(now).cloned().collect();
        let ejected_now = endpoints.ejected_count();
        drop(endpoints);
        for back in &returned {
            self.returned(back, ejected_now);
        }
        ejected
    }

    /// The endpoints of `endpoints` that are not ejected, in their order, for a balancer to
    /// pick from. Every endpoint passed becomes known, so the cap on ejections counts it.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// assert_eq!(detector.available(&["a", "b"]), [&"a", &"b"]);
    /// assert_eq!(detector.known(), 2);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn available<'a>(&self, endpoints: &'a [K]) -> Vec<&'a K> {
        let now = self.now();
        let mut state = self.lock();
        endpoints
            .iter()
            .filter(|key| {
                state.register(key, now);
                !state.is_ejected(key, now)
            })
            .collect()
    }

    /// How many endpoints the detector knows.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// let _ = detector.admit(&1u16);
    /// assert_eq!(detector.known(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn known(&self) -> usize {
        self.lock().known()
    }

    /// Forgets `key` (an endpoint removed from the pool), ejected or not; returns whether it
    /// was known.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// let _ = detector.admit(&"a");
    /// assert!(detector.forget(&"a"));
    /// assert_eq!(detector.known(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn forget(&self, key: &K) -> bool {
        self.lock().forget(key)
    }

    /// Runs `op` against `key` unless it is ejected; an `Err` from `op` counts as a failure,
    /// an `Ok` as a success.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// assert_eq!(detector.call(&"a", || async { Ok::<_, ()>(1) }).await.unwrap(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, key: &K, op: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let permit = self.admit(key).map_err(Error::Ejected)?;
        let result = op().await;
        if result.is_ok() {
            permit.success();
        } else {
            permit.failure();
        }
        result.map_err(Error::Inner)
    }
}
