use fusebox_core::breaker::Breaker;
use tower_layer::Layer;

use super::GrpcBreaker;
use crate::GrpcClassifier;

/// Puts a circuit breaker around a gRPC service: a tonic `Channel` on the client side, or
/// a tonic server's routes. Every service the layer makes shares the breaker.
///
/// Each call is classified by its gRPC status with a [`GrpcClassifier`]: from the
/// `grpc-status` header at once when the response is Trailers-Only (how servers answer
/// most errors), otherwise from the trailers when the body ends; see [`ResponseBody`]
/// for streams and bodies dropped early. A rejection is answered without calling the
/// inner service, as a Trailers-Only `UNAVAILABLE` response with the breaker's remaining
/// cooldown as `RetryInfo` (see [`rejection_status`](crate::rejection_status)), so a
/// generated client returns `Err(Status)` like for any other gRPC error.
///
/// [`ResponseBody`]: super::ResponseBody
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_core::breaker::Breaker;
/// use fusebox_tonic::GrpcBreakerLayer;
/// use tonic::transport::Endpoint;
/// use tonic_health::pb::health_client::HealthClient;
/// use tower::ServiceBuilder;
///
/// let breaker = Breaker::builder("inventory").consecutive_failures(5).build()?;
/// let channel = Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
/// let channel = ServiceBuilder::new()
///     .layer(GrpcBreakerLayer::new(breaker))
///     .service(channel);
/// let mut client = HealthClient::new(channel);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct GrpcBreakerLayer {
    breaker: Breaker,
    classifier: GrpcClassifier,
}

impl GrpcBreakerLayer {
    /// A layer around `breaker` with the default [`GrpcClassifier`].
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_tonic::GrpcBreakerLayer;
    /// let layer = GrpcBreakerLayer::new(Breaker::builder("users").build()?);
    /// assert_eq!(layer.breaker().name(), "users");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(breaker: Breaker) -> Self {
        GrpcBreakerLayer {
            breaker,
            classifier: GrpcClassifier::new(),
        }
    }

    /// Replaces the classifier.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_core::Outcome;
    /// use fusebox_tonic::{GrpcBreakerLayer, GrpcClassifier};
    /// use tonic::Code;
    ///
    /// let classifier = GrpcClassifier::builder().code(Code::NotFound, Outcome::Ignored).build()?;
    /// let layer = GrpcBreakerLayer::new(Breaker::builder("users").build()?).classifier(classifier);
    /// assert_eq!(layer.get_classifier().code_outcome(Code::NotFound), Outcome::Ignored);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn classifier(mut self, classifier: GrpcClassifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// The shared breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// The classifier.
    pub fn get_classifier(&self) -> &GrpcClassifier {
        &self.classifier
    }
}

impl<S> Layer<S> for GrpcBreakerLayer {
    type Service = GrpcBreaker<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcBreaker::new(inner, self.breaker.clone(), self.classifier)
    }
}
