use fusebox_core::ErrIsFailure;
use fusebox_policy::policy::ConcurrencyLimit;
use tower_layer::Layer;

use super::ConcurrencyLimitService;

/// Puts every service it makes behind one shared [`ConcurrencyLimit`], reading each result
/// with a [`Classifier`](fusebox_core::Classifier) (by default an error is a drop and any
/// response a success).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_core::Outcome;
/// use fusebox_policy::policy::ConcurrencyLimit;
/// use fusebox_tower::concurrency_limit::ConcurrencyLimitLayer;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// let limit = ConcurrencyLimit::builder("api").build()?;
/// // A 503 answer is overload: the limit backs off.
/// let layer = ConcurrencyLimitLayer::new(limit).classifier(|r: &Result<u16, std::io::Error>| {
///     if matches!(r, Ok(503) | Err(_)) { Outcome::Failure } else { Outcome::Success }
/// });
/// let svc = layer.layer(service_fn(|code: u16| async move { Ok::<_, std::io::Error>(code) }));
/// assert_eq!(svc.oneshot(200).await?, 200);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ConcurrencyLimitLayer<C = ErrIsFailure> {
    limit: ConcurrencyLimit,
    classifier: C,
}

impl ConcurrencyLimitLayer {
    /// A layer sharing `limit`, counting errors as drops.
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// use fusebox_tower::concurrency_limit::ConcurrencyLimitLayer;
    /// let layer = ConcurrencyLimitLayer::new(ConcurrencyLimit::builder("db").build()?);
    /// assert_eq!(layer.limit().name(), "db");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(limit: ConcurrencyLimit) -> Self {
        ConcurrencyLimitLayer {
            limit,
            classifier: ErrIsFailure,
        }
    }
}

impl<C> ConcurrencyLimitLayer<C> {
    /// Reads results with `classifier` instead.
    ///
    /// ```
    /// use fusebox_core::FailureWhen;
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// use fusebox_tower::concurrency_limit::ConcurrencyLimitLayer;
    /// let layer = ConcurrencyLimitLayer::new(ConcurrencyLimit::builder("db").build()?)
    ///     .classifier(FailureWhen(|e: &std::io::Error| e.kind() == std::io::ErrorKind::TimedOut));
    /// # let _ = layer;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn classifier<C2>(self, classifier: C2) -> ConcurrencyLimitLayer<C2> {
        ConcurrencyLimitLayer {
            limit: self.limit,
            classifier,
        }
    }

    /// The shared limit.
    ///
    /// ```
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// use fusebox_tower::concurrency_limit::ConcurrencyLimitLayer;
    /// let layer = ConcurrencyLimitLayer::new(ConcurrencyLimit::builder("db").initial_limit(3).build()?);
    /// assert_eq!(layer.limit().limit(), 3);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn limit(&self) -> &ConcurrencyLimit {
        &self.limit
    }
}

impl<S, C: Clone> Layer<S> for ConcurrencyLimitLayer<C> {
    type Service = ConcurrencyLimitService<S, C>;
    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimitService::new(inner, self.limit.clone(), self.classifier.clone())
    }
}
