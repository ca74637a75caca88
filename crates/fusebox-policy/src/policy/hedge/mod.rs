//! Hedged requests: when a call is slower than usual, send the same call again and take
//! whichever answers first.
//!
//! A call starts one attempt. If it has not succeeded after the hedge delay, a second attempt
//! starts beside it, then a third after another delay, up to `max_hedged_attempts` extra
//! attempts. Every attempt stays in flight until one succeeds; the others are then dropped,
//! which cancels them. A failed attempt does not end the call while others are in flight:
//! the call fails only once every attempt it started has failed, with the **last** failure
//! (the most recent news from the dependency). Hedging does not retry: an attempt that fails
//! before the next hedge is due, with nothing else in flight, ends the call at once. Put a
//! [`Retry`](crate::policy::Retry) around the hedge for that.
//!
//! The delay is fixed, or a percentile of the latencies of recent attempts (say p95: one
//! call in twenty is hedged while latencies hold still), kept in a [`LatencyHistogram`].
//!
//! Only hedge calls that are safe to send twice. In a [`Stack`](crate::stack::Stack) every
//! call through the stack is hedged, so keep non-idempotent calls on a stack without one;
//! the tower layer picks requests one by one.

mod builder;
mod latency;

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use fusebox_core::Error;
use fusebox_core::breaker::Name;
use fusebox_core::budget::RetryBudget;
use fusebox_core::clock::SharedClock;
use tokio::time::{Instant, Sleep};

pub use builder::HedgeBuilder;
pub use latency::LatencyHistogram;

/// What a hedge did, as its listeners hear it (see [`HedgeBuilder::on_event`]).
///
/// ```
/// use fusebox_policy::policy::HedgeEvent;
/// let event = HedgeEvent::Sent { attempt: 1 };
/// assert_eq!(event.as_str(), "sent");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HedgeEvent {
    /// A hedged attempt started; `attempt` counts from 1 (the first hedge).
    Sent {
        /// Which hedge: 1 for the first extra attempt.
        attempt: u32,
    },
    /// A hedged attempt answered first; `attempt` counts from 1.
    Won {
        /// Which hedge won.
        attempt: u32,
    },
    /// Attempts still in flight were dropped once another succeeded.
    LosersCancelled {
        /// How many were dropped.
        count: u32,
    },
    /// A hedge was due but the retry budget refused it; the call goes on with the attempts
    /// it has.
    RefusedByBudget,
}

impl HedgeEvent {
    /// A stable lower-case name, for logs and labels.
    ///
    /// ```
    /// use fusebox_policy::policy::HedgeEvent;
    /// assert_eq!(HedgeEvent::RefusedByBudget.as_str(), "refused_by_budget");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            HedgeEvent::Sent { .. } => "sent",
            HedgeEvent::Won { .. } => "won",
            HedgeEvent::LosersCancelled { .. } => "losers_cancelled",
            HedgeEvent::RefusedByBudget => "refused_by_budget",
        }
    }
}

/// Totals of what a hedge did since it was built, shared by its clones.
///
/// ```
/// use fusebox_policy::policy::Hedge;
/// let stats = Hedge::builder("search").build()?.stats();
/// assert_eq!(stats.hedges_sent, 0);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HedgeStats {
    /// Hedged attempts started.
    pub hedges_sent: u64,
    /// Calls a hedged attempt answered first.
    pub hedge_wins: u64,
    /// Attempts dropped in flight because another succeeded first.
    pub losers_cancelled: u64,
    /// Hedges the retry budget refused.
    pub refused_by_budget: u64,
}

/// How long to wait before each hedge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DelaySource {
    Fixed(Duration),
    Percentile {
        quantile: f64,
        min_samples: u64,
        fallback: Duration,
    },
}

type EventListener = Arc<dyn Fn(&Name, HedgeEvent) + Send + Sync>;

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    wins: AtomicU64,
    cancelled: AtomicU64,
    refused: AtomicU64,
}

pub(crate) struct HedgeInner {
    name: Name,
    max_hedged_attempts: u32,
    delay: DelaySource,
    latencies: Option<LatencyHistogram>,
    /// The percentile delay as last computed, in nanoseconds, and when to compute it again.
    cached_delay_nanos: AtomicU64,
    refresh_at_nanos: AtomicU64,
    refresh_every_nanos: u64,
    budget: Option<RetryBudget>,
    clock: SharedClock,
    listeners: Vec<EventListener>,
    counters: Counters,
}

impl fmt::Debug for HedgeInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedge")
            .field("name", &self.name)
            .field("max_hedged_attempts", &self.max_hedged_attempts)
            .field("delay", &self.delay)
            .field("budget", &self.budget.is_some())
            .finish_non_exhaustive()
    }
}

/// Hedged requests: when a call is slower than usual, the same call again, and whichever
/// attempt succeeds first answers.
///
/// A call starts one attempt. If it has not succeeded after the hedge delay, a second attempt
/// starts beside it, then a third after another delay, up to
/// [`max_hedged_attempts`](HedgeBuilder::max_hedged_attempts) extra attempts. Every attempt
/// stays in flight until one succeeds; the others are then dropped, which cancels them. A
/// failed attempt does not end the call while others are in flight: the call fails only once
/// every attempt it started has failed, with the **last** failure (the most recent news from
/// the dependency). Hedging does not retry: an attempt that fails before the next hedge is
/// due, with nothing else in flight, ends the call at once; put a
/// [`Retry`](crate::policy::Retry) around the hedge for that.
///
/// The delay is fixed, or a percentile of the latencies of recent successful attempts (say
/// p95: one call in twenty is hedged while latencies hold still), kept in a
/// [`LatencyHistogram`]. With a [budget](HedgeBuilder::budget), a hedge is sent only when the
/// budget grants it.
///
/// Only hedge calls that are safe to send twice. In a [`Stack`](crate::stack::Stack) every
/// call through the stack is hedged, so keep non-idempotent calls on a stack without one;
/// the tower layer picks requests one by one. Clones share settings, latencies, budget and
/// totals.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_policy::policy::Hedge;
/// use fusebox_policy::stack::Stack;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// let hedge = Hedge::builder("search").delay(Duration::from_millis(20)).build()?;
/// let stack = Stack::new().hedge(hedge.clone());
/// let attempts = AtomicU32::new(0);
/// let started = tokio::time::Instant::now();
/// let answer = stack
///     .call(|| async {
///         // The first attempt is stuck; the hedge answers in 5 ms.
///         let slow = attempts.fetch_add(1, Ordering::Relaxed) == 0;
///         tokio::time::sleep(Duration::from_millis(if slow { 1_000 } else { 5 })).await;
///         Ok::<_, std::io::Error>(if slow { "first" } else { "hedge" })
///     })
///     .await
///     .unwrap();
/// assert_eq!(answer, "hedge");
/// assert_eq!(started.elapsed(), Duration::from_millis(25));
/// assert_eq!(hedge.stats().hedge_wins, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Hedge {
    inner: Arc<HedgeInner>,
}

impl Hedge {
    /// A builder for a hedge called `name`. The defaults: one hedge per call at most, after
    /// the p95 of recent latencies (100 ms until 20 latencies are known, over a 10 s window),
    /// no budget.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// let hedge = Hedge::builder("search").build()?;
    /// assert_eq!(hedge.max_hedged_attempts(), 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder(name: impl Into<Name>) -> HedgeBuilder {
        HedgeBuilder::new(name.into())
    }

    /// The hedge's name.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// assert_eq!(Hedge::builder("search").build()?.name(), "search");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &str {
        self.inner.name.as_ref()
    }

    /// The most extra attempts a call may start.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// assert_eq!(Hedge::builder("a").max_hedged_attempts(3).build()?.max_hedged_attempts(), 3);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn max_hedged_attempts(&self) -> u32 {
        self.inner.max_hedged_attempts
    }

    /// The delay a call starting now would wait before its first hedge. A percentile delay is
    /// recomputed at most every 1/32 of the latency window, and is the fallback until the
    /// window holds the minimum number of latencies.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// use std::time::Duration;
    /// let hedge = Hedge::builder("a").delay(Duration::from_millis(30)).build()?;
    /// assert_eq!(hedge.delay(), Duration::from_millis(30));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn delay(&self) -> Duration {
        self.inner.delay()
    }

    /// What the hedge did so far.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// assert_eq!(Hedge::builder("a").build()?.stats().hedge_wins, 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn stats(&self) -> HedgeStats {
        let c = &self.inner.counters;
        HedgeStats {
            hedges_sent: c.sent.load(Ordering::Relaxed),
            hedge_wins: c.wins.load(Ordering::Relaxed),
            losers_cancelled: c.cancelled.load(Ordering::Relaxed),
            refused_by_budget: c.refused.load(Ordering::Relaxed),
        }
    }

    /// The retry budget hedges draw on, if any.
    ///
    /// ```
    /// use fusebox_core::budget::{BudgetConfig, RetryBudget};
    /// use fusebox_policy::policy::Hedge;
    /// let budget = RetryBudget::new(BudgetConfig::default());
    /// assert!(Hedge::builder("a").budget(budget).build()?.budget().is_some());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn budget(&self) -> Option<&RetryBudget> {
        self.inner.budget.as_ref()
    }

    /// Runs `op` hedged: a first attempt, more after each delay while none has succeeded,
    /// the first success returned. Fails with the last failure once every attempt failed.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Hedge;
    /// let hedge = Hedge::builder("a").build()?;
    /// assert_eq!(hedge.call(|| async { Ok::<_, ()>(7) }).await.unwrap(), 7);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, op: F) -> Result<T, Error<E>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let op = &op;
        self.race(move || async move { op().await.map_err(Error::Inner) })
            .await
    }

    /// Starts a call's bookkeeping: counts the call in the budget (a first attempt deposits)
    /// and starts the first attempt's stopwatch. For running hedged attempts on something
    /// other than [`call`](Self::call) or a stack, as the tower layer does.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// let hedge = Hedge::builder("a").build()?;
    /// let first = hedge.begin_call();
    /// hedge.settle(0, first, None, 0);
    /// assert_eq!(hedge.stats().hedge_wins, 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn begin_call(&self) -> Stopwatch {
        let inner = &*self.inner;
        if let Some(budget) = &inner.budget {
            budget.deposit(inner.clock.recent_nanos());
        }
        inner.stopwatch()
    }

    /// Asks to start hedge number `attempt` (1 for the first extra attempt): `None` when the
    /// budget refuses it (no later hedge should be tried for the call), else the hedge's
    /// stopwatch. Counts the hedge and tells the listeners.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// let hedge = Hedge::builder("a").build()?;
    /// let _first = hedge.begin_call();
    /// assert!(hedge.try_hedge(1).is_some());
    /// assert_eq!(hedge.stats().hedges_sent, 1);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn try_hedge(&self, attempt: u32) -> Option<Stopwatch> {
        let inner = &*self.inner;
        if let Some(budget) = &inner.budget
            && !budget.try_withdraw(inner.clock.recent_nanos())
        {
            inner.counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(hedge = %inner.name, attempt, "hedge refused by the retry budget");
            inner.emit(HedgeEvent::RefusedByBudget);
            return None;
        }
        inner.counters.sent.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(hedge = %inner.name, attempt, "hedge sent");
        inner.emit(HedgeEvent::Sent { attempt });
        Some(inner.stopwatch())
    }

    /// Ends a call that attempt `winner` (0 for the first, 1 for the first hedge...) won:
    /// records its latency, and the first attempt's time so far if it is still running
    /// (`first_running`: a latency at least that long, which keeps a slowing dependency
    /// visible behind the hedges that hide it), counts a hedge's win and the `losers`
    /// dropped.
    ///
    /// ```
    /// use fusebox_policy::policy::Hedge;
    /// let hedge = Hedge::builder("a").build()?;
    /// let first = hedge.begin_call();
    /// let second = hedge.try_hedge(1).unwrap();
    /// hedge.settle(1, second, Some(first), 1);
    /// let stats = hedge.stats();
    /// assert_eq!((stats.hedge_wins, stats.losers_cancelled), (1, 1));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn settle(
        &self,
        winner: u32,
        winner_watch: Stopwatch,
        first_running: Option<Stopwatch>,
        losers: u32,
    ) {
        let inner = &*self.inner;
        if let Some(latencies) = &inner.latencies {
            let now = inner.clock.recent_nanos();
            for watch in std::iter::once(winner_watch).chain(first_running) {
                if let Some(started) = watch.0 {
                    latencies.record(started.elapsed(), now);
                }
            }
        }
        if winner > 0 {
            inner.counters.wins.fetch_add(1, Ordering::Relaxed);
            inner.emit(HedgeEvent::Won { attempt: winner });
        }
        if losers > 0 {
            inner
                .counters
                .cancelled
                .fetch_add(u64::from(losers), Ordering::Relaxed);
            inner.emit(HedgeEvent::LosersCancelled { count: losers });
        }
    }

    async fn race<F, Fut, T, E>(&self, attempt: F) -> Result<T, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let first_watch = self.begin_call();
        let mut first = pin!(attempt());
        let mut first_running = true;
        // Boxed: only calls that hedge pay for it. A finished hedge keeps its place, so a
        // hedge's index tells which attempt it is.
        let mut hedges: Vec<(Option<Pin<Box<Fut>>>, Stopwatch)> = Vec::new();
        let mut timer = pin!(None::<Sleep>);
        let mut hedging_stopped = false;
        let mut last_failure = None;
        let mut delay = None;

        poll_fn(|cx| {
            loop {
                if first_running && let Poll::Ready(result) = first.as_mut().poll(cx) {
                    first_running = false;
                    match result {
                        Ok(value) => {
                            let losers = hedges.iter().filter(|h| h.0.is_some()).count();
                            self.settle(0, first_watch, None, losers as u32);
                            return Poll::Ready(Ok(value));
                        }
                        Err(failure) => last_failure = Some(failure),
                    }
                }
                let mut won = None;
                for (index, (slot, watch)) in hedges.iter_mut().enumerate() {
                    let Some(running) = slot.as_mut() else {
                        continue;
                    };
                    if let Poll::Ready(result) = running.as_mut().poll(cx) {
                        *slot = None;
                        match result {
                            Ok(value) => {
                                won = Some((index, *watch, value));
                                break;
                            }
                            Err(failure) => last_failure = Some(failure),
                        }
                    }
                }
                let hedges_running = hedges.iter().filter(|h| h.0.is_some()).count();
                if let Some((index, watch, value)) = won {
                    let first_watch = first_running.then_some(first_watch);
                    let losers = hedges_running + usize::from(first_running);
                    self.settle(index as u32 + 1, watch, first_watch, losers as u32);
                    return Poll::Ready(Ok(value));
                }
                if !first_running
                    && hedges_running == 0
                    && let Some(failure) = last_failure.take()
                {
                    return Poll::Ready(Err(failure));
                }
                if hedging_stopped || hedges.len() as u32 >= self.inner.max_hedged_attempts {
                    return Poll::Pending;
                }
                let delay = *delay.get_or_insert_with(|| self.inner.delay());
                if !delay.is_zero() {
                    if timer.is_none() {
                        timer.set(Some(tokio::time::sleep(delay)));
                    }
                    if let Some(sleep) = timer.as_mut().as_pin_mut()
                        && sleep.poll(cx).is_pending()
                    {
                        return Poll::Pending;
                    }
                    timer.set(None);
                }
                match self.try_hedge(hedges.len() as u32 + 1) {
                    Some(watch) => hedges.push((Some(Box::pin(attempt())), watch)),
                    None => {
                        hedging_stopped = true;
                        return Poll::Pending;
                    }
                }
            }
        })
        .await
    }
}

/// When an attempt started, kept only while a percentile delay needs attempt latencies
/// (empty, and free, under a fixed delay).
///
/// ```
/// use fusebox_policy::policy::Hedge;
/// let watch = Hedge::builder("a").build()?.begin_call();
/// # let _ = watch;
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Option<Instant>);

impl Hedge {
    /// The stopwatch of an attempt that started at `started`, for a caller that kept the
    /// start itself (a pipeline's call).
    pub(crate) fn stopwatch_at(&self, started: Instant) -> Stopwatch {
        Stopwatch(self.inner.latencies.is_some().then_some(started))
    }
}

impl HedgeInner {
    fn stopwatch(&self) -> Stopwatch {
        Stopwatch(self.latencies.is_some().then(Instant::now))
    }

    fn emit(&self, event: HedgeEvent) {
        for listener in &self.listeners {
            listener(&self.name, event);
        }
    }

    fn delay(&self) -> Duration {
        let (quantile, min_samples, fallback) = match self.delay {
            DelaySource::Fixed(delay) => return delay,
            DelaySource::Percentile {
                quantile,
                min_samples,
                fallback,
            } => (quantile, min_samples, fallback),
        };
        let Some(latencies) = &self.latencies else {
            return fallback;
        };
        let now = self.clock.recent_nanos();
        let due = self.refresh_at_nanos.load(Ordering::Relaxed);
        if now >= due
            && self
                .refresh_at_nanos
                .compare_exchange(
                    due,
                    now.saturating_add(self.refresh_every_nanos),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            let delay = if latencies.count(now) >= min_samples {
                latencies.percentile(quantile, now).unwrap_or(fallback)
            } else {
                fallback
            };
            let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
            self.cached_delay_nanos.store(nanos, Ordering::Relaxed);
            return delay;
        }
        Duration::from_nanos(self.cached_delay_nanos.load(Ordering::Relaxed))
    }
}

impl<T, E> crate::stack::Policy<T, E> for Hedge {
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        self.race(attempt)
    }
}
