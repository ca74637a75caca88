//! A run's faults and the dependency's health, all drawn from one seed before the run
//! starts, as spans of time from its beginning.

use std::ops::Range;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

use super::network::{Cut, LinkFaults};

/// One fault or health episode over a span of the run.
#[derive(Debug, Clone)]
pub struct Span<T> {
    pub during: Range<Duration>,
    pub what: T,
}

impl<T> Span<T> {
    fn overlaps(&self, window: &Range<Duration>) -> bool {
        self.during.start < window.end && window.start < self.during.end
    }
}

/// The dependency failing for some instances (or all) during a span.
#[derive(Debug, Clone)]
pub struct Sickness {
    /// `None`: every instance.
    pub who: Option<Vec<usize>>,
    pub failure_rate: f64,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub instances: usize,
    /// Calls and faults stop here; the fleet then heals and settles.
    pub length: Duration,
    pub base_latency: Vec<Duration>,
    /// Instances that never hear the store's notices.
    pub deaf: Vec<bool>,
    pub cuts: Vec<Span<(usize, Cut)>>,
    pub slow: Vec<Span<(Vec<usize>, Duration)>>,
    pub restarts: Vec<Range<Duration>>,
    /// The kill-switch: forced open at the start, reset at the end.
    pub kill: Range<Duration>,
    pub sick: Vec<Span<Sickness>>,
    /// Failure rate of a healthy dependency.
    pub background_failures: f64,
}

fn within(rng: &mut StdRng, range: Range<Duration>) -> Duration {
    let (lo, hi) = (range.start.as_millis() as u64, range.end.as_millis() as u64);
    Duration::from_millis(rng.random_range(lo..hi))
}

fn some_instances(rng: &mut StdRng, instances: usize, how_many: Range<usize>) -> Vec<usize> {
    let k = rng.random_range(how_many);
    sample(rng, instances, k).into_vec()
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl Plan {
    pub fn draw(seed: u64, instances: usize) -> Plan {
        let mut rng = StdRng::seed_from_u64(seed);
        let length = Duration::from_secs(30);
        let base_latency = (0..instances)
            .map(|_| Duration::from_micros(rng.random_range(300..3_000)))
            .collect();

        let deaf = (0..instances).map(|_| rng.random_bool(0.2)).collect();
        let mut restarts: Vec<Range<Duration>> = Vec::new();
        while restarts.len() < 2 {
            let start = within(&mut rng, ms(3_000)..length - ms(5_000));
            let span = start..start + within(&mut rng, ms(200)..ms(1_500));
            let clear = span.start.saturating_sub(ms(2_000))..span.end + ms(2_000);
            if restarts
                .iter()
                .all(|r| r.start >= clear.end || r.end <= clear.start)
            {
                restarts.push(span);
            }
        }
        restarts.sort_by_key(|r| r.start);
        // The kill-switch acts on a live store, and its check window stays clear of restarts.
        let kill = loop {
            let start = within(&mut rng, ms(5_000)..length - ms(6_000));
            let span = start..start + ms(1_500);
            let clear = span.start.saturating_sub(ms(2_500))..span.end + ms(2_500);
            if restarts
                .iter()
                .all(|r| r.start >= clear.end || r.end <= clear.start)
            {
                break span;
            }
        };

        let mut cuts = Vec::new();
        for _ in 0..14 {
            let start = within(&mut rng, ms(1_000)..length - ms(3_000));
            let end = start + within(&mut rng, ms(150)..ms(3_000));
            let cut = if rng.random_bool(0.5) {
                Cut::Refused
            } else {
                Cut::Blackhole
            };
            for i in some_instances(&mut rng, instances, 1..25) {
                cuts.push(Span {
                    during: start..end,
                    what: (i, cut),
                });
            }
        }
        let mut slow = Vec::new();
        for _ in 0..10 {
            let start = within(&mut rng, ms(500)..length - ms(2_000));
            let end = start + within(&mut rng, ms(500)..ms(4_000));
            // Mostly a slower network; sometimes slower than the store timeout allows.
            let latency = if rng.random_bool(0.8) {
                within(&mut rng, ms(5)..ms(60))
            } else {
                within(&mut rng, ms(250)..ms(400))
            };
            slow.push(Span {
                during: start..end,
                what: (some_instances(&mut rng, instances, 5..40), latency),
            });
        }
        let mut sick = Vec::new();
        for _ in 0..3 {
            let start = within(&mut rng, ms(1_000)..length - ms(5_000));
            sick.push(Span {
                during: start..start + within(&mut rng, ms(1_500)..ms(4_000)),
                what: Sickness {
                    who: None,
                    failure_rate: 0.9,
                },
            });
            // One sick path: a few instances fail alone.
            let start = within(&mut rng, ms(1_000)..length - ms(4_000));
            sick.push(Span {
                during: start..start + within(&mut rng, ms(1_000)..ms(3_000)),
                what: Sickness {
                    who: Some(some_instances(&mut rng, instances, 3..8)),
                    failure_rate: 1.0,
                },
            });
        }
        Plan {
            instances,
            length,
            base_latency,
            deaf,
            cuts,
            slow,
            restarts,
            kill,
            sick,
            background_failures: 0.01,
        }
    }

    /// Instance `i`'s link at `at` from the start.
    pub fn faults(&self, i: usize, at: Duration) -> LinkFaults {
        let now = at..at + Duration::from_nanos(1);
        let cut = self
            .cuts
            .iter()
            .filter(|s| s.what.0 == i && s.overlaps(&now))
            .map(|s| s.what.1)
            .max_by_key(|c| *c == Cut::Blackhole);
        let extra = self
            .slow
            .iter()
            .filter(|s| s.overlaps(&now) && s.what.0.contains(&i))
            .map(|s| s.what.1)
            .max()
            .unwrap_or_default();
        LinkFaults {
            cut,
            latency: self.base_latency[i] + extra,
        }
    }

    /// Every moment some link's faults change.
    pub fn fault_changes(&self) -> Vec<Duration> {
        let mut at: Vec<Duration> = self
            .cuts
            .iter()
            .flat_map(|s| [s.during.start, s.during.end])
            .chain(
                self.slow
                    .iter()
                    .flat_map(|s| [s.during.start, s.during.end]),
            )
            .collect();
        at.sort();
        at.dedup();
        at
    }

    /// The dependency's failure rate for instance `i` at `at`.
    pub fn failure_rate(&self, i: usize, at: Duration) -> f64 {
        let now = at..at + Duration::from_nanos(1);
        self.sick
            .iter()
            .filter(|s| s.overlaps(&now))
            .filter(|s| s.what.who.as_ref().is_none_or(|w| w.contains(&i)))
            .map(|s| s.what.failure_rate)
            .fold(self.background_failures, f64::max)
    }

    /// Whether instance `i` could not reach the store at any moment of `window`: one cut of
    /// its link, or one restart of the store, covers it all.
    pub fn unreachable_throughout(&self, i: usize, window: Range<Duration>) -> bool {
        let covers = |span: &Range<Duration>| span.start <= window.start && window.end <= span.end;
        self.cuts.iter().any(|s| s.what.0 == i && covers(&s.during))
            || self.restarts.iter().any(covers)
    }

    /// Whether instance `i` exchanged with the store without trouble over `window`: no cut,
    /// no restart, and at most `max_latency` each way. The window should start early enough
    /// to cover an exchange still hanging on an earlier fault.
    pub fn reachable(&self, i: usize, window: Range<Duration>, max_latency: Duration) -> bool {
        let cut = self
            .cuts
            .iter()
            .any(|s| s.what.0 == i && s.overlaps(&window));
        let slow = self
            .slow
            .iter()
            .any(|s| s.overlaps(&window) && s.what.0.contains(&i) && s.what.1 > max_latency);
        let restart = self
            .restarts
            .iter()
            .any(|r| r.start < window.end && window.start < r.end);
        !cut && !slow && !restart && self.base_latency[i] <= max_latency
    }
}
