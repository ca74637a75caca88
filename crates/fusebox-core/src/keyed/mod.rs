//! Breakers keyed by host, route, tenant or any key: one [`Breaker`](crate::Breaker) per
//! key in a shared [`BreakerRegistry`], so that one sick host does not cut a client off from
//! the healthy ones. The registry uses no I/O and no runtime; fusebox-tower's
//! `KeyedBreakerLayer` puts it in front of a service.
//!
//! ```
//! use fusebox_core::breaker::{BreakerSettings, State};
//! use fusebox_core::keyed::BreakerRegistry;
//!
//! let registry = BreakerRegistry::<&str>::builder("upstream")
//!     .settings(BreakerSettings { consecutive_failures: Some(2), ..Default::default() })
//!     .build()?;
//! for _ in 0..2 {
//!     registry.get_or_create(&"down.example").record_failure();
//! }
//! assert_eq!(registry.get("down.example").map(|b| b.state()), Some(State::Open));
//! assert_eq!(registry.get_or_create(&"up.example").state(), State::Closed);
//! # Ok::<(), fusebox_core::ConfigError>(())
//! ```
//!
//! # Building each key's breaker
//!
//! A breaker is built the first time its key is seen: from the registry's default
//! [`BreakerSettings`](crate::breaker::BreakerSettings), or the key's own settings
//! from [`per_key`](RegistryBuilder::per_key); named from the key; then handed to the
//! [`customize`](RegistryBuilder::customize) closure for listeners or a custom rule. The
//! defaults are validated when the registry is built. Per-key settings can only be checked
//! when the key shows up, so invalid ones do not fail the call: the key gets the defaults,
//! with a `tracing` warning and a count in [`RegistryStats::config_fallbacks`].
//!
//! # Bounds and eviction
//!
//! The registry holds at most [`max_keys`](RegistryBuilder::max_keys) keys (10 000 by
//! default). Each lookup records when the key was last used, rejected calls included.
//!
//! * An entry unused for the [`idle_timeout`](RegistryBuilder::idle_timeout) (10 minutes by
//!   default) is evicted, whatever its state: when a new key arrives and the last sweep is
//!   older than the timeout, when the registry is full, or on
//!   [`evict_idle`](BreakerRegistry::evict_idle).
//! * When the registry is full and nothing is idle, the least recently used entries whose
//!   breaker is closed or disabled make room (a small batch at a time, so a run of new keys
//!   does not rescan the table for each one).
//! * An **open, half-open or forced-open breaker is never evicted while in use**. Otherwise
//!   anyone able to send requests with made-up keys (random hosts, tenant ids) could flush
//!   a tripped breaker out of the registry and send full traffic to a failing dependency
//!   again. Callers still hitting an open breaker keep it in use, because rejected calls
//!   count as use. Past the idle timeout even these go: an open breaker nobody has called
//!   for that long protects no one, and keeping it would let the table grow without bound.
//!   This includes [forced-open](crate::Breaker::force_open) ones, so a kill switch
//!   that must outlast a quiet key belongs in front of the registry.
//! * If the registry is full of such protected breakers, a new key gets a fresh breaker that
//!   is **not stored** (counted in [`RegistryStats::served_unstored`], with a warning logged
//!   at the 1st, 2nd, 4th, 8th… occurrence). Its calls go through unprotected: the same as
//!   having no keyed breaker at all. Failing closed instead would let whoever can fill the
//!   registry with failing keys deny service to every new key. Known keys keep their breakers
//!   either way.
//!
//! # Cost
//!
//! A call for a known key takes the registry's shared read lock, hashes the key, reads the
//! clock and clones the breaker handle; the last-use time is an atomic written at most once
//! per clock tick. Creating a key takes the write lock, after building the breaker outside
//! it. Keys are hashed with the standard library's randomly seeded hasher, which resists
//! hash-flooding by chosen keys.

mod builder;
mod reconfigure;
mod registry;
mod shared;

pub use builder::RegistryBuilder;
pub use reconfigure::RegistryReconfigured;
pub use registry::{BreakerRegistry, RegistryStats};
