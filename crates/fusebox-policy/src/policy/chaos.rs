//! Chaos: faults and latency injected on purpose, so that the resilience of your own code
//! (its retries, timeouts, breakers, fallbacks) can be tested against a dependency that
//! misbehaves on cue. Off unless enabled, and seeded, so a failing run can be replayed.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;

use fusebox_core::breaker::Name;
use fusebox_core::{ConfigError, Error};

/// How long an injected delay lasts.
///
/// ```
/// use fusebox_policy::policy::Latency;
/// use std::time::Duration;
/// let _ = Latency::Fixed(Duration::from_millis(200));
/// let _ = Latency::Uniform { min: Duration::from_millis(50), max: Duration::from_millis(500) };
/// // Mostly short, now and then long: exponential with a 100 ms mean, never past 2 s.
/// let _ = Latency::Exponential { mean: Duration::from_millis(100), cap: Duration::from_secs(2) };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latency {
    /// Always the same delay.
    Fixed(Duration),
    /// Any delay from `min` to `max`, evenly.
    Uniform {
        /// The shortest delay.
        min: Duration,
        /// The longest delay.
        max: Duration,
    },
    /// Exponentially distributed around `mean` (a long tail, as real latency has), never
    /// longer than `cap`.
    Exponential {
        /// The mean before capping.
        mean: Duration,
        /// The longest delay.
        cap: Duration,
    },
}

impl Latency {
    fn check(self) -> Result<Self, ConfigError> {
        match self {
            Latency::Uniform { min, max } if min > max => Err(ConfigError::invalid(
                "latency",
                format!("uniform min {min:?} is above max {max:?}"),
            )),
            Latency::Exponential { mean, .. } if mean.is_zero() => Err(ConfigError::invalid(
                "latency",
                "exponential mean must be longer than zero",
            )),
            _ => Ok(self),
        }
    }

    fn sample(self, rng: &mut SmallRng) -> Duration {
        match self {
            Latency::Fixed(delay) => delay,
            Latency::Uniform { min, max } => min + (max - min).mul_f64(rng.random::<f64>()),
            Latency::Exponential { mean, cap } => {
                // Inverse transform: 1 - u is in (0, 1], so the logarithm is finite.
                let draw = -(1.0 - rng.random::<f64>()).ln();
                let secs = (mean.as_secs_f64() * draw).min(cap.as_secs_f64());
                Duration::try_from_secs_f64(secs).unwrap_or(cap)
            }
        }
    }
}

/// What chaos does to one call: delay it, fail it, both (the delay first: a slow failure),
/// or nothing.
///
/// ```
/// use fusebox_policy::policy::Injection;
/// assert!(Injection::NONE.is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Injection {
    /// The delay before the call, if one is injected.
    pub delay: Option<Duration>,
    /// Whether the call fails with the injected fault instead of running.
    pub fault: bool,
}

impl Injection {
    /// Nothing injected.
    ///
    /// ```
    /// use fusebox_policy::policy::Injection;
    /// assert_eq!(Injection::NONE, Injection::default());
    /// ```
    pub const NONE: Injection = Injection {
        delay: None,
        fault: false,
    };

    /// Whether nothing is injected.
    ///
    /// ```
    /// use fusebox_policy::policy::Injection;
    /// assert!(!Injection { delay: None, fault: true }.is_none());
    /// ```
    pub fn is_none(&self) -> bool {
        self.delay.is_none() && !self.fault
    }
}

type FaultFn<E> = Arc<dyn Fn() -> E + Send + Sync>;
type InjectionListener = Arc<dyn Fn(&Injection) + Send + Sync>;

struct ChaosInner<E> {
    name: Name,
    enabled: AtomicBool,
    fault_rate: f64,
    fault: Option<FaultFn<E>>,
    latency_rate: f64,
    latency: Latency,
    rng: Mutex<SmallRng>,
    faults: AtomicU64,
    delays: AtomicU64,
    listeners: Vec<InjectionListener>,
}

/// Builds a [`Chaos`] policy.
///
/// ```
/// use fusebox_policy::policy::{Chaos, Latency};
/// use std::time::Duration;
/// let chaos = Chaos::builder("payments")
///     .enabled(true)
///     .seed(42)
///     .fault(0.1, || std::io::Error::other("injected"))
///     .latency(0.2, Latency::Fixed(Duration::from_millis(300)))
///     .build()?;
/// assert!(chaos.is_enabled());
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use]
pub struct ChaosBuilder<E> {
    name: Name,
    enabled: bool,
    seed: Option<u64>,
    fault_rate: f64,
    fault: Option<FaultFn<E>>,
    latency_rate: f64,
    latency: Latency,
    listeners: Vec<InjectionListener>,
}

impl<E> fmt::Debug for ChaosBuilder<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosBuilder")
            .field("name", &self.name)
            .field("enabled", &self.enabled)
            .field("fault_rate", &self.fault_rate)
            .field("latency_rate", &self.latency_rate)
            .finish_non_exhaustive()
    }
}

impl<E> ChaosBuilder<E> {
    /// Whether chaos starts enabled (default: off). It can be switched at run time with
    /// [`Chaos::set_enabled`].
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// assert!(!Chaos::<()>::builder("a").build()?.is_enabled());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Seeds the draws: the same seed and settings inject the same sequence (default: a
    /// fresh seed).
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// let _ = Chaos::<()>::builder("a").seed(7).build()?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Fails a share `rate` of calls (within [0, 1]) with the error `fault` makes, instead
    /// of running them.
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// let err = Chaos::builder("a").fault(f64::NAN, || "boom").build().unwrap_err();
    /// assert_eq!(err.field(), Some("fault_rate"));
    /// let err = Chaos::builder("a").fault(1.5, || "boom").build().unwrap_err();
    /// assert_eq!(err.field(), Some("fault_rate"));
    /// ```
    pub fn fault(mut self, rate: f64, fault: impl Fn() -> E + Send + Sync + 'static) -> Self {
        self.fault_rate = rate;
        self.fault = Some(Arc::new(fault));
        self
    }

    /// Delays a share `rate` of calls (within [0, 1]) by a draw from `latency`, before they
    /// run.
    ///
    /// ```
    /// use fusebox_policy::policy::{Chaos, Latency};
    /// use std::time::Duration;
    /// let (short, long) = (Duration::from_millis(1), Duration::from_millis(9));
    /// let err = Chaos::<()>::builder("a")
    ///     .latency(0.5, Latency::Uniform { min: long, max: short })
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), Some("latency"));
    /// let err = Chaos::<()>::builder("a").latency(-0.1, Latency::Fixed(short)).build().unwrap_err();
    /// assert_eq!(err.field(), Some("latency_rate"));
    /// ```
    pub fn latency(mut self, rate: f64, latency: Latency) -> Self {
        self.latency_rate = rate;
        self.latency = latency;
        self
    }

    /// Calls `f` with every call something is injected into.
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// let _ = Chaos::<()>::builder("a").on_injection(|i| println!("{i:?}")).build()?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_injection(mut self, f: impl Fn(&Injection) + Send + Sync + 'static) -> Self {
        self.listeners.push(Arc::new(f));
        self
    }

    /// The policy's name.
    #[cfg(feature = "metrics")]
    pub(crate) fn chaos_name(&self) -> Name {
        self.name.clone()
    }

    /// Validates the settings.
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// assert_eq!(Chaos::<()>::builder("a").build()?.name(), "a");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<Chaos<E>, ConfigError> {
        let fault_rate = fusebox_core::check::unit("fault_rate", self.fault_rate)?;
        let latency_rate = fusebox_core::check::unit("latency_rate", self.latency_rate)?;
        Ok(Chaos {
            inner: Arc::new(ChaosInner {
                name: self.name,
                enabled: AtomicBool::new(self.enabled),
                fault_rate,
                fault: self.fault,
                latency_rate,
                latency: self.latency.check()?,
                rng: Mutex::new(fusebox_core::rng::small_rng(self.seed)),
                faults: AtomicU64::new(0),
                delays: AtomicU64::new(0),
                listeners: self.listeners,
            }),
        })
    }
}

/// Injects faults (errors the caller's function makes) and delays into a share of calls,
/// for resilience tests of your own code. Off unless enabled: a disabled policy costs one
/// atomic load and passes calls through untouched. Draws are seeded, so a seed replays the
/// same faults. Clones share the switch, the draws and the counts.
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_policy::policy::Chaos;
/// let chaos = Chaos::builder("inventory").seed(3).fault(1.0, || "injected").build()?;
/// assert_eq!(chaos.call(|| async { Ok::<_, &str>(1) }).await, Ok(1)); // off: untouched
/// chaos.set_enabled(true);
/// assert_eq!(chaos.call(|| async { Ok(1) }).await, Err("injected"));
/// assert_eq!(chaos.faults_injected(), 1);
/// # Ok(())
/// # }
/// ```
pub struct Chaos<E> {
    inner: Arc<ChaosInner<E>>,
}

impl<E> Clone for Chaos<E> {
    fn clone(&self) -> Self {
        Chaos {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<E> fmt::Debug for Chaos<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos")
            .field("name", &self.inner.name)
            .field("enabled", &self.is_enabled())
            .field("fault_rate", &self.inner.fault_rate)
            .field("latency_rate", &self.inner.latency_rate)
            .field("latency", &self.inner.latency)
            .finish_non_exhaustive()
    }
}

impl<E> Chaos<E> {
    /// A builder for a chaos policy called `name`: disabled, injecting nothing until a
    /// fault or a latency is set.
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// let chaos = Chaos::<std::io::Error>::builder("db").build()?;
    /// assert_eq!(chaos.decide(), fusebox_policy::policy::Injection::NONE);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder(name: impl Into<Name>) -> ChaosBuilder<E> {
        ChaosBuilder {
            name: name.into(),
            enabled: false,
            seed: None,
            fault_rate: 0.0,
            fault: None,
            latency_rate: 0.0,
            latency: Latency::Fixed(Duration::ZERO),
            listeners: Vec::new(),
        }
    }

    /// The policy's name.
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// assert_eq!(Chaos::<()>::builder("db").build()?.name(), "db");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// Whether chaos is injecting now.
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// assert!(Chaos::<()>::builder("db").enabled(true).build()?.is_enabled());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.inner.enabled.load(Ordering::Relaxed)
    }

    /// Switches injection on or off, for every clone, at once.
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// let chaos = Chaos::<()>::builder("db").build()?;
    /// chaos.clone().set_enabled(true);
    /// assert!(chaos.is_enabled());
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn set_enabled(&self, enabled: bool) {
        self.inner.enabled.store(enabled, Ordering::Relaxed);
    }

    /// Faults injected so far.
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// assert_eq!(Chaos::<()>::builder("db").build()?.faults_injected(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn faults_injected(&self) -> u64 {
        self.inner.faults.load(Ordering::Relaxed)
    }

    /// Delays injected so far.
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// assert_eq!(Chaos::<()>::builder("db").build()?.delays_injected(), 0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn delays_injected(&self) -> u64 {
        self.inner.delays.load(Ordering::Relaxed)
    }

    /// Draws what to inject into the next call, counting and telling it. Disabled, this is
    /// [`Injection::NONE`] and draws nothing. A fault is drawn only where a fault function
    /// is set.
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// let chaos = Chaos::builder("db").enabled(true).fault(1.0, || ()).build()?;
    /// assert!(chaos.decide().fault);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    #[inline]
    pub fn decide(&self) -> Injection {
        if !self.is_enabled() {
            return Injection::NONE;
        }
        self.draw()
    }

    #[cold]
    fn draw(&self) -> Injection {
        let inner = &*self.inner;
        let injection = {
            // Only a generator: a panic elsewhere leaves nothing half-updated.
            let mut rng = inner.rng.lock().unwrap_or_else(|p| p.into_inner());
            // Both draws every call, so the fault sequence does not depend on the latency's.
            let fault = rng.random::<f64>() < inner.fault_rate && inner.fault.is_some();
            let delayed = rng.random::<f64>() < inner.latency_rate;
            Injection {
                delay: delayed.then(|| inner.latency.sample(&mut rng)),
                fault,
            }
        };
        if injection.fault {
            inner.faults.fetch_add(1, Ordering::Relaxed);
        }
        if injection.delay.is_some() {
            inner.delays.fetch_add(1, Ordering::Relaxed);
        }
        if !injection.is_none() {
            tracing::debug!(chaos = %inner.name, ?injection, "chaos injected");
            for listener in &inner.listeners {
                listener(&injection);
            }
        }
        injection
    }

    /// A fresh injected fault, from the builder's fault function; `None` without one.
    ///
    /// ```
    /// use fusebox_policy::policy::Chaos;
    /// let chaos = Chaos::builder("db").fault(0.5, || "boom").build()?;
    /// assert_eq!(chaos.make_fault(), Some("boom"));
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn make_fault(&self) -> Option<E> {
        self.inner.fault.as_ref().map(|fault| fault())
    }

    /// Runs `op` with whatever is drawn injected: a delay first (on tokio's timer), then the
    /// fault instead of `op`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::{Chaos, Latency};
    /// use std::time::Duration;
    /// let chaos = Chaos::<()>::builder("db")
    ///     .enabled(true)
    ///     .latency(1.0, Latency::Fixed(Duration::from_secs(2)))
    ///     .build()?;
    /// let start = tokio::time::Instant::now();
    /// chaos.call(|| async { Ok(()) }).await.unwrap();
    /// assert_eq!(start.elapsed(), Duration::from_secs(2));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<F, Fut, T>(&self, op: F) -> Result<T, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let injection = self.decide();
        if let Some(delay) = injection.delay {
            tokio::time::sleep(delay).await;
        }
        if injection.fault
            && let Some(fault) = self.make_fault()
        {
            return Err(fault);
        }
        op().await
    }
}

impl<T, E> crate::stack::Policy<T, E> for Chaos<E> {
    #[allow(clippy::manual_async_fn)]
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        async move {
            let injection = self.decide();
            if let Some(delay) = injection.delay {
                tokio::time::sleep(delay).await;
            }
            if injection.fault
                && let Some(fault) = self.make_fault()
            {
                return Err(Error::Inner(fault));
            }
            attempt().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn samples_stay_within_their_distribution() {
        let mut rng = SmallRng::seed_from_u64(9);
        let (min, max) = (Duration::from_millis(10), Duration::from_millis(20));
        let cap = Duration::from_millis(300);
        let mean = Duration::from_millis(100);
        let mut total = Duration::ZERO;
        for _ in 0..10_000 {
            let uniform = Latency::Uniform { min, max }.sample(&mut rng);
            assert!((min..=max).contains(&uniform), "{uniform:?}");
            let exp = Latency::Exponential { mean, cap }.sample(&mut rng);
            assert!(exp <= cap, "{exp:?}");
            total += exp;
        }
        // The capped mean of Exp(100 ms) at 300 ms is 100 · (1 − e^−3) ≈ 95 ms.
        let average = total / 10_000;
        assert!(
            (Duration::from_millis(90)..Duration::from_millis(100)).contains(&average),
            "{average:?}"
        );
    }
}
