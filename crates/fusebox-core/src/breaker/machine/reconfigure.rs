//! Reconfiguring a [`Machine`] in place: the same rules as the concurrent breaker's, from
//! the pure algorithm's `retune` and `after_retune`.

use super::Machine;
use crate::ConfigError;
use crate::breaker::algorithm::{WindowChange, after_retune, below_minimum, retune};
use crate::breaker::config::BreakerConfig;
use crate::breaker::reconfigure::Reconfigured;
use crate::breaker::stats::State;
use crate::breaker::window::SeqWindow;

impl Machine {
    /// Replaces the configuration at `now`, keeping the state and the counts the new one can
    /// use, by the same rules as
    /// [`Breaker::reconfigure`](crate::breaker::Breaker::reconfigure) (see
    /// [`algorithm::retune`](crate::breaker::algorithm::retune)); the new rules are judged at
    /// once. A refused configuration leaves the machine as it was.
    ///
    /// ```
    /// use fusebox_core::breaker::{algorithm::WindowChange, Breaker, Machine, State};
    /// use fusebox_core::Outcome;
    /// let mut m = Machine::new("m", Breaker::builder("m").failures_in_last(3, 10).build_config()?);
    /// for t in 0..2 {
    ///     let ticket = m.acquire(t).unwrap();
    ///     m.record(ticket, Outcome::Failure, t);
    /// }
    /// let lowered = Breaker::builder("m").failures_in_last(2, 10).build_config()?;
    /// let done = m.reconfigure(lowered, 5)?;
    /// assert_eq!((done.window, done.state), (WindowChange::Kept, State::Open));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn reconfigure(
        &mut self,
        config: BreakerConfig,
        now: u64,
    ) -> Result<Reconfigured, ConfigError> {
        let window = retune(&self.config, &config)?;
        if window != WindowChange::Kept {
            self.window = SeqWindow::new(config.window);
            self.below_minimum = true;
        }
        self.config = config;
        self.revision += 1;
        self.settle(now);
        let stats = self.window.stats(now);
        if self.state == State::Closed {
            self.below_minimum = below_minimum(&self.config, &stats);
        }
        if let Some((to, reason)) = after_retune(
            &self.config,
            self.state,
            self.consecutive_failures,
            &stats,
            self.trial_successes,
            self.trial_failures,
        ) {
            self.move_to(to, reason, now);
        }
        Ok(Reconfigured {
            revision: self.revision,
            window,
            state: self.state,
        })
    }
}
