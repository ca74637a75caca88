//! Store outage on a Redis server of the test's own: frozen, then killed and restarted.
//! Calls keep flowing without waiting on the store, one warning is logged per outage, the
//! state resyncs, and no outcome is counted twice.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fusebox_core::breaker::{Breaker, State};
use fusebox_fleet::contract::wait_until;
use fusebox_fleet::{Fleet, FleetMode, ForcedState, StateStore};
use fusebox_redis::RedisStore;

/// Collects everything logged, from every thread.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn count(&self, needle: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .matches(needle)
            .count()
    }
}

/// Makes calls for `span`, asserting none waits; returns how many.
async fn calls_for(breaker: &Breaker, span: Duration) -> u64 {
    let start = Instant::now();
    let mut made = 0;
    let mut slowest = Duration::ZERO;
    while start.elapsed() < span {
        let t = Instant::now();
        let permit = breaker.try_acquire().expect("admitted while healthy");
        permit.success();
        slowest = slowest.max(t.elapsed());
        made += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(
        slowest < Duration::from_millis(20),
        "a call waited {slowest:?}: calls must never wait on the store"
    );
    made
}

async fn own_successes(store: &RedisStore) -> Option<u64> {
    let view = store.view("dep").await.ok()??;
    view.instances
        .iter()
        .find(|i| i.id == "a")
        .map(|i| i.successes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_keeps_calls_flowing_and_counts_nothing_twice() {
    let Some(mut server) = common::OwnRedis::start() else {
        return;
    };
    let log = Log::default();
    let writer = log.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();

    let store = RedisStore::builder(server.url())
        .prefix("outage:")
        .response_timeout(Duration::from_millis(200))
        .build()
        .expect("store");
    let fleet = Fleet::builder(store.clone())
        .instance_id("a")
        .sync_interval(Duration::from_millis(50))
        .store_timeout(Duration::from_millis(300))
        .build()
        .expect("fleet");
    let breaker = fleet
        .breaker(
            Breaker::builder("dep").consecutive_failures(1000),
            FleetMode::Pooled,
        )
        .expect("breaker");

    let mut recorded = calls_for(&breaker, Duration::from_millis(300)).await;
    assert!(
        wait_until(Duration::from_secs(5), || async {
            own_successes(&store).await == Some(recorded)
        })
        .await
        .is_some(),
        "flushed before the outage"
    );

    // 1. The server freezes: flushes hang and time out, and are retried with the same
    //    sequence numbers; when it thaws it serves every one of them.
    server.signal("-STOP");
    recorded += calls_for(&breaker, Duration::from_millis(1500)).await;
    server.signal("-CONT");
    recorded += calls_for(&breaker, Duration::from_millis(200)).await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            own_successes(&store).await == Some(recorded)
        })
        .await
        .is_some(),
        "after the outage the store holds {:?} of {recorded} successes",
        own_successes(&store).await
    );
    // Every retried flush has landed by now; none may have counted twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(own_successes(&store).await, Some(recorded));
    assert_eq!(
        log.count("fleet store unreachable"),
        1,
        "one warning per outage"
    );
    assert_eq!(log.count("fleet store reachable again"), 1);

    // 2. The server dies and comes back empty: the instance registers again and follows
    //    the new store's state.
    server.kill();
    calls_for(&breaker, Duration::from_millis(500)).await;
    server.restart();
    calls_for(&breaker, Duration::from_millis(100)).await;
    assert!(
        wait_until(Duration::from_secs(10), || async {
            own_successes(&store).await.is_some()
        })
        .await
        .is_some(),
        "the instance registers with the restarted server"
    );
    store
        .force("dep", Some(ForcedState::Open), None)
        .await
        .expect("force");
    assert!(
        wait_until(Duration::from_secs(5), || async {
            breaker.state() == State::ForcedOpen
        })
        .await
        .is_some(),
        "the restarted store's forced state reaches the breaker"
    );
    assert_eq!(
        log.count("fleet store unreachable"),
        2,
        "one warning per outage"
    );
}
