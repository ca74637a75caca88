//! Live settings: a TOML file whose `[breakers.<name>]`, `[retries.<name>]` and
//! `[registries.<name>]` tables are applied to running breakers, retries and keyed
//! registries, on demand or whenever the file changes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use fusebox_core::breaker::{Breaker, BreakerConfig, BreakerSettings, algorithm};
use fusebox_core::keyed::BreakerRegistry;

use super::registry::quoted;
use super::{RegistrySettings, RetrySettings, SettingsError};
use crate::policy::{Retry, RetryPlan};

/// What a settings file holds: tables of breaker and retry settings by name.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LiveFile {
    breakers: BTreeMap<String, BreakerSettings>,
    retries: BTreeMap<String, RetrySettings>,
    registries: BTreeMap<String, RegistrySettings>,
}

/// Why a reload was refused. Nothing was applied: every breaker and retry keeps the settings
/// it had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The file could not be read.
    #[error("cannot read `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or holds a key no settings have.
    #[error("cannot parse `{path}`: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with the line and column.
        reason: String,
    },
    /// A value is invalid, cannot change on a live policy, or names no registered policy.
    #[error("in `{path}`: {error}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The setting at fault, its path from the file's root
        /// (`breakers.payments.failure_rate`).
        error: SettingsError,
    },
    /// The file watch could not be set up.
    #[error("cannot watch `{path}`: {reason}")]
    Watch {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl ReloadError {
    /// The path of the setting at fault, for an invalid setting.
    ///
    /// ```
    /// use fusebox_policy::settings::ReloadError;
    /// fn field(error: &ReloadError) -> Option<&str> { error.setting() }
    /// ```
    pub fn setting(&self) -> Option<&str> {
        match self {
            ReloadError::Invalid { error, .. } => Some(error.path()),
            _ => None,
        }
    }
}

/// What a reload applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReloadReport {
    /// The policies whose settings changed and were applied (`breakers.payments`).
    pub applied: Vec<String>,
    /// The policies whose settings were the same as last applied: left alone.
    pub unchanged: Vec<String>,
    /// Registered policies the file has no table for: left as they are.
    pub absent: Vec<String>,
}

/// Checks a table for one registered policy (`false`), or applies it (`true`).
type Apply<S> = Box<dyn Fn(&S, bool) -> Result<(), SettingsError> + Send + Sync>;

/// The policies registered under each name, by kind.
struct Registered {
    breakers: Vec<(String, Apply<BreakerSettings>)>,
    retries: Vec<(String, Apply<RetrySettings>)>,
    registries: Vec<(String, Apply<RegistrySettings>)>,
}

/// The tables of one kind a reload changes, checked: each with its policy's `Apply`.
type Staged<'a, S> = Vec<(&'a Apply<S>, &'a String, &'a S)>;

/// Checks the `kind` tables of `file` (every name registered, every changed table valid
/// for its policy) and notes in `report` what changes, what does not and what is absent.
/// Errors name the setting from the file's root.
fn stage<'a, S: PartialEq>(
    kind: &str,
    file: &'a BTreeMap<String, S>,
    registered: &'a [(String, Apply<S>)],
    applied: &HashMap<String, S>,
    report: &mut ReloadReport,
) -> Result<Staged<'a, S>, SettingsError> {
    let mut staged = Vec::new();
    for (name, settings) in file {
        let at = format!("{kind}.{}", quoted(name));
        let within = |e: SettingsError| e.within(&quoted(name)).within(kind);
        let Some((_, apply)) = registered.iter().find(|(n, _)| n == name) else {
            return Err(within(SettingsError::invalid(
                "",
                "nothing is registered under this name",
            )));
        };
        if applied.get(name) == Some(settings) {
            report.unchanged.push(at);
            continue;
        }
        apply(settings, false).map_err(within)?;
        staged.push((apply, name, settings));
        report.applied.push(at);
    }
    for (name, _) in registered {
        if !file.contains_key(name) {
            report.absent.push(format!("{kind}.{}", quoted(name)));
        }
    }
    Ok(staged)
}

/// Applies the checked `staged` tables of `kind`, remembering each as applied.
fn commit<S: Clone>(
    kind: &str,
    staged: Staged<'_, S>,
    applied: &mut HashMap<String, S>,
) -> Result<(), SettingsError> {
    for (apply, name, settings) in staged {
        apply(settings, true).map_err(|e| e.within(&quoted(name)).within(kind))?;
        applied.insert(name.clone(), settings.clone());
    }
    Ok(())
}

/// Settings applied to live breakers and retries from one TOML file, keeping their state:
/// each `[breakers.<name>]` table goes to the breaker registered under that name through
/// [`Breaker::reconfigure_settings`], each `[retries.<name>]` table to the retry through
/// [`Retry::reconfigure`], each `[registries.<name>]` table to the keyed registry through
/// [`RegistrySettings::reconfigure`].
///
/// A reload is all or nothing: every table is validated first (values, fields fixed at build,
/// names registered), and a single error refuses the whole file, naming the setting
/// (`breakers.payments.failure_rate`); every policy keeps what it had. A table equal to the
/// one last applied is left alone. A table replaces the policy's settings: what it leaves
/// unset takes its default, as in a fresh build; what only code gives (classifiers,
/// listeners, clocks, a custom trip rule) stays.
///
/// ```
/// use fusebox_core::breaker::{Breaker, State};
/// use fusebox_policy::policy::Retry;
/// use fusebox_policy::settings::Reloader;
///
/// let path = std::env::temp_dir().join(format!("fusebox-doc-{}.toml", std::process::id()));
/// std::fs::write(&path, r#"
///     [breakers.payments]
///     consecutive_failures = 2
///     [retries.payments]
///     max_retries = 5
/// "#)?;
///
/// let breaker = Breaker::builder("payments").consecutive_failures(10).build()?;
/// let retry = Retry::<(), std::io::Error>::builder().build()?;
/// let reloader = Reloader::new(&path).breaker("payments", &breaker).retry("payments", &retry);
///
/// let report = reloader.reload()?;
/// assert_eq!(report.applied, ["breakers.payments", "retries.payments"]);
/// assert_eq!((breaker.config().consecutive_failures(), retry.max_retries()), (Some(2), 5));
///
/// // An invalid file changes nothing and names the setting.
/// std::fs::write(&path, "[breakers.payments]\nfailure_rate = 2.0\n")?;
/// let err = reloader.reload().unwrap_err();
/// assert_eq!(err.setting(), Some("breakers.payments.failure_rate"));
/// assert_eq!(breaker.config().consecutive_failures(), Some(2));
/// # std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Reloader {
    path: PathBuf,
    registered: Registered,
    /// The tables last applied, by their path: a reload skips the ones that did not change.
    applied: Mutex<Applied>,
}

#[derive(Default)]
struct Applied {
    breakers: HashMap<String, BreakerSettings>,
    retries: HashMap<String, RetrySettings>,
    registries: HashMap<String, RegistrySettings>,
}

impl fmt::Debug for Reloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn names<T>(registered: &[(String, T)]) -> Vec<&str> {
            registered.iter().map(|(name, _)| name.as_str()).collect()
        }
        let r = &self.registered;
        f.debug_struct("Reloader")
            .field("path", &self.path)
            .field("breakers", &names(&r.breakers))
            .field("retries", &names(&r.retries))
            .field("registries", &names(&r.registries))
            .finish()
    }
}

impl Reloader {
    /// A reloader of the file at `path`, with nothing registered yet.
    ///
    /// ```
    /// let reloader = fusebox_policy::settings::Reloader::new("fusebox.toml");
    /// assert_eq!(reloader.path().to_str(), Some("fusebox.toml"));
    /// ```
    pub fn new(path: impl AsRef<Path>) -> Self {
        Reloader {
            path: path.as_ref().to_owned(),
            registered: Registered {
                breakers: Vec::new(),
                retries: Vec::new(),
                registries: Vec::new(),
            },
            applied: Mutex::new(Applied::default()),
        }
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies the file's `[breakers.<name>]` table to `breaker` (a clone is kept: every
    /// clone of the breaker follows).
    ///
    /// ```
    /// use fusebox_core::breaker::Breaker;
    /// let breaker = Breaker::builder("search").build()?;
    /// let reloader = fusebox_policy::settings::Reloader::new("f.toml").breaker("search", &breaker);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn breaker(mut self, name: impl Into<String>, breaker: &Breaker) -> Self {
        let breaker = breaker.clone();
        let apply: Apply<BreakerSettings> = Box::new(move |settings, commit| {
            let config = live_breaker_config(&breaker, settings)?;
            if commit {
                breaker.reconfigure(config)?;
            }
            Ok(())
        });
        self.registered.breakers.push((name.into(), apply));
        self
    }

    /// Applies the file's `[retries.<name>]` table to `retry`'s plan (see
    /// [`RetrySettings::plan`]). Its `budget` and `seed`, fixed when the retry was built,
    /// may only repeat what the retry has.
    ///
    /// ```
    /// use fusebox_policy::policy::Retry;
    /// let retry = Retry::<(), ()>::builder().build()?;
    /// let reloader = fusebox_policy::settings::Reloader::new("f.toml").retry("search", &retry);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn retry<T, E>(mut self, name: impl Into<String>, retry: &Retry<T, E>) -> Self
    where
        T: 'static,
        E: 'static,
    {
        let retry = retry.clone();
        let apply: Apply<RetrySettings> = Box::new(move |settings, commit| {
            let plan = settings.plan_for(&retry)?;
            if commit {
                retry.reconfigure(plan)?;
            }
            Ok(())
        });
        self.registered.retries.push((name.into(), apply));
        self
    }

    /// Applies the file's `[registries.<name>]` table (a [`RegistrySettings`]: `defaults`
    /// and `[registries.<name>.keys."<key>"]` overrides) to a keyed registry: new settings
    /// for the keys to come, and every breaker it holds reconfigured in place (see
    /// [`RegistrySettings::reconfigure`]).
    ///
    /// ```
    /// use fusebox_core::keyed::BreakerRegistry;
    /// let hosts = BreakerRegistry::<String>::builder("host").build()?;
    /// let reloader = fusebox_policy::settings::Reloader::new("f.toml").registry("hosts", &hosts);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[must_use]
    pub fn registry<K>(mut self, name: impl Into<String>, registry: &BreakerRegistry<K>) -> Self
    where
        K: AsRef<str> + Hash + Eq + Clone + Send + Sync + fmt::Debug + 'static,
    {
        let registry = registry.clone();
        let apply: Apply<RegistrySettings> = Box::new(move |settings, commit| {
            settings.reconfigure_or_check(&registry, commit).map(|_| ())
        });
        self.registered.registries.push((name.into(), apply));
        self
    }

    /// Reads the file and applies what changed since the last reload, all or nothing.
    ///
    /// ```
    /// use fusebox_policy::settings::{Reloader, ReloadError};
    /// let missing = Reloader::new("/nonexistent/fusebox.toml").reload().unwrap_err();
    /// assert!(matches!(missing, ReloadError::Read { .. }));
    /// ```
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| ReloadError::Read {
            path: self.path.clone(),
            source,
        })?;
        self.apply_text(&text)
    }

    fn apply_text(&self, text: &str) -> Result<ReloadReport, ReloadError> {
        let file: LiveFile = toml::from_str(text).map_err(|e| ReloadError::Parse {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let invalid = |error: SettingsError| ReloadError::Invalid {
            path: self.path.clone(),
            error,
        };
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let applied = &mut *applied;
        let mut report = ReloadReport::default();
        let r = &self.registered;

        // Check everything before changing anything.
        let breakers = stage(
            "breakers",
            &file.breakers,
            &r.breakers,
            &applied.breakers,
            &mut report,
        );
        let breakers = breakers.map_err(invalid)?;
        let retries = stage(
            "retries",
            &file.retries,
            &r.retries,
            &applied.retries,
            &mut report,
        );
        let retries = retries.map_err(invalid)?;
        let registries = stage(
            "registries",
            &file.registries,
            &r.registries,
            &applied.registries,
            &mut report,
        );
        let registries = registries.map_err(invalid)?;

        // Checked: apply. Nothing below refuses what the checks above accepted.
        commit("breakers", breakers, &mut applied.breakers).map_err(invalid)?;
        commit("retries", retries, &mut applied.retries).map_err(invalid)?;
        commit("registries", registries, &mut applied.registries).map_err(invalid)?;
        if !report.applied.is_empty() {
            tracing::info!(path = %self.path.display(), applied = ?report.applied, "settings reloaded");
        }
        Ok(report)
    }

    /// Applies the file now and again whenever it changes (written in place, or replaced as
    /// editors and deploy tools do), until the returned [`Watching`] is dropped. Each
    /// outcome, the first one included, goes to `on_reload`; a refused file changes nothing
    /// and the next change is tried afresh.
    ///
    /// ```no_run
    /// use fusebox_core::breaker::Breaker;
    /// use fusebox_policy::settings::Reloader;
    /// let breaker = Breaker::builder("payments").build()?;
    /// let watching = Reloader::new("/etc/myapp/fusebox.toml")
    ///     .breaker("payments", &breaker)
    ///     .watch(|outcome| match outcome {
    ///         Ok(report) => tracing::info!(?report.applied, "fusebox settings applied"),
    ///         Err(e) => tracing::warn!(%e, "fusebox settings refused"),
    ///     })?;
    /// // ... run the service; dropping `watching` stops the watch.
    /// # drop(watching);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn watch<F>(self, on_reload: F) -> Result<Watching, ReloadError>
    where
        F: Fn(Result<ReloadReport, ReloadError>) + Send + 'static,
    {
        use notify::Watcher as _;
        let path = self.path.clone();
        let watch_error = move |reason: String| ReloadError::Watch {
            path: path.clone(),
            reason,
        };
        // Watch the directory, not the file: a file replaced by a rename is a new inode that
        // a watch on the old one never sees.
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        let file_name = self
            .path
            .file_name()
            .map(|n| n.to_owned())
            .ok_or_else(|| watch_error("the path names no file".into()))?;
        let (events, changes) = mpsc::channel();
        let mut watcher =
            notify::recommended_watcher(events).map_err(|e| watch_error(e.to_string()))?;
        watcher
            .watch(&dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| watch_error(e.to_string()))?;
        let reloader = Arc::new(self);
        on_reload(reloader.reload());
        let thread_reloader = Arc::clone(&reloader);
        let touches_file = move |event: &notify::Event| {
            !event.kind.is_access()
                && event
                    .paths
                    .iter()
                    .any(|p| p.file_name() == Some(file_name.as_os_str()))
        };
        std::thread::Builder::new()
            .name("fusebox-settings-watch".into())
            .spawn(move || {
                // Ends when the watcher is dropped: its sender goes with it.
                while let Ok(event) = changes.recv() {
                    let Ok(event) = event else { continue };
                    if !touches_file(&event) {
                        continue;
                    }
                    // One save is often several events (truncate, write, rename): let them
                    // settle, then read once.
                    while changes.recv_timeout(SETTLE).is_ok() {}
                    on_reload(thread_reloader.reload());
                }
            })
            .map_err(|e| watch_error(e.to_string()))?;
        Ok(Watching {
            reloader,
            _watcher: Box::new(watcher),
        })
    }
}

/// How long a burst of file events must be quiet before the file is read.
const SETTLE: Duration = Duration::from_millis(50);

/// A file watch started by [`Reloader::watch`]; dropping it stops the watch.
pub struct Watching {
    reloader: Arc<Reloader>,
    _watcher: Box<dyn notify::Watcher + Send>,
}

impl fmt::Debug for Watching {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watching")
            .field("path", &self.reloader.path)
            .finish()
    }
}

impl Watching {
    /// Reloads now, without waiting for a change (after a change the watch cannot see, a
    /// file on a network mount say).
    pub fn reload(&self) -> Result<ReloadReport, ReloadError> {
        self.reloader.reload()
    }
}

/// The config `settings` give a live breaker, checked as a reconfiguration would check it.
fn live_breaker_config(
    breaker: &Breaker,
    settings: &BreakerSettings,
) -> Result<BreakerConfig, SettingsError> {
    let config = breaker.config_for(settings)?;
    algorithm::retune(breaker.config(), &config)?;
    Ok(config)
}

impl RetrySettings {
    /// The plan these settings give a retry, from the defaults of a fresh build: what the
    /// settings leave unset takes its default. `budget` and `seed` are not part of a plan.
    ///
    /// ```
    /// use fusebox_policy::settings::RetrySettings;
    /// let plan = RetrySettings { max_retries: Some(7), ..Default::default() }.plan()?;
    /// assert_eq!(plan.max_retries, 7);
    /// # Ok::<(), fusebox_policy::settings::SettingsError>(())
    /// ```
    pub fn plan(&self) -> Result<RetryPlan, SettingsError> {
        let retry = RetrySettings {
            budget: None,
            seed: None,
            ..self.clone()
        }
        .build::<(), ()>("plan")?;
        Ok(retry.plan())
    }

    /// [`plan`](Self::plan), for a live `retry`: refused when the settings give it a budget
    /// or a seed other than the one it was built with.
    fn plan_for<T, E>(&self, retry: &Retry<T, E>) -> Result<RetryPlan, SettingsError> {
        if let Some(budget) = &self.budget {
            let config = budget.build().map_err(|e| e.within("budget"))?;
            if retry.budget().map(|b| b.config()) != Some(&config) {
                return Err(SettingsError::invalid(
                    "budget",
                    "fixed when the retry was built: build a new retry to change it",
                ));
            }
        }
        if self.seed.is_some() && self.seed != retry.seed() {
            return Err(SettingsError::invalid(
                "seed",
                "fixed when the retry was built: build a new retry to change it",
            ));
        }
        self.plan()
    }
}
