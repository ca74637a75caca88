//! Timeout: give up on a call that takes too long.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};

use fusebox_core::ConfigError;
use fusebox_core::{Error, TimedOut};

/// Gives up on a call after a fixed time with [`Error::Timeout`]. Inside a retry it bounds each
/// attempt; outside, the whole call with its retries.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_policy::policy::Timeout;
/// use fusebox_core::Error;
/// use std::time::Duration;
///
/// let timeout = Timeout::new(Duration::from_millis(100))?;
/// let r = timeout
///     .call(|| async {
///         tokio::time::sleep(Duration::from_secs(1)).await;
///         Ok::<_, ()>(())
///     })
///     .await;
/// assert!(matches!(r, Err(Error::Timeout(t)) if t.after == Duration::from_millis(100)));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    after: Duration,
}

impl Timeout {
    /// A timeout of `after`; zero is refused.
    ///
    /// ```
    /// use fusebox_policy::policy::Timeout;
    /// use std::time::Duration;
    /// assert!(Timeout::new(Duration::from_millis(250)).is_ok());
    /// let err = Timeout::new(Duration::ZERO).unwrap_err();
    /// assert_eq!(err.field(), Some("timeout"));
    /// ```
    pub fn new(after: Duration) -> Result<Self, ConfigError> {
        if after.is_zero() {
            return Err(ConfigError::invalid("timeout", "must be longer than zero"));
        }
        Ok(Timeout { after })
    }

    /// The time allowed.
    ///
    /// ```
    /// use fusebox_policy::policy::Timeout;
    /// use std::time::Duration;
    /// let timeout = Timeout::new(Duration::from_secs(2))?;
    /// assert_eq!(timeout.duration(), Duration::from_secs(2));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn duration(&self) -> Duration {
        self.after
    }

    /// Runs `op` with this timeout.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Timeout;
    /// use fusebox_core::Error;
    /// # use std::time::Duration;
    ///
    /// let timeout = Timeout::new(Duration::from_secs(1))?;
    /// let quick = timeout.call(|| async {
    ///     tokio::time::sleep(Duration::from_millis(900)).await;
    ///     Err::<(), _>("refused")
    /// });
    /// // In time: the caller's own error comes back untouched.
    /// assert!(matches!(quick.await, Err(Error::Inner("refused"))));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, op: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.around(|| async { op().await.map_err(Error::Inner) })
            .await
    }

    // Takes a closure, like the other policies, which a retry outside calls once per attempt.
    #[inline]
    pub(crate) fn around<F, Fut, T, E>(&self, inner: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        // The attempt's future is made now, when the attempt starts; the clock is read at
        // its first poll.
        Deadline {
            fut: inner(),
            after: self.after,
            deadline: None,
            sleep: None,
        }
    }
}

pin_project! {
    /// A future given up on `after` its first poll. The timer is made, boxed, only if the
    /// future is still pending after that first poll: a call that completes at once touches
    /// no timer, and a pending one carries a pointer instead of a timer entry that would
    /// more than double the size of the futures that nest this one.
    struct Deadline<Fut> {
        #[pin]
        fut: Fut,
        after: Duration,
        // Set at the first poll; `Some(None)`: later than the clock can represent.
        deadline: Option<Option<Instant>>,
        sleep: Option<Pin<Box<Sleep>>>,
    }
}

impl<Fut, T, E> Future for Deadline<Fut>
where
    Fut: Future<Output = Result<T, Error<E>>>,
{
    type Output = Result<T, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let after = *this.after;
        let deadline = *this
            .deadline
            .get_or_insert_with(|| Instant::now().checked_add(after));
        if let Poll::Ready(result) = this.fut.poll(cx) {
            return Poll::Ready(result);
        }
        let Some(deadline) = deadline else {
            return Poll::Pending;
        };
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(sleep.as_mut().poll(cx));
        tracing::debug!(after_ms = after.as_millis() as u64, "call timed out");
        Poll::Ready(Err(Error::Timeout(TimedOut { after })))
    }
}
