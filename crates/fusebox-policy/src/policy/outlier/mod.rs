//! Outlier ejection: over a set of endpoints (hosts, replicas), stop sending to one that keeps
//! failing while the others answer, for a while that grows each time it is ejected again.
//!
//! The rules (consecutive failures, failure rate, growing ejection time, the cap on how many
//! may be out at once) are a pure part over state and `now`, free of locks and clocks;
//! [`OutlierDetector`] holds them behind a mutex with a clock, listeners and permits.

mod algorithm;
mod builder;
mod endpoint;
mod permit;

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fusebox_core::breaker::Name;
use fusebox_core::clock::SharedClock;
use fusebox_core::{Ejected, Error, Outcome};

pub use algorithm::EjectionReason;
use algorithm::{Check, Endpoints, Verdict};
pub use builder::OutlierDetectorBuilder;
pub(crate) use endpoint::EndpointGate;
pub use endpoint::OutlierEndpoint;
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

pub(super) type Listener<K> = Arc<dyn Fn(&OutlierEvent<'_, K>) + Send + Sync>;

pub(super) struct Inner<K> {
    pub(super) name: Name,
    pub(super) clock: SharedClock,
    pub(super) endpoints: Mutex<Endpoints<K>>,
    pub(super) listeners: Vec<Listener<K>>,
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
    pub(super) inner: Arc<Inner<K>>,
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
    pub(super) fn check(&self, key: &K) -> Result<(), Ejected> {
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
