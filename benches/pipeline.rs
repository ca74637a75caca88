//! Pipeline overhead on the success path, and a call that fails twice before it succeeds,
//! against `tower::retry` and `backon`.
//!
//! Run with `cargo bench --bench pipeline`. Compare ratios within one run, not absolute
//! times across runs.
//!
//! Times are the benchmark thread's CPU time, not wall-clock time: on a shared machine a
//! thread that is descheduled half the time would otherwise look twice as slow, and by how
//! much would change from one benchmark to the next.
//!
//! Groups:
//!
//! * `success`: a bare async closure, a bare [`Breaker::call`], and retry + breaker as a
//!   [`Pipeline`] and as a typed [`Stack`], for two breaker configurations. Futures are
//!   polled once with a no-op waker: everything on this path completes at once, so no
//!   runtime is in the measurement, and a future that returned `Pending` would abort the
//!   benchmark. `breaker`, `pipeline` and `stack` take the future by value like any executor
//!   or `.await` does (one move of the whole future); `*_in_place` polls it where it was
//!   built, which isolates the cost of that move. `*_awaited` awaits the call inside an
//!   async block polled where it lies, as async code uses them: the compiler sees through
//!   the whole of a breaker call or a stack there, not through a pipeline's policies, which
//!   are data. Each row calls its own closure (see [`op!`]).
//! * `success_block_on`: the default breaker, pipeline and stack again, each call run by
//!   tokio's current-thread `block_on`, which moves the future on its way in like a real
//!   executor.
//! * `success_parts`: the pieces of the default pipeline, polled in place: `Retry::call`
//!   alone, and one-policy pipelines holding only the retry or only the breaker.
//! * `retry_twice_zero_delay`: the operation fails twice, then succeeds (3 attempts, 2
//!   retries, no delay between them), polled the same way. No timer is touched by anyone.
//! * `retry_twice_paused_1ms`: the same, with a 1 ms delay before each retry slept on
//!   tokio's timer, in a current-thread runtime whose clock is paused so sleeps auto-advance.

use std::cell::Cell;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use backon::{ConstantBuilder, Retryable};
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, criterion_group, criterion_main};
use fusebox_core::backoff::Backoff;
use fusebox_core::breaker::Breaker;
use fusebox_policy::pipeline::Pipeline;
use fusebox_policy::policy::Retry;
use fusebox_policy::stack::Stack;
use tower::{Service, ServiceExt};

/// CPU time consumed by the calling thread, reported in the same units as wall time.
struct ThreadCpuTime {
    wall: WallTime,
}

impl ThreadCpuTime {
    fn now() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec and the clock id is a constant the
        // platform defines.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "the thread CPU clock is unavailable");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        Self::now()
    }
    fn end(&self, started: Duration) -> Duration {
        Self::now().saturating_sub(started)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}

type Bench = Criterion<ThreadCpuTime>;

fn criterion() -> Bench {
    Criterion::default()
        .with_measurement(ThreadCpuTime { wall: WallTime })
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .without_plots()
}

/// The operation's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Boom;

/// Polls `fut` once with a no-op waker. Every future benchmarked this way must complete
/// without waiting on anything (a timer, I/O); one that does not is a benchmark bug.
fn now_or_never<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a benchmarked future waited on something"),
    }
}

/// Like [`now_or_never`], but polls the future where it was built instead of moving it into
/// a function first: what remains is the cost of running it, without the cost of moving it.
macro_rules! now_or_never_in_place {
    ($fut:expr) => {{
        let mut fut = pin!($fut);
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(out) => out,
            Poll::Pending => panic!("a benchmarked future waited on something"),
        }
    }};
}

/// The operation of the success path. A macro, not a variable, so that each benchmark gets
/// its own closure type and so its own copy of the call's code, as each call site in a
/// program does; one closure shared by every row would leave the compiler one copy with
/// several callers, inlined into none of them.
macro_rules! op {
    () => {
        || async { Ok::<u64, Boom>(black_box(7)) }
    };
}

/// The breaker configurations measured on the success path.
fn breakers() -> [(&'static str, Breaker); 2] {
    [
        (
            "default",
            Breaker::builder("bench").build().expect("valid breaker"),
        ),
        (
            "50_of_100",
            Breaker::builder("bench")
                .failures_in_last(50, 100)
                .build()
                .expect("valid breaker"),
        ),
    ]
}

fn default_retry() -> Retry<u64, Boom> {
    Retry::builder().build().expect("valid retry")
}

fn success(c: &mut Bench) {
    let op = op!();
    let mut group = c.benchmark_group("success");

    group.bench_function("bare", |b| b.iter(|| now_or_never(op())));

    for (label, breaker) in breakers() {
        let pipeline = Pipeline::builder()
            .retry(default_retry())
            .breaker(breaker.clone())
            .build()
            .expect("valid pipeline");
        assert_eq!(now_or_never(breaker.call(op)).ok(), Some(7));
        let stack = Stack::new().retry(default_retry()).breaker(breaker.clone());
        assert_eq!(now_or_never(pipeline.call(op)).ok(), Some(7));
        assert_eq!(now_or_never(stack.call(op)).ok(), Some(7));
        eprintln!(
            "future sizes ({label}): breaker.call {} B, pipeline.call {} B, stack.call {} B",
            size_of_val(&breaker.call(op)),
            size_of_val(&pipeline.call(op)),
            size_of_val(&stack.call(op)),
        );

        group.bench_function(format!("breaker/{label}"), |b| {
            b.iter(|| now_or_never(breaker.call(op!())))
        });
        group.bench_function(format!("breaker_in_place/{label}"), |b| {
            b.iter(|| now_or_never_in_place!(breaker.call(op!())))
        });
        group.bench_function(format!("pipeline/{label}"), |b| {
            b.iter(|| now_or_never(pipeline.call(op!())))
        });
        group.bench_function(format!("pipeline_in_place/{label}"), |b| {
            b.iter(|| now_or_never_in_place!(pipeline.call(op!())))
        });
        group.bench_function(format!("stack/{label}"), |b| {
            b.iter(|| now_or_never(stack.call(op!())))
        });
        group.bench_function(format!("stack_in_place/{label}"), |b| {
            b.iter(|| now_or_never_in_place!(stack.call(op!())))
        });
        // As async code uses them: awaited inside an async block, the caller's own future,
        // which is polled where it lies as an executor polls a task.
        group.bench_function(format!("breaker_awaited/{label}"), |b| {
            b.iter(|| now_or_never_in_place!(async { breaker.call(op!()).await }))
        });
        group.bench_function(format!("pipeline_awaited/{label}"), |b| {
            b.iter(|| now_or_never_in_place!(async { pipeline.call(op!()).await }))
        });
        group.bench_function(format!("stack_awaited/{label}"), |b| {
            b.iter(|| now_or_never_in_place!(async { stack.call(op!()).await }))
        });
    }
    group.finish();
}

fn success_block_on(c: &mut Bench) {
    let op = || async { Ok::<u64, Boom>(black_box(7)) };
    let [(_, breaker), _] = breakers();
    let pipeline = Pipeline::builder()
        .retry(default_retry())
        .breaker(breaker.clone())
        .build()
        .expect("valid pipeline");
    let stack = Stack::new().retry(default_retry()).breaker(breaker.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("success_block_on");
    group.bench_function("breaker/default", |b| {
        b.iter(|| rt.block_on(breaker.call(op)))
    });
    group.bench_function("pipeline/default", |b| {
        b.iter(|| rt.block_on(pipeline.call(op)))
    });
    group.bench_function("stack/default", |b| b.iter(|| rt.block_on(stack.call(op))));
    group.finish();
}

fn success_parts(c: &mut Bench) {
    let op = || async { Ok::<u64, Boom>(black_box(7)) };
    let [(_, breaker), _] = breakers();
    let retry = default_retry();
    let retry_only = Pipeline::builder()
        .retry(default_retry())
        .build()
        .expect("valid pipeline");
    let breaker_only = Pipeline::builder()
        .breaker(breaker)
        .build()
        .expect("valid pipeline");
    eprintln!(
        "future sizes: retry.call {} B, one-policy pipeline.call {} B",
        size_of_val(&retry.call(op)),
        size_of_val(&retry_only.call(op)),
    );

    let mut group = c.benchmark_group("success_parts");
    group.bench_function("retry_alone", |b| {
        b.iter(|| now_or_never_in_place!(retry.call(op)))
    });
    group.bench_function("pipeline_retry_only", |b| {
        b.iter(|| now_or_never_in_place!(retry_only.call(op)))
    });
    group.bench_function("pipeline_breaker_only", |b| {
        b.iter(|| now_or_never_in_place!(breaker_only.call(op)))
    });
    group.finish();
}

/// Fails the first two attempts of each call and succeeds on the third, returning the
/// attempt count. `reset` before each call.
#[derive(Default)]
struct Flaky {
    attempts: Cell<u64>,
}

impl Flaky {
    fn reset(&self) {
        self.attempts.set(0);
    }

    fn attempt(&self) -> Result<u64, Boom> {
        let n = self.attempts.get() + 1;
        self.attempts.set(n);
        if n <= 2 { Err(Boom) } else { Ok(n) }
    }
}

/// A tower policy that retries any error up to `left` times, waiting on `wait` before each
/// retry.
#[derive(Clone)]
struct RetryErrors<W> {
    left: u32,
    wait: W,
}

impl<W, Fut, Res> tower::retry::Policy<(), Res, Boom> for RetryErrors<W>
where
    W: Fn() -> Fut + Clone,
    Fut: Future<Output = ()>,
{
    type Future = Fut;

    fn retry(&mut self, _req: &mut (), result: &mut Result<Res, Boom>) -> Option<Fut> {
        if result.is_ok() || self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some((self.wait)())
    }

    fn clone_request(&mut self, _req: &()) -> Option<()> {
        Some(())
    }
}

fn fusebox_retry(delay: Duration, seed: Option<u64>) -> Retry<u64, Boom> {
    let builder = Retry::builder()
        .max_retries(2)
        .backoff(Backoff::fixed(delay).build().expect("valid backoff"));
    match seed {
        Some(seed) => builder.seed(seed),
        None => builder,
    }
    .build()
    .expect("valid retry")
}

fn retry_twice_zero_delay(c: &mut Bench) {
    let flaky = Flaky::default();
    let fusebox = fusebox_retry(Duration::ZERO, None);
    let fusebox_seeded = fusebox_retry(Duration::ZERO, Some(1));
    let mut tower_svc = tower::retry::Retry::new(
        RetryErrors {
            left: 2,
            wait: || ready(()),
        },
        tower::service_fn(|()| ready(flaky.attempt())),
    );
    let backoff = ConstantBuilder::new()
        .with_delay(Duration::ZERO)
        .with_max_times(2);
    // Like fusebox, which does not sleep when the delay is zero.
    let skip_zero = |delay: Duration| async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    };

    let fusebox_call = |retry: &Retry<u64, Boom>| {
        flaky.reset();
        now_or_never(retry.call(|| async { flaky.attempt() }))
    };
    let mut tower_call = || {
        flaky.reset();
        now_or_never(async {
            let svc = tower_svc.ready().await?;
            svc.call(()).await
        })
    };
    let backon_call = || {
        flaky.reset();
        now_or_never(
            (|| async { flaky.attempt() })
                .retry(backoff)
                .sleep(skip_zero),
        )
    };

    assert_eq!(fusebox_call(&fusebox).ok(), Some(3));
    assert_eq!(fusebox_call(&fusebox_seeded).ok(), Some(3));
    assert_eq!(tower_call(), Ok(3));
    assert_eq!(backon_call(), Ok(3));

    let mut group = c.benchmark_group("retry_twice_zero_delay");
    group.bench_function("fusebox", |b| b.iter(|| fusebox_call(&fusebox)));
    group.bench_function("fusebox_seeded", |b| {
        b.iter(|| fusebox_call(&fusebox_seeded))
    });
    group.bench_function("tower", |b| b.iter(&mut tower_call));
    group.bench_function("backon", |b| b.iter(backon_call));
    group.finish();
}

fn retry_twice_paused_1ms(c: &mut Bench) {
    const DELAY: Duration = Duration::from_millis(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let flaky = Flaky::default();
    let fusebox = fusebox_retry(DELAY, None);
    let mut tower_svc = tower::retry::Retry::new(
        RetryErrors {
            left: 2,
            wait: || tokio::time::sleep(DELAY),
        },
        tower::service_fn(|()| -> Ready<Result<u64, Boom>> { ready(flaky.attempt()) }),
    );
    let backoff = ConstantBuilder::new().with_delay(DELAY).with_max_times(2);

    let fusebox_call = || {
        flaky.reset();
        rt.block_on(fusebox.call(|| async { flaky.attempt() }))
    };
    let mut tower_call = || {
        flaky.reset();
        rt.block_on(async {
            let svc = tower_svc.ready().await?;
            svc.call(()).await
        })
    };
    let backon_call = || {
        flaky.reset();
        rt.block_on((|| async { flaky.attempt() }).retry(backoff))
    };

    assert_eq!(fusebox_call().ok(), Some(3));
    assert_eq!(tower_call(), Ok(3));
    assert_eq!(backon_call(), Ok(3));

    let mut group = c.benchmark_group("retry_twice_paused_1ms");
    group.bench_function("fusebox", |b| b.iter(fusebox_call));
    group.bench_function("tower", |b| b.iter(&mut tower_call));
    group.bench_function("backon", |b| b.iter(backon_call));
    group.finish();
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = success, success_block_on, success_parts, retry_twice_zero_delay, retry_twice_paused_1ms
}
criterion_main!(benches);
