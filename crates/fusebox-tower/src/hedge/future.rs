use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use fusebox_policy::policy::{Hedge, Stopwatch};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;

use crate::BoxError;
use crate::retry::RetryRequest;

/// What a hedged request needs to start more attempts.
struct Hedging<S, Req, P> {
    hedge: Hedge,
    first_watch: Stopwatch,
    /// A clone of the service, readied for each hedge in turn.
    spare: S,
    /// The copy hedges are made from; the last hedge takes it.
    template: Option<Req>,
    requests: P,
    delay: Option<Duration>,
    /// A hedge the budget granted, waiting for `spare` to be ready.
    launching: Option<Stopwatch>,
    stopped: bool,
}

pin_project! {
    /// The response of a [`HedgeService`](super::HedgeService): the first attempt's, or the
    /// first success among the attempts hedging started; the last failure once all failed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_tower::BoxError> {
    /// use fusebox_policy::policy::Hedge;
    /// use fusebox_tower::hedge::HedgeService;
    /// use fusebox_tower::retry::CloneRequests;
    /// use tower::{service_fn, Service};
    /// let echo = service_fn(|n: u8| async move { Ok::<_, std::io::Error>(n) });
    /// let mut svc = HedgeService::new(echo, Hedge::builder("echo").build()?, CloneRequests);
    /// assert_eq!(svc.call(9).await?, 9);
    /// # Ok(())
    /// # }
    /// ```
    pub struct ResponseFuture<S, Req, P>
    where
        S: Service<Req>,
    {
        #[pin]
        first: Option<S::Future>,
        #[pin]
        timer: Option<Sleep>,
        hedging: Option<Hedging<S, Req, P>>,
        // Boxed: only requests that hedge pay for it. A finished hedge keeps its place, so
        // its index tells which attempt it is.
        hedges: Vec<(Option<Pin<Box<S::Future>>>, Stopwatch)>,
        last_failure: Option<S::Error>,
        finished: bool,
    }
}

impl<S, Req, P> ResponseFuture<S, Req, P>
where
    S: Service<Req>,
{
    pub(super) fn hedged(
        first: S::Future,
        first_watch: Stopwatch,
        hedge: Hedge,
        spare: S,
        template: Req,
        requests: P,
    ) -> Self {
        ResponseFuture {
            first: Some(first),
            timer: None,
            hedging: Some(Hedging {
                hedge,
                first_watch,
                spare,
                template: Some(template),
                requests,
                delay: None,
                launching: None,
                stopped: false,
            }),
            hedges: Vec::new(),
            last_failure: None,
            finished: false,
        }
    }

    pub(super) fn unhedged(first: S::Future) -> Self {
        ResponseFuture {
            first: Some(first),
            timer: None,
            hedging: None,
            hedges: Vec::new(),
            last_failure: None,
            finished: false,
        }
    }
}

impl<S, Req, P> std::fmt::Debug for ResponseFuture<S, Req, P>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("hedged", &self.hedging.is_some())
            .field("hedges", &self.hedges.len())
            .finish_non_exhaustive()
    }
}

impl<S, Req, P> Future for ResponseFuture<S, Req, P>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    P: RetryRequest<Req>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        assert!(!*this.finished, "hedge future polled after completion");
        loop {
            if let Some(first) = this.first.as_mut().as_pin_mut()
                && let Poll::Ready(result) = first.poll(cx)
            {
                this.first.set(None);
                match result {
                    Ok(response) => {
                        let running = this.hedges.iter().filter(|h| h.0.is_some()).count();
                        if let Some(h) = this.hedging.as_ref() {
                            // A hedge still waiting for the service was sent, and is dropped.
                            let losers = running + usize::from(h.launching.is_some());
                            h.hedge.settle(0, h.first_watch, None, losers as u32);
                        }
                        this.hedges.clear();
                        *this.finished = true;
                        return Poll::Ready(Ok(response));
                    }
                    Err(failure) => *this.last_failure = Some(failure),
                }
            }
            let mut won = None;
            for (index, (slot, watch)) in this.hedges.iter_mut().enumerate() {
                let Some(running) = slot.as_mut() else {
                    continue;
                };
                if let Poll::Ready(result) = running.as_mut().poll(cx) {
                    *slot = None;
                    match result {
                        Ok(response) => {
                            won = Some((index, *watch, response));
                            break;
                        }
                        Err(failure) => *this.last_failure = Some(failure),
                    }
                }
            }
            let first_running = this.first.is_some();
            if let Some((index, watch, response)) = won {
                let running = this.hedges.iter().filter(|h| h.0.is_some()).count();
                if let Some(h) = this.hedging.as_ref() {
                    let first_watch = first_running.then_some(h.first_watch);
                    let losers =
                        running + usize::from(first_running) + usize::from(h.launching.is_some());
                    h.hedge
                        .settle(index as u32 + 1, watch, first_watch, losers as u32);
                }
                // Dropping the losers now cancels them, before the caller even reads this.
                this.first.set(None);
                this.hedges.clear();
                *this.finished = true;
                return Poll::Ready(Ok(response));
            }
            let in_flight = first_running
                || this.hedges.iter().any(|h| h.0.is_some())
                || this.hedging.as_ref().is_some_and(|h| h.launching.is_some());
            if !in_flight && let Some(failure) = this.last_failure.take() {
                *this.finished = true;
                return Poll::Ready(Err(failure.into()));
            }
            let Some(h) = this.hedging.as_mut() else {
                return Poll::Pending;
            };
            if h.launching.is_none() {
                if h.stopped || this.hedges.len() as u32 >= h.hedge.max_hedged_attempts() {
                    return Poll::Pending;
                }
                let delay = *h.delay.get_or_insert_with(|| h.hedge.delay());
                if !delay.is_zero() {
                    if this.timer.is_none() {
                        this.timer.set(Some(tokio::time::sleep(delay)));
                    }
                    if let Some(sleep) = this.timer.as_mut().as_pin_mut()
                        && sleep.poll(cx).is_pending()
                    {
                        return Poll::Pending;
                    }
                    this.timer.set(None);
                }
                match h.hedge.try_hedge(this.hedges.len() as u32 + 1) {
                    Some(watch) => h.launching = Some(watch),
                    None => {
                        h.stopped = true;
                        return Poll::Pending;
                    }
                }
            }
            match h.spare.poll_ready(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(failure)) => {
                    // The hedge could not be sent: it failed, and no more are tried.
                    h.launching = None;
                    h.stopped = true;
                    *this.last_failure = Some(failure);
                }
                Poll::Ready(Ok(())) => {
                    let last = this.hedges.len() as u32 + 1 >= h.hedge.max_hedged_attempts();
                    let request = if last {
                        h.template.take()
                    } else {
                        h.template
                            .as_ref()
                            .and_then(|t| h.requests.clone_for_retry(t))
                    };
                    match (request, h.launching.take()) {
                        (Some(request), Some(watch)) => this
                            .hedges
                            .push((Some(Box::pin(h.spare.call(request))), watch)),
                        _ => h.stopped = true,
                    }
                }
            }
        }
    }
}
