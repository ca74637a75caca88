use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::task::{Context, Poll};

use fusebox_core::{Classifier, Ejected};
use fusebox_policy::policy::OwnedEjectionPermit;
use pin_project_lite::pin_project;

use crate::BoxError;
use crate::settled::{Settle, Settled};

pin_project! {
    /// The response of an [`OutlierService`](super::OutlierService): the inner service's,
    /// recorded against its endpoint when it completes, or a boxed [`Ejected`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_tower::BoxError> {
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_policy::policy::OutlierDetector;
    /// use fusebox_tower::outlier::OutlierService;
    /// use tower::{service_fn, Service};
    /// let detector = OutlierDetector::builder("hosts").build()?;
    /// let mut svc = OutlierService::new(
    ///     service_fn(|host: &'static str| async move { Ok::<_, std::io::Error>(host.len()) }),
    ///     detector,
    ///     |host: &&'static str| *host,
    ///     ErrIsFailure,
    /// );
    /// assert_eq!(svc.call("a.example").await?, 9);
    /// # Ok(())
    /// # }
    /// ```
    pub struct ResponseFuture<F, K, C> {
        #[pin]
        inner: Settled<F, RecordOutcome<K, C>, Ejected>,
    }
}

/// The detector's part once a sent call completes: count it for its endpoint.
pub(crate) struct RecordOutcome<K, C> {
    permit: OwnedEjectionPermit<K>,
    classifier: C,
}

impl<K, C, T, E> Settle<T, E> for RecordOutcome<K, C>
where
    K: Hash + Eq + Clone + fmt::Display,
    C: Classifier<T, E>,
{
    const POLLED_AFTER_COMPLETION: &'static str = "outlier future polled after completion";

    #[inline]
    fn settle(self, result: &Result<T, E>) {
        self.permit.classify(&self.classifier, result);
    }
}

impl<F, K, C> ResponseFuture<F, K, C> {
    pub(super) fn sent(future: F, permit: OwnedEjectionPermit<K>, classifier: C) -> Self {
        ResponseFuture {
            inner: Settled::admitted(future, RecordOutcome { permit, classifier }),
        }
    }

    pub(super) fn ejected(ejected: Ejected) -> Self {
        ResponseFuture {
            inner: Settled::refused(ejected),
        }
    }
}

impl<F, K, C> fmt::Debug for ResponseFuture<F, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, K, C, T, E> Future for ResponseFuture<F, K, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    K: Hash + Eq + Clone + fmt::Display,
    C: Classifier<T, E>,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}
