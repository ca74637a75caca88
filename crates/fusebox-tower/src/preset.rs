//! Presets: a standard resilience stack for a common kind of client in one line, with its
//! numbers written down.
//!
//! [`http_client`] is the stack most HTTP clients want, outermost first:
//!
//! | level | what | numbers |
//! |---|---|---|
//! | retry | idempotent requests only ([`IdempotentRequests`]); 5xx (but 501, 505), 429, 408, timeouts and transport errors; never a breaker's rejection | 2 retries (3 attempts); exponential backoff from 200 ms, doubling, at most 5 s, full jitter; a `Retry-After` on a 429 or 503 is waited for, up to 30 s, and a longer one ends the retries; a retry budget of 20 % of first attempts plus 10 per second (over 10 s) |
//! | breaker | the [`HttpClassifier`]: 5xx, 429 and 408 answers and errors are failures | opens when half of the last 20 calls failed, once 10 were made; 5 s cooldown; closes after 3 of 3 trials succeed |
//! | timeout | each attempt | 10 s |
//!
//! Every attempt goes through the breaker, so once it opens the retry stops at once; the
//! budget caps the extra load while the breaker is still learning. To change a number, build
//! the same stack from its parts ([`http_retry_policy`], [`http_breaker`], [`TimeoutLayer`])
//! in a `tower::ServiceBuilder`.

use std::time::Duration;

use fusebox_core::ConfigError;
use fusebox_core::backoff::{Backoff, Jitter};
use fusebox_core::breaker::{Breaker, BreakerBuilder, Name};
use fusebox_core::budget::{BudgetConfig, RetryBudget};
use fusebox_policy::policy::RetryBuilder;
use http::Response;
use tower_layer::Layer;

use crate::BoxError;
use crate::breaker::{BreakerLayer, CircuitBreaker};
use crate::http::{HttpClassifier, IdempotentRequests, retry_policy};
use crate::retry::{RetryLayer, RetryService};
use crate::timeout::{TimeoutLayer, TimeoutService};

/// Retries of the preset: 2.
pub const HTTP_MAX_RETRIES: u32 = 2;
/// First backoff delay of the preset: 200 ms, doubling up to [`HTTP_MAX_BACKOFF`].
pub const HTTP_MIN_BACKOFF: Duration = Duration::from_millis(200);
/// Longest backoff delay of the preset: 5 s.
pub const HTTP_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Longest `Retry-After` the preset waits for: 30 s.
pub const HTTP_MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// Per-attempt timeout of the preset: 10 s.
pub const HTTP_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Cooldown of the preset's breaker: 5 s.
pub const HTTP_COOLDOWN: Duration = Duration::from_secs(5);

/// The preset's retry for responses with bodies of type `B`, named `name`: see the
/// [module docs](self). Returns the builder, to change a number or add listeners.
///
/// ```
/// use fusebox_tower::preset::http_retry_policy;
/// let retry = http_retry_policy::<String>("pricing").build()?;
/// assert_eq!(retry.max_retries(), 2);
/// assert!(retry.budget().is_some());
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn http_retry_policy<B: 'static>(name: impl Into<Name>) -> RetryBuilder<Response<B>, BoxError> {
    let backoff = Backoff::exponential(HTTP_MIN_BACKOFF, HTTP_MAX_BACKOFF)
        .factor(2.0)
        .jitter(Jitter::Full)
        .build()
        .expect("the preset's backoff is valid");
    retry_policy::<B>()
        .name(name)
        .max_retries(HTTP_MAX_RETRIES)
        .backoff(backoff)
        .max_retry_after(HTTP_MAX_RETRY_AFTER)
        .budget(RetryBudget::new(BudgetConfig::default()))
}

/// The preset's breaker, named `name`: see the [module docs](self). Returns the builder, to
/// change a number or add listeners.
///
/// ```
/// use fusebox_tower::preset::http_breaker;
/// let breaker = http_breaker("pricing").build()?;
/// assert_eq!(breaker.config().failure_rate(), Some(0.5));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub fn http_breaker(name: impl Into<Name>) -> BreakerBuilder {
    Breaker::builder(name)
        .count_window(20)
        .failure_rate(0.5)
        .min_calls(10)
        .cooldown(HTTP_COOLDOWN)
        .half_open_trials(3, 3)
}

/// The standard HTTP client stack in one layer: retry (Retry-After, budget, idempotent
/// requests) outside a breaker with the HTTP classifier, outside a per-attempt timeout; see
/// the [module docs](self) for its numbers. `name` names the retry and the breaker.
///
/// The requests' bodies must be `Clone` to be retried (buffer a streamed body first, e.g. as
/// `http_body_util::Full<bytes::Bytes>`); `B` is the responses' body type.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_tower::preset::http_client;
/// use tower::{ServiceBuilder, ServiceExt};
///
/// let preset = http_client::<String>("pricing")?;
/// let breaker = preset.breaker().clone(); // for health checks and metrics
/// let client = ServiceBuilder::new().layer(preset).service_fn(|_req: http::Request<String>| async {
///     Ok::<_, std::io::Error>(http::Response::new("42".to_string()))
/// });
/// let response = client.oneshot(http::Request::new(String::new())).await?;
/// assert_eq!(response.into_body(), "42");
/// assert_eq!(breaker.name(), "pricing");
/// # Ok(())
/// # }
/// ```
pub fn http_client<B: 'static>(name: impl Into<Name>) -> Result<HttpClientLayer<B>, ConfigError> {
    let name = name.into();
    let breaker = http_breaker(name.clone()).build()?;
    HttpClientLayer::new(
        http_retry_policy::<B>(name).build()?,
        breaker,
        HTTP_ATTEMPT_TIMEOUT,
    )
}

/// The layer [`http_client`] gives: a [`RetryLayer`] over a [`BreakerLayer`] with the
/// [`HttpClassifier`] over a [`TimeoutLayer`].
#[derive(Debug)]
pub struct HttpClientLayer<B> {
    retry: RetryLayer<Response<B>, IdempotentRequests>,
    breaker: BreakerLayer<HttpClassifier<BoxError>>,
    timeout: TimeoutLayer,
}

// Not derived: a derive would require `B: Clone`.
impl<B> Clone for HttpClientLayer<B> {
    fn clone(&self) -> Self {
        HttpClientLayer {
            retry: self.retry.clone(),
            breaker: self.breaker.clone(),
            timeout: self.timeout,
        }
    }
}

impl<B> HttpClientLayer<B> {
    /// The same stack from parts of your own: the retry (built from
    /// [`http_retry_policy`], say), the breaker and the per-attempt timeout.
    ///
    /// ```
    /// use fusebox_tower::preset::{HttpClientLayer, http_breaker, http_retry_policy};
    /// use std::time::Duration;
    /// let layer = HttpClientLayer::<String>::new(
    ///     http_retry_policy("search").max_retries(1).build()?,
    ///     http_breaker("search").cooldown(Duration::from_secs(30)).build()?,
    ///     Duration::from_secs(2),
    /// )?;
    /// assert_eq!(layer.breaker().name(), "search");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(
        retry: fusebox_policy::policy::Retry<Response<B>, BoxError>,
        breaker: Breaker,
        attempt_timeout: Duration,
    ) -> Result<Self, ConfigError> {
        Ok(HttpClientLayer {
            retry: RetryLayer::new(retry).requests(IdempotentRequests::new()),
            breaker: BreakerLayer::new(breaker).classifier(HttpClassifier::default()),
            timeout: TimeoutLayer::new(attempt_timeout)?,
        })
    }

    /// The breaker, shared by every service this layer makes.
    pub fn breaker(&self) -> &Breaker {
        self.breaker.breaker()
    }
}

impl<S, B> Layer<S> for HttpClientLayer<B> {
    type Service = RetryService<
        CircuitBreaker<TimeoutService<S>, HttpClassifier<BoxError>>,
        Response<B>,
        IdempotentRequests,
    >;

    fn layer(&self, inner: S) -> Self::Service {
        self.retry
            .layer(self.breaker.layer(self.timeout.layer(inner)))
    }
}
