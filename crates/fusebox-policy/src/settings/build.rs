//! Building policies from settings, through the same builders as code.

use fusebox_core::ConfigError;
use fusebox_core::backoff::{Backoff, BackoffBuilder, Shape};
use fusebox_core::breaker::Name;
use fusebox_core::budget::{BudgetConfig, RetryBudget};

use super::{
    BackoffKind, BackoffSettings, BudgetSettings, BulkheadSettings, RetrySettings, SettingsError,
};
use crate::policy::{Bulkhead, BulkheadBuilder, Retry, RetryBuilder};

impl RetrySettings {
    /// Lays these settings over `builder`: each field set here wins, the others keep the
    /// builder's values, and what settings cannot hold (classification, Retry-After hints,
    /// listeners, the clock) is kept.
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// use fusebox_policy::settings::RetrySettings;
    /// let code = Retry::<(), std::io::Error>::builder().name("search").max_retries(1).seed(7);
    /// let file = RetrySettings { max_retries: Some(4), ..Default::default() };
    /// let retry = file.apply(code)?.build()?;
    /// assert_eq!((retry.name().as_str(), retry.max_retries()), ("search", 4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply<T, E>(
        &self,
        builder: RetryBuilder<T, E>,
    ) -> Result<RetryBuilder<T, E>, SettingsError> {
        let mut builder = builder;
        if let Some(retries) = self.max_retries {
            builder = builder.max_retries(retries);
        }
        if let Some(max) = self.max_elapsed {
            builder = builder.max_elapsed(max);
        }
        if let Some(max) = self.max_retry_after {
            builder = builder.max_retry_after(max);
        }
        if let Some(backoff) = &self.backoff {
            builder = builder.backoff(backoff.build().map_err(|e| e.within("backoff"))?);
        }
        if let Some(budget) = &self.budget {
            let config = budget.build().map_err(|e| e.within("budget"))?;
            builder = builder.budget(RetryBudget::new(config));
        }
        if let Some(seed) = self.seed {
            builder = builder.seed(seed);
        }
        Ok(builder)
    }

    /// A retry named `name` from these settings alone, with the default classification
    /// (the caller's errors and timeouts are retried).
    ///
    /// ```
    /// use fusebox_policy::settings::RetrySettings;
    /// use std::time::Duration;
    /// let bad = RetrySettings { max_elapsed: Some(Duration::ZERO), ..Default::default() };
    /// assert_eq!(bad.build::<(), ()>("r").unwrap_err().path(), "max_elapsed");
    /// ```
    pub fn build<T: 'static, E: 'static>(
        &self,
        name: impl Into<Name>,
    ) -> Result<Retry<T, E>, SettingsError> {
        Ok(self.apply(Retry::builder().name(name))?.build()?)
    }
}

impl BackoffSettings {
    /// Validates the settings into a [`Backoff`]. A missing `kind`, a missing field of the
    /// kind or a field of another kind is an error naming that field.
    ///
    /// ```
    /// use fusebox_policy::settings::{BackoffKind, BackoffSettings};
    /// let no_max = BackoffSettings { kind: Some(BackoffKind::Exponential), ..Default::default() };
    /// let err = no_max.build().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid `min`: required by an exponential backoff");
    /// ```
    pub fn build(&self) -> Result<Backoff, SettingsError> {
        let kind = self.kind.ok_or_else(|| {
            SettingsError::invalid("kind", "required: fixed, exponential or decorrelated")
        })?;
        let (name, allowed): (&str, &[&str]) = match kind {
            BackoffKind::Fixed => ("a fixed", &["delay"]),
            BackoffKind::Exponential => ("an exponential", &["min", "max", "factor", "jitter"]),
            BackoffKind::Decorrelated => ("a decorrelated", &["base", "cap"]),
        };
        let shaped = [
            ("delay", self.delay.is_some()),
            ("min", self.min.is_some()),
            ("max", self.max.is_some()),
            ("factor", self.factor.is_some()),
            ("jitter", self.jitter.is_some()),
            ("base", self.base.is_some()),
            ("cap", self.cap.is_some()),
        ];
        if let Some((stray, _)) = shaped
            .iter()
            .find(|(field, set)| *set && !allowed.contains(field))
        {
            return Err(SettingsError::invalid(
                stray,
                format!("does not apply to {name} backoff"),
            ));
        }
        let required = |field: &str, value: Option<std::time::Duration>| {
            value
                .ok_or_else(|| SettingsError::invalid(field, format!("required by {name} backoff")))
        };
        let backoff = match kind {
            BackoffKind::Fixed => self.limit(Backoff::fixed(required("delay", self.delay)?)),
            BackoffKind::Exponential => {
                let mut b =
                    Backoff::exponential(required("min", self.min)?, required("max", self.max)?);
                if let Some(factor) = self.factor {
                    b = b.factor(factor);
                }
                if let Some(jitter) = self.jitter {
                    b = b.jitter(jitter);
                }
                self.limit(b)
            }
            BackoffKind::Decorrelated => self.limit(Backoff::decorrelated(
                required("base", self.base)?,
                required("cap", self.cap)?,
            )),
        };
        Ok(backoff?)
    }

    fn limit<S: Shape>(&self, mut builder: BackoffBuilder<S>) -> Result<Backoff, ConfigError> {
        if let Some(count) = self.max_delays {
            builder = builder.max_delays(count);
        }
        if let Some(total) = self.max_elapsed {
            builder = builder.max_elapsed(total);
        }
        builder.build()
    }
}

impl BudgetSettings {
    /// Validates the settings into a [`BudgetConfig`], unset fields at their defaults.
    ///
    /// ```
    /// use fusebox_policy::settings::BudgetSettings;
    /// let err = BudgetSettings { ratio: Some(f64::NAN), ..Default::default() }.build().unwrap_err();
    /// assert_eq!(err.path(), "ratio");
    /// ```
    pub fn build(&self) -> Result<BudgetConfig, SettingsError> {
        let mut builder = BudgetConfig::builder();
        if let Some(ratio) = self.ratio {
            builder = builder.ratio(ratio);
        }
        if let Some(floor) = self.min_retries_per_second {
            builder = builder.min_retries_per_second(floor);
        }
        if let Some(window) = self.window {
            builder = builder.window(window);
        }
        Ok(builder.build()?)
    }
}

impl BulkheadSettings {
    /// Lays these settings over `builder`: each field set here wins, the others (and the
    /// listeners) keep the builder's values.
    ///
    /// ```
    /// use fusebox_policy::policy::Bulkhead;
    /// use fusebox_policy::settings::BulkheadSettings;
    /// let file = BulkheadSettings { max_queued: Some(4), ..Default::default() };
    /// let bulkhead = file.apply(Bulkhead::builder("db").max_concurrent(2)).build()?;
    /// assert_eq!(bulkhead.available(), 2); // the builder's, kept
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn apply(&self, builder: BulkheadBuilder) -> BulkheadBuilder {
        let mut builder = builder;
        if let Some(n) = self.max_concurrent {
            builder = builder.max_concurrent(n);
        }
        if let Some(n) = self.max_queued {
            builder = builder.max_queued(n);
        }
        if let Some(wait) = self.max_wait {
            builder = builder.max_wait(wait);
        }
        builder
    }

    /// A bulkhead named `name` from these settings alone.
    pub fn build(&self, name: impl Into<Name>) -> Result<Bulkhead, SettingsError> {
        Ok(self.apply(Bulkhead::builder(name)).build()?)
    }
}
