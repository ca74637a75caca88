//! Keyed breakers: isolation between keys, per-key settings, the bounded registry and its
//! eviction rules, concurrency, readiness and cancellation.

use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use fusebox_core::Rejected;
use fusebox_core::breaker::{BreakerSettings, State};
use fusebox_core::clock::ManualClock;
use fusebox_tower::BoxError;
use fusebox_tower::keyed::{BreakerRegistry, KeyedBreakerLayer};
use tower::{Layer, ServiceExt, service_fn};
use tower_test::mock;

/// A request: the key it is for, and whether the upstream should fail it.
type Req = (String, bool);

fn req(key: &str, fail: bool) -> Req {
    (key.to_string(), fail)
}

fn key_of(req: &Req) -> String {
    req.0.clone()
}

async fn upstream((key, fail): Req) -> Result<String, BoxError> {
    if fail {
        Err(format!("{key} failed").into())
    } else {
        Ok(key)
    }
}

fn trip_after(failures: u32, cooldown: Duration) -> BreakerSettings {
    BreakerSettings {
        consecutive_failures: Some(failures),
        cooldown: Some(cooldown),
        ..Default::default()
    }
}

fn is_rejected(error: &BoxError) -> bool {
    error.is::<Rejected>()
}

#[tokio::test]
async fn one_key_tripping_leaves_the_others_serving() -> Result<(), BoxError> {
    let clock = ManualClock::new();
    let registry = BreakerRegistry::<String>::builder("host")
        .settings(trip_after(2, Duration::from_secs(30)))
        .clock(clock.clone())
        .build()?;
    let layer = KeyedBreakerLayer::new(registry.clone(), key_of);
    let svc = layer.layer(service_fn(upstream));

    for _ in 0..2 {
        let error = svc.clone().oneshot(req("a", true)).await.unwrap_err();
        assert!(!is_rejected(&error), "the upstream's own error comes first");
    }
    let rejected = svc
        .clone()
        .oneshot(req("a", false))
        .await
        .unwrap_err()
        .downcast::<Rejected>()?;
    assert_eq!(rejected.name(), "host:a");
    assert_eq!(rejected.state(), State::Open);

    // "b" interleaves one failure between successes and never reaches its threshold.
    for i in 0..20 {
        let result = svc.clone().oneshot(req("b", i % 2 == 0)).await;
        assert!(result.as_ref().map_or_else(|e| !is_rejected(e), |_| true));
    }
    assert_eq!(registry.get("b").map(|b| b.state()), Some(State::Closed));
    assert_eq!(registry.get("a").map(|b| b.state()), Some(State::Open));

    // A service from another `layer` call shares the registry, so it sees "a" open too.
    let other = layer.layer(service_fn(upstream));
    assert!(is_rejected(
        &other.oneshot(req("a", false)).await.unwrap_err()
    ));
    assert_eq!(registry.len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_key_with_a_lower_threshold_trips_sooner() -> Result<(), BoxError> {
    let transitions = Arc::new(AtomicUsize::new(0));
    let seen = transitions.clone();
    let registry = BreakerRegistry::<String>::builder("tenant")
        .settings(trip_after(3, Duration::from_secs(30)))
        .per_key(|tenant: &String| match tenant.as_str() {
            "fragile" => Some(trip_after(1, Duration::from_secs(30))),
            // Invalid: zero failures can never trip. Falls back to the defaults.
            "broken" => Some(trip_after(0, Duration::from_secs(30))),
            _ => None,
        })
        .customize(move |_tenant: &String, builder| {
            let seen = seen.clone();
            builder.on_transition(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
            })
        })
        .build()?;
    let svc = KeyedBreakerLayer::new(registry.clone(), key_of).layer(service_fn(upstream));

    for tenant in ["fragile", "sturdy", "broken"] {
        let _ = svc.clone().oneshot(req(tenant, true)).await;
    }
    let state = |key: &str| registry.get(key).map(|b| b.state());
    assert_eq!(state("fragile"), Some(State::Open));
    assert_eq!(state("sturdy"), Some(State::Closed));
    assert_eq!(state("broken"), Some(State::Closed));

    for tenant in ["sturdy", "broken"] {
        for _ in 0..2 {
            let _ = svc.clone().oneshot(req(tenant, true)).await;
        }
    }
    assert_eq!(state("sturdy"), Some(State::Open));
    assert_eq!(state("broken"), Some(State::Open));

    let broken = registry.get("broken").ok_or("broken was not stored")?;
    assert_eq!(broken.config().consecutive_failures(), Some(3));
    assert_eq!(registry.stats().config_fallbacks, 1);
    // The fallback kept the customiser: every trip reached the listener.
    assert_eq!(transitions.load(Ordering::Relaxed), 3);
    Ok(())
}

#[test]
fn the_registry_stays_bounded_and_evicts_idle_keys_first() -> Result<(), BoxError> {
    let clock = ManualClock::new();
    let registry = BreakerRegistry::<String>::builder("k")
        .max_keys(3)
        .idle_timeout(Duration::from_secs(60))
        .clock(clock.clone())
        .build()?;
    let use_key = |key: &str| registry.get_or_create(&key.to_string());

    for key in ["a", "b", "c"] {
        use_key(key);
    }
    clock.advance(Duration::from_secs(30));
    use_key("a");
    // Inspecting a key is not using it.
    assert!(registry.get("b").is_some());
    clock.advance(Duration::from_secs(30));

    // "b" and "c" have been idle for the timeout, "a" for half of it.
    use_key("d");
    let stats = registry.stats();
    assert_eq!(
        (stats.keys, stats.evicted_idle, stats.evicted_lru),
        (2, 2, 0)
    );
    assert!(registry.get("b").is_none() && registry.get("c").is_none());

    // Full with nothing idle: the least recently used goes.
    use_key("e");
    clock.advance(Duration::from_secs(1));
    use_key("a");
    use_key("e");
    use_key("f");
    assert_eq!(registry.len(), 3);
    assert!(registry.get("d").is_none(), "d was the least recently used");
    assert_eq!(registry.stats().evicted_lru, 1);

    for i in 0..100 {
        use_key(&format!("spray-{i}"));
        assert!(registry.len() <= 3);
    }

    clock.advance(Duration::from_secs(60));
    assert_eq!(registry.evict_idle(), 3);
    assert!(registry.is_empty());
    Ok(())
}

#[tokio::test]
async fn open_breakers_survive_a_spray_of_new_keys() -> Result<(), BoxError> {
    let clock = ManualClock::new();
    let registry = BreakerRegistry::<String>::builder("tenant")
        .settings(trip_after(1, Duration::from_secs(600)))
        .max_keys(8)
        .idle_timeout(Duration::from_secs(60))
        .clock(clock.clone())
        .build()?;
    let svc = KeyedBreakerLayer::new(registry.clone(), key_of).layer(service_fn(upstream));
    let state = |key: &str| registry.get(key).map(|b| b.state());

    let _ = svc.clone().oneshot(req("victim", true)).await;
    assert_eq!(state("victim"), Some(State::Open));

    // Made-up keys push each other out, never the open breaker.
    for i in 0..1_000 {
        let key = format!("spray-{i}");
        assert_eq!(svc.clone().oneshot(req(&key, false)).await?, key);
    }
    assert_eq!(state("victim"), Some(State::Open));
    assert_eq!(registry.len(), 8);

    // Fill the registry with open breakers.
    for i in 0..7 {
        let _ = svc.clone().oneshot(req(&format!("sick-{i}"), true)).await;
    }
    let open = registry
        .snapshot()
        .into_iter()
        .filter(|(_, snap)| snap.state == State::Open)
        .count();
    assert_eq!(open, 8);

    // Full of protected breakers: new keys are served by breakers that are not kept.
    for i in 0..5 {
        let key = format!("late-{i}");
        assert_eq!(svc.clone().oneshot(req(&key, false)).await?, key);
    }
    assert_eq!(registry.stats().served_unstored, 5);
    assert_eq!(registry.len(), 8);
    assert!(registry.get("late-0").is_none());

    // A breaker that closes makes room again.
    registry.get("sick-0").ok_or("sick-0 was evicted")?.reset();
    svc.clone().oneshot(req("late-5", false)).await?;
    assert!(registry.get("late-5").is_some() && registry.get("sick-0").is_none());

    // Rejected calls keep the victim in use while the others go idle.
    clock.advance(Duration::from_secs(50));
    assert!(is_rejected(
        &svc.clone().oneshot(req("victim", false)).await.unwrap_err()
    ));
    clock.advance(Duration::from_secs(20));
    svc.clone().oneshot(req("fresh", false)).await?;
    assert_eq!(state("victim"), Some(State::Open));
    assert_eq!(registry.len(), 2, "only the victim and the new key remain");

    // Idle for the timeout, even an open breaker is evicted.
    clock.advance(Duration::from_secs(60));
    assert_eq!(registry.evict_idle(), 2);
    assert_eq!(state("victim"), None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_and_many_keys_keep_the_bound() -> Result<(), BoxError> {
    const MAX_KEYS: usize = 32;
    let registry = BreakerRegistry::<String>::builder("k")
        .settings(trip_after(3, Duration::from_millis(1)))
        .max_keys(MAX_KEYS)
        .build()?;
    let svc = KeyedBreakerLayer::new(registry.clone(), key_of).layer(service_fn(upstream));

    let mut tasks = Vec::new();
    for task in 0..8_usize {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..400_usize {
                let key = format!("key-{}", (task * 31 + i * 7) % 200);
                let _ = svc.clone().oneshot((key, i % 3 == 0)).await;
            }
        }));
    }
    // Operators poke at the registry meanwhile.
    let operator = registry.clone();
    tasks.push(tokio::spawn(async move {
        for i in 0..200 {
            assert!(operator.len() <= MAX_KEYS);
            assert!(operator.snapshot().len() <= MAX_KEYS);
            operator.remove(&format!("key-{i}"));
            operator.evict_idle();
            tokio::task::yield_now().await;
        }
    }));
    // Plain threads on the registry alone, outside the runtime.
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let registry = registry.clone();
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    registry
                        .get_or_create(&format!("key-{}", (t * 13 + i) % 300))
                        .record_success();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    for thread in threads {
        thread.join().map_err(|_| "a thread panicked")?;
    }
    let stats = registry.stats();
    assert!(stats.keys <= MAX_KEYS);
    assert!(stats.created >= MAX_KEYS as u64);
    Ok(())
}

#[tokio::test]
async fn readiness_is_the_inner_services_and_rejection_comes_from_call() -> Result<(), BoxError> {
    let registry = BreakerRegistry::<String>::builder("k").build()?;
    registry
        .get_or_create(&"closed-for-good".to_string())
        .force_open();
    let layer = KeyedBreakerLayer::new(registry, |req: &String| req.clone());
    let (inner, mut handle) = mock::pair::<String, String>();
    let mut svc = mock::Spawn::new(layer.layer(inner));

    handle.allow(0);
    assert!(
        svc.poll_ready().is_pending(),
        "the inner service is not ready"
    );
    handle.allow(1);
    assert!(matches!(svc.poll_ready(), Poll::Ready(Ok(()))));

    // Rejected in `call`, as a ready error; the inner service never sees the request.
    let error = svc.call("closed-for-good".to_string()).await.unwrap_err();
    assert!(is_rejected(&error));
    assert!(handle.poll_request().is_pending());

    // The readiness reserved before the rejection is still there for the next call.
    let response = svc.call("open-for-business".to_string());
    let (request, send) = handle.next_request().await.ok_or("no request")?;
    assert_eq!(request, "open-for-business");
    send.send_response("done".to_string());
    assert_eq!(response.await?, "done");
    Ok(())
}

#[tokio::test]
async fn a_cancelled_half_open_call_frees_its_trial_slot() -> Result<(), BoxError> {
    let clock = ManualClock::new();
    let registry = BreakerRegistry::<String>::builder("host")
        .settings(trip_after(1, Duration::from_secs(30)))
        .clock(clock.clone())
        .build()?;
    let layer = KeyedBreakerLayer::new(registry.clone(), |req: &String| req.clone());
    let (inner, mut handle) = mock::pair::<String, &'static str>();
    let mut svc = mock::Spawn::new(layer.layer(inner));
    handle.allow(u64::MAX);
    let breaker = registry.get_or_create(&"a".to_string());

    assert!(svc.poll_ready().is_ready());
    let response = svc.call("a".to_string());
    handle
        .next_request()
        .await
        .ok_or("no request")?
        .1
        .send_error("boom");
    assert!(!is_rejected(&response.await.unwrap_err()));
    assert_eq!(breaker.state(), State::Open);

    clock.advance(Duration::from_secs(30));
    assert!(svc.poll_ready().is_ready());
    let trial = svc.call("a".to_string());
    let (_request, _pending_reply) = handle.next_request().await.ok_or("no request")?;
    assert_eq!(breaker.snapshot().trials_in_flight, 1);
    // The only trial slot is taken: another call is rejected.
    assert!(svc.poll_ready().is_ready());
    assert!(is_rejected(&svc.call("a".to_string()).await.unwrap_err()));

    drop(trial); // the caller gave up
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.snapshot().trials_in_flight, 0);

    assert!(svc.poll_ready().is_ready());
    let retry = svc.call("a".to_string());
    handle
        .next_request()
        .await
        .ok_or("no request")?
        .1
        .send_response("ok");
    assert_eq!(retry.await?, "ok");
    assert_eq!(breaker.state(), State::Closed);
    Ok(())
}

/// A key whose hash panics on a chosen call, to poison the registry's lock.
#[derive(Clone)]
struct PanickyKey {
    id: u32,
    hashes: Arc<AtomicUsize>,
    panic_on: usize,
}

impl PanickyKey {
    fn new(id: u32, panic_on: usize) -> Self {
        PanickyKey {
            id,
            hashes: Arc::new(AtomicUsize::new(0)),
            panic_on,
        }
    }
}

impl Hash for PanickyKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        if self.hashes.fetch_add(1, Ordering::Relaxed) == self.panic_on {
            panic!("hash of key {} failed", self.id);
        }
        self.id.hash(state);
    }
}

impl PartialEq for PanickyKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for PanickyKey {}

#[test]
fn a_poisoned_lock_does_not_take_the_registry_down() -> Result<(), BoxError> {
    let registry =
        BreakerRegistry::<PanickyKey>::builder_named_by(|key: &PanickyKey| format!("t{}", key.id))
            .build()?;
    registry.get_or_create(&PanickyKey::new(1, usize::MAX));
    // First hash: the shared lookup; second: the check under the write lock, which panics.
    let poisoning = PanickyKey::new(2, 1);
    let outcome = catch_unwind(AssertUnwindSafe(|| registry.get_or_create(&poisoning)));
    assert!(outcome.is_err());

    let calm = PanickyKey::new(3, usize::MAX);
    assert_eq!(registry.get_or_create(&calm).name(), "t3");
    assert!(registry.get(&PanickyKey::new(1, usize::MAX)).is_some());
    assert_eq!(registry.len(), 2);
    assert_eq!(registry.snapshot().len(), 2);
    Ok(())
}
