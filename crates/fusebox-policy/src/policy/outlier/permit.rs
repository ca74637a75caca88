//! Permits: a call admitted to an endpoint, recording how it went.

use std::fmt;
use std::hash::Hash;

use fusebox_core::{Classifier, Outcome};

use super::OutlierDetector;

/// A call admitted to an endpoint by [`OutlierDetector::admit`]. Record how it went with
/// [`success`](Self::success), [`failure`](Self::failure) or [`classify`](Self::classify);
/// dropped unrecorded, it counts nothing.
///
/// ```
/// use fusebox_core::FailureWhen;
/// use fusebox_policy::policy::OutlierDetector;
/// let detector = OutlierDetector::builder("r").consecutive_failures(1).build()?;
/// detector.admit(&"b").unwrap().success();
/// let only_5xx = FailureWhen(|status: &u16| *status >= 500);
/// detector.admit(&"a").unwrap().classify(&only_5xx, &Err::<(), _>(404));
/// assert!(!detector.is_ejected(&"a"));
/// detector.admit(&"a").unwrap().classify(&only_5xx, &Err::<(), _>(503));
/// assert!(detector.is_ejected(&"a"));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use = "a permit dropped unrecorded counts nothing"]
pub struct EjectionPermit<'a, K> {
    detector: &'a OutlierDetector<K>,
    key: &'a K,
}

impl<K: fmt::Debug> fmt::Debug for EjectionPermit<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EjectionPermit")
            .field("key", self.key)
            .finish_non_exhaustive()
    }
}

impl<'a, K> EjectionPermit<'a, K> {
    pub(super) fn new(detector: &'a OutlierDetector<K>, key: &'a K) -> Self {
        EjectionPermit { detector, key }
    }
}

impl<K: Hash + Eq + Clone + fmt::Display> EjectionPermit<'_, K> {
    /// The endpoint answered: a run of failures ends.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// detector.admit(&"a").unwrap().success();
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// The endpoint failed the call.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// detector.admit(&"a").unwrap().failure();
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// Records `outcome` ([`Outcome::Ignored`] counts nothing).
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// detector.admit(&"a").unwrap().record(Outcome::Ignored);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn record(self, outcome: Outcome) {
        self.detector.record(self.key, outcome);
    }

    /// Records what `classifier` makes of `result`.
    ///
    /// ```
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// detector.admit(&"a").unwrap().classify(&ErrIsFailure, &Ok::<_, ()>(()));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn classify<T, E>(self, classifier: &impl Classifier<T, E>, result: &Result<T, E>) {
        self.record(classifier.classify(result));
    }
}

/// A call admitted to an endpoint by [`OutlierDetector::admit_owned`]: owns its key and a
/// handle on the detector, so it can travel inside a future. Records as
/// [`EjectionPermit`] does.
///
/// ```
/// use fusebox_policy::policy::OutlierDetector;
/// let detector = OutlierDetector::builder("r").consecutive_failures(1).build()?;
/// detector.record(&"b".to_string(), fusebox_core::Outcome::Success);
/// let permit = detector.admit_owned("a".to_string()).unwrap();
/// assert_eq!(permit.key(), "a");
/// permit.failure();
/// assert!(detector.is_ejected(&"a".to_string()));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use = "a permit dropped unrecorded counts nothing"]
pub struct OwnedEjectionPermit<K> {
    detector: OutlierDetector<K>,
    key: K,
}

impl<K: fmt::Debug> fmt::Debug for OwnedEjectionPermit<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedEjectionPermit")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl<K> OwnedEjectionPermit<K> {
    pub(super) fn new(detector: OutlierDetector<K>, key: K) -> Self {
        OwnedEjectionPermit { detector, key }
    }

    /// The endpoint the call was admitted to.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// assert_eq!(*detector.admit_owned(7u8).unwrap().key(), 7);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn key(&self) -> &K {
        &self.key
    }
}

impl<K: Hash + Eq + Clone + fmt::Display> OwnedEjectionPermit<K> {
    /// The endpoint answered: a run of failures ends.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// detector.admit_owned(1u8).unwrap().success();
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// The endpoint failed the call.
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// detector.admit_owned(1u8).unwrap().failure();
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// Records `outcome` ([`Outcome::Ignored`] counts nothing).
    ///
    /// ```
    /// use fusebox_core::Outcome;
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// detector.admit_owned(1u8).unwrap().record(Outcome::Ignored);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn record(self, outcome: Outcome) {
        self.detector.record(&self.key, outcome);
    }

    /// Records what `classifier` makes of `result`.
    ///
    /// ```
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::builder("r").build()?;
    /// detector.admit_owned(1u8).unwrap().classify(&ErrIsFailure, &Err::<(), _>("reset"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn classify<T, E>(self, classifier: &impl Classifier<T, E>, result: &Result<T, E>) {
        self.record(classifier.classify(result));
    }
}
