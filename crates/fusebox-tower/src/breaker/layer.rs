use fusebox_core::ErrIsFailure;
use fusebox_core::breaker::Breaker;
use tower_layer::Layer;

use super::CircuitBreaker;

/// Wraps a service in a circuit breaker. Every service the layer makes shares the breaker.
///
/// The classifier (a [`fusebox_core::Classifier`] over `Result<Response, Error>`) decides
/// what each outcome means; the default counts every `Err` as a failure. Use
/// [`HttpClassifier`](crate::http::HttpClassifier) for HTTP services, where a 503 is an `Ok`.
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// use fusebox_core::Outcome;
/// use fusebox_tower::BreakerLayer;
///
/// let layer = BreakerLayer::new(Breaker::builder("db").build()?)
///     .classifier(|r: &Result<u32, std::io::Error>| match r {
///         Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::Ignored,
///         Err(_) => Outcome::Failure,
///         Ok(_) => Outcome::Success,
///     });
/// assert_eq!(layer.breaker().name(), "db");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BreakerLayer<C = ErrIsFailure> {
    breaker: Breaker,
    classifier: C,
}

impl BreakerLayer {
    /// A layer around `breaker`, counting every `Err` as a failure.
    pub fn new(breaker: Breaker) -> Self {
        BreakerLayer {
            breaker,
            classifier: ErrIsFailure,
        }
    }
}

impl<C> BreakerLayer<C> {
    /// Replaces the classifier. It is cloned into each call's future, so keep it cheap to
    /// clone (a function, a small struct, or an `Arc`).
    pub fn classifier<C2>(self, classifier: C2) -> BreakerLayer<C2> {
        BreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }

    /// The shared breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }
}

impl<S, C: Clone> Layer<S> for BreakerLayer<C> {
    type Service = CircuitBreaker<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::new(inner, self.breaker.clone(), self.classifier.clone())
    }
}
