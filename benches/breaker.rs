//! Circuit breaker overhead: fusebox against `recloser` and `failsafe`, measured in one run.
//!
//! Four groups, each comparable within itself:
//!
//! * `closed_success`: one successful call through a CLOSED breaker (sync `call` API of each
//!   library), next to the bare closure it wraps; overhead = time - bare.
//! * `open_rejection`: one call refused by an OPEN breaker (tripped beforehand, with a one-hour
//!   cooldown so it stays open for the whole run).
//! * `contended_2_threads`: two threads making successful calls through one shared breaker.
//!   The two workers are spawned once per benchmark and parked on a barrier between samples,
//!   so thread start-up is not measured. The reported time is the wall-clock time for each
//!   thread to make one call while the other thread does the same.
//! * `reference`: the clock reads a breaker may make per call, to explain the others.
//! * `observed`: the same CLOSED success with observability attached: a `fusebox.call` span
//!   (`observe::traced_sync`) with no subscriber and with one that keeps INFO and drops the
//!   DEBUG span, and a `MetricsListener` with no recorder installed (the outcome hook and
//!   the clock read that times the call).
//!
//! Peers are configured like the fusebox breaker they stand beside: `recloser` with a
//! count-based ring of 100 calls tripping at a 50 % failure rate, `failsafe` with its
//! consecutive-failures policy (5 in a row). Run with `cargo bench --bench breaker`.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use failsafe::CircuitBreaker as _;
use fusebox::breaker::{Breaker, State};
use fusebox::clock::{Clock, MonotonicClock, PreciseClock};
use fusebox::observe::{self, MetricsListener};

/// Long enough that no tripped breaker leaves OPEN while the benchmarks run.
const COOLDOWN: Duration = Duration::from_secs(3600);

/// Calls each worker thread makes per criterion iteration in the contended group.
const CALLS_PER_THREAD: u64 = 1_000;

/// The protected call: as cheap as possible, but opaque to the optimiser.
#[inline(always)]
fn work() -> Result<u64, u32> {
    Ok(black_box(1))
}

#[inline(always)]
fn failing() -> Result<u64, u32> {
    Err(black_box(1))
}

// ---------------------------------------------------------------------------------------------
// Breakers under test
// ---------------------------------------------------------------------------------------------

/// The fusebox configurations compared throughout.
#[derive(Clone, Copy)]
enum Config {
    /// The default rule: 5 consecutive failures.
    Consecutive,
    /// 50 failures among the last 100 calls.
    CountWindow,
    /// A 50 % failure rate over 60 s, in 10 buckets.
    TimeWindow,
}

impl Config {
    const ALL: [Config; 3] = [Config::Consecutive, Config::CountWindow, Config::TimeWindow];

    fn label(self) -> &'static str {
        match self {
            Config::Consecutive => "fusebox/consecutive",
            Config::CountWindow => "fusebox/count_window",
            Config::TimeWindow => "fusebox/time_window",
        }
    }

    fn build(self) -> Breaker {
        let builder = Breaker::builder("bench").cooldown(COOLDOWN);
        let builder = match self {
            Config::Consecutive => builder,
            Config::CountWindow => builder.failures_in_last(50, 100),
            Config::TimeWindow => builder
                .time_window(Duration::from_secs(60), 10)
                .failure_rate(0.5),
        };
        builder.build().expect("valid benchmark configuration")
    }
}

fn fusebox_open(config: Config) -> Breaker {
    let b = config.build();
    for _ in 0..1_000 {
        if b.state() == State::Open {
            break;
        }
        let _ = black_box(b.call_sync(failing));
    }
    assert_eq!(b.state(), State::Open, "{} did not trip", config.label());
    assert!(b.call_sync(work).is_err_and(|e| e.is_rejected()));
    b
}

fn recloser() -> recloser::Recloser {
    recloser::Recloser::custom()
        .error_rate(0.5)
        .closed_len(100)
        .half_open_len(10)
        .open_wait(COOLDOWN)
        .build()
}

fn recloser_open() -> recloser::Recloser {
    let r = recloser();
    // The ring must be full before a rate is judged: 100 failures fill it and trip it.
    for _ in 0..1_000 {
        if matches!(r.call(work), Err(recloser::Error::Rejected)) {
            return r;
        }
        let _ = black_box(r.call(failing));
    }
    panic!("recloser did not trip");
}

type Failsafe = failsafe::StateMachine<
    failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>,
    (),
>;

fn failsafe() -> Failsafe {
    let policy =
        failsafe::failure_policy::consecutive_failures(5, failsafe::backoff::constant(COOLDOWN));
    failsafe::Config::new().failure_policy(policy).build()
}

fn failsafe_open() -> Failsafe {
    let f = failsafe();
    for _ in 0..5 {
        let _ = black_box(f.call(failing));
    }
    assert!(!f.is_call_permitted(), "failsafe did not trip");
    f
}

fn criterion_settings() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_millis(2_500))
        .sample_size(30)
        .nresamples(20_000)
}

// ---------------------------------------------------------------------------------------------
// 1 + 2: success in CLOSED, with the bare closure as baseline
// ---------------------------------------------------------------------------------------------

fn closed_success(c: &mut Criterion) {
    let mut g = c.benchmark_group("closed_success");
    g.bench_function("bare_closure", |b| b.iter(|| black_box(work())));
    for config in Config::ALL {
        let breaker = config.build();
        g.bench_function(config.label(), |b| {
            b.iter(|| black_box(breaker.call_sync(work)))
        });
        assert_eq!(breaker.state(), State::Closed);
    }
    let r = recloser();
    g.bench_function("recloser", |b| b.iter(|| black_box(r.call(work))));
    let f = failsafe();
    g.bench_function("failsafe", |b| b.iter(|| black_box(f.call(work))));
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// 3: rejection in OPEN
// ---------------------------------------------------------------------------------------------

fn open_rejection(c: &mut Criterion) {
    let mut g = c.benchmark_group("open_rejection");
    for config in Config::ALL {
        let breaker = fusebox_open(config);
        g.bench_function(config.label(), |b| {
            b.iter(|| black_box(breaker.call_sync(work)))
        });
        assert_eq!(breaker.state(), State::Open);
    }
    let r = recloser_open();
    g.bench_function("recloser", |b| b.iter(|| black_box(r.call(work))));
    let f = failsafe_open();
    g.bench_function("failsafe", |b| b.iter(|| black_box(f.call(work))));
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// 4: two threads on one breaker
// ---------------------------------------------------------------------------------------------

/// Two worker threads, spawned once and released together for each criterion sample.
struct Pool {
    start: Arc<Barrier>,
    done: Arc<Barrier>,
    iters: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    const THREADS: usize = 2;

    /// `call` is one protected call; each worker makes `CALLS_PER_THREAD` of them per
    /// iteration.
    fn new<F>(call: F) -> Pool
    where
        F: Fn() + Clone + Send + 'static,
    {
        let start = Arc::new(Barrier::new(Self::THREADS + 1));
        let done = Arc::new(Barrier::new(Self::THREADS + 1));
        let iters = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..Self::THREADS)
            .map(|_| {
                let (start, done) = (Arc::clone(&start), Arc::clone(&done));
                let (iters, stop) = (Arc::clone(&iters), Arc::clone(&stop));
                let call = call.clone();
                std::thread::spawn(move || {
                    loop {
                        start.wait();
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        let calls = iters.load(Ordering::Acquire) * CALLS_PER_THREAD;
                        for _ in 0..calls {
                            call();
                        }
                        done.wait();
                    }
                })
            })
            .collect();
        Pool {
            start,
            done,
            iters,
            stop,
            workers,
        }
    }

    /// Runs `iters` iterations on both workers; returns the wall time per call of one thread.
    fn run(&self, iters: u64) -> Duration {
        self.iters.store(iters, Ordering::Release);
        let began = Instant::now();
        self.start.wait();
        self.done.wait();
        let elapsed = began.elapsed();
        // One criterion iteration is reported as one call per thread.
        elapsed / CALLS_PER_THREAD as u32
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.start.wait();
        for w in self.workers.drain(..) {
            w.join().expect("worker panicked");
        }
    }
}

fn bench_pool<F>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, call: F)
where
    F: Fn() + Clone + Send + 'static,
{
    let pool = Pool::new(call);
    g.bench_function(name, |b| b.iter_custom(|iters| pool.run(iters)));
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("contended_2_threads");
    bench_pool(&mut g, "bare_closure", || {
        let _ = black_box(work());
    });
    for config in Config::ALL {
        let breaker = config.build();
        let shared = breaker.clone();
        bench_pool(&mut g, config.label(), move || {
            let _ = black_box(shared.call_sync(work));
        });
        assert_eq!(breaker.state(), State::Closed);
    }
    let r = Arc::new(recloser());
    bench_pool(&mut g, "recloser", move || {
        let _ = black_box(r.call(work));
    });
    let f = failsafe();
    bench_pool(&mut g, "failsafe", move || {
        let _ = black_box(f.call(work));
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Reference costs
// ---------------------------------------------------------------------------------------------

fn reference(c: &mut Criterion) {
    let mut g = c.benchmark_group("reference");
    g.bench_function("clock_coarse", |b| {
        b.iter(|| black_box(MonotonicClock.now_nanos()))
    });
    g.bench_function("clock_precise", |b| {
        b.iter(|| black_box(PreciseClock.now_nanos()))
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Observability: what a span and a metrics listener cost
// ---------------------------------------------------------------------------------------------

fn observed(c: &mut Criterion) {
    let mut g = c.benchmark_group("observed");
    let breaker = Config::Consecutive.build();
    g.bench_function("plain", |b| b.iter(|| black_box(breaker.call_sync(work))));
    g.bench_function("span/no_subscriber", |b| {
        b.iter(|| black_box(observe::traced_sync(&breaker, work)))
    });
    let info_only = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(info_only, || {
        g.bench_function("span/info_subscriber", |b| {
            b.iter(|| black_box(observe::traced_sync(&breaker, work)))
        });
    });
    let measured = Breaker::builder("bench")
        .cooldown(COOLDOWN)
        .listener(Arc::new(MetricsListener::new()))
        .build()
        .expect("valid benchmark configuration");
    g.bench_function("metrics_listener/no_recorder", |b| {
        b.iter(|| black_box(measured.call_sync(work)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = criterion_settings();
    targets = closed_success, open_rejection, contended, reference, observed
}
criterion_main!(benches);
