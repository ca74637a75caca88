//! The breakers of this process, as a dashboard [`Source`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use fusebox_core::breaker::{BreakerBuilder, BreakerListener, OutcomeEvent, Rejected, Transition};
use fusebox_core::{Breaker, ConfigError, Outcome};

use super::source::{BreakerReading, Source, SourceError};

/// Counts one breaker's calls, failures and rejections for the dashboard, and keeps why it
/// last changed state.
#[derive(Debug, Default)]
struct Probe {
    calls: AtomicU64,
    failures: AtomicU64,
    rejections: AtomicU64,
    reason: Mutex<Option<String>>,
}

impl BreakerListener for Probe {
    fn on_transition(&self, transition: &Transition) {
        let reason = transition.reason.to_string();
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
    }
    fn on_rejection(&self, _: &Rejected) {
        self.rejections.fetch_add(1, Ordering::Relaxed);
    }
    fn wants_outcomes(&self) -> bool {
        true
    }
    fn on_outcome(&self, event: &OutcomeEvent) {
        match event.outcome {
            Outcome::Success => {
                self.calls.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Failure => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                self.failures.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Ignored => {}
        }
    }
}

struct Entry {
    breaker: Breaker,
    probe: Option<Arc<Probe>>,
}

/// Breakers of this process, registered for the dashboard.
///
/// A breaker built through [`build`](Self::build) carries a listener that counts its calls,
/// failures and rejections (so the page shows calls per second and rejections) and keeps
/// the reason of its last transition; such a breaker reads the clock when it admits a
/// call, to time it. A breaker added with [`add`](Self::add) after it was built shows its
/// state and rates only. A name registered again replaces the earlier breaker.
///
/// ```
/// use fusebox_core::Breaker;
/// use fusebox_tower::dashboard::LocalSource;
///
/// let source = LocalSource::new();
/// let payments = source.build(Breaker::builder("payments").consecutive_failures(5))?;
/// source.add(&Breaker::builder("search").build()?);
/// assert_eq!(source.len(), 2);
/// # drop(payments);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Default)]
pub struct LocalSource {
    entries: Mutex<Vec<Entry>>,
}

impl std::fmt::Debug for LocalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSource")
            .field("breakers", &self.len())
            .finish()
    }
}

impl LocalSource {
    /// No breakers yet.
    ///
    /// ```
    /// use fusebox_tower::dashboard::LocalSource;
    /// assert!(LocalSource::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the breaker with the dashboard's counting listener and registers it.
    ///
    /// ```
    /// use fusebox_core::Breaker;
    /// use fusebox_tower::dashboard::LocalSource;
    /// let source = LocalSource::new();
    /// let breaker = source.build(Breaker::builder("api"))?;
    /// assert_eq!(breaker.name().as_str(), "api");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(&self, builder: BreakerBuilder) -> Result<Breaker, ConfigError> {
        let probe = Arc::new(Probe::default());
        let breaker = builder.listener(probe.clone()).build()?;
        self.insert(Entry {
            breaker: breaker.clone(),
            probe: Some(probe),
        });
        Ok(breaker)
    }

    /// Registers a breaker already built: its state and rates show, its call counts do not.
    ///
    /// ```
    /// use fusebox_core::Breaker;
    /// use fusebox_tower::dashboard::LocalSource;
    /// let source = LocalSource::new();
    /// source.add(&Breaker::builder("cache").build()?);
    /// source.add(&Breaker::builder("cache").build()?); // replaces the first
    /// assert_eq!(source.len(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn add(&self, breaker: &Breaker) {
        self.insert(Entry {
            breaker: breaker.clone(),
            probe: None,
        });
    }

    /// Unregisters the breaker of that name; whether there was one.
    ///
    /// ```
    /// use fusebox_core::Breaker;
    /// use fusebox_tower::dashboard::LocalSource;
    /// let source = LocalSource::new();
    /// source.add(&Breaker::builder("old").build()?);
    /// assert!(source.remove("old"));
    /// assert!(!source.remove("old"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn remove(&self, name: &str) -> bool {
        let mut entries = self.lock();
        let before = entries.len();
        entries.retain(|e| e.breaker.name().as_str() != name);
        entries.len() != before
    }

    /// How many breakers are registered.
    ///
    /// ```
    /// use fusebox_tower::dashboard::LocalSource;
    /// assert_eq!(LocalSource::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no breaker is registered.
    ///
    /// ```
    /// use fusebox_tower::dashboard::LocalSource;
    /// assert!(LocalSource::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every registered breaker's reading, now.
    ///
    /// ```
    /// use fusebox_core::{Breaker, State};
    /// use fusebox_tower::dashboard::LocalSource;
    /// let source = LocalSource::new();
    /// let b = source.build(Breaker::builder("api").consecutive_failures(1))?;
    /// b.record_failure();
    /// let r = &source.readings()[0];
    /// assert_eq!((r.state, r.calls, r.failures), (State::Open, Some(1), Some(1)));
    /// assert!(r.reason.as_deref().unwrap().contains("consecutive failures"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn readings(&self) -> Vec<BreakerReading> {
        // Snapshots are taken outside the lock: a breaker's listeners may call back here.
        let entries: Vec<(Breaker, Option<Arc<Probe>>)> = self
            .lock()
            .iter()
            .map(|e| (e.breaker.clone(), e.probe.clone()))
            .collect();
        entries
            .into_iter()
            .map(|(breaker, probe)| reading(&breaker, probe.as_deref()))
            .collect()
    }

    fn insert(&self, entry: Entry) {
        let mut entries = self.lock();
        let name = entry.breaker.name().clone();
        match entries.iter_mut().find(|e| *e.breaker.name() == name) {
            Some(slot) => *slot = entry,
            None => entries.push(entry),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn reading(breaker: &Breaker, probe: Option<&Probe>) -> BreakerReading {
    let snapshot = breaker.snapshot();
    let mut r = BreakerReading::new(snapshot.name.as_str(), snapshot.state);
    r.generation = snapshot.generation;
    r.failure_rate = snapshot.failure_rate;
    r.slow_rate = snapshot.slow_rate;
    if let Some(probe) = probe {
        r.calls = Some(probe.calls.load(Ordering::Relaxed));
        r.failures = Some(probe.failures.load(Ordering::Relaxed));
        r.rejections = Some(probe.rejections.load(Ordering::Relaxed));
        r.reason = probe
            .reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
    }
    r
}

impl Source for LocalSource {
    async fn read(&self) -> Result<Vec<BreakerReading>, SourceError> {
        Ok(self.readings())
    }
}

impl<S: Source> Source for Arc<S> {
    fn read(
        &self,
    ) -> impl std::future::Future<Output = Result<Vec<BreakerReading>, SourceError>> + Send {
        (**self).read()
    }
}
