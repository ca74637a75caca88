//! Bulkhead: a cap on concurrent calls, with an optional bounded wait queue.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::ConfigError;
use crate::breaker::Name;
use crate::error::{BulkheadFull, Error};

#[derive(Debug)]
struct BulkheadInner {
    name: Name,
    semaphore: Arc<Semaphore>,
    max_concurrent: u32,
    max_queued: u32,
    max_wait: Option<Duration>,
    queued: AtomicU32,
}

/// Limits how many calls run at once, so one slow dependency cannot take every task or
/// connection. Calls beyond the limit wait in a bounded queue (first come, first served) or
/// are refused at once with [`Error::BulkheadFull`]. Clones share the limit.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_core::policy::Bulkhead;
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
#[derive(Debug)]
pub struct OwnedBulkheadSlot {
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Builds a [`Bulkhead`].
#[derive(Debug)]
#[must_use]
pub struct BulkheadBuilder {
    name: Name,
    max_concurrent: u32,
    max_queued: u32,
    max_wait: Option<Duration>,
}

impl BulkheadBuilder {
    /// Calls allowed at once (default 10).
    pub fn max_concurrent(mut self, n: u32) -> Self {
        self.max_concurrent = n;
        self
    }
    /// Calls allowed to wait for a slot (default 0: refuse at once).
    pub fn max_queued(mut self, n: u32) -> Self {
        self.max_queued = n;
        self
    }
    /// Longest wait for a slot before refusing.
    pub fn max_wait(mut self, d: Duration) -> Self {
        self.max_wait = Some(d);
        self
    }
    /// Validates and builds the bulkhead.
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
            }),
        })
    }
}

impl Bulkhead {
    /// Starts a builder for a bulkhead called `name`.
    pub fn builder(name: impl Into<Name>) -> BulkheadBuilder {
        BulkheadBuilder {
            name: name.into(),
            max_concurrent: 10,
            max_queued: 0,
            max_wait: None,
        }
    }

    /// The bulkhead's name.
    pub fn name(&self) -> &Name {
        &self.inner.name
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.inner.semaphore.available_permits()
    }

    /// Takes a slot if one is free, without waiting.
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

    /// Takes a slot, waiting in the queue when allowed.
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
            return Err(self.full());
        }
        if inner.queued.fetch_add(1, Ordering::AcqRel) >= inner.max_queued {
            inner.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(self.full());
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
                .map_err(|_| self.full())?,
            None => acquire.await,
        };
        // The semaphore is never closed, so acquiring only fails if that changes.
        acquired.map_err(|_| self.full())
    }

    /// Like [`try_enter`](Self::try_enter), owning the slot.
    ///
    /// ```
    /// use fusebox_core::policy::Bulkhead;
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

    /// The error a full bulkhead answers with.
    pub fn full_error(&self) -> BulkheadFull {
        self.full()
    }

    /// Runs `op` in a slot.
    pub async fn call<F, Fut, T, E>(&self, op: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(|| async { op().await.map_err(Error::Inner) })
            .await
    }

    // A closure, not a future, for the same reason as `Timeout::run`.
    pub(crate) async fn run<F, Fut, T, E>(&self, inner: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        let _slot = match self.enter().await {
            Ok(slot) => slot,
            Err(full) => {
                tracing::debug!(bulkhead = %self.inner.name, "bulkhead full");
                return Err(Error::BulkheadFull(full));
            }
        };
        inner().await
    }
}
