//! Bulkhead: a cap on concurrent calls, with an optional bounded wait queue.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use fusebox_core::ConfigError;
use fusebox_core::breaker::Name;
use fusebox_core::{BulkheadFull, Error};

#[derive(Debug)]
struct BulkheadInner {
    name: Name,
    semaphore: Arc<Semaphore>,
    max_concurrent: u32,
    max_queued: u32,
    max_wait: Option<Duration>,
    queued: AtomicU32,
    on_full: OnFull,
}

type FullListener = Arc<dyn Fn(&BulkheadFull) + Send + Sync>;

/// Listeners told of every refusal.
#[derive(Clone, Default)]
struct OnFull(Vec<FullListener>);

impl std::fmt::Debug for OnFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} listeners", self.0.len())
    }
}

/// Limits how many calls run at once, so one slow dependency cannot take every task or
/// connection. Calls beyond the limit wait in a bounded queue (first come, first served) or
/// are refused at once with [`Error::BulkheadFull`]. Clones share the limit.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_policy::policy::Bulkhead;
///
/// let bulkhead = Bulkhead::builder("reports").max_concurrent(1).build()?;
/// let held = bulkhead.try_enter().expect("a free slot");
/// assert!(bulkhead.call(|| async { Ok::<_, ()>(1) }).await.unwrap_err().stopped_by() == Some("bulkhead"));
/// drop(held);
/// assert_eq!(bulkhead.call(|| async { Ok::<_, ()>(1) }).await.unwrap(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Bulkhead {
    inner: Arc<BulkheadInner>,
}

/// A slot held in a bulkhead; released on drop.
///
/// ```
/// use fusebox_policy::policy::Bulkhead;
/// let bulkhead = Bulkhead::builder("db").max_concurrent(2).build()?;
/// let slot = bulkhead.try_enter().expect("a free slot");
/// assert_eq!(bulkhead.available(), 1);
/// drop(slot);
/// assert_eq!(bulkhead.available(), 2);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct BulkheadSlot<'a> {
    _permit: tokio::sync::SemaphorePermit<'a>,
}

/// Leaves the wait queue however the wait ends, cancellation included.
struct QueuePlace<'a>(&'a AtomicU32);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A slot that owns a handle to its bulkhead (`'static`), for futures that outlive a borrow.
///
/// ```
/// use fusebox_policy::policy::Bulkhead;
/// let bulkhead = Bulkhead::builder("db").max_concurrent(1).build()?;
/// let slot = bulkhead.try_enter_owned().expect("a free slot");
/// // The slot is 'static: it can move to another thread and be released there.
/// std::thread::spawn(move || drop(slot)).join().unwrap();
/// assert_eq!(bulkhead.available(), 1);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct OwnedBulkheadSlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Builds a [`Bulkhead`].
///
/// ```
/// use fusebox_policy::policy::Bulkhead;
/// use std::time::Duration;
/// let bulkhead = Bulkhead::builder("reports")
///     .max_concurrent(4)
///     .max_queued(16)
///     .max_wait(Duration::from_millis(200))
///     .build()?;
/// assert_eq!(bulkhead.available(), 4);
/// assert_eq!(bulkhead.full_error().max_queued, 16);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct BulkheadBuilder {
    name: Name,
    max_concurrent: u32,
    max_queued: u32,
    max_wait: Option<Duration>,
    on_full: OnFull,
}

impl BulkheadBuilder {
    /// Calls allowed at once (default 10).
    ///
    /// ```
    /// use fusebox_policy::policy::Bulkhead;
    /// assert_eq!(Bulkhead::builder("a").max_concurrent(3).build()?.available(), 3);
    /// let err = Bulkhead::builder("a").max_concurrent(0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("max_concurrent"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_concurrent(mut self, n: u32) -> Self {
        self.max_concurrent = n;
        self
    }
    /// Calls allowed to wait for a slot (default 0: refuse at once).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Bulkhead;
    /// let bulkhead = Bulkhead::builder("q").max_concurrent(1).max_queued(1).build()?;
    /// let held = bulkhead.try_enter().unwrap();
    /// let waiter = tokio::spawn(bulkhead.enter_owned()); // takes the one place in the queue
    /// tokio::task::yield_now().await;
    /// assert!(bulkhead.enter().await.is_err()); // queue full: refused at once
    /// drop(held);
    /// assert!(waiter.await.unwrap().is_ok()); // the waiter got the slot
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_queued(mut self, n: u32) -> Self {
        self.max_queued = n;
        self
    }
    /// Longest wait for a slot before refusing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Bulkhead;
    /// use tokio::time::Instant;
    /// # use std::time::Duration;
    /// let bulkhead = Bulkhead::builder("w")
    ///     .max_concurrent(1)
    ///     .max_queued(1)
    ///     .max_wait(Duration::from_millis(50))
    ///     .build()?;
    /// let _held = bulkhead.try_enter().unwrap();
    /// let start = Instant::now();
    /// assert!(bulkhead.enter().await.is_err());
    /// assert_eq!(start.elapsed(), Duration::from_millis(50));
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_wait(mut self, d: Duration) -> Self {
        self.max_wait = Some(d);
        self
    }
    /// Calls `f` on every refused call (a full bulkhead and queue, or a wait that took too
    /// long), for metrics and alerts.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Bulkhead;
    /// # use std::sync::atomic::{AtomicU32, Ordering};
    /// # use std::sync::Arc;
    /// let refused = Arc::new(AtomicU32::new(0));
    /// let count = refused.clone();
    /// let bulkhead = Bulkhead::builder("db")
    ///     .max_concurrent(1)
    ///     .on_full(move |_| {
    ///         count.fetch_add(1, Ordering::Relaxed);
    ///     })
    ///     .build()?;
    /// let _held = bulkhead.try_enter();
    /// assert!(bulkhead.call(|| async { Ok::<_, ()>(()) }).await.is_err());
    /// assert_eq!(refused.load(Ordering::Relaxed), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn on_full<F>(mut self, f: F) -> Self
    where
        F: Fn(&BulkheadFull) + Send + Sync + 'static,
    {
        self.on_full.0.push(Arc::new(f));
        self
    }
    /// Validates and builds the bulkhead.
    ///
    /// ```
    /// use fusebox_policy::policy::Bulkhead;
    /// use std::time::Duration;
    /// assert!(Bulkhead::builder("ok").build().is_ok());
    /// let err = Bulkhead::builder("bad").max_wait(Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.field(), Some("max_wait"));
    /// ```
    pub fn build(self) -> Result<Bulkhead, ConfigError> {
        if self.max_concurrent == 0 {
            return Err(ConfigError::invalid(
                "max_concurrent",
                "must be at least 1, got 0",
            ));
        }
        if self.max_concurrent as usize > Semaphore::MAX_PERMITS {
            return Err(ConfigError::invalid(
                "max_concurrent",
                "is larger than supported",
            ));
        }
        if self.max_wait.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::invalid("max_wait", "must be longer than zero"));
        }
        Ok(Bulkhead {
            inner: Arc::new(BulkheadInner {
                name: self.name,
                semaphore: Arc::new(Semaphore::new(self.max_concurrent as usize)),
                max_concurrent: self.max_concurrent,
                max_queued: self.max_queued,
                max_wait: self.max_wait,
                queued: AtomicU32::new(0),
                on_full: self.on_full,
            }),
        })
    }
}

impl Bulkhead {
    /// Starts a builder for a bulkhead called `name`.
    ///
    /// ```
    /// use fusebox_policy::policy::Bulkhead;
    /// // Defaults: 10 calls at once, no queue.
    /// let bulkhead = Bulkhead::builder("search").build()?;
    /// assert_eq!(bulkhead.available(), 10);
    /// assert_eq!(bulkhead.full_error().max_queued, 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder(name: impl Into<Name>) -> BulkheadBuilder {
        BulkheadBuilder {
            name: name.into(),
            max_concurrent: 10,
            max_queued: 0,
            max_wait: None,
            on_full: OnFull::default(),
        }
    }

    /// The bulkhead's name.
    ///
    /// ```
    /// use fusebox_policy::policy::Bulkhead;
    /// let bulkhead = Bulkhead::builder(String::from("exports")).build()?;
    /// assert_eq!(bulkhead.name(), "exports");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    /// Slots free right now.
    ///
    /// ```
    /// use fusebox_policy::policy::Bulkhead;
    /// let bulkhead = Bulkhead::builder("a").max_concurrent(3).build()?;
    /// let _slots = (bulkhead.try_enter(), bulkhead.clone().try_enter_owned());
    /// assert_eq!(bulkhead.available(), 1); // clones share the limit
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn available(&self) -> usize {
        self.inner.semaphore.available_permits()
    }

    /// Takes a slot if one is free, without waiting.
    ///
    /// ```
    /// use fusebox_policy::policy::Bulkhead;
    /// let bulkhead = Bulkhead::builder("t").max_concurrent(1).build()?;
    /// let slot = bulkhead.try_enter();
    /// assert!(slot.is_some());
    /// assert!(bulkhead.try_enter().is_none()); // full: no waiting
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn try_enter(&self) -> Option<BulkheadSlot<'_>> {
        self.inner
            .semaphore
            .try_acquire()
            .ok()
            .map(|p| BulkheadSlot { _permit: p })
    }

    fn full(&self) -> BulkheadFull {
        BulkheadFull {
            name: self.inner.name.clone(),
            max_concurrent: self.inner.max_concurrent,
            max_queued: self.inner.max_queued,
        }
    }

    /// A refusal, reported to the listeners.
    fn refuse(&self) -> BulkheadFull {
        let full = self.full();
        for listener in &self.inner.on_full.0 {
            listener(&full);
        }
        full
    }

    /// Takes a slot, waiting in the queue when allowed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Bulkhead;
    /// let bulkhead = Bulkhead::builder("db").max_concurrent(1).build()?;
    /// let slot = bulkhead.enter().await.expect("a free slot");
    /// let full = bulkhead.enter().await.unwrap_err(); // no queue: refused at once
    /// assert_eq!(full.name, "db");
    /// drop(slot);
    /// assert!(bulkhead.enter().await.is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn enter(&self) -> Result<BulkheadSlot<'_>, BulkheadFull> {
        if let Some(slot) = self.try_enter() {
            return Ok(slot);
        }
        let _queued = self.join_queue()?;
        let permit = self.wait(self.inner.semaphore.acquire()).await?;
        Ok(BulkheadSlot { _permit: permit })
    }

    /// A place in the wait queue, or the refusal when the queue is full.
    fn join_queue(&self) -> Result<QueuePlace<'_>, BulkheadFull> {
        let inner = &*self.inner;
        if inner.max_queued == 0 {
            return Err(self.refuse());
        }
        if inner.queued.fetch_add(1, Ordering::AcqRel) >= inner.max_queued {
            inner.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(self.refuse());
        }
        Ok(QueuePlace(&inner.queued))
    }

    /// Waits for a permit, within `max_wait` when set.
    async fn wait<P>(
        &self,
        acquire: impl Future<Output = Result<P, tokio::sync::AcquireError>>,
    ) -> Result<P, BulkheadFull> {
        let acquired = match self.inner.max_wait {
            Some(max) => tokio::time::timeout(max, acquire)
                .await
                .map_err(|_| self.refuse())?,
            None => acquire.await,
        };
        // The semaphore is never closed, so acquiring only fails if that changes.
        acquired.map_err(|_| self.refuse())
    }

    /// Like [`try_enter`](Self::try_enter), owning the slot.
    ///
    /// ```
    /// use fusebox_policy::policy::Bulkhead;
    /// let b = Bulkhead::builder("x").max_concurrent(1).build()?;
    /// let slot = b.try_enter_owned().expect("free");
    /// assert!(b.try_enter_owned().is_none());
    /// drop(slot);
    /// assert_eq!(b.available(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn try_enter_owned(&self) -> Option<OwnedBulkheadSlot> {
        Arc::clone(&self.inner.semaphore)
            .try_acquire_owned()
            .ok()
            .map(|p| OwnedBulkheadSlot { _permit: p })
    }

    /// Like [`enter`](Self::enter), owning the slot; the future is `'static`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_policy::policy::Bulkhead;
    /// let bulkhead = Bulkhead::builder("db").max_concurrent(2).build()?;
    /// // The future borrows nothing, so it can be spawned.
    /// let slot = tokio::spawn(bulkhead.enter_owned()).await??;
    /// assert_eq!(bulkhead.available(), 1);
    /// drop(slot);
    /// assert_eq!(bulkhead.available(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn enter_owned(
        &self,
    ) -> impl Future<Output = Result<OwnedBulkheadSlot, BulkheadFull>> + Send + 'static {
        let this = self.clone();
        async move {
            if let Some(slot) = this.try_enter_owned() {
                return Ok(slot);
            }
            let _queued = this.join_queue()?;
            let acquire = Arc::clone(&this.inner.semaphore).acquire_owned();
            let permit = this.wait(acquire).await?;
            Ok(OwnedBulkheadSlot { _permit: permit })
        }
    }

    /// Whether a call that finds no free slot may wait for one.
    pub(crate) fn queues(&self) -> bool {
        self.inner.max_queued > 0
    }

    /// The error a full bulkhead answers with.
    ///
    /// ```
    /// use fusebox_policy::policy::Bulkhead;
    /// let bulkhead = Bulkhead::builder("db").max_concurrent(8).build()?;
    /// let err = bulkhead.full_error();
    /// assert_eq!(err.to_string(), "bulkhead `db` is full (8 calls running, 0 may wait)");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn full_error(&self) -> BulkheadFull {
        self.full()
    }

    /// Runs `op` in a slot.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Bulkhead;
    /// use fusebox_core::Error;
    /// let bulkhead = Bulkhead::builder("db").max_concurrent(1).build()?;
    /// let r = bulkhead.call(|| async { Err::<(), _>("constraint violated") }).await;
    /// assert!(matches!(r, Err(Error::Inner("constraint violated"))));
    /// assert_eq!(bulkhead.available(), 1); // the slot is released after the call
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

    // A closure, not a future, for the same reason as `Timeout::around`; not an async fn, which
    // would keep its arguments twice in its future.
    #[inline]
    #[allow(clippy::manual_async_fn)]
    pub(crate) fn around<F, Fut, T, E>(&self, inner: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        async move {
            // A free slot is taken without awaiting; waiting in the queue is boxed, so the
            // future of a call that finds a free slot carries no wait state.
            let slot = match self.try_enter() {
                Some(slot) => Ok(slot),
                None => Box::pin(self.enter()).await,
            };
            let _slot = match slot {
                Ok(slot) => slot,
                Err(full) => {
                    tracing::debug!(bulkhead = %self.inner.name, "bulkhead full");
                    return Err(Error::BulkheadFull(full));
                }
            };
            inner().await
        }
    }
}
