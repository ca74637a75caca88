//! A flaky dependency behind a circuit breaker.
//!
//! The dependency works, goes down for a while, then recovers. The breaker trips when 3 of
//! the last 10 calls fail, rejects calls at once while it is open, lets trial calls through
//! after its cooldown, and closes again once 2 of 2 trials succeed.
//!
//! Run it with `cargo run --example quickstart`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fusebox::Error;
use fusebox::breaker::{Breaker, State, Transition};

/// A pretend downstream: healthy, then an outage between `down_from` and `down_until`.
struct FlakyService {
    started: Instant,
    down_from: Duration,
    down_until: Duration,
    calls: AtomicU32,
}

impl FlakyService {
    async fn fetch(&self, id: u32) -> Result<String, String> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(2)).await;
        let t = self.started.elapsed();
        if t >= self.down_from && t < self.down_until {
            Err(format!("connection refused (item {id})"))
        } else {
            Ok(format!("item {id}"))
        }
    }
}

fn print_transition(t: &Transition) {
    println!(
        "  >> {:>9} -> {:<9} because {}  [window: {} calls, {} failed]",
        t.from.to_string().to_uppercase(),
        t.to.to_string().to_uppercase(),
        t.reason,
        t.stats.calls,
        t.stats.failures,
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let breaker = Breaker::builder("inventory-api")
        .failures_in_last(3, 10)
        .cooldown(Duration::from_millis(400))
        .half_open_trials(2, 2)
        .outcome_log(10)
        .on_transition(print_transition)
        .build()?;

    let service = Arc::new(FlakyService {
        started: Instant::now(),
        down_from: Duration::from_millis(500),
        down_until: Duration::from_millis(1300),
        calls: AtomicU32::new(0),
    });

    println!("calling a dependency that fails between 0.5 s and 1.3 s...");
    let mut seen = Vec::new();
    let (mut ok, mut failed, mut rejected) = (0, 0, 0);
    for id in 0..80u32 {
        let svc = service.clone();
        match breaker.call(|| async move { svc.fetch(id).await }).await {
            Ok(_) => ok += 1,
            Err(Error::Rejected(r)) => {
                rejected += 1;
                if rejected % 5 == 1 {
                    println!("     call {id:>2}: rejected fast ({r})");
                }
            }
            Err(e) => {
                failed += 1;
                println!("     call {id:>2}: failed: {e}");
            }
        }
        let state = breaker.state();
        if seen.last() != Some(&state) {
            seen.push(state);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let snapshot = breaker.snapshot();
    println!();
    println!(
        "done: {ok} succeeded, {failed} failed, {rejected} rejected without touching the dependency"
    );
    println!(
        "the dependency saw {} calls; final state {}; recent outcomes: {:?}",
        service.calls.load(Ordering::Relaxed),
        snapshot.state,
        snapshot
            .recent
            .iter()
            .map(|e| e.outcome)
            .collect::<Vec<_>>()
    );
    println!("states visited: {seen:?}");

    let cycle = [State::Closed, State::Open, State::HalfOpen, State::Closed];
    let visited_in_order =
        cycle.iter().all(|s| seen.contains(s)) && seen.last() == Some(&State::Closed);
    if !visited_in_order {
        return Err(format!("expected the full cycle {cycle:?}, saw {seen:?}").into());
    }
    Ok(())
}
