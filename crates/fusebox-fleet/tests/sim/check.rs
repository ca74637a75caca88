//! What a finished run must show, and what it measured.

use std::time::Duration;

use tokio::time::Instant;

use fusebox_core::breaker::State;
use fusebox_fleet::{FleetMode, FleetState, OutagePolicy, OutcomeDelta};

use super::run::{BREAKER, REACHABLE_LATENCY, RECOVERY, RunResult, SYNC_INTERVAL};

/// Figures of one run, printed with its seed.
#[derive(Debug, Default)]
pub struct Figures {
    pub recorded: u64,
    pub lost_with_the_store: u64,
    pub trips: usize,
    pub reopens: usize,
    pub propagation: Vec<Duration>,
    pub kill_checked: usize,
    pub kill_latency: Vec<Duration>,
    pub outage_samples: usize,
}

impl Figures {
    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&self.propagation, p)
    }
}

pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn add(a: OutcomeDelta, b: OutcomeDelta) -> OutcomeDelta {
    OutcomeDelta {
        successes: a.successes + b.successes,
        failures: a.failures + b.failures,
        slow: a.slow + b.slow,
    }
}

/// After the faults healed and the syncs settled, the store holds every outcome the
/// instances recorded exactly once, except those a store that has since restarted had
/// acknowledged: they went with it, as data does with a server that keeps none.
pub async fn outcomes_are_conserved(run: &RunResult, figures: &mut Figures) {
    let seed = run.seed;
    let epoch = run.net.epoch();
    let view = run
        .net
        .view(BREAKER)
        .await
        .unwrap_or_else(|| panic!("seed {seed}: the store lost the breaker"));
    let mut recorded_all = OutcomeDelta::default();
    let mut lost_all = OutcomeDelta::default();
    for (i, inst) in run.instances.iter().enumerate() {
        let recorded = *inst.recorded.lock().unwrap();
        let own = inst.breaker.own_totals();
        assert_eq!(
            (own.successes, own.failures),
            (recorded.successes, recorded.failures),
            "seed {seed}: instance i{i} counted other outcomes than it recorded"
        );
        let lost = run.net.acked_before(i, epoch);
        let entry = view
            .instances
            .iter()
            .find(|e| e.id == format!("i{i}"))
            .unwrap_or_else(|| panic!("seed {seed}: i{i} is not in the store after settling"));
        assert!(
            entry.live,
            "seed {seed}: i{i} holds no lease after settling"
        );
        assert_eq!(
            (entry.successes, entry.failures),
            (
                recorded.successes - lost.successes,
                recorded.failures - lost.failures
            ),
            "seed {seed}: i{i} recorded {recorded:?}, of which {lost:?} went with a restarted \
             store; the store holds another count"
        );
        recorded_all = add(recorded_all, recorded);
        lost_all = add(lost_all, lost);
    }
    let totals = view.totals();
    assert_eq!(
        (totals.successes, totals.failures),
        (
            recorded_all.successes - lost_all.successes,
            recorded_all.failures - lost_all.failures
        ),
        "seed {seed}: fleet totals"
    );
    figures.recorded = recorded_all.successes + recorded_all.failures;
    figures.lost_with_the_store = lost_all.successes + lost_all.failures;
}

/// The last moment before `at` the fleet closed (trials passed, or an operator reset it).
fn last_close(run: &RunResult, at: Instant) -> Instant {
    let closes = run.net.closes().into_iter().map(|c| c.at);
    closes.filter(|t| *t <= at).max().unwrap_or(run.start)
}

/// The last moment before `at` the fleet closed or its store came back empty.
fn episode_start(run: &RunResult, at: Instant) -> Instant {
    let wipes = run.net.wipes().into_iter().filter(|t| *t <= at);
    wipes.max().unwrap_or(run.start).max(last_close(run, at))
}

/// When instance `i` made the verdict it is open on at `at`: its own (not adopted from the
/// fleet) and fresh (made since the fleet last closed). `None` otherwise.
fn own_fresh_verdict(run: &RunResult, i: usize, at: Instant) -> Option<Instant> {
    let since = last_close(run, at);
    let history = run.instances[i].history();
    let last_open = history
        .iter()
        .rev()
        .find(|l| l.at <= at && l.to == State::Open)?;
    (last_open.own && last_open.at >= since).then_some(last_open.at)
}

/// Instance `i`'s local transitions, for a failure message.
fn story(run: &RunResult, i: usize) -> String {
    let steps: Vec<String> = run.instances[i]
        .history()
        .iter()
        .map(|l| {
            let by = if l.own { "itself" } else { "the fleet" };
            format!("{:?} {:?} by {by}", l.at - run.start, l.to)
        })
        .collect();
    steps.join(", ")
}

/// Every OPEN that started a trip episode stands on fresh verdicts: in `Pooled` and `Any`
/// mode the tripping instance's own, in `Quorum` mode a quorum of live instances' own,
/// counted at the moment of the transition; each made since the fleet last closed, and none
/// behind two trips. So no episode opens twice, and no stale or adopted state opens the
/// fleet again. Reopenings after failed fleet trials belong to their episode.
pub fn one_open_per_trip(run: &RunResult, figures: &mut Figures) {
    let seed = run.seed;
    let mut used = std::collections::HashSet::new();
    for open in run.net.opens() {
        let when = open.at - run.start;
        if open.from != FleetState::Closed {
            figures.reopens += 1;
            continue;
        }
        figures.trips += 1;
        match run.mode {
            FleetMode::Quorum { .. } => {
                let votes = u32::try_from(open.voters.len()).expect("small");
                assert!(
                    run.mode.opens_with(votes, open.live),
                    "seed {seed}: the fleet opened at {when:?} with {votes} of {} live \
                     instances voting",
                    open.live
                );
                for &v in &open.voters {
                    let verdict = own_fresh_verdict(run, v, open.at);
                    assert!(
                        verdict.is_some_and(|t| used.insert((v, t))),
                        "seed {seed}: i{v} voted at {when:?} on a state it did not judge \
                         since the fleet closed at {:?}, or that backed a trip before: {}",
                        last_close(run, open.at) - run.start,
                        story(run, v)
                    );
                }
            }
            _ => {
                let verdict = own_fresh_verdict(run, open.by, open.at);
                assert!(
                    verdict.is_some_and(|t| used.insert((open.by, t))),
                    "seed {seed}: i{} opened the fleet at {when:?} on a state it did not \
                     judge since the fleet closed at {:?}, or that backed a trip before: {}",
                    open.by,
                    last_close(run, open.at) - run.start,
                    story(run, open.by)
                );
            }
        }
    }
    assert!(figures.trips > 0, "seed {seed}: the fleet never tripped");
}

/// Trips are separated by closes (or a store that came back empty), and the store's own
/// count of opens in its last life matches what the links saw: no OPEN went unrecorded.
pub async fn opens_are_accounted(run: &RunResult) {
    let seed = run.seed;
    let opens = run.net.opens();
    let trips: Vec<_> = opens
        .iter()
        .filter(|o| o.from == FleetState::Closed)
        .collect();
    for pair in trips.windows(2) {
        let ended = episode_start(run, pair[1].at);
        assert!(
            ended > pair[0].at,
            "seed {seed}: the fleet tripped at {:?} and again at {:?} with no close between",
            pair[0].at - run.start,
            pair[1].at - run.start
        );
    }
    let epoch = run.net.epoch();
    let view = run.net.view(BREAKER).await.expect("the breaker's record");
    let seen = opens.iter().filter(|o| o.epoch == epoch).count() as u64;
    assert_eq!(
        view.record.opens, seen,
        "seed {seed}: opens in the store's last life"
    );
}

/// Every instance that reached the store throughout obeyed the kill-switch within two sync
/// intervals, and rejected a call.
pub fn kill_switch_obeyed(run: &RunResult, figures: &mut Figures) {
    let seed = run.seed;
    let kill = &run.kill;
    assert!(
        kill.checked.len() >= run.instances.len() / 10,
        "seed {seed}: only {} instances stayed reachable; the plan cuts too much",
        kill.checked.len()
    );
    for &(i, state, admitted) in &kill.checked {
        assert!(
            state == State::ForcedOpen && !admitted,
            "seed {seed}: i{i} is {state:?} (a call admitted: {admitted}) two sync intervals \
             after the kill-switch at {:?}",
            kill.forced_at - run.start
        );
    }
    figures.kill_checked = kill.checked.len();
    for &(i, _, _) in &kill.checked {
        let obeyed = run.instances[i]
            .history()
            .iter()
            .find(|l| l.at >= kill.forced_at && l.to == State::ForcedOpen)
            .map(|l| l.at - kill.forced_at);
        figures
            .kill_latency
            .push(obeyed.expect("checked ForcedOpen above"));
    }
}

/// Cut off long enough to notice, an instance fails closed under `Reject`, open under
/// `Admit`, and under `Local` keeps a state of its own making.
pub fn outage_policies_hold(run: &RunResult, figures: &mut Figures) {
    let seed = run.seed;
    for s in &run.outage_samples {
        let expected = match s.policy {
            OutagePolicy::Reject => s.state == State::ForcedOpen,
            OutagePolicy::Admit => s.state == State::Disabled,
            _ => !matches!(s.state, State::ForcedOpen | State::Disabled),
        };
        assert!(
            expected,
            "seed {seed}: i{} ({:?}) is {:?} at {:?}, cut off from the store",
            s.instance, s.policy, s.state, s.at
        );
    }
    figures.outage_samples = run.outage_samples.len();
    assert!(
        figures.outage_samples > 0,
        "seed {seed}: no instance was cut off long enough to look at"
    );
}

/// How long each fleet trip took to reach every instance that was closed and reachable:
/// from the store's transition to the instance's own breaker rejecting.
pub fn propagation(run: &RunResult, figures: &mut Figures) {
    let bound = Duration::from_secs(1);
    for open in run.net.opens() {
        if open.from != FleetState::Closed {
            continue;
        }
        let t0 = open.at - run.start;
        let window = t0.saturating_sub(RECOVERY)..t0 + bound;
        for (i, inst) in run.instances.iter().enumerate() {
            if i == open.by
                || !run.plan.reachable(i, window.clone(), REACHABLE_LATENCY)
                || inst.state_before(open.at) != State::Closed
            {
                continue;
            }
            let seen = inst
                .history()
                .iter()
                .find(|l| l.at >= open.at && l.to != State::Closed)
                .map(|l| l.at - open.at);
            // Not seen within the bound: counted at the bound, so the percentiles show it.
            figures.propagation.push(seen.unwrap_or(bound).min(bound));
        }
    }
}

/// The longest a reachable instance may take to hear of a fleet decision when no notice
/// reaches it: the rest of its sync interval, then one round trip.
pub fn backstop_bound() -> Duration {
    SYNC_INTERVAL + REACHABLE_LATENCY * 2
}

/// Propagation stays within what the periodic sync promises even to instances no notice
/// reaches: p99 within one sync interval and a round trip, none beyond two intervals. (A
/// run whose trips all met instances already open or cut off has nothing to measure.)
pub fn propagation_is_bounded(run: &RunResult, figures: &Figures) {
    let seed = run.seed;
    let p99 = figures.percentile(0.99);
    let max = figures.percentile(1.0);
    assert!(
        p99 <= backstop_bound() && max <= SYNC_INTERVAL * 2,
        "seed {seed}: propagation p99 {p99:?}, max {max:?} (sync interval {SYNC_INTERVAL:?})"
    );
}
