//! One endpoint of an outlier detector as a policy of its own, for the stack or pipeline
//! that calls that endpoint.

use std::fmt;
use std::future::Future;
use std::hash::Hash;

use fusebox_core::{Ejected, Error, Outcome};

use super::OutlierDetector;
use crate::pipeline::breaker_outcome;

/// The calls to one endpoint of an [`OutlierDetector`], as a [`Stack`](crate::stack::Stack)
/// or [`Pipeline`](crate::pipeline::Pipeline) policy: refused with
/// [`Error::Ejected`] while the endpoint is ejected, counted otherwise. What the endpoint
/// answered is read as a breaker reads it: the caller's errors and timeouts are failures,
/// `Ok` a success, other errors (a refusal further in) count nothing.
///
/// Build one per endpoint from the shared detector: the ejection cap and the counts live in
/// the detector.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_policy::policy::OutlierDetector;
/// use fusebox_policy::stack::Stack;
/// let detector = OutlierDetector::builder("replicas").consecutive_failures(2).build()?;
/// let [a, b] = ["10.0.0.1", "10.0.0.2"].map(|host| Stack::new().policy(detector.endpoint(host)));
/// let _ = b.call(|| async { Ok::<_, &str>(()) }).await; // b is known, and healthy
/// for _ in 0..2 {
///     let _ = a.call(|| async { Err::<(), _>("503") }).await;
/// }
/// let refused = a.call(|| async { Ok::<_, &str>(()) }).await.unwrap_err();
/// assert_eq!(refused.stopped_by(), Some("outlier_ejection"));
/// assert!(b.call(|| async { Ok::<_, &str>(()) }).await.is_ok());
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct OutlierEndpoint<K> {
    detector: OutlierDetector<K>,
    key: K,
}

impl<K: fmt::Debug> fmt::Debug for OutlierEndpoint<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutlierEndpoint")
            .field("detector", &self.detector.name())
            .field("key", &self.key)
            .finish()
    }
}

impl<K> OutlierDetector<K> {
    /// The calls to endpoint `key`, as a policy; see [`OutlierEndpoint`].
    ///
    /// ```
    /// use fusebox_policy::policy::OutlierDetector;
    /// let detector = OutlierDetector::<&str>::builder("replicas").build()?;
    /// assert_eq!(detector.endpoint("10.0.0.1").key(), &"10.0.0.1");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn endpoint(&self, key: K) -> OutlierEndpoint<K> {
        OutlierEndpoint {
            detector: self.clone(),
            key,
        }
    }
}

impl<K> OutlierEndpoint<K> {
    /// The endpoint.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The detector it belongs to.
    pub fn detector(&self) -> &OutlierDetector<K> {
        &self.detector
    }
}

impl<K: Hash + Eq + Clone + fmt::Display> OutlierEndpoint<K> {
    /// Refuses while the endpoint is ejected; makes it known otherwise.
    pub(crate) fn admit(&self) -> Result<(), Ejected> {
        self.detector.check(&self.key)
    }

    /// Counts a call's result for the endpoint.
    pub(crate) fn settle<T, E>(&self, result: &Result<T, Error<E>>) {
        // Read as a breaker reads it: a refusal further in says nothing of the endpoint.
        self.detector.record(&self.key, breaker_outcome(result));
    }
}

impl<T, E, K> crate::stack::Policy<T, E> for OutlierEndpoint<K>
where
    K: Hash + Eq + Clone + fmt::Display,
{
    #[allow(clippy::manual_async_fn)]
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        async move {
            self.admit().map_err(Error::Ejected)?;
            let result = attempt().await;
            self.settle(&result);
            result
        }
    }
}

/// An endpoint whose key type a pipeline does not know.
pub(crate) trait EndpointGate: Send + Sync {
    fn admit(&self) -> Result<(), Ejected>;
    fn record(&self, outcome: Outcome);
}

impl<K> EndpointGate for OutlierEndpoint<K>
where
    K: Hash + Eq + Clone + fmt::Display + Send + Sync,
{
    fn admit(&self) -> Result<(), Ejected> {
        OutlierEndpoint::admit(self)
    }

    fn record(&self, outcome: Outcome) {
        self.detector.record(&self.key, outcome);
    }
}
