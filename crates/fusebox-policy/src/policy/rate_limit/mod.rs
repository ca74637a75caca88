//! Rate limiter: a GCRA (generic cell rate algorithm) limit on how often calls may start,
//! global or per key, that either waits for a permit (for at most a bound) or refuses at once.
//!
//! This file holds what both limiter kinds share: the clock adapter, the mode, the
//! listeners and the admission of one call. The builder (`builder`), the limiter all calls
//! share (`direct`) and the per-key limiter (`keyed`) each have a file of their own.

mod builder;
mod direct;
mod keyed;

pub use builder::RateLimiterBuilder;
pub use direct::RateLimiter;
pub use keyed::KeyedRateLimiter;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::nanos::Nanos;
use governor::{NotUntil, Quota};

use fusebox_core::RateLimited;
use fusebox_core::breaker::Name;
use fusebox_core::clock::SharedClock;

/// Governor's view of a fusebox clock: nanoseconds since the clock's origin, so a
/// `ManualClock` or a `TokioClock` under paused time drives the limiter deterministically.
#[derive(Debug, Clone)]
struct LimiterClock(SharedClock);

impl GovernorClock for LimiterClock {
    type Instant = Nanos;

    #[inline]
    fn now(&self) -> Nanos {
        Nanos::from(self.0.now_nanos())
    }
}

/// What a limiter does with a call that finds no permit.
///
/// ```
/// use fusebox_policy::policy::{RateLimitMode, RateLimiter};
/// use std::time::Duration;
/// let limiter = RateLimiter::builder("api")
///     .per_second(10)
///     .mode(RateLimitMode::Wait { max_wait: Duration::from_millis(250) })
///     .build()?;
/// assert_eq!(limiter.mode(), RateLimitMode::Wait { max_wait: Duration::from_millis(250) });
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitMode {
    /// Refuse at once with [`Error::RateLimited`](fusebox_core::Error::RateLimited) (the default).
    #[default]
    Reject,
    /// Sleep until a permit is free if that is at most `max_wait` away; refuse otherwise
    /// (without sleeping, since waiting would not help).
    Wait {
        /// The longest a call may wait for its permit.
        max_wait: Duration,
    },
}

type LimitedListener = Arc<dyn Fn(&RateLimited) + Send + Sync>;
type WaitListener = Arc<dyn Fn(Duration) + Send + Sync>;

/// Listeners told of refusals and waits.
#[derive(Clone, Default)]
struct Listeners {
    on_limited: Vec<LimitedListener>,
    on_wait: Vec<WaitListener>,
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} on_limited, {} on_wait",
            self.on_limited.len(),
            self.on_wait.len()
        )
    }
}

/// The validated settings both limiter kinds share.
#[derive(Debug)]
struct Settings {
    name: Name,
    quota: Quota,
    mode: RateLimitMode,
    clock: LimiterClock,
    listeners: Listeners,
}

impl Settings {
    /// Turns governor's answer into a permit (after a wait, in wait mode) or a refusal.
    async fn admit(
        &self,
        mut check: impl FnMut() -> Result<(), NotUntil<Nanos>>,
        name: impl FnOnce() -> Name,
    ) -> Result<(), RateLimited> {
        let refusal = match check() {
            Ok(()) => return Ok(()),
            Err(not_until) => not_until,
        };
        let mut retry_after = refusal.wait_time_from(self.clock.now());
        if let RateLimitMode::Wait { max_wait } = self.mode {
            let mut waited = Duration::ZERO;
            // Another caller may take the permit we waited for, so check again and keep
            // waiting while the total stays within the bound.
            while waited + retry_after <= max_wait {
                for listener in &self.listeners.on_wait {
                    listener(retry_after);
                }
                tracing::debug!(rate_limiter = %self.name, ?retry_after, "waiting for a permit");
                tokio::time::sleep(retry_after).await;
                waited += retry_after;
                match check() {
                    Ok(()) => return Ok(()),
                    Err(not_until) => retry_after = not_until.wait_time_from(self.clock.now()),
                }
                if retry_after.is_zero() {
                    // A clock that does not follow tokio's timers has not moved: waiting
                    // longer would spin, so refuse.
                    break;
                }
            }
        }
        let limited = RateLimited {
            name: name(),
            retry_after,
        };
        tracing::debug!(rate_limiter = %self.name, ?retry_after, "rate limited");
        for listener in &self.listeners.on_limited {
            listener(&limited);
        }
        Err(limited)
    }
}
