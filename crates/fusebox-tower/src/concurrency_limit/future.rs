use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use fusebox_core::{Classifier, LimitExceeded};
use fusebox_policy::policy::OwnedLimitPermit;
use pin_project_lite::pin_project;

use crate::BoxError;
use crate::settled::{Settle, Settled};

pin_project! {
    /// The future of a [`ConcurrencyLimitService`](super::ConcurrencyLimitService) call:
    /// the inner call holding its place, or the refusal.
    pub struct ResponseFuture<F, C> {
        #[pin]
        inner: Settled<F, MeasureCall<C>, LimitExceeded>,
    }
}

/// The limit's part once an admitted call completes: measure it and free its place.
pub(crate) struct MeasureCall<C> {
    permit: OwnedLimitPermit,
    classifier: C,
}

impl<C, T, E> Settle<T, E> for MeasureCall<C>
where
    C: Classifier<T, E>,
{
    const POLLED_AFTER_COMPLETION: &'static str =
        "concurrency limit future polled after completion";

    #[inline]
    fn settle(self, result: &Result<T, E>) {
        self.permit.settle(self.classifier.classify(result));
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(super) fn running(future: F, permit: OwnedLimitPermit, classifier: C) -> Self {
        Self {
            inner: Settled::admitted(future, MeasureCall { permit, classifier }),
        }
    }

    pub(super) fn refused(refusal: LimitExceeded) -> Self {
        Self {
            inner: Settled::refused(refusal),
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
