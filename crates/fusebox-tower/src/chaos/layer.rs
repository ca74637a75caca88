use fusebox_policy::policy::Chaos;
use tower_layer::Layer;

use super::ChaosFault;
use super::service::ChaosService;

/// Wraps a service in a [`ChaosService`].
///
/// ```
/// use fusebox_policy::policy::Chaos;
/// use fusebox_tower::chaos::{ChaosFault, ChaosLayer};
/// let chaos = Chaos::<ChaosFault<u32>>::builder("db").build()?;
/// let layer = ChaosLayer::new(chaos);
/// # let _ = layer;
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
pub struct ChaosLayer<R> {
    chaos: Chaos<ChaosFault<R>>,
}

impl<R> Clone for ChaosLayer<R> {
    fn clone(&self) -> Self {
        ChaosLayer {
            chaos: self.chaos.clone(),
        }
    }
}

impl<R> std::fmt::Debug for ChaosLayer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosLayer")
            .field("chaos", &self.chaos)
            .finish()
    }
}

impl<R> ChaosLayer<R> {
    /// A layer whose services share `chaos` (its switch, draws and counts).
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// use fusebox_tower::chaos::ChaosLayer;
    /// let chaos = Chaos::builder("db").fault(0.1, || Err("injected".into())).build()?;
    /// let _layer: ChaosLayer<String> = ChaosLayer::new(chaos);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(chaos: Chaos<ChaosFault<R>>) -> Self {
        ChaosLayer { chaos }
    }
}

impl<S, R> Layer<S> for ChaosLayer<R> {
    type Service = ChaosService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        ChaosService::new(inner, self.chaos.clone())
    }
}
