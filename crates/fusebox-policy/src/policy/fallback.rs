//! Fallback: a value or an async closure used when the call fails with chosen errors.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use fusebox_core::Error;

pub(crate) type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, Error<E>>> + Send>>;
type Handler<T, E> = Arc<dyn Fn(Error<E>) -> BoxFuture<T, E> + Send + Sync>;
type ValueFn<T> = Arc<dyn Fn() -> T + Send + Sync>;
type When<E> = Arc<dyn Fn(&Error<E>) -> bool + Send + Sync>;

enum Produce<T, E> {
    Value(ValueFn<T>),
    Handler(Handler<T, E>),
}

/// What to return when the call fails: a value, or the result of an async closure given the
/// error. By default it answers every error; [`when`](Self::when) and
/// [`on_rejected`](Self::on_rejected) narrow that.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use fusebox_policy::policy::Fallback;
/// use fusebox_core::Error;
///
/// let cached = Fallback::value(vec!["cached"]);
/// let r = cached.call(|| async { Err::<Vec<&str>, _>("down") }).await;
/// assert_eq!(r.unwrap(), vec!["cached"]);
///
/// // Only when a breaker rejects the call; other errors pass through.
/// let on_open = Fallback::<u32, &str>::from_fn(|_err| async { Ok(0) }).on_rejected();
/// let r = on_open.call(|| async { Err("boom") }).await;
/// assert!(matches!(r, Err(Error::Inner("boom"))));
/// # }
/// ```
pub struct Fallback<T, E> {
    produce: Produce<T, E>,
    when: Option<When<E>>,
}

impl<T, E> Clone for Fallback<T, E> {
    fn clone(&self) -> Self {
        Fallback {
            produce: match &self.produce {
                Produce::Value(v) => Produce::Value(Arc::clone(v)),
                Produce::Handler(h) => Produce::Handler(Arc::clone(h)),
            },
            when: self.when.clone(),
        }
    }
}

impl<T, E> fmt::Debug for Fallback<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.produce {
            Produce::Value(_) => "value",
            Produce::Handler(_) => "handler",
        };
        f.debug_struct("Fallback")
            .field("kind", &kind)
            .field("filtered", &self.when.is_some())
            .finish()
    }
}

impl<T, E> Fallback<T, E> {
    /// Answers with a clone of `value`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use fusebox_policy::policy::Fallback;
    /// let zero = Fallback::value(0u32);
    /// assert_eq!(zero.call(|| async { Err::<u32, _>("down") }).await.unwrap(), 0);
    /// assert_eq!(zero.call(|| async { Ok::<u32, &str>(7) }).await.unwrap(), 7);
    /// # }
    /// ```
    pub fn value(value: T) -> Self
    where
        T: Clone + Send + Sync + 'static,
    {
        Fallback {
            produce: Produce::Value(Arc::new(move || value.clone())),
            when: None,
        }
    }

    /// Answers with the result of `handler`, given the error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use fusebox_policy::policy::Fallback;
    /// let explain = Fallback::<String, &str>::from_fn(|err| async move {
    ///     Ok(format!("unavailable ({})", err.stopped_by().unwrap_or("call failed")))
    /// });
    /// let r = explain.call(|| async { Err("503") }).await;
    /// assert_eq!(r.unwrap(), "unavailable (call failed)");
    /// # }
    /// ```
    pub fn from_fn<F, Fut>(handler: F) -> Self
    where
        F: Fn(Error<E>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, Error<E>>> + Send + 'static,
    {
        Fallback {
            produce: Produce::Handler(Arc::new(move |e| Box::pin(handler(e)))),
            when: None,
        }
    }

    /// Answers only the errors for which `when` is true.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use fusebox_policy::policy::Fallback;
    /// use fusebox_core::Error;
    /// let not_found = Fallback::value(None).when(|e| matches!(e, Error::Inner(404)));
    /// assert_eq!(not_found.call(|| async { Err::<Option<u32>, u16>(404) }).await.unwrap(), None);
    /// let other = not_found.call(|| async { Err(500) }).await;
    /// assert!(matches!(other, Err(Error::Inner(500))));
    /// # }
    /// ```
    pub fn when<P>(mut self, when: P) -> Self
    where
        P: Fn(&Error<E>) -> bool + Send + Sync + 'static,
    {
        self.when = Some(Arc::new(when));
        self
    }

    /// Answers only when a breaker rejected the call.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::Fallback;
    ///
    /// let breaker = Breaker::builder("prices").build()?;
    /// let pipeline = Pipeline::builder()
    ///     .fallback(Fallback::value(0).on_rejected())
    ///     .breaker(breaker.clone())
    ///     .build()?;
    /// breaker.force_open();
    /// assert_eq!(pipeline.call(|| async { Ok::<u32, ()>(42) }).await.unwrap(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_rejected(self) -> Self {
        self.when(|e| e.is_rejected())
    }

    /// Runs `op`, falling back on its error.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use fusebox_policy::policy::Fallback;
    /// let fallback = Fallback::value("stale".to_string());
    /// let fresh = fallback.call(|| async { Ok::<_, std::io::Error>("fresh".to_string()) });
    /// assert_eq!(fresh.await.unwrap(), "fresh");
    /// let down = fallback.call(|| async { Err(std::io::Error::other("down")) });
    /// assert_eq!(down.await.unwrap(), "stale");
    /// # }
    /// ```
    pub async fn call<F, Fut>(&self, op: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.around(|| async { op().await.map_err(Error::Inner) })
            .await
    }

    // A closure, not a future, for the same reason as `Timeout::around`; not an async fn, which
    // would keep its arguments twice in its future.
    #[inline]
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn around<F, Fut>(&self, inner: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        async move {
            match self.answer(inner().await) {
                Answer::Now(result) => result,
                Answer::Later(handler) => handler.await,
            }
        }
    }

    /// What this fallback makes of a result: passed through or answered with a value now,
    /// or answered later by the handler's future.
    pub(crate) fn answer(&self, result: Result<T, Error<E>>) -> Answer<T, E> {
        match result {
            Err(e) if self.when.as_ref().is_none_or(|w| w(&e)) => {
                tracing::debug!(
                    stopped_by = e.stopped_by().unwrap_or("call"),
                    "falling back"
                );
                match &self.produce {
                    Produce::Value(v) => Answer::Now(Ok(v())),
                    Produce::Handler(h) => Answer::Later(h(e)),
                }
            }
            other => Answer::Now(other),
        }
    }
}

/// A fallback's verdict on one result, from [`Fallback::answer`].
pub(crate) enum Answer<T, E> {
    /// The result to return.
    Now(Result<T, Error<E>>),
    /// The handler's future, whose result is returned.
    Later(BoxFuture<T, E>),
}
