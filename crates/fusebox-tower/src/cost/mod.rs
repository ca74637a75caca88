//! A cost guard as a tower layer: every call is admitted against a spending budget, and its
//! cost, told by an extractor from the inner service's result, is recorded when it completes.
//!
//! Admission happens in `call`: a refused call is a ready [`CostRejected`] error and the inner
//! service is not called. A response future dropped before it completes (a cancelled request)
//! may still have been billed, so it counts as an unknown cost.
//!
//! The extractor sees the inner service's own result, before boxing. When the inner service
//! is itself a fusebox layer, its refusals (a [`Rejected`](fusebox_core::Rejected) inside the
//! `BoxError`) reach the extractor too, which can count them as free.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use fusebox_core::clock::ManualClock;
//! use fusebox_core::guard::{CostGuard, CostPolicy};
//! use fusebox_core::CostRejected;
//! use fusebox_tower::cost::CostGuardLayer;
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! // A model endpoint answering with the tokens it used.
//! let model = service_fn(|prompt: &'static str| async move {
//!     Ok::<u32, std::io::Error>(prompt.len() as u32 * 100)
//! });
//! let guard = CostGuard::builder("llm", CostPolicy::builder(1.0).build()?)
//!     .clock(ManualClock::new())
//!     .build()?;
//! let price = |r: &Result<u32, std::io::Error>| r.as_ref().ok().map(|t| f64::from(*t) * 0.001);
//! let svc = CostGuardLayer::new(guard.clone(), price).layer(model);
//!
//! assert_eq!(svc.clone().oneshot("hello").await?, 500); // costs 0.5
//! assert_eq!(svc.clone().oneshot("hello").await?, 500); // 1.0: the budget is spent
//! let err = svc.oneshot("hello").await.unwrap_err();
//! assert!(err.is::<CostRejected>());
//! assert_eq!(guard.status().spent, 1.0);
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use fusebox_core::CostRejected;
use fusebox_core::guard::{CostExtractor, CostGuard, OwnedCostPermit};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::BoxError;

/// Guards every service it makes with one shared [`CostGuard`]; `extractor` (a
/// [`CostExtractor`] over `Result<Response, Error>`) tells each call's cost.
///
/// ```
/// use fusebox_core::guard::{CostGuard, CostPolicy};
/// use fusebox_tower::cost::CostGuardLayer;
///
/// let guard = CostGuard::builder("search", CostPolicy::builder(20.0).build()?).build()?;
/// let flat = |_: &Result<String, std::io::Error>| Some(0.01);
/// let layer = CostGuardLayer::new(guard, flat);
/// assert_eq!(layer.guard().name(), "search");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CostGuardLayer<X> {
    guard: CostGuard,
    extractor: X,
}

impl<X> CostGuardLayer<X> {
    /// A layer around `guard`. The extractor is cloned into each call's future, so keep it
    /// cheap to clone (a function, a small struct, or an `Arc`).
    ///
    /// ```
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// use fusebox_tower::cost::CostGuardLayer;
    ///
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(5.0).build()?).build()?;
    /// let layer = CostGuardLayer::new(guard, |r: &Result<u32, ()>| r.ok().map(f64::from));
    /// assert_eq!(layer.guard().policy().budget().limit, 5.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(guard: CostGuard, extractor: X) -> Self {
        CostGuardLayer { guard, extractor }
    }

    /// The shared guard.
    ///
    /// ```
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// use fusebox_tower::cost::CostGuardLayer;
    ///
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(5.0).build()?).build()?;
    /// let layer = CostGuardLayer::new(guard, |_: &Result<(), ()>| Some(0.0));
    /// assert_eq!(layer.guard().status().spent, 0.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn guard(&self) -> &CostGuard {
        &self.guard
    }
}

impl<S, X: Clone> Layer<S> for CostGuardLayer<X> {
    type Service = CostGuardService<S, X>;

    fn layer(&self, inner: S) -> Self::Service {
        CostGuardService {
            inner,
            guard: self.guard.clone(),
            extractor: self.extractor.clone(),
        }
    }
}

/// A service behind a cost guard; see [`CostGuardLayer`].
///
/// `poll_ready` is the inner service's (see the [crate docs](crate#readiness)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_tower::BoxError> {
/// use fusebox_core::guard::{CostGuard, CostPolicy};
/// use fusebox_tower::cost::CostGuardService;
/// use tower::{service_fn, ServiceExt};
///
/// let guard = CostGuard::builder("llm", CostPolicy::builder(5.0).build()?).build()?;
/// let inner = service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n) });
/// let svc = CostGuardService::new(inner, guard.clone(), |_: &Result<u32, std::io::Error>| Some(1.5));
/// assert_eq!(svc.get_ref().clone().oneshot(3).await?, 3); // the inner service, unguarded
/// assert_eq!(svc.oneshot(4).await?, 4);
/// assert_eq!(guard.status().spent, 1.5);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CostGuardService<S, X> {
    inner: S,
    guard: CostGuard,
    extractor: X,
}

impl<S, X> CostGuardService<S, X> {
    /// Wraps `inner`.
    ///
    /// ```
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// use fusebox_tower::cost::CostGuardService;
    ///
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(5.0).build()?).build()?;
    /// let svc = CostGuardService::new((), guard, |_: &Result<(), ()>| Some(0.0));
    /// assert_eq!(svc.guard().name(), "llm");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn new(inner: S, guard: CostGuard, extractor: X) -> Self {
        CostGuardService {
            inner,
            guard,
            extractor,
        }
    }

    /// The shared guard.
    ///
    /// ```
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// use fusebox_tower::cost::CostGuardService;
    ///
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(5.0).build()?).build()?;
    /// let svc = CostGuardService::new((), guard, |_: &Result<(), ()>| Some(0.0));
    /// assert_eq!(svc.guard().policy().budget().limit, 5.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn guard(&self) -> &CostGuard {
        &self.guard
    }

    /// The wrapped service.
    ///
    /// ```
    /// use fusebox_core::guard::{CostGuard, CostPolicy};
    /// use fusebox_tower::cost::CostGuardService;
    ///
    /// let guard = CostGuard::builder("llm", CostPolicy::builder(5.0).build()?).build()?;
    /// let svc = CostGuardService::new(7u8, guard, |_: &Result<(), ()>| Some(0.0));
    /// assert_eq!(*svc.get_ref(), 7);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, X, Req> Service<Req> for CostGuardService<S, X>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    X: CostExtractor<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, X>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let state = match self.guard.try_acquire_owned() {
            Ok(permit) => State::Admitted {
                future: self.inner.call(req),
                permit: Some(permit),
                extractor: self.extractor.clone(),
            },
            Err(rejected) => State::Rejected {
                rejected: Some(rejected),
            },
        };
        ResponseFuture { state }
    }
}

pin_project! {
    /// The future of a [`CostGuardService`] call. Dropped before it completes, its permit
    /// counts an unknown cost: the request may have been billed.
    pub struct ResponseFuture<F, X> {
        #[pin]
        state: State<F, X>,
    }
}

pin_project! {
    #[project = Proj]
    enum State<F, X> {
        Admitted {
            #[pin]
            future: F,
            permit: Option<OwnedCostPermit>,
            extractor: X,
        },
        Rejected {
            rejected: Option<CostRejected>,
        },
    }
}

impl<F, X> std::fmt::Debug for ResponseFuture<F, X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, X, T, E> Future for ResponseFuture<F, X>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    X: CostExtractor<T, E>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            Proj::Admitted {
                future,
                permit,
                extractor,
            } => {
                let result = ready!(future.poll(cx));
                if let Some(permit) = permit.take() {
                    permit.record(extractor.cost(&result));
                }
                Poll::Ready(result.map_err(Into::into))
            }
            Proj::Rejected { rejected } => Poll::Ready(Err(match rejected.take() {
                Some(r) => Box::new(r),
                None => "cost guard future polled after completion".into(),
            })),
        }
    }
}
