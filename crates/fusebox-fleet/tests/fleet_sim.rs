//! A hundred instances of one fleet breaker under seeded faults (partitions between
//! instances and the store, store restarts that lose everything, slow links), on tokio's
//! paused clock: a run is exactly reproducible from its seed, printed with every failure.
//!
//! `FLEET_SIM_SEEDS=7,8,9 cargo test -p fusebox-fleet --test fleet_sim -- --nocapture`
//! replays given seeds.

mod sim;

use fusebox_fleet::FleetMode;

use sim::check::{self, Figures};
use sim::run::{SYNC_INTERVAL, run};

const INSTANCES: usize = 100;

fn seeds() -> Vec<u64> {
    match std::env::var("FLEET_SIM_SEEDS") {
        Ok(list) => list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .expect("FLEET_SIM_SEEDS: comma-separated integers")
            })
            .collect(),
        Err(_) => vec![1, 2, 3],
    }
}

async fn simulate(mode: FleetMode) {
    let mut propagation = Vec::new();
    for seed in seeds() {
        let wall = std::time::Instant::now();
        let run = run(seed, mode, INSTANCES).await;
        let mut figures = Figures::default();
        check::outcomes_are_conserved(&run, &mut figures).await;
        check::one_open_per_trip(&run, &mut figures);
        check::opens_are_accounted(&run).await;
        check::kill_switch_obeyed(&run, &mut figures);
        check::outage_policies_hold(&run, &mut figures);
        check::propagation(&run, &mut figures);
        check::propagation_is_bounded(&run, &figures);
        println!(
            "{mode} seed {seed}: {} outcomes ({} went with restarted stores), {} trips, \
             {} reopenings, kill-switch obeyed by {} reachable instances within {:?}, \
             {} looks at cut-off instances, propagation p50 {:?} p99 {:?} max {:?} over {} \
             samples; {:?} of wall time",
            figures.recorded,
            figures.lost_with_the_store,
            figures.trips,
            figures.reopens,
            figures.kill_checked,
            check::percentile(&figures.kill_latency, 1.0),
            figures.outage_samples,
            figures.percentile(0.5),
            figures.percentile(0.99),
            figures.percentile(1.0),
            figures.propagation.len(),
            wall.elapsed(),
        );
        propagation.extend(figures.propagation);
    }
    println!(
        "{mode}: propagation p99 {:?} over every seed (sync interval {SYNC_INTERVAL:?})",
        check::percentile(&propagation, 0.99)
    );
    assert!(
        !propagation.is_empty(),
        "no trip reached a closed instance to measure"
    );
    assert!(check::percentile(&propagation, 0.99) <= check::backstop_bound());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn pooled_fleet_under_faults() {
    simulate(FleetMode::Pooled).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn quorum_fleet_under_faults() {
    simulate(FleetMode::quorum(10, 0.3).expect("valid quorum")).await;
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn any_fleet_under_faults() {
    simulate(FleetMode::Any).await;
}

/// Everything a run decided, in order: the fleet's opens and closes and every instance's
/// transitions and counts.
fn fingerprint(run: &sim::run::RunResult) -> String {
    let mut out = String::new();
    for o in run.net.opens() {
        out += &format!(
            "open {:?} i{} {:?} {:?}\n",
            o.at - run.start,
            o.by,
            o.from,
            o.voters
        );
    }
    for c in run.net.closes() {
        out += &format!("close {:?}\n", c.at - run.start);
    }
    for (i, inst) in run.instances.iter().enumerate() {
        out += &format!("i{i} {:?}:", inst.breaker.own_totals());
        for l in inst.history() {
            out += &format!(" {:?} {:?} {}", l.at - run.start, l.to, l.own);
        }
        out += "\n";
    }
    out
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_run_replays_from_its_seed() {
    let first = fingerprint(&run(11, FleetMode::Any, INSTANCES).await);
    let again = fingerprint(&run(11, FleetMode::Any, INSTANCES).await);
    assert!(first.lines().count() > INSTANCES, "{first}");
    if first != again {
        let diverged = first
            .lines()
            .zip(again.lines())
            .find(|(a, b)| a != b)
            .map(|(a, b)| {
                let at = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
                let from = at.saturating_sub(120);
                format!("first: …{}\nagain: …{}", &a[from..], &b[from..])
            });
        panic!("seed 11 ran two different ways; the first difference: {diverged:?}");
    }
}
