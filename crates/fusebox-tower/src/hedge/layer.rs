use fusebox_policy::policy::Hedge;
use tower_layer::Layer;

use super::HedgeService;
use crate::retry::CloneRequests;

/// Wraps a service in a [`HedgeService`].
///
/// ```
/// use fusebox_policy::policy::Hedge;
/// use fusebox_tower::hedge::HedgeLayer;
/// let layer = HedgeLayer::new(Hedge::builder("users").build()?);
/// assert_eq!(layer.hedge().name(), "users");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct HedgeLayer<P = CloneRequests> {
    hedge: Hedge,
    requests: P,
}

impl HedgeLayer {
    /// A layer hedging per `hedge`, every request (copied with `Clone`).
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// use fusebox_tower::hedge::HedgeLayer;
    /// let _layer = HedgeLayer::new(Hedge::builder("users").build()?);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(hedge: Hedge) -> Self {
        HedgeLayer {
            hedge,
            requests: CloneRequests,
        }
    }
}

impl<P> HedgeLayer<P> {
    /// Chooses which requests may be hedged and how they are copied (a
    /// [`RetryRequest`](crate::retry::RetryRequest)).
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// use fusebox_tower::hedge::HedgeLayer;
    /// // Only even ids are safe to ask twice.
    /// let layer = HedgeLayer::new(Hedge::builder("users").build()?)
    ///     .requests(|id: &u32| id.is_multiple_of(2).then_some(*id));
    /// # let _ = layer;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn requests<P2>(self, requests: P2) -> HedgeLayer<P2> {
        HedgeLayer {
            hedge: self.hedge,
            requests,
        }
    }

    /// The hedge policy.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// use fusebox_tower::hedge::HedgeLayer;
    /// let layer = HedgeLayer::new(Hedge::builder("users").max_hedged_attempts(2).build()?);
    /// assert_eq!(layer.hedge().max_hedged_attempts(), 2);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn hedge(&self) -> &Hedge {
        &self.hedge
    }
}

impl<S, P: Clone> Layer<S> for HedgeLayer<P> {
    type Service = HedgeService<S, P>;

    fn layer(&self, inner: S) -> Self::Service {
        HedgeService::new(inner, self.hedge.clone(), self.requests.clone())
    }
}
