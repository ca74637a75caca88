//! The clock that follows tokio's timers.

use std::sync::Arc;

use fusebox_core::clock::{Clock, IntoClock, SharedClock};

/// A clock that follows `tokio::time`, so `tokio::time::pause()` and `advance()` drive it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use fusebox_core::clock::Clock;
/// use fusebox_policy::TokioClock;
/// use std::time::Duration;
///
/// let clock = TokioClock::new();
/// tokio::time::sleep(Duration::from_secs(3)).await;
/// assert_eq!(clock.now_nanos(), 3_000_000_000);
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    /// A clock whose origin is `tokio::time::Instant::now()`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use fusebox_core::clock::Clock;
    /// use fusebox_policy::TokioClock;
    /// use std::time::Duration;
    ///
    /// tokio::time::advance(Duration::from_secs(5)).await;
    /// let clock = TokioClock::new(); // its origin is now, not the runtime's start
    /// assert_eq!(clock.now_nanos(), 0);
    /// tokio::time::advance(Duration::from_millis(20)).await;
    /// assert_eq!(clock.now_nanos(), 20_000_000);
    /// # }
    /// ```
    pub fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now_nanos(&self) -> u64 {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.origin);
        u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl IntoClock for TokioClock {
    fn into_handle(self) -> SharedClock {
        (Arc::new(self) as Arc<dyn Clock>).into_handle()
    }
}
