//! Where mode transitions are kept.

use std::collections::VecDeque;
use std::sync::Mutex;

use fusebox_core::ConfigError;
use fusebox_core::check;

use super::ModeTransition;

/// Keeps a controller's mode transitions: in memory by default ([`MemoryModeStore`]), or
/// anywhere an implementation writes them (a database table, an audit log).
///
/// `record` runs on the thread that changed the mode, with the controller's lock held so the
/// log keeps the order of the changes: keep it short, and never call back into the
/// controller from it.
///
/// ```
/// use fusebox_health::mode::{ModeStore, ModeTransition};
/// use std::sync::Mutex;
///
/// #[derive(Default)]
/// struct Lines(Mutex<Vec<String>>);
/// impl ModeStore for Lines {
///     fn record(&self, t: &ModeTransition) {
///         self.0.lock().unwrap().push(format!("{} -> {}: {}", t.from, t.to, t.reason));
///     }
///     fn recent(&self, _limit: usize) -> Vec<ModeTransition> {
///         Vec::new() // write-only
///     }
/// }
/// ```
pub trait ModeStore: Send + Sync + 'static {
    /// Keeps one transition.
    ///
    /// ```
    /// use fusebox_health::mode::{MemoryModeStore, ModeStore, ModeTransition};
    /// let store = MemoryModeStore::new(10)?;
    /// store.record(&ModeTransition::new("SAFE", "PRIMARY", "override cleared", 0));
    /// assert_eq!(store.recent(10).len(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    fn record(&self, transition: &ModeTransition);

    /// The last `limit` transitions kept, oldest first.
    ///
    /// ```
    /// use fusebox_health::mode::{MemoryModeStore, ModeStore};
    /// assert!(MemoryModeStore::new(10)?.recent(5).is_empty());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    fn recent(&self, limit: usize) -> Vec<ModeTransition>;
}

/// The last `capacity` transitions, in memory.
///
/// ```
/// use fusebox_health::mode::{MemoryModeStore, ModeStore, ModeTransition};
/// let store = MemoryModeStore::new(2)?;
/// for to in ["A", "B", "C"] {
///     store.record(&ModeTransition::new("X", to, "test", 0));
/// }
/// let kept: Vec<_> = store.recent(10).into_iter().map(|t| t.to).collect();
/// assert_eq!(kept, ["B", "C"]); // bounded: the oldest went first
/// assert!(MemoryModeStore::new(0).is_err());
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug)]
pub struct MemoryModeStore {
    capacity: usize,
    log: Mutex<VecDeque<ModeTransition>>,
}

impl MemoryModeStore {
    /// A store keeping the last `capacity` transitions (at least 1).
    ///
    /// ```
    /// use fusebox_health::mode::MemoryModeStore;
    /// assert!(MemoryModeStore::new(100).is_ok());
    /// ```
    pub fn new(capacity: usize) -> Result<Self, ConfigError> {
        check::nonzero("history", capacity as u64)?;
        Ok(MemoryModeStore {
            capacity,
            log: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
        })
    }
}

impl ModeStore for MemoryModeStore {
    fn record(&self, transition: &ModeTransition) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() == self.capacity {
            log.pop_front();
        }
        log.push_back(transition.clone());
    }

    fn recent(&self, limit: usize) -> Vec<ModeTransition> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let skip = log.len().saturating_sub(limit);
        log.iter().skip(skip).cloned().collect()
    }
}
