//! The permits a [`ConcurrencyLimit`] hands out: borrowed, owned, and the compact form a
//! pipeline keeps inline. Each frees its place when dropped and feeds its round trip to
//! the algorithm when settled.

use std::sync::atomic::Ordering;
use std::time::Duration;

use fusebox_core::{LimitExceeded, Outcome};

use super::ConcurrencyLimit;

/// A call admitted by a [`ConcurrencyLimit`]. Say how it went with
/// [`success`](Self::success), [`dropped`](Self::dropped) or [`ignore`](Self::ignore); a
/// permit dropped without a word (a cancelled call) frees its place and teaches nothing.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_policy::policy::ConcurrencyLimit;
/// let limit = ConcurrencyLimit::builder("db").initial_limit(2).build()?;
/// let permit = limit.try_acquire()?;
/// assert_eq!(limit.in_flight(), 1);
/// permit.dropped();
/// assert_eq!(limit.in_flight(), 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a permit holds a place until it is settled or dropped"]
pub struct LimitPermit<'a> {
    pub(super) limit: &'a ConcurrencyLimit,
    pub(super) started: tokio::time::Instant,
    pub(super) in_flight: u32,
}

impl LimitPermit<'_> {
    /// The call worked: its round trip is measured.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let limit = ConcurrencyLimit::builder("db").build()?;
    /// limit.try_acquire()?.success();
    /// # Ok(())
    /// # }
    /// ```
    pub fn success(self) {
        self.settle(Outcome::Success);
    }
    /// The call failed, was dropped or timed out: the limit backs off.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let limit = ConcurrencyLimit::builder("db").build()?;
    /// limit.try_acquire()?.dropped();
    /// # Ok(())
    /// # }
    /// ```
    pub fn dropped(self) {
        self.settle(Outcome::Failure);
    }
    /// The call says nothing about the dependency: only its place is freed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let limit = ConcurrencyLimit::builder("db").build()?;
    /// limit.try_acquire()?.ignore();
    /// assert_eq!(limit.in_flight(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn ignore(self) {}

    /// Settles the call with `outcome`, as a [`Classifier`](fusebox_core::Classifier) read
    /// it: a success is measured, a failure backs the limit off, ignored only frees the place.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_core::Outcome;
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let limit = ConcurrencyLimit::builder("db").build()?;
    /// limit.try_acquire()?.settle(Outcome::Ignored);
    /// assert_eq!(limit.in_flight(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub fn settle(self, outcome: Outcome) {
        self.limit
            .inner
            .record(self.started, self.in_flight, outcome);
    }
}

/// A [`LimitPermit`] that owns a handle to its limit (`'static`), for futures that outlive
/// a borrow, such as a tower service's.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use fusebox_policy::policy::ConcurrencyLimit;
/// let limit = ConcurrencyLimit::builder("db").build()?;
/// let permit = limit.try_acquire_owned()?;
/// tokio::spawn(async move { permit.success() }).await?;
/// assert_eq!(limit.in_flight(), 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a permit holds a place until it is settled or dropped"]
pub struct OwnedLimitPermit {
    pub(super) limit: ConcurrencyLimit,
    pub(super) started: tokio::time::Instant,
    pub(super) in_flight: u32,
}

impl OwnedLimitPermit {
    /// Settles the call with `outcome`; see [`LimitPermit::settle`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_core::Outcome;
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// let limit = ConcurrencyLimit::builder("db").build()?;
    /// limit.try_acquire_owned()?.settle(Outcome::Success);
    /// # Ok(())
    /// # }
    /// ```
    pub fn settle(self, outcome: Outcome) {
        self.limit
            .inner
            .record(self.started, self.in_flight, outcome);
    }
    /// The call worked; see [`LimitPermit::success`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// ConcurrencyLimit::builder("db").build()?.try_acquire_owned()?.success();
    /// # Ok(())
    /// # }
    /// ```
    pub fn success(self) {
        self.settle(Outcome::Success);
    }
    /// The call failed; see [`LimitPermit::dropped`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_policy::policy::ConcurrencyLimit;
    /// ConcurrencyLimit::builder("db").build()?.try_acquire_owned()?.dropped();
    /// # Ok(())
    /// # }
    /// ```
    pub fn dropped(self) {
        self.settle(Outcome::Failure);
    }
}

impl Drop for OwnedLimitPermit {
    fn drop(&mut self) {
        self.limit.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A [`LimitPermit`] in three words rather than four, for a pipeline whose call future
/// keeps one state per policy inline: its start is kept as nanoseconds since the limit's
/// origin instead of a tokio `Instant`.
#[derive(Debug)]
pub(crate) struct CompactPermit<'a> {
    pub(super) limit: &'a ConcurrencyLimit,
    started_nanos: u64,
    in_flight: u32,
}

impl CompactPermit<'_> {
    /// Settles the call with `outcome`; see [`LimitPermit::settle`].
    pub(crate) fn settle(self, outcome: Outcome) {
        let inner = &self.limit.inner;
        let started = inner.origin + Duration::from_nanos(self.started_nanos);
        inner.record(started, self.in_flight, outcome);
    }
}

impl Drop for CompactPermit<'_> {
    fn drop(&mut self) {
        self.limit.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConcurrencyLimit {
    /// Like [`try_acquire`](Self::try_acquire), as a [`CompactPermit`].
    pub(crate) fn try_acquire_compact(&self) -> Result<CompactPermit<'_>, LimitExceeded> {
        let in_flight = self.take_place()?;
        let since = tokio::time::Instant::now().saturating_duration_since(self.inner.origin);
        Ok(CompactPermit {
            limit: self,
            started_nanos: u64::try_from(since.as_nanos()).unwrap_or(u64::MAX),
            in_flight,
        })
    }
}

impl Drop for LimitPermit<'_> {
    fn drop(&mut self) {
        self.limit.inner.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
