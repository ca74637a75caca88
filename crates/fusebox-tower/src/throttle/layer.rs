use fusebox_policy::policy::Throttle;
use tower_layer::Layer;

use super::service::ThrottleService;

/// Wraps a service in a [`ThrottleService`].
///
/// ```
/// use fusebox_core::ErrIsFailure;
/// use fusebox_policy::policy::Throttle;
/// use fusebox_tower::throttle::ThrottleLayer;
/// let layer = ThrottleLayer::new(Throttle::builder("db").build()?, ErrIsFailure);
/// # let _ = layer;
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ThrottleLayer<C> {
    throttle: Throttle,
    classifier: C,
}

impl<C> ThrottleLayer<C> {
    /// A layer whose services share `throttle`'s window, `classifier` telling which
    /// responses the dependency refused.
    ///
    /// ```
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_policy::policy::Throttle;
    /// use fusebox_tower::throttle::ThrottleLayer;
    /// let _layer = ThrottleLayer::new(Throttle::builder("db").build()?, ErrIsFailure);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(throttle: Throttle, classifier: C) -> Self {
        ThrottleLayer {
            throttle,
            classifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for ThrottleLayer<C> {
    type Service = ThrottleService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        ThrottleService::new(inner, self.throttle.clone(), self.classifier.clone())
    }
}
