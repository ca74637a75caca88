use std::fmt;

use fusebox_policy::policy::OutlierDetector;
use tower_layer::Layer;

use super::service::OutlierService;

/// Wraps a service in an [`OutlierService`]: each request's endpoint, read by `key_of`, is
/// refused while ejected; `classifier` tells which responses count as the endpoint's
/// failures.
///
/// ```
/// use fusebox_policy::policy::OutlierDetector;
/// use fusebox_tower::http::HttpClassifier;
/// use fusebox_tower::outlier::OutlierLayer;
/// let detector = OutlierDetector::<String>::builder("replicas").build()?;
/// // The endpoint of an HTTP request is its authority (host and port).
/// let layer = OutlierLayer::new(
///     detector,
///     |req: &http::Request<()>| req.uri().authority().map(|a| a.to_string()).unwrap_or_default(),
///     HttpClassifier::<std::io::Error>::new(),
/// );
/// # let _ = layer;
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub struct OutlierLayer<K, F, C> {
    detector: OutlierDetector<K>,
    key_of: F,
    classifier: C,
}

impl<K, F: Clone, C: Clone> Clone for OutlierLayer<K, F, C> {
    fn clone(&self) -> Self {
        OutlierLayer {
            detector: self.detector.clone(),
            key_of: self.key_of.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

impl<K, F, C> fmt::Debug for OutlierLayer<K, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutlierLayer")
            .field("detector", &self.detector)
            .finish_non_exhaustive()
    }
}

impl<K, F, C> OutlierLayer<K, F, C> {
    /// A layer whose services share `detector`, reading each request's endpoint with
    /// `key_of` and classifying responses with `classifier`.
    ///
    /// ```
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_policy::policy::OutlierDetector;
    /// use fusebox_tower::outlier::OutlierLayer;
    /// let detector = OutlierDetector::<u16>::builder("hosts").build()?;
    /// let _layer = OutlierLayer::new(detector, |host: &u16| *host, ErrIsFailure);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(detector: OutlierDetector<K>, key_of: F, classifier: C) -> Self {
        OutlierLayer {
            detector,
            key_of,
            classifier,
        }
    }
}

impl<S, K, F: Clone, C: Clone> Layer<S> for OutlierLayer<K, F, C> {
    type Service = OutlierService<S, K, F, C>;

    fn layer(&self, inner: S) -> Self::Service {
        OutlierService::new(
            inner,
            self.detector.clone(),
            self.key_of.clone(),
            self.classifier.clone(),
        )
    }
}
