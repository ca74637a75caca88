use std::fmt;
use std::hash::Hash;
use std::task::{Context, Poll};

use fusebox_core::Classifier;
use fusebox_policy::policy::OutlierDetector;
use tower_service::Service;

use super::future::ResponseFuture;
use crate::BoxError;

/// A service whose requests are refused while their endpoint is ejected; built by
/// [`OutlierLayer`](super::OutlierLayer).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_core::ErrIsFailure;
/// use fusebox_policy::policy::OutlierDetector;
/// use fusebox_tower::outlier::OutlierService;
/// use tower::{service_fn, ServiceExt};
/// let detector = OutlierDetector::builder("hosts").consecutive_failures(1).build()?;
/// detector.available(&[1, 2]);
/// let svc = OutlierService::new(
///     service_fn(|host: u8| async move {
///         if host == 1 { Err(std::io::Error::other("reset")) } else { Ok(host) }
///     }),
///     detector,
///     |host: &u8| *host,
///     ErrIsFailure,
/// );
/// assert!(svc.clone().oneshot(1).await.unwrap_err().is::<std::io::Error>());
/// assert!(svc.clone().oneshot(1).await.unwrap_err().is::<fusebox_core::Ejected>());
/// assert_eq!(svc.oneshot(2).await?, 2);
/// # Ok(())
/// # }
/// ```
pub struct OutlierService<S, K, F, C> {
    inner: S,
    detector: OutlierDetector<K>,
    key_of: F,
    classifier: C,
}

impl<S: Clone, K, F: Clone, C: Clone> Clone for OutlierService<S, K, F, C> {
    fn clone(&self) -> Self {
        OutlierService {
            inner: self.inner.clone(),
            detector: self.detector.clone(),
            key_of: self.key_of.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

impl<S, K, F, C> fmt::Debug for OutlierService<S, K, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutlierService")
            .field("detector", &self.detector)
            .finish_non_exhaustive()
    }
}

impl<S, K, F, C> OutlierService<S, K, F, C> {
    /// Guards `inner` with `detector`, reading each request's endpoint with `key_of` and
    /// its response with `classifier`.
    ///
    /// ```
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_policy::policy::OutlierDetector;
    /// use fusebox_tower::outlier::OutlierService;
    /// let svc = OutlierService::new(
    ///     tower::service_fn(|k: u8| async move { Ok::<_, std::io::Error>(k) }),
    ///     OutlierDetector::<u8>::builder("a").build()?,
    ///     |k: &u8| *k,
    ///     ErrIsFailure,
    /// );
    /// # let _ = svc;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(inner: S, detector: OutlierDetector<K>, key_of: F, classifier: C) -> Self {
        OutlierService {
            inner,
            detector,
            key_of,
            classifier,
        }
    }
}

impl<S, Req, K, F, C> Service<Req> for OutlierService<S, K, F, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    K: Hash + Eq + Clone + fmt::Display,
    F: Fn(&Req) -> K,
    C: Classifier<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, K, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        match self.detector.admit_owned((self.key_of)(&req)) {
            Ok(permit) => {
                ResponseFuture::sent(self.inner.call(req), permit, self.classifier.clone())
            }
            Err(ejected) => ResponseFuture::ejected(ejected),
        }
    }
}
