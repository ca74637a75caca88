//! The builder's recovery settings: how long the breaker stays open, and the half-open
//! trials that close it again.

use std::time::Duration;

use super::BreakerBuilder;

impl BreakerBuilder {
    /// Time in OPEN before trials (default 30 s). A zero cooldown is refused: an OPEN state
    /// that ends at once would send the very next call to a trial, so the breaker would shed
    /// no load at all; for a breaker that only observes, see
    /// [`disable`](crate::breaker::Breaker::disable).
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let b = Breaker::builder("c").cooldown(Duration::from_secs(10)).clock(clock.clone());
    /// let b = b.build()?;
    /// b.trip("drill");
    /// clock.advance(Duration::from_secs(9));
    /// assert_eq!(b.state(), State::Open);
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(b.state(), State::HalfOpen);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.settings.cooldown = Some(cooldown);
        self
    }
    /// A cooldown that grows by `factor` with each consecutive trip, from `initial` up to
    /// `max`, and starts over once the breaker closes.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let (clock, secs) = (ManualClock::new(), Duration::from_secs);
    /// let b = Breaker::builder("g").cooldown_growing(secs(1), secs(60), 2.0);
    /// let b = b.clock(clock.clone()).build()?;
    /// b.trip("first");
    /// assert_eq!(b.snapshot().remaining_cooldown, Some(secs(1)));
    /// clock.advance(secs(1));
    /// b.try_acquire()?.failure(); // the trial fails: a second trip in a row
    /// assert_eq!(b.snapshot().remaining_cooldown, Some(secs(2)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cooldown_growing(mut self, initial: Duration, max: Duration, factor: f64) -> Self {
        self.settings.cooldown = Some(initial);
        self.settings.cooldown_max = Some(max);
        self.settings.cooldown_factor = Some(factor);
        self
    }
    /// Spreads each cooldown randomly by ± `fraction` so a fleet does not probe in step.
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let b = Breaker::builder("j")
    ///     .cooldown(Duration::from_secs(10))
    ///     .cooldown_jitter(0.1)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// b.trip("drill");
    /// let left = b.snapshot().remaining_cooldown.unwrap();
    /// assert!(left >= Duration::from_secs(9) && left <= Duration::from_secs(11));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn cooldown_jitter(mut self, fraction: f64) -> Self {
        self.settings.cooldown_jitter = Some(fraction);
        self
    }
    /// Closes after `successes` of `trials` trial calls succeed ("5 of 5", "3 of 5"); a
    /// failure that makes this unreachable reopens at once. Default: 1 of 1.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let b = Breaker::builder("h").half_open_trials(2, 3).clock(clock.clone()).build()?;
    /// b.trip("drill");
    /// clock.advance(Duration::from_secs(30));
    /// b.try_acquire()?.failure(); // one failure is tolerated by "2 of 3"
    /// b.try_acquire()?.success();
    /// b.try_acquire()?.success();
    /// assert_eq!(b.state(), State::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn half_open_trials(mut self, successes: u32, trials: u32) -> Self {
        self.settings.half_open_successes = Some(successes);
        self.settings.half_open_trials = Some(trials);
        self
    }
    /// Trial calls allowed in flight at once (default: all the trials; at most 10,000).
    /// Below the trials, it paces them; above, it races them: with `half_open_trials(1, 1)`
    /// and a concurrency of 3, three trials start at once and the first to finish decides,
    /// the two others being neither counted nor refused.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let clock = ManualClock::new();
    /// let b = Breaker::builder("h").half_open_trials(3, 3).half_open_concurrency(1);
    /// let b = b.clock(clock.clone()).build()?;
    /// b.trip("drill");
    /// clock.advance(Duration::from_secs(30));
    /// let trial = b.try_acquire()?;
    /// assert_eq!(b.try_acquire().unwrap_err().state(), State::HalfOpen); // one at a time
    /// trial.success();
    /// assert!(b.try_acquire().is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn half_open_concurrency(mut self, n: u32) -> Self {
        self.settings.half_open_concurrency = Some(n);
        self
    }
    /// Reopens when half-open lasts longer than `max` without a verdict.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let (clock, secs) = (ManualClock::new(), Duration::from_secs);
    /// let b = Breaker::builder("h").half_open_max_duration(secs(5));
    /// let b = b.clock(clock.clone()).build()?;
    /// b.trip("drill");
    /// clock.advance(secs(30));
    /// let _stuck = b.try_acquire()?; // a trial that never reports
    /// clock.advance(secs(5));
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn half_open_max_duration(mut self, max: Duration) -> Self {
        self.settings.half_open_max_duration = Some(max);
        self
    }
}
