//! A [`Pipeline`] from [`PipelineSettings`], completed by code.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fusebox_core::breaker::{Breaker, BreakerBuilder, Name};
use fusebox_core::{ConfigError, Error, Outcome};

use super::{PipelineSettings, SettingsError};
use crate::pipeline::{Pipeline, PipelineBuilder};
use crate::policy::{Bulkhead, BulkheadBuilder, Retry, RetryBuilder, Timeout};

use crate::pipeline::ClassifyOutcome;

impl PipelineSettings {
    /// The pipeline these settings describe, its policies named `name`, with the default
    /// classifications (the caller's errors and timeouts are retried and count as
    /// failures). [`pipeline`](Self::pipeline) lets code add what settings cannot hold.
    ///
    /// ```
    /// use fusebox_policy::settings::PipelineSettings;
    /// let empty = PipelineSettings::default().build::<(), ()>("noop")?;
    /// assert_eq!(empty.depth(), 0);
    /// # Ok::<(), fusebox_policy::settings::SettingsError>(())
    /// ```
    pub fn build<T: 'static, E: 'static>(
        &self,
        name: impl Into<Name>,
    ) -> Result<Pipeline<T, E>, SettingsError> {
        self.pipeline(name).build()
    }

    /// Starts a pipeline from these settings that code completes: the policies outside
    /// (a fallback), the retry's classification and hints, the breaker's listeners or
    /// classification, the bulkhead's listeners. The settings are laid over the builders
    /// code gives (see [merging](super#what-settings-do-to-builders-they-merge)); the levels
    /// are those the settings hold.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_policy::policy::{Fallback, Retry};
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::settings::{PipelineSettings, RetrySettings};
    ///
    /// let settings = PipelineSettings {
    ///     retry: Some(RetrySettings { max_retries: Some(2), ..Default::default() }),
    ///     ..Default::default()
    /// };
    /// let pipeline = settings
    ///     .pipeline("quotes")
    ///     .outer(Pipeline::builder().fallback(Fallback::value(0)))
    ///     .retry(Retry::builder().retry_on(|e: &String| e.as_str() != "bad request"))
    ///     .build()?;
    /// let answer = pipeline.call(|| async { Err::<u32, _>("bad request".to_string()) }).await;
    /// assert_eq!(answer.unwrap(), 0); // not retried, answered by the fallback
    /// # Ok(())
    /// # }
    /// ```
    pub fn pipeline<T, E>(&self, name: impl Into<Name>) -> PipelineFromSettings<'_, T, E> {
        PipelineFromSettings {
            settings: self,
            name: name.into(),
            outer: None,
            retry: None,
            breaker: None,
            classify: None,
            bulkhead: None,
        }
    }
}

/// A pipeline from [`PipelineSettings`] that code completes; from
/// [`PipelineSettings::pipeline`].
#[must_use]
pub struct PipelineFromSettings<'s, T, E> {
    settings: &'s PipelineSettings,
    name: Name,
    outer: Option<PipelineBuilder<T, E>>,
    retry: Option<RetryBuilder<T, E>>,
    breaker: Option<BreakerBuilder>,
    classify: Option<ClassifyOutcome<T, E>>,
    bulkhead: Option<BulkheadBuilder>,
}

impl<T, E> fmt::Debug for PipelineFromSettings<'_, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelineFromSettings")
            .field("settings", self.settings)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<T, E> PipelineFromSettings<'_, T, E> {
    /// Policies that only code can give, outside every level of the settings (a fallback).
    ///
    /// ```
    /// use fusebox_policy::pipeline::Pipeline;
    /// use fusebox_policy::policy::Fallback;
    /// use fusebox_policy::settings::PipelineSettings;
    /// let pipeline = PipelineSettings::default()
    ///     .pipeline::<u8, ()>("p")
    ///     .outer(Pipeline::builder().fallback(Fallback::value(1)))
    ///     .build()?;
    /// assert_eq!(pipeline.depth(), 1);
    /// # Ok::<(), fusebox_policy::settings::SettingsError>(())
    /// ```
    pub fn outer(mut self, outer: PipelineBuilder<T, E>) -> Self {
        self.outer = Some(outer);
        self
    }

    /// The retry's code: classification, hints, listeners, the clock. Its name is kept when
    /// set; the settings' `retry` numbers are laid over it.
    pub fn retry(mut self, retry: RetryBuilder<T, E>) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The breaker's code: listeners, the clock, a `trip_when` rule; the settings' `breaker`
    /// table is merged over it (see
    /// [`merge_settings`](fusebox_core::breaker::BreakerBuilder::merge_settings)).
    pub fn breaker(mut self, breaker: BreakerBuilder) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// How the breaker reads results (a 503 `Ok` response as a failure, say), as in
    /// [`PipelineBuilder::breaker_with`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use fusebox_core::Outcome;
    /// use fusebox_core::breaker::BreakerSettings;
    /// use fusebox_policy::settings::PipelineSettings;
    /// let settings = PipelineSettings {
    ///     breaker: Some(BreakerSettings { consecutive_failures: Some(1), ..Default::default() }),
    ///     ..Default::default()
    /// };
    /// let pipeline = settings
    ///     .pipeline::<u16, ()>("api")
    ///     .classify_breaker(|r| if matches!(r, Ok(503)) { Outcome::Failure } else { Outcome::Success })
    ///     .build()?;
    /// assert_eq!(pipeline.call(|| async { Ok(503) }).await.ok(), Some(503));
    /// assert!(pipeline.call(|| async { Ok(200) }).await.unwrap_err().is_rejected());
    /// # Ok(())
    /// # }
    /// ```
    pub fn classify_breaker<C>(mut self, classify: C) -> Self
    where
        C: Fn(&Result<T, Error<E>>) -> Outcome + Send + Sync + 'static,
    {
        self.classify = Some(Arc::new(classify));
        self
    }

    /// The bulkhead's code (listeners); the settings' numbers are laid over it.
    pub fn bulkhead(mut self, bulkhead: BulkheadBuilder) -> Self {
        self.bulkhead = Some(bulkhead);
        self
    }

    /// Validates everything and builds the pipeline: the code's outer policies, then
    /// `timeout`, `rate_limit`, `retry`, `breaker`, `throttle`, `attempt_timeout`,
    /// `concurrency_limit` and `bulkhead`, each present in the settings. Errors name the field's path (`retry.backoff.max`).
    pub fn build(self) -> Result<Pipeline<T, E>, SettingsError>
    where
        T: 'static,
        E: 'static,
    {
        let s = self.settings;
        let mut pipeline = self.outer.unwrap_or_else(Pipeline::builder);
        if let Some(timeout) = s.timeout {
            pipeline = pipeline.timeout(checked_timeout("timeout", timeout)?);
        }
        if let Some(settings) = &s.rate_limit {
            if settings.max_wait.is_some() {
                return Err(SettingsError::invalid(
                    "rate_limit.max_wait",
                    "a pipeline's rate limiter refuses at once; a waiting one goes in a Stack \
                     or a tower layer",
                ));
            }
            let limiter = settings
                .build(self.name.clone())
                .map_err(|e| e.within("rate_limit"))?;
            pipeline = pipeline.rate_limit(limiter);
        }
        if let Some(settings) = &s.retry {
            let code = self
                .retry
                .unwrap_or_else(|| Retry::builder().name(self.name.clone()));
            let retry = settings.apply(code).map_err(|e| e.within("retry"))?;
            let retry = retry
                .build()
                .map_err(|e| SettingsError::from(e).within("retry"))?;
            pipeline = pipeline.retry(retry);
        }
        if let Some(settings) = &s.breaker {
            let code = self
                .breaker
                .unwrap_or_else(|| Breaker::builder(self.name.clone()));
            let breaker = code
                .merge_settings(settings.clone())
                .build()
                .map_err(|e| SettingsError::from(e).within("breaker"))?;
            pipeline = pipeline.breaker_classified(breaker, self.classify);
        }
        if let Some(settings) = &s.throttle {
            let throttle = settings
                .build(self.name.clone())
                .map_err(|e| e.within("throttle"))?;
            pipeline = pipeline.throttle(throttle);
        }
        if let Some(timeout) = s.attempt_timeout {
            pipeline = pipeline.timeout(checked_timeout("attempt_timeout", timeout)?);
        }
        if let Some(settings) = &s.concurrency_limit {
            let limit = settings
                .build(self.name.clone())
                .map_err(|e| e.within("concurrency_limit"))?;
            pipeline = pipeline.concurrency_limit(limit);
        }
        if let Some(settings) = &s.bulkhead {
            let code = self
                .bulkhead
                .unwrap_or_else(|| Bulkhead::builder(self.name.clone()));
            let bulkhead = settings
                .apply(code)
                .build()
                .map_err(|e| SettingsError::from(e).within("bulkhead"))?;
            pipeline = pipeline.bulkhead(bulkhead);
        }
        Ok(pipeline.build()?)
    }
}

/// `after`, if a [`Timeout`] accepts it; the error names the settings' key.
fn checked_timeout(key: &str, after: Duration) -> Result<Duration, SettingsError> {
    match Timeout::new(after) {
        Ok(timeout) => Ok(timeout.duration()),
        Err(e) => Err(SettingsError::invalid(
            key,
            match e {
                ConfigError::Invalid { reason, .. } => reason.into_owned(),
                other => other.to_string(),
            },
        )),
    }
}
