//! Adaptive client-side throttling: when a dependency refuses much of what it is sent, drop
//! a share of calls locally, before they cost the dependency anything.
//!
//! Over a rolling window the throttle counts the calls it let through (`requests`) and those
//! the dependency accepted (`accepts`), and drops a new call with probability
//! `max(0, (requests − k·accepts) / (requests + 1))`. While the dependency accepts most
//! calls this is zero; when it accepts fewer than one in `k`, the throttle sheds the excess
//! and keeps sending enough to notice when it heals.

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::Rng;
use rand::rngs::SmallRng;

use fusebox_core::breaker::Name;
use fusebox_core::clock::{IntoClock, SharedClock};
use fusebox_core::{Classifier, ConfigError, Error, Outcome, Throttled};

/// The drop probability for `requests` sent and `accepts` accepted with multiplier `k`, in
/// `0.0..=1.0`.
///
/// ```
/// use fusebox_policy::policy::drop_probability;
/// assert_eq!(drop_probability(100, 60, 2.0), 0.0); // accepts above requests / k
/// let p = drop_probability(100, 30, 2.0);           // (100 - 60) / 101
/// assert!((p - 40.0 / 101.0).abs() < 1e-12);
/// ```
pub fn drop_probability(requests: u64, accepts: u64, k: f64) -> f64 {
    let requests_f = requests as f64;
    let excess = requests_f - k * accepts as f64;
    if excess <= 0.0 || !excess.is_finite() {
        return 0.0;
    }
    (excess / (requests_f + 1.0)).clamp(0.0, 1.0)
}

type ThrottledListener = Arc<dyn Fn(&Throttled) + Send + Sync>;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which bucket period this count belongs to, so stale buckets are cleared lazily.
    epoch: u64,
    requests: u64,
    accepts: u64,
}

#[derive(Debug)]
struct Window {
    buckets: Vec<Bucket>,
    rng: SmallRng,
}

struct ThrottleInner {
    name: Name,
    k: f64,
    bucket_nanos: u64,
    clock: SharedClock,
    window: Mutex<Window>,
    on_throttled: Vec<ThrottledListener>,
}

impl fmt::Debug for ThrottleInner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("name", &self.name)
            .field("k", &self.k)
            .field("buckets", &self.lock().buckets.len())
            .finish_non_exhaustive()
    }
}

impl ThrottleInner {
    fn lock(&self) -> MutexGuard<'_, Window> {
        // The window holds counts only: a panic elsewhere leaves nothing half-updated.
        self.window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn epoch(&self) -> u64 {
        // Buckets span hundreds of milliseconds: the recent time (a load on the default
        // clock) places a call as well as a clock read would.
        self.clock.recent_nanos() / self.bucket_nanos
    }

    /// Totals over the buckets still inside the window.
    fn totals(window: &Window, epoch: u64) -> (u64, u64) {
        let span = window.buckets.len() as u64;
        window
            .buckets
            .iter()
            .filter(|b| epoch.saturating_sub(b.epoch) < span && b.epoch <= epoch)
            .fold((0, 0), |(r, a), b| (r + b.requests, a + b.accepts))
    }

    fn bucket(window: &mut Window, epoch: u64) -> &mut Bucket {
        let len = window.buckets.len() as u64;
        let bucket = &mut window.buckets[(epoch % len) as usize];
        if bucket.epoch != epoch {
            *bucket = Bucket {
                epoch,
                ..Bucket::default()
            };
        }
        bucket
    }
}

/// Builds a [`Throttle`].
///
/// ```
/// use fusebox_policy::policy::Throttle;
/// use std::time::Duration;
/// let throttle = Throttle::builder("quotes").k(1.5).window(Duration::from_secs(10), 10).seed(7).build()?;
/// assert_eq!(throttle.probability(), 0.0);
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[must_use]
pub struct ThrottleBuilder {
    name: Name,
    k: f64,
    window: Duration,
    buckets: u32,
    seed: Option<u64>,
    clock: Option<SharedClock>,
    on_throttled: Vec<ThrottledListener>,
}

impl fmt::Debug for ThrottleBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleBuilder")
            .field("name", &self.name)
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

impl ThrottleBuilder {
    /// The multiplier `k` (default 2.0): the throttle starts dropping once the dependency
    /// accepts fewer than one call in `k`. Lower is more aggressive. Must be finite and at
    /// least 1: below, the rule would drop calls while the dependency accepts every one.
    ///
    /// ```
    /// use fusebox_policy::policy::Throttle;
    /// assert_eq!(Throttle::builder("a").k(0.0).build().unwrap_err().field(), Some("k"));
    /// assert_eq!(Throttle::builder("a").k(0.5).build().unwrap_err().field(), Some("k"));
    /// assert!(Throttle::builder("a").k(1.0).build().is_ok());
    /// assert_eq!(Throttle::builder("a").k(f64::NAN).build().unwrap_err().field(), Some("k"));
    /// ```
    pub fn k(mut self, k: f64) -> Self {
        self.k = k;
        self
    }

    /// The rolling window, counted in `buckets` steps (default: 4 s in 8 buckets).
    ///
    /// ```
    /// use fusebox_policy::policy::Throttle;
    /// use std::time::Duration;
    /// let err = Throttle::builder("a").window(Duration::ZERO, 4).build().unwrap_err();
    /// assert_eq!(err.field(), Some("window"));
    /// let err = Throttle::builder("a").window(Duration::from_secs(1), 0).build().unwrap_err();
    /// assert_eq!(err.field(), Some("buckets"));
    /// ```
    pub fn window(mut self, window: Duration, buckets: u32) -> Self {
        self.window = window;
        self.buckets = buckets;
        self
    }

    /// The window and buckets set so far, for settings that change only one of them.
    pub(crate) fn window_and_buckets(&self) -> (Duration, u32) {
        (self.window, self.buckets)
    }

    /// Seeds the random drops, for reproducible tests (default: a fresh seed).
    ///
    /// ```
    /// use fusebox_policy::policy::Throttle;
    /// let _ = Throttle::builder("a").seed(42).build()?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The clock the window moves on (default: the monotonic clock, whose recent time, a
    /// load kept within about a millisecond, places calls in buckets).
    ///
    /// ```
    /// use fusebox_core::clock::ManualClock;
    /// use fusebox_policy::policy::Throttle;
    /// let _ = Throttle::builder("a").clock(ManualClock::new()).build()?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn clock(mut self, clock: impl IntoClock) -> Self {
        self.clock = Some(clock.into_handle());
        self
    }

    /// Calls `f` with every dropped call.
    ///
    /// ```
    /// use fusebox_policy::policy::Throttle;
    /// let _ = Throttle::builder("a").on_throttled(|t| println!("{t}")).build()?;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn on_throttled(mut self, f: impl Fn(&Throttled) + Send + Sync + 'static) -> Self {
        self.on_throttled.push(Arc::new(f));
        self
    }

    /// Validates the settings.
    ///
    /// ```
    /// use fusebox_policy::policy::Throttle;
    /// assert_eq!(Throttle::builder("a").build()?.name(), "a");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn build(self) -> Result<Throttle, ConfigError> {
        let k = fusebox_core::check::finite("k", self.k)?;
        if k < 1.0 {
            // Below 1 the rule drops calls even when the dependency accepts every one.
            return Err(ConfigError::invalid(
                "k",
                format!(
                    "must be at least 1 (below, calls are dropped while all are accepted), got {k}"
                ),
            ));
        }
        let window = fusebox_core::check::nonzero_duration("window", self.window)?;
        let buckets = fusebox_core::check::nonzero("buckets", self.buckets.into())?;
        let bucket_nanos = u64::try_from(window.as_nanos() / u128::from(buckets))
            .map_err(|_| ConfigError::invalid("window", "is too long"))?;
        if bucket_nanos == 0 {
            return Err(ConfigError::invalid(
                "buckets",
                "must leave each bucket at least a nanosecond",
            ));
        }
        Ok(Throttle {
            inner: Arc::new(ThrottleInner {
                name: self.name,
                k,
                bucket_nanos,
                clock: self.clock.unwrap_or_else(SharedClock::monotonic),
                window: Mutex::new(Window {
                    buckets: vec![Bucket::default(); buckets as usize],
                    rng: fusebox_core::rng::small_rng(self.seed),
                }),
                on_throttled: self.on_throttled,
            }),
        })
    }
}

/// Adaptive client-side throttling: over a rolling window, a call is dropped with
/// probability `max(0, (requests − k·accepts) / (requests + 1))`. A call is dropped with
/// [`Error::Throttled`] or sent; what the dependency answers is classified,
/// and anything but an [`Outcome::Failure`] counts as accepted. Clones share the window.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), fusebox_core::ConfigError> {
/// use fusebox_policy::policy::Throttle;
/// let throttle = Throttle::builder("quotes").seed(1).build()?;
/// for _ in 0..50 {
///     let _ = throttle.call(|| async { Err::<(), _>("overloaded") }).await;
/// }
/// assert!(throttle.probability() > 0.9); // nothing accepted: nearly everything is dropped
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Throttle {
    inner: Arc<ThrottleInner>,
}

impl Throttle {
    /// A builder for a throttle called `name`.
    ///
    /// ```
    /// use fusebox_policy::policy::Throttle;
    /// let throttle = Throttle::builder("db").build()?;
    /// # let _ = throttle;
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn builder(name: impl Into<Name>) -> ThrottleBuilder {
        ThrottleBuilder {
            name: name.into(),
            k: 2.0,
            window: Duration::from_secs(4),
            buckets: 8,
            seed: None,
            clock: None,
            on_throttled: Vec::new(),
        }
    }

    /// The throttle's name.
    ///
    /// ```
    /// use fusebox_policy::policy::Throttle;
    /// assert_eq!(Throttle::builder("db").build()?.name(), "db");
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn name(&self) -> &str {
        self.inner.name.as_ref()
    }

    /// The drop probability now.
    ///
    /// ```
    /// use fusebox_policy::policy::Throttle;
    /// assert_eq!(Throttle::builder("db").build()?.probability(), 0.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn probability(&self) -> f64 {
        let inner = &*self.inner;
        let window = inner.lock();
        let (requests, accepts) = ThrottleInner::totals(&window, inner.epoch());
        drop_probability(requests, accepts, inner.k)
    }

    /// Decides whether a call may be sent: `Ok` counts it as a request, `Err` is the drop.
    /// Report what the dependency answered with [`record`](Self::record).
    ///
    /// ```
    /// use fusebox_policy::policy::Throttle;
    /// let throttle = Throttle::builder("db").seed(3).build()?;
    /// assert!(throttle.admit().is_ok());
    /// throttle.record(true);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn admit(&self) -> Result<(), Throttled> {
        let inner = &*self.inner;
        let epoch = inner.epoch();
        let mut window = inner.lock();
        let (requests, accepts) = ThrottleInner::totals(&window, epoch);
        let probability = drop_probability(requests, accepts, inner.k);
        // Dropped calls count as requests too, as the rule has it: a dependency that stays
        // down keeps the probability high rather than letting it decay.
        ThrottleInner::bucket(&mut window, epoch).requests += 1;
        if probability > 0.0 && window.rng.random::<f64>() < probability {
            drop(window);
            let throttled = Throttled {
                name: inner.name.clone(),
                probability,
            };
            tracing::debug!(throttle = %inner.name, probability, "call dropped");
            for listener in &inner.on_throttled {
                listener(&throttled);
            }
            return Err(throttled);
        }
        Ok(())
    }

    /// Records whether the dependency accepted a call that [`admit`](Self::admit) let
    /// through.
    ///
    /// ```
    /// use fusebox_policy::policy::Throttle;
    /// let throttle = Throttle::builder("db").build()?;
    /// throttle.admit().unwrap();
    /// throttle.record(false);
    /// assert!(throttle.probability() > 0.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn record(&self, accepted: bool) {
        if accepted {
            let inner = &*self.inner;
            let epoch = inner.epoch();
            ThrottleInner::bucket(&mut inner.lock(), epoch).accepts += 1;
        }
    }

    /// Runs `op` unless dropped; an `Err` from it counts as refused, an `Ok` as accepted.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_policy::policy::Throttle;
    /// let throttle = Throttle::builder("db").build()?;
    /// assert_eq!(throttle.call(|| async { Ok::<_, ()>(1) }).await.unwrap(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn call<F, Fut, T, E>(&self, op: F) -> Result<T, Error<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.admit().map_err(Error::Throttled)?;
        let result = op().await;
        self.record(result.is_ok());
        result.map_err(Error::Inner)
    }

    /// This throttle with `classifier` deciding what counts as accepted, as a stack
    /// [`Policy`](crate::stack::Policy).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), fusebox_core::ConfigError> {
    /// use fusebox_core::{Error, FailureWhen};
    /// use fusebox_policy::policy::Throttle;
    /// use fusebox_policy::stack::Stack;
    /// // Only "overloaded" means the dependency refused; "not found" was still served.
    /// let overloaded = FailureWhen(|e: &Error<&str>| matches!(e, Error::Inner("overloaded")));
    /// let stack = Stack::new().policy(Throttle::builder("db").build()?.classified(overloaded));
    /// assert!(stack.call(|| async { Err::<(), _>("not found") }).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn classified<C>(self, classifier: C) -> ClassifiedThrottle<C> {
        ClassifiedThrottle {
            throttle: self,
            classifier,
        }
    }
}

/// A [`Throttle`] with a classifier, as a stack policy: [`Outcome::Failure`] means the
/// dependency refused the call; success and ignored outcomes count as accepted.
///
/// ```
/// use fusebox_core::ErrIsFailure;
/// use fusebox_policy::policy::Throttle;
/// let classified = Throttle::builder("db").build()?.classified(ErrIsFailure);
/// assert_eq!(classified.throttle().name(), "db");
/// # Ok::<(), fusebox_core::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClassifiedThrottle<C> {
    throttle: Throttle,
    classifier: C,
}

impl<C> ClassifiedThrottle<C> {
    /// The throttle.
    ///
    /// ```
    /// use fusebox_core::ErrIsFailure;
    /// use fusebox_policy::policy::Throttle;
    /// let t = Throttle::builder("x").build()?.classified(ErrIsFailure);
    /// assert_eq!(t.throttle().probability(), 0.0);
    /// # Ok::<(), fusebox_core::ConfigError>(())
    /// ```
    pub fn throttle(&self) -> &Throttle {
        &self.throttle
    }
}

impl<T, E, C> crate::stack::Policy<T, E> for ClassifiedThrottle<C>
where
    C: Classifier<T, Error<E>>,
{
    #[allow(clippy::manual_async_fn)]
    fn run<F, Fut>(&self, attempt: F) -> impl Future<Output = Result<T, Error<E>>>
    where
        F: Fn() -> Fut + Copy,
        Fut: Future<Output = Result<T, Error<E>>>,
    {
        async move {
            self.throttle.admit().map_err(Error::Throttled)?;
            let result = attempt().await;
            let refused = self.classifier.classify(&result) == Outcome::Failure;
            self.throttle.record(!refused);
            result
        }
    }
}
