use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use fusebox_core::{Classifier, Outcome, Throttled};
use fusebox_policy::policy::Throttle;
use pin_project_lite::pin_project;

use crate::BoxError;

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
        state: State<F, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C> {
        Dropped { throttled: Option<Throttled> },
        Sent { #[pin] future: F, throttle: Throttle, classifier: C },
    }
}

impl<F, C> ResponseFuture<F, C> {
    pub(super) fn sent(future: F, throttle: Throttle, classifier: C) -> Self {
        ResponseFuture {
            state: State::Sent {
                future,
                throttle,
                classifier,
            },
        }
    }

    pub(super) fn dropped(throttled: Throttled) -> Self {
        ResponseFuture {
            state: State::Dropped {
                throttled: Some(throttled),
            },
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

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Dropped { throttled } => Poll::Ready(Err(match throttled.take() {
                Some(throttled) => Box::new(throttled),
                None => "throttle future polled after completion".into(),
            })),
            StateProj::Sent {
                future,
                throttle,
                classifier,
            } => {
                let result = ready!(future.poll(cx));
                throttle.record(classifier.classify(&result) != Outcome::Failure);
                Poll::Ready(result.map_err(Into::into))
            }
        }
    }
}
