//! Environment overrides of pipeline settings: `FUSEBOX_<NAME>__<PATH>=<value>`.

use std::str::FromStr;
use std::time::Duration;

use fusebox_core::backoff::Jitter;
use fusebox_core::breaker::BreakerSettings;

use super::{
    BackoffKind, BackoffSettings, BudgetSettings, BulkheadSettings, LimitAlgorithmKind,
    PipelineSettings, RetrySettings, SettingsError,
};

/// Why a value could not be set: the setting does not exist, or the value does not parse.
type Refusal = String;

impl PipelineSettings {
    /// The prefix of the environment variables that override the pipeline named `name`:
    /// `FUSEBOX_`, the name upper-cased with every character other than a letter or a digit
    /// as `_`, then `__`.
    ///
    /// ```
    /// use fusebox_policy::settings::PipelineSettings;
    /// assert_eq!(PipelineSettings::env_prefix("payments-api"), "FUSEBOX_PAYMENTS_API__");
    /// ```
    pub fn env_prefix(name: &str) -> String {
        let name: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("FUSEBOX_{name}__")
    }

    /// Lays the process environment's overrides for the pipeline named `name` over these
    /// settings (see the [module docs](super#environment-overrides)). Call it after loading
    /// the file and before building.
    ///
    /// A variable under the prefix that names no setting, holds a value that does not parse
    /// or is not UTF-8 is an error naming the variable; values are checked again, like every
    /// setting, when the pipeline is built.
    pub fn apply_env(&mut self, name: &str) -> Result<(), SettingsError> {
        let prefix = Self::env_prefix(name);
        for (key, value) in std::env::vars_os() {
            let Some(key) = key.to_str() else {
                continue; // not UTF-8, so not one of ours
            };
            if !key.starts_with(&prefix) {
                continue;
            }
            let path = setting_path(&key[prefix.len()..]);
            let Some(value) = value.to_str() else {
                return Err(SettingsError::Env {
                    variable: key.to_owned(),
                    path,
                    reason: "the value is not valid UTF-8".into(),
                });
            };
            self.apply_var(key, &path, value)?;
        }
        Ok(())
    }

    /// [`apply_env`](Self::apply_env) over the given variables instead of the process
    /// environment (for tests, or variables from elsewhere); variables without the prefix
    /// are skipped.
    ///
    /// ```
    /// use fusebox_policy::settings::PipelineSettings;
    /// use std::time::Duration;
    /// let mut settings = PipelineSettings::default();
    /// settings.apply_vars("payments", [
    ///     ("FUSEBOX_PAYMENTS__RETRY__MAX_RETRIES", "5"),
    ///     ("FUSEBOX_PAYMENTS__RETRY__BACKOFF__KIND", "fixed"),
    ///     ("FUSEBOX_PAYMENTS__RETRY__BACKOFF__DELAY", "10ms"),
    ///     ("FUSEBOX_PAYMENTS__BREAKER__COOLDOWN", "30s"),
    ///     ("HOME", "/home/ops"),
    /// ])?;
    /// let retry = settings.retry.as_ref().unwrap();
    /// assert_eq!(retry.max_retries, Some(5));
    /// assert_eq!(retry.backoff.as_ref().unwrap().delay, Some(Duration::from_millis(10)));
    /// assert_eq!(settings.breaker.as_ref().unwrap().cooldown, Some(Duration::from_secs(30)));
    ///
    /// let typo = settings.apply_vars("payments", [("FUSEBOX_PAYMENTS__RETRY__MAX_RETRYS", "5")]);
    /// assert_eq!(typo.unwrap_err().path(), "retry.max_retrys");
    /// # Ok::<(), fusebox_policy::settings::SettingsError>(())
    /// ```
    pub fn apply_vars<I, K, V>(&mut self, name: &str, vars: I) -> Result<(), SettingsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let prefix = Self::env_prefix(name);
        for (key, value) in vars {
            let key = key.as_ref();
            if let Some(rest) = key.strip_prefix(&prefix) {
                self.apply_var(key, &setting_path(rest), value.as_ref())?;
            }
        }
        Ok(())
    }

    fn apply_var(&mut self, variable: &str, path: &str, value: &str) -> Result<(), SettingsError> {
        let keys: Vec<&str> = path.split('.').collect();
        self.set(&keys, value).map_err(|reason| SettingsError::Env {
            variable: variable.to_owned(),
            path: path.to_owned(),
            reason,
        })
    }

    fn set(&mut self, keys: &[&str], value: &str) -> Result<(), Refusal> {
        match keys {
            ["timeout"] => self.timeout = Some(duration(value)?),
            ["attempt_timeout"] => self.attempt_timeout = Some(duration(value)?),
            ["retry", rest @ ..] => self
                .retry
                .get_or_insert_with(Default::default)
                .set(rest, value)?,
            ["breaker", field] => set_breaker(
                self.breaker.get_or_insert_with(Default::default),
                field,
                value,
            )?,
            ["bulkhead", rest @ ..] => self
                .bulkhead
                .get_or_insert_with(Default::default)
                .set(rest, value)?,
            ["rate_limit", field] => {
                let s = self.rate_limit.get_or_insert_with(Default::default);
                match *field {
                    "permits" => s.permits = Some(number(value)?),
                    "per" => s.per = Some(duration(value)?),
                    "burst" => s.burst = Some(number(value)?),
                    "max_wait" => s.max_wait = Some(duration(value)?),
                    _ => return Err(no_such_setting()),
                }
            }
            ["throttle", field] => {
                let s = self.throttle.get_or_insert_with(Default::default);
                match *field {
                    "k" => s.k = Some(number(value)?),
                    "window" => s.window = Some(duration(value)?),
                    "buckets" => s.buckets = Some(number(value)?),
                    "seed" => s.seed = Some(number(value)?),
                    _ => return Err(no_such_setting()),
                }
            }
            ["concurrency_limit", field] => {
                let s = self.concurrency_limit.get_or_insert_with(Default::default);
                match *field {
                    "algorithm" => s.algorithm = Some(limit_algorithm(value)?),
                    "min_limit" => s.min_limit = Some(number(value)?),
                    "max_limit" => s.max_limit = Some(number(value)?),
                    "initial_limit" => s.initial_limit = Some(number(value)?),
                    "window" => s.window = Some(duration(value)?),
                    "min_samples" => s.min_samples = Some(number(value)?),
                    _ => return Err(no_such_setting()),
                }
            }
            _ => return Err(no_such_setting()),
        }
        Ok(())
    }
}

/// `RETRY__BACKOFF__MAX` as `retry.backoff.max`.
fn setting_path(rest: &str) -> String {
    rest.split("__")
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(".")
}

fn no_such_setting() -> Refusal {
    "names no setting".into()
}

impl RetrySettings {
    fn set(&mut self, keys: &[&str], value: &str) -> Result<(), Refusal> {
        match keys {
            ["max_retries"] => self.max_retries = Some(number(value)?),
            ["max_elapsed"] => self.max_elapsed = Some(duration(value)?),
            ["max_retry_after"] => self.max_retry_after = Some(duration(value)?),
            ["seed"] => self.seed = Some(number(value)?),
            ["backoff", field] => self
                .backoff
                .get_or_insert_with(Default::default)
                .set(field, value)?,
            ["budget", field] => self
                .budget
                .get_or_insert_with(Default::default)
                .set(field, value)?,
            _ => return Err(no_such_setting()),
        }
        Ok(())
    }
}

impl BackoffSettings {
    fn set(&mut self, field: &str, value: &str) -> Result<(), Refusal> {
        match field {
            "kind" => {
                self.kind = Some(match value.trim() {
                    "fixed" => BackoffKind::Fixed,
                    "exponential" => BackoffKind::Exponential,
                    "decorrelated" => BackoffKind::Decorrelated,
                    other => {
                        return Err(format!(
                            "expected fixed, exponential or decorrelated, got {other:?}"
                        ));
                    }
                })
            }
            "delay" => self.delay = Some(duration(value)?),
            "min" => self.min = Some(duration(value)?),
            "max" => self.max = Some(duration(value)?),
            "factor" => self.factor = Some(number(value)?),
            "jitter" => self.jitter = Some(jitter(value)?),
            "base" => self.base = Some(duration(value)?),
            "cap" => self.cap = Some(duration(value)?),
            "max_delays" => self.max_delays = Some(number(value)?),
            "max_elapsed" => self.max_elapsed = Some(duration(value)?),
            _ => return Err(no_such_setting()),
        }
        Ok(())
    }
}

impl BudgetSettings {
    fn set(&mut self, field: &str, value: &str) -> Result<(), Refusal> {
        match field {
            "ratio" => self.ratio = Some(number(value)?),
            "min_retries_per_second" => self.min_retries_per_second = Some(number(value)?),
            "window" => self.window = Some(duration(value)?),
            _ => return Err(no_such_setting()),
        }
        Ok(())
    }
}

impl BulkheadSettings {
    fn set(&mut self, keys: &[&str], value: &str) -> Result<(), Refusal> {
        match keys {
            ["max_concurrent"] => self.max_concurrent = Some(number(value)?),
            ["max_queued"] => self.max_queued = Some(number(value)?),
            ["max_wait"] => self.max_wait = Some(duration(value)?),
            _ => return Err(no_such_setting()),
        }
        Ok(())
    }
}

fn set_breaker(s: &mut BreakerSettings, field: &str, value: &str) -> Result<(), Refusal> {
    match field {
        "consecutive_failures" => s.consecutive_failures = Some(number(value)?),
        "failures_in_window" => s.failures_in_window = Some(number(value)?),
        "failure_rate" => s.failure_rate = Some(number(value)?),
        "min_calls" => s.min_calls = Some(number(value)?),
        "window_calls" => s.window_calls = Some(number(value)?),
        "window_span" => s.window_span = Some(duration(value)?),
        "window_buckets" => s.window_buckets = Some(number(value)?),
        "slow_call_threshold" => s.slow_call_threshold = Some(duration(value)?),
        "slow_call_rate" => s.slow_call_rate = Some(number(value)?),
        "cooldown" => s.cooldown = Some(duration(value)?),
        "cooldown_max" => s.cooldown_max = Some(duration(value)?),
        "cooldown_factor" => s.cooldown_factor = Some(number(value)?),
        "cooldown_jitter" => s.cooldown_jitter = Some(number(value)?),
        "half_open_successes" => s.half_open_successes = Some(number(value)?),
        "half_open_trials" => s.half_open_trials = Some(number(value)?),
        "half_open_concurrency" => s.half_open_concurrency = Some(number(value)?),
        "half_open_max_duration" => s.half_open_max_duration = Some(duration(value)?),
        "outcome_log" => s.outcome_log = Some(number(value)?),
        "seed" => s.seed = Some(number(value)?),
        "shadow" => s.shadow = Some(boolean(value)?),
        "retry_after_max" => s.retry_after_max = Some(duration(value)?),
        _ => return Err(no_such_setting()),
    }
    Ok(())
}

fn boolean(value: &str) -> Result<bool, Refusal> {
    match value.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("expected true or false, got {other:?}")),
    }
}

fn limit_algorithm(value: &str) -> Result<LimitAlgorithmKind, Refusal> {
    match value.trim() {
        "aimd" => Ok(LimitAlgorithmKind::Aimd),
        "vegas" => Ok(LimitAlgorithmKind::Vegas),
        "gradient2" => Ok(LimitAlgorithmKind::Gradient2),
        other => Err(format!("expected aimd, vegas or gradient2, got {other:?}")),
    }
}

fn duration(value: &str) -> Result<Duration, Refusal> {
    fusebox_core::duration::parse(value).map_err(|e| e.to_string())
}

fn number<N: FromStr>(value: &str) -> Result<N, Refusal> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("expected a number, got {value:?}"))
}

/// `none`, `full`, `equal`, or a fraction for proportional jitter.
fn jitter(value: &str) -> Result<Jitter, Refusal> {
    match value.trim() {
        "none" => Ok(Jitter::None),
        "full" => Ok(Jitter::Full),
        "equal" => Ok(Jitter::Equal),
        other => other.parse().map(Jitter::Proportional).map_err(|_| {
            format!("expected none, full, equal or a fraction (proportional), got {value:?}")
        }),
    }
}
