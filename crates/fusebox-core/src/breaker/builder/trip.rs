//! The builder's trip rules and windows: which outcomes open the breaker, and over how
//! many calls or how long they are counted.

use std::sync::Arc;
use std::time::Duration;

use super::BreakerBuilder;
use crate::breaker::config::CustomRule;
use crate::breaker::stats::WindowStats;

impl BreakerBuilder {
    /// Trips after `n` failures in a row. This is the default rule, with `n = 5`, when no
    /// other rule is set.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("db").consecutive_failures(2).build()?;
    /// b.record_failure();
    /// b.record_success(); // a success resets the run
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Closed);
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.settings.consecutive_failures = Some(n);
        self
    }
    /// Trips when `failures` of the last `calls` calls failed ("3 of the last 10").
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("api").failures_in_last(2, 5).build()?;
    /// b.record_failure();
    /// b.record_success();
    /// assert_eq!(b.state(), State::Closed);
    /// b.record_failure(); // 2 of the last 3 calls, not in a row
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn failures_in_last(mut self, failures: u32, calls: u32) -> Self {
        self.settings.failures_in_window = Some(failures);
        self.settings.window_calls = Some(calls);
        self.settings.window_span = None;
        self
    }
    /// Trips when the failure rate over the window reaches `rate` (within `(0, 1]`), once the
    /// window holds [`min_calls`](Self::min_calls) calls.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("api").count_window(4).failure_rate(0.5).build()?;
    /// b.record_success();
    /// b.record_failure();
    /// b.record_failure(); // 2 of 3 failed, but the window does not hold 4 calls yet
    /// assert_eq!(b.state(), State::Closed);
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.settings.failure_rate = Some(rate);
        self
    }
    /// Measures rates over the last `calls` calls (default 100 when a rate rule is set), at
    /// most 100,000: the window keeps one byte per call, so a larger one would hold megabytes
    /// per breaker and, behind a keyed registry, per key; over that many calls a time window
    /// says the same for a few hundred bytes.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, WindowKind};
    /// let b = Breaker::builder("w").count_window(50).failure_rate(0.2).build()?;
    /// assert_eq!(b.config().window(), Some(WindowKind::Count { calls: 50 }));
    /// // Without a count window, a rate is measured over the last 100 calls.
    /// let default = Breaker::builder("w").failure_rate(0.2).build()?;
    /// assert_eq!(default.config().window(), Some(WindowKind::Count { calls: 100 }));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn count_window(mut self, calls: u32) -> Self {
        self.settings.window_calls = Some(calls);
        self
    }
    /// Measures rates over the last `span`, in `buckets` buckets (e.g. 60 s in 10; at most
    /// 1,000 buckets).
    ///
    /// Calls are counted per bucket of `span / buckets`, and the window holds the current
    /// bucket and `buckets` whole ones before it: a call is remembered for at least `span`,
    /// and leaves it one bucket later at most. With 60 s in 10 buckets, a call made at 0 s
    /// (or at 5.9 s) is in the window until 66 s. More buckets, finer edges.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, WindowKind};
    /// use std::time::Duration;
    /// let span = Duration::from_secs(60);
    /// let b = Breaker::builder("w").time_window(span, 10).failure_rate(0.5).build()?;
    /// assert_eq!(b.config().window(), Some(WindowKind::Time { span, buckets: 10 }));
    /// assert_eq!(b.config().min_calls(), 20); // the default for a time-based window
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn time_window(mut self, span: Duration, buckets: u32) -> Self {
        self.settings.window_span = Some(span);
        self.settings.window_buckets = Some(buckets);
        self
    }
    /// Calls needed in the window before a rate is judged. Rates are judged after every
    /// outcome that could bring one to its threshold: a failure, a slow call, and a success
    /// that brings the window to this minimum or finds older calls gone from a time window.
    /// Until then [`Snapshot`](crate::breaker::Snapshot) reports the rates as `None`.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("m").count_window(10).failure_rate(0.5).min_calls(2).build()?;
    /// b.record_failure(); // a 100 % failure rate over one call is not judged
    /// assert_eq!(b.state(), State::Closed);
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn min_calls(mut self, calls: u32) -> Self {
        self.settings.min_calls = Some(calls);
        self
    }
    /// Counts a call lasting `threshold` or more as slow, and trips when the slow-call rate
    /// over the window reaches `rate`.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_core::clock::ManualClock;
    /// # use std::time::Duration;
    /// let (clock, secs) = (ManualClock::new(), Duration::from_secs);
    /// let b = Breaker::builder("slow").slow_calls(secs(2), 1.0).count_window(1);
    /// let b = b.clock(clock.clone()).build()?;
    /// let permit = b.try_acquire()?;
    /// clock.advance(secs(3));
    /// permit.success(); // a success, but a slow one
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn slow_calls(mut self, threshold: Duration, rate: f64) -> Self {
        self.settings.slow_call_threshold = Some(threshold);
        self.settings.slow_call_rate = Some(rate);
        self
    }
    /// Adds a custom trip rule over the window statistics, judged after every failure or
    /// slow call.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// let b = Breaker::builder("custom")
    ///     .trip_when(|s| s.failures >= 2 && s.failure_rate() > 0.5)
    ///     .build()?;
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Closed);
    /// b.record_failure();
    /// assert_eq!(b.state(), State::Open);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn trip_when<F>(mut self, rule: F) -> Self
    where
        F: Fn(&WindowStats) -> bool + Send + Sync + 'static,
    {
        self.custom = Some(CustomRule(Arc::new(rule)));
        self
    }
}
