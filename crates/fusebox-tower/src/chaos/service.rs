use std::task::{Context, Poll};

use fusebox_policy::policy::Chaos;
use tower_service::Service;

use super::ChaosFault;
use super::future::ResponseFuture;
use crate::BoxError;

/// A service whose calls chaos may delay or answer with a fault; built by
/// [`ChaosLayer`](super::ChaosLayer).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_policy::policy::Chaos;
/// use fusebox_tower::chaos::ChaosService;
/// use tower::{service_fn, ServiceExt};
/// let chaos = Chaos::builder("db").enabled(true).fault(1.0, || Err("injected".into())).build()?;
/// let svc = ChaosService::new(service_fn(|n: u8| async move { Ok::<_, std::io::Error>(n) }), chaos);
/// assert_eq!(svc.oneshot(4).await.unwrap_err().to_string(), "injected");
/// # Ok(())
/// # }
/// ```
pub struct ChaosService<S, R> {
    inner: S,
    chaos: Chaos<ChaosFault<R>>,
}

impl<S: Clone, R> Clone for ChaosService<S, R> {
    fn clone(&self) -> Self {
        ChaosService {
            inner: self.inner.clone(),
            chaos: self.chaos.clone(),
        }
    }
}

impl<S, R> std::fmt::Debug for ChaosService<S, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChaosService")
            .field("chaos", &self.chaos)
            .finish_non_exhaustive()
    }
}

impl<S, R> ChaosService<S, R> {
    /// Injects `chaos` into `inner`'s calls.
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// use fusebox_tower::chaos::ChaosService;
    /// use fusebox_tower::chaos::ChaosFault;
    /// let chaos = Chaos::<ChaosFault<u8>>::builder("db").build()?;
    /// let svc = ChaosService::new(tower::service_fn(|n: u8| async move { Ok::<_, std::io::Error>(n) }), chaos);
    /// # let _ = svc;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(inner: S, chaos: Chaos<ChaosFault<R>>) -> Self {
        ChaosService { inner, chaos }
    }
}

impl<S, Req> Service<Req> for ChaosService<S, S::Response>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let injection = self.chaos.decide();
        let fault = if injection.fault {
            self.chaos.make_fault()
        } else {
            None
        };
        match (injection.delay, fault) {
            (None, None) => ResponseFuture::passing(self.inner.call(req)),
            (None, Some(answer)) => ResponseFuture::answered(answer),
            (Some(delay), Some(answer)) => {
                ResponseFuture::delayed_fault(tokio::time::sleep(delay), answer)
            }
            (Some(delay), None) => {
                // The ready service keeps the delayed request; a clone takes its place.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                ResponseFuture::delayed_call(tokio::time::sleep(delay), ready, req)
            }
        }
    }
}
