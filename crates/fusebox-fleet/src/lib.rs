//! Fleet-wide breakers: many instances of a service share what their breakers learn, with no
//! network I/O on any call.
//!
//! A breaker attached to a [`Fleet`] keeps deciding every call from its own atomics, exactly
//! like a local one. Beside it runs one background task per breaker that talks to a
//! [`StateStore`]: every sync interval (100 ms by default) and at once on a transition or a
//! trial outcome, it renews the instance's lease, flushes outcome deltas under a sequence
//! number (a retried flush never counts twice), and reads the fleet's record. Transitions
//! are compare-and-set on the record's generation: two instances tripping at once make one
//! OPEN, and the loser adopts the winner's state. Other instances learn of a transition by
//! subscription, with the periodic read as the backstop.
//!
//! # Modes
//!
//! * [`FleetMode::Pooled`]: every instance's outcomes feed every instance's window, so the
//!   fleet trips on its pooled failure rate. For fleets whose instances see the same
//!   dependency the same way; the behaviour of one shared row or key per breaker.
//! * [`FleetMode::Quorum`]: each instance judges its own outcomes; one that trips stays open
//!   locally without affecting the others, and the fleet opens only when at least
//!   `min_instances` live instances, and at least `fraction` of them, are open. One sick
//!   instance (its own network path, a noisy neighbour) cannot cut the fleet off.
//! * [`FleetMode::Any`]: any instance's trip opens all, for fleets that share one path.
//!
//! In every mode, half-open is fleet-wide: the configured number of trials is claimed
//! atomically in the store, so a recovering dependency sees `trials` calls, not
//! `trials × instances`; a trial slot held by an instance whose lease expires is released.
//! An operator's forced state in the store ([`StateStore::force`]) wins over every local
//! decision.
//!
//! # Outage
//!
//! An instance is cut off when a sync fails or gets no answer within the store timeout, or
//! a transition or trial claim finds the store unreachable. What its breaker does then is
//! its [`OutagePolicy`], set for every breaker of an instance ([`FleetBuilder::outage`]) or
//! for one ([`FleetMode::on_outage`]). Only the cut-off instance is affected: instances
//! that still reach the store go on deciding together, and count it out of the fleet once
//! its lease runs out.
//!
//! | while cut off | [`Pooled`](FleetMode::Pooled) | [`Quorum`](FleetMode::Quorum) | [`Any`](FleetMode::Any) |
//! |---|---|---|---|
//! | [`Local`](OutagePolicy::Local) (default) | judges its own outcomes only (peers' stop arriving) and trips on its own rate | judges its own outcomes as always; a trip opens it alone, as below quorum | its own trip opens it alone |
//! | [`Reject`](OutagePolicy::Reject) (fail-closed) | every call rejected | every call rejected | every call rejected |
//! | [`Admit`](OutagePolicy::Admit) (fail-open) | every call admitted, nothing trips | every call admitted, nothing trips | every call admitted, nothing trips |
//!
//! In every mode, under `Local`, a fleet OPEN the instance followed when it was cut off
//! runs out its cooldown and is probed locally, and a forced state it applied (the
//! kill-switch) holds, as it does under `Admit`. Outcomes counted meanwhile are flushed once
//! the store answers, under their sequence numbers, so none is lost or counted twice. One
//! warning is logged per outage; the task reconnects with backoff (at most 500 ms apart, or
//! one sync interval if longer) and, on return, takes the store's word again: its forced
//! state and, when the record moved while the instance was away (the fleet closed, was
//! reset, or the store lost it), the fleet's state over whatever the instance decided
//! alone. A verdict reached while cut off counts (opens the fleet, or votes in a quorum)
//! only once a look shows the record did not move. Nothing waits on the store and nothing
//! panics.
//!
//! A store that loses its data (a restart without persistence) is a fresh record to the
//! fleet: flushes it had acknowledged are gone with it, a forced state is lifted, an OPEN
//! ends (instances that followed it close and judge again), and the instances' next
//! flushes start its totals again; what they had not seen acknowledged is sent again and
//! counted once.
//!
//! ```
//! use fusebox_core::breaker::{Breaker, State};
//! use fusebox_fleet::{Fleet, FleetMode, MemoryStore};
//! use std::time::Duration;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let store = MemoryStore::new(); // Redis or PostgreSQL in production
//! let fleet_a = Fleet::builder(store.clone()).instance_id("a").build()?;
//! let fleet_b = Fleet::builder(store.clone()).instance_id("b").build()?;
//! let a = fleet_a.breaker(Breaker::builder("db").consecutive_failures(2), FleetMode::Any)?;
//! let b = fleet_b.breaker(Breaker::builder("db").consecutive_failures(2), FleetMode::Any)?;
//!
//! a.record_failure();
//! a.record_failure(); // `a` trips; `b` hears of it within one sync interval
//! for _ in 0..100 {
//!     if b.state() == State::Open { break; }
//!     tokio::time::sleep(Duration::from_millis(10)).await;
//! }
//! assert_eq!(b.state(), State::Open);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "contract")]
pub mod contract;
mod engine;
mod memory;
mod options;
mod store;

pub use memory::MemoryStore;
pub use options::{FleetBreakerOptions, OutagePolicy};
pub use store::{
    BreakerRecord, Cas, Claim, FleetChange, FleetState, FleetTotals, FleetView, ForcedState,
    InstanceView, MAX_STORE_SPAN_MS, Notice, OutcomeDelta, StateStore, StoreError, StoreFuture,
    SyncRequest, TrialDelta, check_force_ms, check_span_ms, force_millis,
};

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fusebox_core::ConfigError;
use fusebox_core::breaker::{Breaker, BreakerBuilder, Cooldown, FleetLink};
use fusebox_core::check;

/// How the instances of a fleet decide together. See the [module docs](self).
///
/// ```
/// use fusebox_fleet::FleetMode;
/// let mode = FleetMode::quorum(2, 0.5)?;
/// assert_eq!(mode.to_string(), "quorum 2 0.5");
/// assert!(FleetMode::quorum(0, 0.5).is_err());
/// assert_eq!(FleetMode::quorum(2, 1.5).unwrap_err().field(), Some("fraction"));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum FleetMode {
    /// All instances' outcomes feed one shared window.
    Pooled,
    /// Each instance judges its own outcomes; the fleet opens when enough agree.
    Quorum {
        /// Live instances that must be open, at least.
        min_instances: u32,
        /// Share of the live instances that must be open, at least (0 < fraction <= 1).
        fraction: f64,
    },
    /// Any instance's trip opens the fleet.
    Any,
}

impl FleetMode {
    /// A validated quorum: `min_instances >= 1` and `0 < fraction <= 1`.
    ///
    /// ```
    /// use fusebox_fleet::FleetMode;
    /// assert!(FleetMode::quorum(3, 0.6).is_ok());
    /// assert_eq!(FleetMode::quorum(1, f64::NAN).unwrap_err().field(), Some("fraction"));
    /// ```
    pub fn quorum(min_instances: u32, fraction: f64) -> Result<FleetMode, ConfigError> {
        check::nonzero("min_instances", u64::from(min_instances))?;
        let fraction = check::unit_open_low("fraction", fraction)?;
        Ok(FleetMode::Quorum {
            min_instances,
            fraction,
        })
    }

    /// This mode with its own outage policy, for one breaker whose needs differ from the
    /// fleet's (a payment call that must fail closed in a fleet that decides locally).
    ///
    /// ```
    /// use fusebox_fleet::{FleetMode, OutagePolicy};
    /// let options = FleetMode::Pooled.on_outage(OutagePolicy::Reject);
    /// assert_eq!(options.outage_policy(), Some(OutagePolicy::Reject));
    /// ```
    pub fn on_outage(self, policy: OutagePolicy) -> FleetBreakerOptions {
        FleetBreakerOptions::new(self).outage(policy)
    }

    fn validate(self) -> Result<FleetMode, ConfigError> {
        match self {
            FleetMode::Quorum {
                min_instances,
                fraction,
            } => FleetMode::quorum(min_instances, fraction),
            other => Ok(other),
        }
    }

    /// Whether `open` of `live` instances are enough to open the fleet.
    ///
    /// ```
    /// use fusebox_fleet::FleetMode;
    /// let q = FleetMode::quorum(2, 0.5)?;
    /// assert!(!q.opens_with(1, 3));
    /// assert!(q.opens_with(2, 3));
    /// assert!(!q.opens_with(2, 5)); // 2 of 5 is under half
    /// assert!(FleetMode::Any.opens_with(1, 9));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn opens_with(self, open: u32, live: u32) -> bool {
        match self {
            FleetMode::Quorum {
                min_instances,
                fraction,
            } => {
                // A little slack so that 0.6 of 5 is met by 3 despite rounding.
                open >= min_instances && f64::from(open) + 1e-9 >= fraction * f64::from(live)
            }
            FleetMode::Pooled | FleetMode::Any => open >= 1,
        }
    }
}

impl fmt::Display for FleetMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetMode::Pooled => f.write_str("pooled"),
            FleetMode::Quorum {
                min_instances,
                fraction,
            } => write!(f, "quorum {min_instances} {fraction}"),
            FleetMode::Any => f.write_str("any"),
        }
    }
}

/// Why a fleet breaker could not be made.
///
/// ```
/// use fusebox_core::breaker::Breaker;
/// use fusebox_fleet::{Fleet, FleetError, FleetMode, MemoryStore};
/// let fleet = Fleet::builder(MemoryStore::new()).build()?;
/// // No tokio runtime here to run the sync task:
/// let err = fleet.breaker(Breaker::builder("db"), FleetMode::Pooled).unwrap_err();
/// assert!(matches!(err, FleetError::NoRuntime));
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The breaker's or the mode's configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No tokio runtime is running to host the sync task.
    #[error("a fleet breaker needs a running tokio runtime for its sync task")]
    NoRuntime,
}

/// Settings every breaker of one instance shares.
#[derive(Debug, Clone)]
pub(crate) struct FleetSettings {
    pub(crate) instance: String,
    pub(crate) sync_interval: Duration,
    pub(crate) lease_ttl: Duration,
    pub(crate) store_timeout: Duration,
    pub(crate) outage: OutagePolicy,
}

/// One instance's membership in a fleet: its store, its id, and how it syncs. Attach
/// breakers with [`breaker`](Self::breaker).
///
/// ```
/// use fusebox_fleet::{Fleet, MemoryStore, OutagePolicy};
/// use std::time::Duration;
/// let fleet = Fleet::builder(MemoryStore::new())
///     .instance_id("checkout-7")
///     .sync_interval(Duration::from_millis(50))
///     .outage(OutagePolicy::Reject)
///     .build()?;
/// assert_eq!(fleet.instance_id(), "checkout-7");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Fleet {
    store: Arc<dyn StateStore>,
    settings: Arc<FleetSettings>,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("instance", &self.settings.instance)
            .field("sync_interval", &self.settings.sync_interval)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Fleet`].
///
/// ```
/// use fusebox_fleet::{Fleet, MemoryStore};
/// use std::time::Duration;
/// let err = Fleet::builder(MemoryStore::new()).sync_interval(Duration::ZERO).build().unwrap_err();
/// assert_eq!(err.field(), Some("sync_interval"));
/// ```
pub struct FleetBuilder {
    store: Arc<dyn StateStore>,
    instance: Option<String>,
    sync_interval: Duration,
    lease_ttl: Option<Duration>,
    store_timeout: Duration,
    outage: OutagePolicy,
}

impl fmt::Debug for FleetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetBuilder")
            .field("instance", &self.instance)
            .field("sync_interval", &self.sync_interval)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Starts building an instance's membership in the fleet that `store` holds.
    ///
    /// ```
    /// use fusebox_fleet::{Fleet, MemoryStore};
    /// let fleet = Fleet::builder(MemoryStore::new()).build()?;
    /// assert!(!fleet.instance_id().is_empty()); // generated: host, process and a random part
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder(store: impl StateStore) -> FleetBuilder {
        FleetBuilder {
            store: Arc::new(store),
            instance: None,
            sync_interval: Duration::from_millis(100),
            lease_ttl: None,
            store_timeout: Duration::from_secs(1),
            outage: OutagePolicy::Local,
        }
    }

    /// This instance's id in the store.
    ///
    /// ```
    /// use fusebox_fleet::{Fleet, MemoryStore};
    /// let fleet = Fleet::builder(MemoryStore::new()).instance_id("a1").build()?;
    /// assert_eq!(fleet.instance_id(), "a1");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn instance_id(&self) -> &str {
        &self.settings.instance
    }

    /// The store, for reading views or setting a forced state.
    ///
    /// ```
    /// use fusebox_fleet::{Fleet, MemoryStore};
    /// let fleet = Fleet::builder(MemoryStore::new()).build()?;
    /// let _store = fleet.store();
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.store
    }

    /// The sync interval.
    ///
    /// ```
    /// use fusebox_fleet::{Fleet, MemoryStore};
    /// use std::time::Duration;
    /// let fleet = Fleet::builder(MemoryStore::new()).build()?;
    /// assert_eq!(fleet.sync_interval(), Duration::from_millis(100));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn sync_interval(&self) -> Duration {
        self.settings.sync_interval
    }

    /// Builds the breaker `builder` describes, shared with the fleet as `options` say (a
    /// [`FleetMode`], or a mode with its own outage policy from [`FleetMode::on_outage`]),
    /// and starts its sync task on the current tokio runtime. The task ends when the last
    /// clone of the breaker is dropped.
    ///
    /// ```
    /// use fusebox_core::breaker::{Breaker, State};
    /// use fusebox_fleet::{Fleet, FleetMode, MemoryStore, OutagePolicy};
    /// use std::time::Duration;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let fleet = Fleet::builder(MemoryStore::new()).build()?;
    /// let b = fleet.breaker(
    ///     Breaker::builder("search").failures_in_last(3, 10),
    ///     FleetMode::quorum(2, 0.5)?,
    /// )?;
    /// assert_eq!(b.state(), State::Closed);
    ///
    /// // This one fails closed while the store is unreachable, whatever the fleet's policy.
    /// let payments = fleet.breaker(
    ///     Breaker::builder("payments").consecutive_failures(5),
    ///     FleetMode::Any.on_outage(OutagePolicy::Reject),
    /// )?;
    /// # drop(payments);
    ///
    /// // A cooldown the store could not keep is refused before anything is written.
    /// let err = fleet
    ///     .breaker(
    ///         Breaker::builder("ages").cooldown(Duration::from_secs(400 * 365 * 86_400)),
    ///         FleetMode::Pooled,
    ///     )
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("cooldown"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub fn breaker(
        &self,
        builder: BreakerBuilder,
        options: impl Into<FleetBreakerOptions>,
    ) -> Result<Breaker, FleetError> {
        let options = options.into();
        let mode = options.mode().validate()?;
        let outage = options.outage_policy().unwrap_or(self.settings.outage);
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| FleetError::NoRuntime)?;
        let wake = Arc::new(tokio::sync::Notify::new());
        let waker = {
            let wake = Arc::clone(&wake);
            Box::new(move || wake.notify_one())
        };
        let breaker = builder.build_linked(FleetLink::new(waker))?;
        let longest_cooldown = match breaker.config().cooldown() {
            Cooldown::Fixed { duration, jitter } => duration.mul_f64(1.0 + jitter),
            Cooldown::Growing { max, .. } => max,
        };
        within_store_span("cooldown", longest_cooldown)?;
        let engine = engine::Engine::new(
            &breaker,
            Arc::clone(&self.store),
            Arc::clone(&self.settings),
            mode,
            outage,
        );
        runtime.spawn(engine.run(wake));
        Ok(breaker)
    }
}

impl FleetBuilder {
    /// This instance's id; by default the host name, the process id and a random suffix.
    /// Two live instances must not share an id.
    ///
    /// ```
    /// use fusebox_fleet::{Fleet, MemoryStore};
    /// assert!(Fleet::builder(MemoryStore::new()).instance_id("").build().is_err());
    /// ```
    pub fn instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance = Some(id.into());
        self
    }

    /// How often outcomes are flushed and the record read (default 100 ms). Transitions
    /// and trial outcomes are flushed at once regardless.
    ///
    /// ```
    /// use fusebox_fleet::{Fleet, MemoryStore};
    /// use std::time::Duration;
    /// let f = Fleet::builder(MemoryStore::new()).sync_interval(Duration::from_millis(20)).build()?;
    /// assert_eq!(f.sync_interval(), Duration::from_millis(20));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }

    /// How long a lease lasts without renewal (default five sync intervals). An instance
    /// whose lease ran out drops out of every fleet decision and its trial slots are freed.
    ///
    /// ```
    /// use fusebox_fleet::{Fleet, MemoryStore};
    /// use std::time::Duration;
    /// let err = Fleet::builder(MemoryStore::new())
    ///     .sync_interval(Duration::from_millis(100))
    ///     .lease_ttl(Duration::from_millis(100))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), Some("lease_ttl"));
    /// ```
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = Some(ttl);
        self
    }

    /// How long one store operation may take before it counts as an outage (default 1 s).
    ///
    /// ```
    /// use fusebox_fleet::{Fleet, MemoryStore};
    /// use std::time::Duration;
    /// assert!(Fleet::builder(MemoryStore::new()).store_timeout(Duration::ZERO).build().is_err());
    /// ```
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// What this instance's breakers do while the store is unreachable (default: decide
    /// locally); one breaker may differ with [`FleetMode::on_outage`].
    ///
    /// ```
    /// use fusebox_fleet::{Fleet, MemoryStore, OutagePolicy};
    /// let f = Fleet::builder(MemoryStore::new()).outage(OutagePolicy::Reject).build()?;
    /// # drop(f);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn outage(mut self, policy: OutagePolicy) -> Self {
        self.outage = policy;
        self
    }

    /// Validates the settings. Every span the store will be asked to keep lies within
    /// 1 ms and [`MAX_STORE_SPAN_MS`].
    ///
    /// ```
    /// use fusebox_fleet::{Fleet, MemoryStore};
    /// use std::time::Duration;
    /// assert!(Fleet::builder(MemoryStore::new()).build().is_ok());
    /// let huge = Fleet::builder(MemoryStore::new())
    ///     .lease_ttl(Duration::from_secs(u64::MAX))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(huge.field(), Some("lease_ttl"));
    /// let tiny = Fleet::builder(MemoryStore::new())
    ///     .sync_interval(Duration::from_micros(100))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(tiny.field(), Some("sync_interval"));
    /// ```
    pub fn build(self) -> Result<Fleet, ConfigError> {
        let interval = check::nonzero_duration("sync_interval", self.sync_interval)?;
        let timeout = check::nonzero_duration("store_timeout", self.store_timeout)?;
        let ttl = self.lease_ttl.unwrap_or(interval.saturating_mul(5));
        for (field, value) in [
            ("sync_interval", interval),
            ("store_timeout", timeout),
            ("lease_ttl", ttl),
        ] {
            within_store_span(field, value)?;
        }
        if ttl < interval.saturating_mul(2) {
            return Err(ConfigError::conflict(
                "lease_ttl",
                "sync_interval",
                "a lease must outlast at least two sync intervals",
            ));
        }
        let instance = match self.instance {
            Some(id) if id.trim().is_empty() => {
                return Err(ConfigError::invalid("instance_id", "must not be empty"));
            }
            Some(id) => id,
            None => default_instance_id(),
        };
        Ok(Fleet {
            store: self.store,
            settings: Arc::new(FleetSettings {
                instance,
                sync_interval: interval,
                lease_ttl: ttl,
                store_timeout: timeout,
                outage: self.outage,
            }),
        })
    }
}

/// Refuses a duration the fleet would write to its store beyond [`MAX_STORE_SPAN_MS`], or
/// (for the store's clock, which counts milliseconds) one under a millisecond.
fn within_store_span(field: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value < Duration::from_millis(1) && field != "cooldown" {
        return Err(ConfigError::invalid(
            field,
            format!("must be at least 1ms for a fleet store, got {value:?}"),
        ));
    }
    if value.as_millis() > u128::from(MAX_STORE_SPAN_MS) {
        return Err(ConfigError::invalid(
            field,
            format!(
                "must be at most {} days for a fleet store, got {value:?}",
                MAX_STORE_SPAN_MS / 86_400_000
            ),
        ));
    }
    Ok(())
}

fn default_instance_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "host".to_owned());
    let suffix: u32 = rand::random();
    format!("{host}-{}-{suffix:08x}", std::process::id())
}
