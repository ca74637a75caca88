//! Runs one seeded scenario: real fleet engines and breakers, one per instance, calling a
//! dependency whose health and network follow the plan, on tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use fusebox_core::breaker::{Breaker, BreakerListener, State, Transition, TransitionReason};
use fusebox_fleet::{Fleet, FleetMode, ForcedState, OutagePolicy, OutcomeDelta};
use fusebox_policy::TokioClock;

use super::network::{LinkFaults, Network};
use super::plan::Plan;

pub const BREAKER: &str = "dep";
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);
pub const STORE_TIMEOUT: Duration = Duration::from_millis(500);
/// Time left after the faults heal for every instance to reconnect and flush.
pub const SETTLE: Duration = Duration::from_secs(3);
/// How long an instance may still be busy with a fault after it ends: an exchange that
/// hangs until the store timeout, then the longest reconnection backoff.
pub const RECOVERY: Duration = STORE_TIMEOUT.saturating_add(Duration::from_millis(500));
/// The most a reachable link adds to each way of an exchange.
pub const REACHABLE_LATENCY: Duration = Duration::from_millis(20);

/// One local state change of an instance's breaker.
#[derive(Debug, Clone)]
pub struct Local {
    pub at: Instant,
    pub to: State,
    /// Made by the instance itself (its own outcomes, its own trials), not adopted from
    /// the fleet.
    pub own: bool,
}

#[derive(Default)]
struct History(Mutex<Vec<Local>>);

impl BreakerListener for History {
    fn on_transition(&self, t: &Transition) {
        let own = !matches!(t.reason, TransitionReason::Fleet(_));
        let mut h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        h.push(Local {
            at: Instant::now(),
            to: t.to,
            own,
        });
    }
}

/// What one instance did and what its breaker says.
pub struct Instance {
    pub breaker: Breaker,
    pub policy: OutagePolicy,
    history: Arc<History>,
    /// Outcomes the workload recorded through permits, counted apart from the breaker.
    pub recorded: Arc<Mutex<OutcomeDelta>>,
}

impl Instance {
    pub fn history(&self) -> Vec<Local> {
        self.history
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The local state just before `at` (closed if nothing happened yet).
    pub fn state_before(&self, at: Instant) -> State {
        self.history()
            .iter()
            .rev()
            .find(|l| l.at < at)
            .map_or(State::Closed, |l| l.to)
    }
}

/// The kill-switch as the run saw it.
pub struct KillReport {
    pub forced_at: Instant,
    /// Instances reachable through the check window, with their state and whether a call
    /// was admitted at its end.
    pub checked: Vec<(usize, State, bool)>,
}

/// An instance seen while cut off from the store for a while: its outage policy and state.
pub struct OutageSample {
    pub instance: usize,
    pub at: Duration,
    pub policy: OutagePolicy,
    pub state: State,
}

pub struct RunResult {
    pub seed: u64,
    pub mode: FleetMode,
    pub plan: Plan,
    pub start: Instant,
    pub net: Arc<Network>,
    pub instances: Vec<Instance>,
    pub kill: KillReport,
    pub outage_samples: Vec<OutageSample>,
}

fn outage_policy(i: usize) -> OutagePolicy {
    // Every policy in play, some set on the fleet and some on the breaker.
    match i % 5 {
        3 => OutagePolicy::Reject,
        4 => OutagePolicy::Admit,
        _ => OutagePolicy::Local,
    }
}

fn attach(net: &Arc<Network>, i: usize, mode: FleetMode, seed: u64) -> Instance {
    let policy = outage_policy(i);
    let mut fleet = Fleet::builder(net.link(i))
        .instance_id(format!("i{i}"))
        .sync_interval(SYNC_INTERVAL)
        .store_timeout(STORE_TIMEOUT);
    // Half the instances set their policy on the fleet, half on the breaker.
    let on_fleet = i.is_multiple_of(2);
    if on_fleet {
        fleet = fleet.outage(policy);
    }
    let fleet = fleet.build().expect("valid fleet settings");
    let history = Arc::new(History::default());
    let builder = Breaker::builder(BREAKER)
        .failures_in_last(5, 10)
        .cooldown(Duration::from_secs(2))
        .half_open_trials(3, 3)
        .clock(TokioClock::new())
        .seed(seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .listener(history.clone());
    let breaker = if on_fleet {
        fleet.breaker(builder, mode)
    } else {
        fleet.breaker(builder, mode.on_outage(policy))
    }
    .expect("fleet breaker");
    Instance {
        breaker,
        policy,
        history,
        recorded: Arc::default(),
    }
}

/// Calls the dependency through instance `i`'s breaker until the plan ends.
async fn workload(
    plan: Arc<Plan>,
    i: usize,
    breaker: Breaker,
    recorded: Arc<Mutex<OutcomeDelta>>,
    seed: u64,
    start: Instant,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xca11 ^ ((i as u64) << 32));
    let gap = Duration::from_millis(rng.random_range(20..60));
    loop {
        tokio::time::sleep(gap.mul_f64(rng.random_range(0.5..1.5))).await;
        let at = start.elapsed();
        if at >= plan.length {
            return;
        }
        let fails = rng.random_bool(plan.failure_rate(i, at));
        if let Ok(permit) = breaker.try_acquire() {
            let mut r = recorded.lock().unwrap_or_else(|p| p.into_inner());
            if fails {
                permit.failure();
                r.failures += 1;
            } else {
                permit.success();
                r.successes += 1;
            }
        }
    }
}

/// Applies the plan's link faults as they change, and heals every link at the end.
async fn faults(plan: Arc<Plan>, net: Arc<Network>, start: Instant) {
    for at in plan.fault_changes() {
        tokio::time::sleep_until(start + at).await;
        for i in 0..plan.instances {
            net.set_faults(i, plan.faults(i, at));
        }
    }
    tokio::time::sleep_until(start + plan.length).await;
    for i in 0..plan.instances {
        net.set_faults(i, LinkFaults::default());
    }
}

async fn restarts(plan: Arc<Plan>, net: Arc<Network>, start: Instant) {
    for r in &plan.restarts {
        tokio::time::sleep_until(start + r.start).await;
        net.restart_begin();
        tokio::time::sleep_until(start + r.end).await;
        net.restart_end();
    }
}

/// Forces the fleet open, checks every instance that stayed reachable two sync intervals
/// later, and resets.
async fn kill_switch(
    plan: &Plan,
    net: &Network,
    instances: &[Instance],
    start: Instant,
) -> KillReport {
    tokio::time::sleep_until(start + plan.kill.start).await;
    let forced_at = Instant::now();
    net.force(BREAKER, Some(ForcedState::Open)).await;
    let deadline = plan.kill.start + SYNC_INTERVAL * 2;
    tokio::time::sleep_until(start + deadline).await;
    let mut checked = Vec::new();
    // Covers an exchange still hanging on a fault from before the force.
    let window = plan.kill.start.saturating_sub(RECOVERY)..deadline;
    for (i, inst) in instances.iter().enumerate() {
        if plan.reachable(i, window.clone(), REACHABLE_LATENCY) {
            let admitted = inst.breaker.try_acquire().is_ok();
            checked.push((i, inst.breaker.state(), admitted));
        }
    }
    tokio::time::sleep_until(start + plan.kill.end).await;
    net.force(BREAKER, None).await;
    net.note_reset();
    KillReport { forced_at, checked }
}

/// Looks, every 250 ms, at the instances cut off from the store for long enough to have
/// noticed (the store timeout and a sync interval), away from the kill-switch. An instance
/// cut off before it saw the kill-switch lifted keeps it, whatever its policy: it is left
/// out of later looks.
async fn watch_outages(plan: &Plan, instances: &[Instance], start: Instant) -> Vec<OutageSample> {
    let noticed = STORE_TIMEOUT + SYNC_INTERVAL;
    let kill = plan.kill.start.saturating_sub(RECOVERY)..plan.kill.end + RECOVERY;
    let mut samples = Vec::new();
    let mut at = Duration::from_millis(250);
    while at < plan.length {
        tokio::time::sleep_until(start + at).await;
        if !kill.contains(&at) {
            for (i, inst) in instances.iter().enumerate() {
                let lifted = plan.reachable(i, kill.clone(), Duration::from_millis(200));
                if (at < kill.start || lifted)
                    && plan.unreachable_throughout(i, at.saturating_sub(noticed)..at)
                {
                    samples.push(OutageSample {
                        instance: i,
                        at,
                        policy: inst.policy,
                        state: inst.breaker.state(),
                    });
                }
            }
        }
        at += Duration::from_millis(250);
    }
    samples
}

/// Runs the scenario of `seed` in `mode` to the end of its settling time.
pub async fn run(seed: u64, mode: FleetMode, instances: usize) -> RunResult {
    let plan = Arc::new(Plan::draw(seed, instances));
    let net = Network::new(plan.deaf.clone());
    let start = Instant::now();
    for i in 0..instances {
        net.set_faults(i, plan.faults(i, Duration::ZERO));
    }
    let fleet: Vec<Instance> = (0..instances)
        .map(|i| attach(&net, i, mode, seed))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, inst) in fleet.iter().enumerate() {
        tasks.spawn(workload(
            Arc::clone(&plan),
            i,
            inst.breaker.clone(),
            Arc::clone(&inst.recorded),
            seed,
            start,
        ));
    }
    tasks.spawn(faults(Arc::clone(&plan), Arc::clone(&net), start));
    tasks.spawn(restarts(Arc::clone(&plan), Arc::clone(&net), start));
    let (kill, outage_samples) = tokio::join!(
        kill_switch(&plan, &net, &fleet, start),
        watch_outages(&plan, &fleet, start)
    );
    while let Some(done) = tasks.join_next().await {
        done.expect("a simulation task panicked");
    }
    tokio::time::sleep_until(start + plan.length + SETTLE).await;
    RunResult {
        seed,
        mode,
        plan: Arc::try_unwrap(plan).unwrap_or_else(|p| (*p).clone()),
        start,
        net,
        instances: fleet,
        kill,
        outage_samples,
    }
}
