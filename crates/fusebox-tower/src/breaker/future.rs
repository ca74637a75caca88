use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use fusebox_core::Classifier;
use fusebox_core::breaker::{OwnedPermit, Rejected};
use pin_project_lite::pin_project;

use crate::BoxError;
use crate::settled::{Settle, Settled};

pin_project! {
    /// The future of a [`CircuitBreaker`](super::CircuitBreaker) call. Dropped before it
    /// completes (a cancelled request), its permit counts as nothing and frees any
    /// half-open trial slot.
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: Settled<F, RecordOutcome<C>, Rejected>,
    }
}

/// The breaker's part once an admitted call completes: record its outcome.
pub(crate) struct RecordOutcome<C> {
    permit: OwnedPermit,
    classifier: C,
}

impl<C, T, E> Settle<T, E> for RecordOutcome<C>
where
    C: Classifier<T, E>,
{
    const POLLED_AFTER_COMPLETION: &'static str = "circuit breaker future polled after completion";

    #[inline]
    fn settle(self, result: &Result<T, E>) {
        self.permit.record_classified(&self.classifier, result);
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(crate) fn admitted(future: F, permit: OwnedPermit, classifier: C) -> Self {
        ResponseFuture {
            inner: Settled::admitted(future, RecordOutcome { permit, classifier }),
        }
    }

    pub(crate) fn rejected(rejected: Rejected) -> Self {
        ResponseFuture {
            inner: Settled::refused(rejected),
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
