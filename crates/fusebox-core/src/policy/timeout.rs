//! Timeout: give up on a call that takes too long.

use std::future::Future;
use std::time::Duration;

use crate::ConfigError;
use crate::error::{Error, TimedOut};

/// Gives up on a call after a fixed time with [`Error::Timeout`]. Inside a retry it bounds each
/// attempt; outside, the whole call with its retries.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_core::policy::Timeout;
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
    /// use fusebox_core::policy::Timeout;
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
    /// use fusebox_core::policy::Timeout;
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
    /// use fusebox_core::policy::Timeout;
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
        self.run(|| async { op().await.map_err(Error::Inner) })
            .await
    }

    // Takes a closure, not a future: an async fn stores its arguments twice, and a pipeline
    // nests these calls, so a future argument would double the size at every level.
    pub(crate) async fn run<F, Fut, T, E>(&self, inner: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        match tokio::time::timeout(self.after, inner()).await {
            Ok(result) => result,
            Err(_) => {
                tracing::debug!(after_ms = self.after.as_millis() as u64, "call timed out");
                Err(Error::Timeout(TimedOut { after: self.after }))
            }
        }
    }
}
