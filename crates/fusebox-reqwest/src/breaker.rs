//! A circuit breaker per host (or one for every request) as a reqwest middleware.

use fusebox_core::ConfigError;
use fusebox_core::breaker::{Breaker, BreakerSettings};
use fusebox_core::keyed::BreakerRegistry;
use http::Extensions;
use reqwest::{Request, Response, Url};
use reqwest_middleware::{Middleware, Next, Result};

use crate::ReqwestClassifier;

/// Which breaker guards a request.
#[derive(Clone, Debug)]
enum Breakers {
    /// One per origin (`scheme://host:port`): a sick host is cut off alone.
    PerHost(BreakerRegistry<String>),
    /// One for every request through this client.
    One(Breaker),
}

/// A circuit breaker around every request: a request to a host whose breaker is open fails
/// at once with a [`Rejected`](fusebox_core::Rejected) (see [`rejection`](crate::rejection)),
/// without touching the network. Responses and errors are judged by a
/// [`ReqwestClassifier`] (5xx, 429, 408 and transport errors fail).
///
/// By default each origin (`scheme://host:port`) has its own breaker, made from one
/// [`BreakerSettings`] by a keyed registry (bounded, idle hosts evicted), named
/// `{prefix}:{origin}`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_core::breaker::BreakerSettings;
/// use fusebox_reqwest::BreakerMiddleware;
///
/// let breakers = BreakerMiddleware::per_host(
///     "api",
///     BreakerSettings { consecutive_failures: Some(5), ..Default::default() },
/// )?;
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(breakers.clone())
///     .build();
/// # let _ = client;
/// // Later: every host's state, for health checks or a dashboard.
/// assert!(breakers.registry().is_some_and(|r| r.is_empty()));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct BreakerMiddleware {
    breakers: Breakers,
    classifier: ReqwestClassifier,
}

impl BreakerMiddleware {
    /// A breaker per origin, each made from `settings`, named `{prefix}:{origin}`.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// let m = fusebox_reqwest::BreakerMiddleware::per_host("api", BreakerSettings::default())?;
    /// # let _ = m;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn per_host(
        prefix: impl Into<String>,
        settings: BreakerSettings,
    ) -> std::result::Result<Self, ConfigError> {
        let registry = BreakerRegistry::builder(prefix)
            .settings(settings)
            .build()?;
        Ok(Self::registry_per_host(registry))
    }

    /// A breaker per origin from a registry built by hand: per-host overrides, bounds,
    /// idle eviction, a clock (see [`BreakerRegistry::builder`]).
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// use fusebox_core::keyed::BreakerRegistry;
    /// use fusebox_reqwest::BreakerMiddleware;
    ///
    /// let registry = BreakerRegistry::<String>::builder("api")
    ///     .per_key(|origin: &String| {
    ///         origin.contains("payments").then(|| BreakerSettings {
    ///             consecutive_failures: Some(2),
    ///             ..Default::default()
    ///         })
    ///     })
    ///     .max_keys(500)
    ///     .build()?;
    /// let m = BreakerMiddleware::registry_per_host(registry);
    /// # let _ = m;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn registry_per_host(registry: BreakerRegistry<String>) -> Self {
        BreakerMiddleware {
            breakers: Breakers::PerHost(registry),
            classifier: ReqwestClassifier::new(),
        }
    }

    /// One breaker for every request through the client.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let breaker = Breaker::builder("billing-api").consecutive_failures(3).build()?;
    /// let m = fusebox_reqwest::BreakerMiddleware::single(breaker);
    /// # let _ = m;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn single(breaker: Breaker) -> Self {
        BreakerMiddleware {
            breakers: Breakers::One(breaker),
            classifier: ReqwestClassifier::new(),
        }
    }

    /// Judges results with `classifier` instead of the default.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// use fusebox_reqwest::{BreakerMiddleware, ReqwestClassifier};
    /// let m = BreakerMiddleware::per_host("api", BreakerSettings::default())?
    ///     .classifier(ReqwestClassifier::new());
    /// # let _ = m;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn classifier(mut self, classifier: ReqwestClassifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// The per-host registry (`None` for a single breaker): snapshots, stats, eviction.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// let m = fusebox_reqwest::BreakerMiddleware::per_host("api", BreakerSettings::default())?;
    /// assert_eq!(m.registry().map(|r| r.len()), Some(0));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn registry(&self) -> Option<&BreakerRegistry<String>> {
        match &self.breakers {
            Breakers::PerHost(registry) => Some(registry),
            Breakers::One(_) => None,
        }
    }

    /// The breaker that guards requests to `url`.
    ///
    /// ```
    /// use fusebox_core::breaker::BreakerSettings;
    /// let m = fusebox_reqwest::BreakerMiddleware::per_host("api", BreakerSettings::default())?;
    /// let url = reqwest::Url::parse("https://example.com/v1/items?page=2")?;
    /// assert_eq!(m.breaker_for(&url).name(), "api:https://example.com");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn breaker_for(&self, url: &Url) -> Breaker {
        match &self.breakers {
            Breakers::PerHost(registry) => registry.get_or_create(&origin(url)),
            Breakers::One(breaker) => breaker.clone(),
        }
    }
}

/// `scheme://host:port` (the port only when not the scheme's default), the unit a host's
/// health is judged by; URLs without a host (`data:`, `file:`) share one key.
pub(crate) fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[async_trait::async_trait]
impl Middleware for BreakerMiddleware {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let breaker = self.breaker_for(req.url());
        let permit = breaker
            .try_acquire()
            .map_err(reqwest_middleware::Error::middleware)?;
        // A request dropped before it ends drops the permit: a cancellation, not counted.
        let result = next.run(req, extensions).await;
        permit.record_classified(&self.classifier, &result);
        result
    }
}
