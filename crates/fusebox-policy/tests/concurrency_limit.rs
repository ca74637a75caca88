//! The adaptive concurrency limit against a simulated server whose latency grows with
//! concurrency, on paused time, plus properties of the pure algorithms.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fusebox_core::{Error, Outcome};
use fusebox_policy::policy::{
    AdaptiveLimit, Aimd, ConcurrencyLimit, Gradient2, LimitAlgorithm, Vegas,
};
use fusebox_policy::stack::Stack;
use proptest::prelude::*;
use tokio::time::Instant;

/// A deterministic generator, so every run of a simulation is the same run.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A server that answers in `base` while it has at most `capacity` calls in flight, slows
/// sharply past that (each extra call adds 8/capacity of `base`), and past 110 % of its
/// capacity times calls out after five times `base`.
struct Server {
    capacity: u32,
    base: Duration,
    in_flight: AtomicU32,
    /// Whether overload ends in timeouts; without them the only signal is latency.
    times_out: bool,
}

impl Server {
    /// How long a call that found `n` calls in flight (itself included) takes, and whether
    /// it failed.
    fn answer(&self, n: u32, rng: &mut XorShift) -> (Duration, bool) {
        let jitter = 0.9 + 0.2 * rng.unit();
        let overload = f64::from(n.saturating_sub(self.capacity)) / f64::from(self.capacity);
        if self.times_out && n > self.capacity + self.capacity / 10 {
            return (self.base * 5, true);
        }
        (self.base.mul_f64(jitter * (1.0 + 8.0 * overload)), false)
    }
}

/// Runs `workers` closed-loop clients (a refused client waits 10 ms before trying again)
/// against a server of `capacity` for a minute of simulated time, and returns the mean limit
/// of the second half and the share of its samples within 20 % of the capacity.
async fn settle(
    algorithm: LimitAlgorithm,
    capacity: u32,
    seed: u64,
    times_out: bool,
) -> (f64, f64) {
    let limit = ConcurrencyLimit::builder("sim")
        .algorithm(algorithm)
        .min_limit(1)
        .max_limit(1000)
        .initial_limit(10)
        .build()
        .unwrap();
    let server = Arc::new(Server {
        capacity,
        base: Duration::from_millis(20),
        in_flight: AtomicU32::new(0),
        times_out,
    });
    let start = Instant::now();
    let end = start + Duration::from_secs(60);
    let workers = capacity * 3;
    let mut tasks = Vec::new();
    for worker in 0..workers {
        let limit = limit.clone();
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = XorShift::new(seed ^ u64::from(worker));
            // Spread the first calls so the clients do not march in step.
            tokio::time::sleep(Duration::from_micros((rng.unit() * 20_000.0) as u64)).await;
            while Instant::now() < end {
                let Ok(permit) = limit.try_acquire() else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let n = server.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
                let (latency, failed) = server.answer(n, &mut rng);
                tokio::time::sleep(latency).await;
                server.in_flight.fetch_sub(1, Ordering::AcqRel);
                if failed {
                    permit.dropped();
                } else {
                    permit.success();
                }
            }
        }));
    }
    tokio::time::sleep_until(start + Duration::from_secs(30)).await;
    let mut samples = Vec::new();
    while Instant::now() < end {
        samples.push(f64::from(limit.limit()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    let cap = f64::from(capacity);
    let within = samples
        .iter()
        .filter(|l| (*l - cap).abs() <= 0.2 * cap)
        .count() as f64
        / samples.len() as f64;
    (mean, within)
}

async fn assert_settles(algorithm: LimitAlgorithm, times_out: bool) {
    for (capacity, seed) in [(40, 7), (100, 11)] {
        let (mean, within) = settle(algorithm, capacity, seed, times_out).await;
        let cap = f64::from(capacity);
        println!(
            "{algorithm:?} (timeouts: {times_out}): capacity {capacity}, mean limit {mean:.1}, {:.0} % of samples within 20 %",
            within * 100.0
        );
        assert!(
            (mean - cap).abs() <= 0.2 * cap,
            "mean limit {mean:.1} is not within 20 % of the capacity {capacity}"
        );
        assert!(within >= 0.9, "only {within:.2} of samples within 20 %");
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn aimd_settles_near_the_servers_capacity() {
    assert_settles(Aimd::new().into(), true).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn vegas_settles_near_the_servers_capacity() {
    assert_settles(Vegas::new().into(), true).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn vegas_settles_on_latency_alone() {
    assert_settles(Vegas::new().into(), false).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn gradient2_settles_near_the_servers_capacity() {
    assert_settles(Gradient2::new().into(), true).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn refuses_past_the_limit_and_reports_it() {
    let refused = Arc::new(AtomicU32::new(0));
    let count = refused.clone();
    let limit = ConcurrencyLimit::builder("db")
        .initial_limit(2)
        .on_refused(move |_| {
            count.fetch_add(1, Ordering::Relaxed);
        })
        .build()
        .unwrap();
    let _a = limit.try_acquire().unwrap();
    let _b = limit.try_acquire().unwrap();
    let err = limit.call(|| async { Ok::<_, ()>(()) }).await.unwrap_err();
    match err {
        Error::LimitExceeded(e) => {
            assert_eq!((e.name.as_ref(), e.limit, e.in_flight), ("db", 2, 2))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(refused.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_cancelled_call_frees_its_place() {
    let limit = ConcurrencyLimit::builder("db")
        .initial_limit(1)
        .build()
        .unwrap();
    let call = limit.call(|| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Ok::<_, ()>(())
    });
    let timed_out = tokio::time::timeout(Duration::from_millis(5), call).await;
    assert!(timed_out.is_err());
    assert_eq!(limit.in_flight(), 0);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn in_a_stack_a_classified_failure_shrinks_the_limit() {
    let changes = Arc::new(AtomicU32::new(0));
    let seen = changes.clone();
    let limit = ConcurrencyLimit::builder("api")
        .initial_limit(20)
        .window(Duration::from_millis(1), 1)
        .on_limit_change(move |_, l| seen.store(l, Ordering::Relaxed))
        .build()
        .unwrap();
    let stack = Stack::new().policy(limit.clone().classify_with(|r: &Result<u16, Error<()>>| {
        if matches!(r, Ok(503)) {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }));
    for _ in 0..3 {
        tokio::time::advance(Duration::from_millis(2)).await;
        assert_eq!(
            stack.call(|| async { Ok::<u16, ()>(503) }).await.unwrap(),
            503
        );
    }
    assert!(limit.limit() < 20, "limit {}", limit.limit());
    assert_eq!(changes.load(Ordering::Relaxed), limit.limit());
}

#[test]
fn the_builder_names_the_bad_field() {
    let field = |b: fusebox_policy::policy::ConcurrencyLimitBuilder| {
        b.build().unwrap_err().field().map(str::to_owned)
    };
    let b = || ConcurrencyLimit::builder("x");
    assert_eq!(field(b().min_limit(0)).as_deref(), Some("min_limit"));
    assert_eq!(
        field(b().min_limit(5).max_limit(4)).as_deref(),
        Some("max_limit")
    );
    assert_eq!(
        field(b().initial_limit(0)).as_deref(),
        Some("initial_limit")
    );
    assert_eq!(
        field(b().initial_limit(2000)).as_deref(),
        Some("initial_limit")
    );
    assert_eq!(
        field(b().window(Duration::ZERO, 1)).as_deref(),
        Some("window")
    );
    assert_eq!(
        field(b().algorithm(Aimd::new().backoff_ratio(1.0))).as_deref(),
        Some("backoff_ratio")
    );
    assert_eq!(
        field(b().algorithm(Aimd::new().backoff_ratio(f64::NAN))).as_deref(),
        Some("backoff_ratio")
    );
    assert_eq!(
        field(b().algorithm(Aimd::new().timeout(Duration::ZERO))).as_deref(),
        Some("timeout")
    );
    assert_eq!(
        field(b().algorithm(Gradient2::new().smoothing(0.0))).as_deref(),
        Some("smoothing")
    );
    assert_eq!(
        field(b().algorithm(Gradient2::new().smoothing(f64::NAN))).as_deref(),
        Some("smoothing")
    );
    assert_eq!(
        field(b().algorithm(Gradient2::new().queue_size(f64::INFINITY))).as_deref(),
        Some("queue_size")
    );
    assert_eq!(
        field(b().algorithm(Gradient2::new().long_window(0))).as_deref(),
        Some("long_window")
    );
}

fn algorithms() -> impl Strategy<Value = LimitAlgorithm> {
    prop_oneof![
        (0.01f64..0.99).prop_map(|r| Aimd::new().backoff_ratio(r).into()),
        (0u32..20).prop_map(|p| Vegas::new().probe_every(p).into()),
        (0.01f64..=1.0, 0f64..50.0, 1u32..1000).prop_map(|(s, q, w)| {
            Gradient2::new()
                .smoothing(s)
                .queue_size(q)
                .long_window(w)
                .into()
        }),
    ]
}

proptest! {
    #[test]
    fn the_limit_stays_within_its_bounds(
        algorithm in algorithms(),
        min in 1u32..50,
        span in 0u32..500,
        calls in proptest::collection::vec((0u64..10_000_000, 0u32..2000, any::<bool>()), 1..300),
    ) {
        let max = min + span;
        let mut state = AdaptiveLimit::new(algorithm, min, max, min, Duration::from_millis(1), 1);
        let mut now = Duration::ZERO;
        for (rtt_micros, in_flight, dropped) in calls {
            now += Duration::from_millis(1);
            if let Some(limit) = state.record(now, Duration::from_micros(rtt_micros), in_flight, dropped) {
                prop_assert!((min..=max).contains(&limit), "{limit} outside [{min}, {max}]");
            }
            prop_assert!((min..=max).contains(&state.limit()));
        }
    }
}
