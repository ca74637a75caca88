//! A value replaced at run time while readers on other threads keep borrowing it: the
//! settings of a live policy that may be reconfigured.
//!
//! Reading costs one atomic load and one predictable branch while the value has never been
//! replaced, so a policy that is never reconfigured keeps its hot path. Every revision stays
//! allocated until the owner is dropped, which is what lets a reader hold a plain `&T`
//! across a replacement without reference counting; replacements are for configuration
//! changes (a few per deploy), not for every call.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// A value with a history of revisions; [`current`](Self::current) is the latest.
///
/// ```
/// use fusebox_core::revisions::Revisions;
///
/// let limits = Revisions::new(10_u32);
/// let before = limits.current();        // borrowed while the value is replaced
/// assert_eq!(limits.replace(20), 1);    // revision 1
/// assert_eq!((*before, *limits.current()), (10, 20));
/// assert_eq!(limits.revision(), 1);
/// ```
pub struct Revisions<T> {
    current: AtomicUsize,
    initial: T,
    /// Revisions 1 and later, allocated on the first replacement only.
    later: OnceLock<Box<Later<T>>>,
    /// Replacements are serialised so that the latest pushed is the one published.
    writer: Mutex<()>,
}

impl<T> Revisions<T> {
    /// A value at revision 0.
    ///
    /// ```
    /// let r = fusebox_core::revisions::Revisions::new("a");
    /// assert_eq!((*r.current(), r.revision()), ("a", 0));
    /// ```
    pub fn new(initial: T) -> Self {
        Revisions {
            current: AtomicUsize::new(0),
            initial,
            later: OnceLock::new(),
            writer: Mutex::new(()),
        }
    }

    /// The latest revision of the value.
    ///
    /// ```
    /// let r = fusebox_core::revisions::Revisions::new(1);
    /// r.replace(2);
    /// assert_eq!(*r.current(), 2);
    /// ```
    #[inline(always)]
    pub fn current(&self) -> &T {
        let revision = self.current.load(Ordering::Acquire);
        if revision == 0 {
            &self.initial
        } else {
            self.later_revision(revision)
        }
    }

    #[cold]
    #[inline(never)]
    fn later_revision(&self, revision: usize) -> &T {
        // Published only after the push completed: both lookups succeed.
        self.later
            .get()
            .and_then(|later| later.get(revision - 1))
            .unwrap_or(&self.initial)
    }

    /// Revision `revision` of the value (0: the initial one), if there is one: what a reader
    /// that noted [`revision`](Self::revision) earlier reads to keep seeing the same value.
    ///
    /// ```
    /// let r = fusebox_core::revisions::Revisions::new('a');
    /// r.replace('b');
    /// assert_eq!((r.get(0), r.get(1), r.get(2)), (Some(&'a'), Some(&'b'), None));
    /// ```
    pub fn get(&self, revision: usize) -> Option<&T> {
        if revision == 0 {
            return Some(&self.initial);
        }
        self.later.get()?.get(revision - 1)
    }

    /// How many times the value was replaced.
    ///
    /// ```
    /// let r = fusebox_core::revisions::Revisions::new(());
    /// assert_eq!(r.revision(), 0);
    /// ```
    pub fn revision(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// Makes `value` the current revision and returns its number. Readers that borrowed an
    /// earlier revision keep it, unchanged, for as long as they hold it.
    ///
    /// ```
    /// let r = fusebox_core::revisions::Revisions::new(1);
    /// assert_eq!(r.replace(2), 1);
    /// assert_eq!(r.replace(3), 2);
    /// assert_eq!(*r.current(), 3);
    /// ```
    pub fn replace(&self, value: T) -> usize {
        self.replace_with(|_| value)
    }

    /// Makes the value `make` builds from the current one the current revision, with no
    /// other replacement in between, and returns its number.
    ///
    /// ```
    /// let r = fusebox_core::revisions::Revisions::new(1);
    /// r.replace_with(|n| n + 1);
    /// assert_eq!(*r.current(), 2);
    /// ```
    pub fn replace_with(&self, make: impl FnOnce(&T) -> T) -> usize {
        // Holds no data: a panic in `make` leaves nothing half-written.
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let value = make(self.current());
        let later = self.later.get_or_init(|| Box::new(Later::new()));
        let revision = later.push(value) + 1;
        self.current.store(revision, Ordering::Release);
        revision
    }
}

impl<T: fmt::Debug> fmt::Debug for Revisions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revisions")
            .field("revision", &self.revision())
            .field("current", self.current())
            .finish()
    }
}

#[cfg(not(loom))]
type Later<T> = boxcar::Vec<T>;

#[cfg(loom)]
use loom_stand_in::Later;

/// Under `--cfg loom` (boxcar's loom build is not wired up here): revisions in a chain of
/// write-once links. The loom models never reconfigure; this only has to compile and be
/// right.
#[cfg(loom)]
mod loom_stand_in {
    use std::sync::OnceLock;

    pub(super) struct Later<T> {
        first: OnceLock<Box<Link<T>>>,
    }

    struct Link<T> {
        value: T,
        next: OnceLock<Box<Link<T>>>,
    }

    impl<T> Later<T> {
        pub(super) fn new() -> Self {
            Later {
                first: OnceLock::new(),
            }
        }

        /// Appends `value`; callers serialise pushes.
        pub(super) fn push(&self, value: T) -> usize {
            let mut slot = &self.first;
            let mut index = 0;
            while let Some(link) = slot.get() {
                slot = &link.next;
                index += 1;
            }
            let _ = slot.set(Box::new(Link {
                value,
                next: OnceLock::new(),
            }));
            index
        }

        pub(super) fn get(&self, index: usize) -> Option<&T> {
            let mut link = self.first.get()?;
            for _ in 0..index {
                link = link.next.get()?;
            }
            Some(&link.value)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Revisions;
    use std::sync::Arc;

    #[test]
    fn readers_see_a_whole_revision_while_writers_replace() {
        let value = Arc::new(Revisions::new((0_u64, 0_u64)));
        let writer = {
            let value = Arc::clone(&value);
            std::thread::spawn(move || {
                for n in 1..=2_000_u64 {
                    value.replace((n, n * 2));
                }
            })
        };
        let mut last = 0;
        while !writer.is_finished() || last < 2_000 {
            let &(n, double) = value.current();
            assert_eq!(double, n * 2, "a torn revision");
            assert!(n >= last, "went back from {last} to {n}");
            last = n;
        }
        writer.join().unwrap();
        assert_eq!(value.revision(), 2_000);
    }

    #[test]
    fn concurrent_replacements_publish_the_latest() {
        let value = Arc::new(Revisions::new(0_usize));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let value = Arc::clone(&value);
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        value.replace_with(|n| n + 1);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*value.current(), 2_000);
        assert_eq!(value.revision(), 2_000);
    }
}
