use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use fusebox_core::{Classifier, Outcome, Throttled};
use fusebox_policy::policy::Throttle;
use pin_project_lite::pin_project;

use crate::BoxError;
use crate::settled::{Settle, Settled};

pin_project! {
    /// The response of a [`ThrottleService`](super::ThrottleService): the inner service's,
    /// recorded as accepted or refused when it completes, or a boxed [`Throttled`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_tower::BoxError> {
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_policy::policy::Throttle;
    /// use fusebox_tower::throttle::ThrottleService;
    /// use tower::{service_fn, Service};
    /// let mut svc = ThrottleService::new(service_fn(|(): ()| async { Ok::<_, std::io::Error>(1) }), Throttle::builder("a").build()?, ErrIsFailure);
    /// assert_eq!(svc.call(()).await?, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: Settled<F, CountAccepted<C>, Throttled>,
    }
}

/// The throttle's part once a sent call completes: count it accepted or refused.
pub(crate) struct CountAccepted<C> {
    throttle: Throttle,
    classifier: C,
}

impl<C, T, E> Settle<T, E> for CountAccepted<C>
where
    C: Classifier<T, E>,
{
    const POLLED_AFTER_COMPLETION: &'static str = "throttle future polled after completion";

    #[inline]
    fn settle(self, result: &Result<T, E>) {
        self.throttle
            .record(self.classifier.classify(result) != Outcome::Failure);
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(super) fn sent(future: F, throttle: Throttle, classifier: C) -> Self {
        ResponseFuture {
            inner: Settled::admitted(
                future,
                CountAccepted {
                    throttle,
                    classifier,
                },
            ),
        }
    }

    pub(super) fn dropped(throttled: Throttled) -> Self {
        ResponseFuture {
            inner: Settled::refused(throttled),
        }
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, C, T, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    C: Classifier<T, E>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}
