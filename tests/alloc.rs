//! The CLOSED fast path, a pipeline or stack call that succeeds at once, a call to an
//! endpoint that is not ejected and a call chaos leaves alone allocate nothing: counted
//! with a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use fusebox::breaker::Breaker;
use fusebox::clock::ManualClock;
use fusebox::pipeline::Pipeline;
use fusebox::policy::{ConcurrencyLimit, Fallback, Retry};
use fusebox::stack::Stack;

struct Counting;

// Per thread: only the allocations of the thread under test count, not those of a
// background thread (the clock ticker) starting up at the same moment.
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.try_with(Cell::get).unwrap_or(false) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::SeqCst)
}

fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    pin!(f).poll(&mut cx)
}

// One test function: the counter is global, so nothing else may run beside it.
#[test]
fn closed_path_rejections_and_pipeline_success_do_not_allocate() {
    let breakers = [
        Breaker::builder("consecutive").build().unwrap(),
        Breaker::builder("count")
            .failures_in_last(50, 100)
            .build()
            .unwrap(),
        Breaker::builder("time")
            .time_window(Duration::from_secs(60), 10)
            .failure_rate(0.5)
            .build()
            .unwrap(),
        Breaker::builder("slow")
            .slow_calls(Duration::from_secs(1), 0.5)
            .build()
            .unwrap(),
    ];
    // Warm up lazily initialised process state (thread-local stripe hint, clock origin).
    for b in &breakers {
        b.call_sync(|| Ok::<_, ()>(())).unwrap();
    }
    for b in &breakers {
        let n = allocations_during(|| {
            for i in 0..10_000u32 {
                let r = b.call_sync(|| if i % 10 == 0 { Err(i) } else { Ok(i) });
                std::hint::black_box(r.ok());
                b.try_acquire().unwrap().success();
                let r = poll_once(b.call(|| async { Ok::<_, ()>(1) }));
                assert!(matches!(r, Poll::Ready(Ok(1))));
            }
        });
        assert_eq!(n, 0, "{} allocated on the CLOSED path", b.name());
    }

    let open = Breaker::builder("open")
        .consecutive_failures(1)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    open.record_failure();
    let _ = open.try_acquire();
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            assert!(open.call_sync(|| Ok::<_, ()>(())).is_err());
        }
    });
    assert_eq!(n, 0, "a rejection allocated");

    // Retry outside the breaker, with a fallback around both: the success path.
    let pipeline = Pipeline::builder()
        .fallback(Fallback::value(0u32))
        .retry(Retry::builder().build().unwrap())
        .breaker(Breaker::builder("pipeline").build().unwrap())
        .build()
        .unwrap();
    let op = || async { Ok::<u32, ()>(1) };
    assert!(matches!(poll_once(pipeline.call(op)), Poll::Ready(Ok(1))));
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            assert!(matches!(poll_once(pipeline.call(op)), Poll::Ready(Ok(1))));
        }
    });
    assert_eq!(n, 0, "a pipeline call that succeeded at once allocated");

    // The same as a typed stack, with a timeout per attempt: its timer is made only when a
    // call waits, and no policy boxes anything on a success.
    let stack = Stack::new()
        .fallback(Fallback::value(0u32))
        .retry(Retry::builder().build().unwrap())
        .breaker(Breaker::builder("stack").build().unwrap())
        .timeout(Duration::from_secs(1))
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _runtime = rt.enter(); // the timeout reads tokio's clock
    assert!(matches!(poll_once(stack.call(op)), Poll::Ready(Ok(1))));
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            assert!(matches!(poll_once(stack.call(op)), Poll::Ready(Ok(1))));
        }
    });
    assert_eq!(n, 0, "a stack call that succeeded at once allocated");

    // A rate limiter with permits to spare, alone and in a stack: the permit is taken
    // without awaiting, so the waiting state (boxed) is never made.
    let limiter = fusebox_policy::policy::RateLimiter::builder("alloc")
        .per_second(1_000_000_000)
        .clock(ManualClock::new()) // a clock that never moves: the burst is never used up
        .burst(100_000)
        .build()
        .unwrap();
    let limited = Stack::new()
        .policy(limiter.clone())
        .breaker(Breaker::builder("limited").build().unwrap());
    assert!(matches!(poll_once(limited.call(op)), Poll::Ready(Ok(1))));
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            assert!(limiter.try_acquire().is_ok());
            assert!(matches!(poll_once(limiter.call(op)), Poll::Ready(Ok(1))));
            assert!(matches!(poll_once(limited.call(op)), Poll::Ready(Ok(1))));
        }
    });
    assert_eq!(n, 0, "a rate-limited call that found a permit allocated");
    // The adaptive concurrency limit: admission, measurement and, once per window, a move of
    // the limit, in a stack and on its own.
    let limit = ConcurrencyLimit::builder("limit")
        .window(Duration::from_nanos(1), 1)
        .build()
        .unwrap();
    let limited = Stack::new().policy(limit.clone());
    assert!(matches!(poll_once(limited.call(op)), Poll::Ready(Ok(1))));
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            assert!(matches!(poll_once(limited.call(op)), Poll::Ready(Ok(1))));
            limit.try_acquire().unwrap().success();
            limit.try_acquire_owned().unwrap().dropped();
        }
    });
    assert_eq!(n, 0, "a call under the concurrency limit allocated");

    // Outlier ejection: admitting and recording for a known endpoint that is not ejected,
    // with String keys (the owned permit takes the caller's key, never a copy).
    let detector = fusebox::OutlierDetector::builder("replicas")
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let endpoints = ["10.0.0.1:80".to_string(), "10.0.0.2:80".to_string()];
    detector.available(&endpoints);
    let mut owned_keys: Vec<String> = (0..10_000).map(|i| endpoints[i % 2].clone()).collect();
    let n = allocations_during(|| {
        for (i, key) in owned_keys.drain(..).enumerate() {
            let endpoint = &endpoints[i % 2];
            detector.admit(endpoint).unwrap().success();
            if i % 3 == 0 {
                detector.admit(endpoint).unwrap().failure();
            }
            detector.admit_owned(key).unwrap().success();
        }
    });
    assert_eq!(n, 0, "a call to an endpoint not ejected allocated");

    // Chaos switched off, alone and in a stack; and switched on with nothing drawn.
    let chaos = fusebox::policy::Chaos::builder("chaos")
        .fault(1.0, || ())
        .build()
        .unwrap();
    let quiet = fusebox::policy::Chaos::builder("quiet")
        .enabled(true)
        .fault(0.0, || ())
        .build()
        .unwrap();
    let chaotic = Stack::new().policy(chaos.clone());
    let op = || async { Ok::<u32, ()>(1) };
    let n = allocations_during(|| {
        for _ in 0..10_000 {
            assert!(chaos.decide().is_none());
            assert!(matches!(poll_once(chaos.call(op)), Poll::Ready(Ok(1))));
            assert!(matches!(poll_once(chaotic.call(op)), Poll::Ready(Ok(1))));
            assert!(matches!(poll_once(quiet.call(op)), Poll::Ready(Ok(1))));
        }
    });
    assert_eq!(n, 0, "chaos that injected nothing allocated");

    // The same two as tower layers: a request to an endpoint not ejected, and a request
    // disabled chaos lets through.
    use tower::{Layer, Service};
    let echo = tower::service_fn(|n: u32| async move { Ok::<u32, std::io::Error>(n) });
    let hosts = fusebox::OutlierDetector::builder("hosts")
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut outlier = fusebox::tower::outlier::OutlierLayer::new(
        hosts,
        |n: &u32| *n % 2,
        fusebox::classify::ErrIsFailure,
    )
    .layer(echo);
    let mut chaotic = fusebox::tower::chaos::ChaosLayer::new(
        fusebox::policy::Chaos::builder("chaos")
            .fault(1.0, || Ok(0))
            .build()
            .unwrap(),
    )
    .layer(echo);
    let _ = poll_once(outlier.call(0));
    let _ = poll_once(outlier.call(1));
    let n = allocations_during(|| {
        for i in 0..10_000u32 {
            assert!(matches!(poll_once(outlier.call(i)), Poll::Ready(Ok(v)) if v == i));
            assert!(matches!(poll_once(chaotic.call(i)), Poll::Ready(Ok(v)) if v == i));
        }
    });
    assert_eq!(
        n, 0,
        "the outlier or chaos layer allocated on its pass-through path"
    );
}
