//! Turns successive readings into what the page shows: rates per second from the growth of
//! cumulative counts, a bounded ring of recent points per breaker, and a bounded log of
//! transitions. Time is passed in, so tests drive it without sleeping.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use fusebox_core::State;
use serde_json::{Value, json};

use super::source::{BreakerReading, SourceError};

/// One point of a breaker's sparkline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Point {
    /// Wall-clock time of the sample (ms since the Unix epoch).
    pub(crate) at_ms: u64,
    /// Calls per second since the previous sample; `None` for the first one or after a
    /// count went backwards.
    pub(crate) calls_per_sec: Option<f64>,
    /// Failure rate at the sample.
    pub(crate) failure_rate: Option<f64>,
}

/// One logged state change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LoggedTransition {
    pub(crate) at_ms: u64,
    pub(crate) name: String,
    pub(crate) from: State,
    pub(crate) to: State,
    /// Transitions the breaker made between the two samples (more than one when several
    /// happened within one interval).
    pub(crate) steps: u64,
    pub(crate) reason: Option<String>,
}

#[derive(Debug)]
struct Track {
    last: BreakerReading,
    /// Monotonic time of `last`.
    last_at: Duration,
    calls_per_sec: Option<f64>,
    failures_per_sec: Option<f64>,
    rejections_per_sec: Option<f64>,
    points: VecDeque<Point>,
}

/// The dashboard's memory between samples.
#[derive(Debug)]
pub(crate) struct Sampler {
    history: usize,
    log_len: usize,
    tracks: BTreeMap<String, Track>,
    log: VecDeque<LoggedTransition>,
    error: Option<String>,
    /// Wall-clock time of the last successful read.
    fresh_ms: Option<u64>,
    /// Wall-clock time of the last attempt.
    sampled_ms: u64,
    samples: u64,
}

/// Growth per second of a cumulative count; `None` when either reading lacks it, no time
/// passed, or it went backwards (the breaker was recreated).
fn per_sec(before: Option<u64>, after: Option<u64>, elapsed: Duration) -> Option<f64> {
    let (before, after) = (before?, after?);
    let secs = elapsed.as_secs_f64();
    if after < before || secs <= 0.0 {
        return None;
    }
    Some((after - before) as f64 / secs)
}

/// A value for a sparkline: three decimals are more than a 40-pixel line can show.
fn rounded(value: Option<f64>) -> Option<f64> {
    value
        .filter(|v| v.is_finite())
        .map(|v| (v * 1000.0).round() / 1000.0)
}

impl Sampler {
    /// Keeps `history` points per breaker and the last `log_len` transitions (both at least 1).
    pub(crate) fn new(history: usize, log_len: usize) -> Self {
        Sampler {
            history: history.max(1),
            log_len: log_len.max(1),
            tracks: BTreeMap::new(),
            log: VecDeque::new(),
            error: None,
            fresh_ms: None,
            sampled_ms: 0,
            samples: 0,
        }
    }

    /// Takes one read's result: `now` is monotonic time, `wall_ms` the time to show.
    pub(crate) fn ingest(
        &mut self,
        now: Duration,
        wall_ms: u64,
        read: Result<Vec<BreakerReading>, SourceError>,
    ) {
        self.sampled_ms = wall_ms;
        self.samples = self.samples.saturating_add(1);
        let readings = match read {
            Ok(readings) => readings,
            Err(e) => {
                // The last good readings stay, marked stale by the error.
                self.error = Some(e.message().to_owned());
                return;
            }
        };
        self.error = None;
        self.fresh_ms = Some(wall_ms);
        let mut seen = BTreeMap::new();
        for reading in readings {
            seen.insert(reading.name.clone(), reading);
        }
        // Breakers no longer read are gone (unregistered, or removed from the store).
        self.tracks.retain(|name, _| seen.contains_key(name));
        for (name, reading) in seen {
            match self.tracks.get_mut(&name) {
                Some(track) => {
                    let elapsed = now.saturating_sub(track.last_at);
                    if reading.generation != track.last.generation
                        || reading.state != track.last.state
                    {
                        self.log.push_back(LoggedTransition {
                            at_ms: wall_ms,
                            name: name.clone(),
                            from: track.last.state,
                            to: reading.state,
                            steps: reading
                                .generation
                                .saturating_sub(track.last.generation)
                                .max(1),
                            reason: reading.reason.clone(),
                        });
                        while self.log.len() > self.log_len {
                            self.log.pop_front();
                        }
                    }
                    track.calls_per_sec = per_sec(track.last.calls, reading.calls, elapsed);
                    track.failures_per_sec =
                        per_sec(track.last.failures, reading.failures, elapsed);
                    track.rejections_per_sec =
                        per_sec(track.last.rejections, reading.rejections, elapsed);
                    track.last = reading;
                    track.last_at = now;
                }
                None => {
                    self.tracks.insert(
                        name.clone(),
                        Track {
                            last: reading,
                            last_at: now,
                            calls_per_sec: None,
                            failures_per_sec: None,
                            rejections_per_sec: None,
                            points: VecDeque::new(),
                        },
                    );
                }
            }
            if let Some(track) = self.tracks.get_mut(&name) {
                track.points.push_back(Point {
                    at_ms: wall_ms,
                    calls_per_sec: track.calls_per_sec,
                    failure_rate: track.last.failure_rate,
                });
                while track.points.len() > self.history {
                    track.points.pop_front();
                }
            }
        }
    }

    /// A breaker's points, oldest first.
    #[cfg(test)]
    pub(crate) fn points(&self, name: &str) -> Vec<Point> {
        self.tracks
            .get(name)
            .map(|t| t.points.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The transitions log, oldest first.
    #[cfg(test)]
    pub(crate) fn transitions(&self) -> Vec<LoggedTransition> {
        self.log.iter().cloned().collect()
    }

    /// The rates per second of calls, failures and rejections of a breaker.
    #[cfg(test)]
    pub(crate) fn rates(&self, name: &str) -> Option<(Option<f64>, Option<f64>, Option<f64>)> {
        self.tracks
            .get(name)
            .map(|t| (t.calls_per_sec, t.failures_per_sec, t.rejections_per_sec))
    }

    /// What the page and the JSON endpoint show.
    pub(crate) fn frame(&self, interval: Duration) -> Value {
        let breakers: Vec<Value> = self
            .tracks
            .iter()
            .map(|(name, t)| {
                let r = &t.last;
                json!({
                    "name": name,
                    "state": r.state.as_str(),
                    "generation": r.generation,
                    "failure_rate": r.failure_rate,
                    "slow_rate": r.slow_rate,
                    "calls": r.calls,
                    "failures": r.failures,
                    "rejections": r.rejections,
                    "calls_per_sec": t.calls_per_sec,
                    "failures_per_sec": t.failures_per_sec,
                    "rejections_per_sec": t.rejections_per_sec,
                    "instances": r.instances.map(|i| json!({
                        "live": i.live,
                        "open_votes": i.open_votes,
                        "known": i.known,
                    })),
                    "reason": r.reason,
                    // Two plain series rather than one object per point: a frame goes to every
                    // open page once per interval.
                    "spark": {
                        "from_ms": t.points.front().map(|p| p.at_ms),
                        "calls_per_sec": t.points.iter().map(|p| rounded(p.calls_per_sec)).collect::<Vec<_>>(),
                        "failure_rate": t.points.iter().map(|p| rounded(p.failure_rate)).collect::<Vec<_>>(),
                    },
                })
            })
            .collect();
        let transitions: Vec<Value> = self
            .log
            .iter()
            .rev()
            .map(|t| {
                json!({
                    "at_ms": t.at_ms,
                    "name": t.name,
                    "from": t.from.as_str(),
                    "to": t.to.as_str(),
                    "steps": t.steps,
                    "reason": t.reason,
                })
            })
            .collect();
        json!({
            "sampled_at_ms": self.sampled_ms,
            "fresh_at_ms": self.fresh_ms,
            "samples": self.samples,
            "interval_ms": u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
            "error": self.error,
            "breakers": breakers,
            "transitions": transitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(name: &str, state: State, generation: u64, calls: u64) -> BreakerReading {
        let mut r = BreakerReading::new(name, state);
        r.generation = generation;
        r.calls = Some(calls);
        r.failures = Some(calls / 2);
        r.rejections = Some(0);
        r
    }

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn rates_per_second_come_from_the_growth_between_samples() {
        let mut s = Sampler::new(10, 10);
        s.ingest(SEC, 1_000, Ok(vec![reading("a", State::Closed, 0, 100)]));
        assert_eq!(
            s.rates("a"),
            Some((None, None, None)),
            "no rate from one sample"
        );
        s.ingest(
            SEC * 3,
            3_000,
            Ok(vec![reading("a", State::Closed, 0, 300)]),
        );
        assert_eq!(s.rates("a"), Some((Some(100.0), Some(50.0), Some(0.0))));
        // Half a second later, 25 more calls: 50 per second.
        s.ingest(
            Duration::from_millis(3_500),
            3_500,
            Ok(vec![reading("a", State::Closed, 0, 325)]),
        );
        assert_eq!(s.rates("a").unwrap().0, Some(50.0));
    }

    #[test]
    fn a_count_going_backwards_or_unknown_gives_no_rate() {
        let mut s = Sampler::new(10, 10);
        s.ingest(SEC, 1, Ok(vec![reading("a", State::Closed, 0, 100)]));
        s.ingest(SEC * 2, 2, Ok(vec![reading("a", State::Closed, 0, 10)]));
        assert_eq!(s.rates("a").unwrap().0, None);
        // Counting resumes from the new base.
        s.ingest(SEC * 3, 3, Ok(vec![reading("a", State::Closed, 0, 20)]));
        assert_eq!(s.rates("a").unwrap().0, Some(10.0));
        let mut unknown = BreakerReading::new("a", State::Closed);
        unknown.calls = None;
        s.ingest(SEC * 4, 4, Ok(vec![unknown]));
        assert_eq!(s.rates("a"), Some((None, None, None)));
        // No time elapsed: no division by zero.
        s.ingest(SEC * 4, 5, Ok(vec![reading("a", State::Closed, 0, 30)]));
        s.ingest(SEC * 4, 6, Ok(vec![reading("a", State::Closed, 0, 40)]));
        assert_eq!(s.rates("a").unwrap().0, None);
    }

    #[test]
    fn sparkline_values_are_rounded_and_finite() {
        assert_eq!(rounded(Some(1.0 / 3.0)), Some(0.333));
        assert_eq!(rounded(Some(80.0)), Some(80.0));
        assert_eq!(rounded(Some(f64::NAN)), None);
        assert_eq!(rounded(Some(f64::INFINITY)), None);
        assert_eq!(rounded(None), None);
    }

    #[test]
    fn the_ring_keeps_the_last_points_only() {
        let mut s = Sampler::new(3, 10);
        for i in 0..10u64 {
            s.ingest(
                SEC * (i as u32),
                i,
                Ok(vec![reading("a", State::Closed, 0, i * 10)]),
            );
        }
        let points = s.points("a");
        assert_eq!(points.len(), 3);
        assert_eq!(
            points.iter().map(|p| p.at_ms).collect::<Vec<_>>(),
            [7, 8, 9]
        );
        assert!(points.iter().all(|p| p.calls_per_sec == Some(10.0)));
        let frame = s.frame(SEC);
        let spark = &frame["breakers"][0]["spark"];
        assert_eq!(spark["from_ms"], 7);
        assert_eq!(spark["calls_per_sec"], json!([10.0, 10.0, 10.0]));
        assert_eq!(spark["failure_rate"], json!([null, null, null]));
    }

    #[test]
    fn the_transitions_log_is_bounded_newest_first_in_the_frame() {
        let mut s = Sampler::new(5, 2);
        s.ingest(SEC, 1, Ok(vec![reading("a", State::Closed, 0, 0)]));
        let mut open = reading("a", State::Open, 1, 5);
        open.reason = Some("tripped: 5 consecutive failures (threshold 5)".into());
        s.ingest(SEC * 2, 2, Ok(vec![open]));
        s.ingest(SEC * 3, 3, Ok(vec![reading("a", State::HalfOpen, 2, 5)]));
        // Open again after a failed trial and a cooldown within one interval: one entry
        // from half-open to open, three steps.
        s.ingest(SEC * 4, 4, Ok(vec![reading("a", State::Open, 5, 6)]));
        let log = s.transitions();
        assert_eq!(log.len(), 2, "bounded to 2");
        assert_eq!(
            (log[0].from, log[0].to, log[0].steps),
            (State::Open, State::HalfOpen, 1)
        );
        assert_eq!(
            (log[1].from, log[1].to, log[1].steps),
            (State::HalfOpen, State::Open, 3)
        );
        let frame = s.frame(SEC);
        assert_eq!(frame["transitions"][0]["to"], "open");
        assert_eq!(frame["transitions"][0]["at_ms"], 4);
        assert_eq!(frame["transitions"][1]["to"], "half_open");
        // Unchanged state and generation: nothing logged.
        s.ingest(SEC * 5, 5, Ok(vec![reading("a", State::Open, 5, 6)]));
        assert_eq!(s.transitions().len(), 2);
        assert_eq!(s.transitions()[1].at_ms, 4);
    }

    #[test]
    fn a_failed_read_keeps_the_last_readings_and_recovers() {
        let mut s = Sampler::new(5, 5);
        s.ingest(SEC, 1_000, Ok(vec![reading("a", State::Closed, 0, 10)]));
        s.ingest(SEC * 2, 2_000, Err(SourceError::new("connection refused")));
        let frame = s.frame(SEC);
        assert_eq!(frame["error"], "connection refused");
        assert_eq!(frame["fresh_at_ms"], 1_000);
        assert_eq!(frame["sampled_at_ms"], 2_000);
        assert_eq!(frame["breakers"][0]["name"], "a");
        // Back: the rate spans the outage.
        s.ingest(SEC * 3, 3_000, Ok(vec![reading("a", State::Closed, 0, 30)]));
        let frame = s.frame(SEC);
        assert_eq!(frame["error"], Value::Null);
        assert_eq!(frame["fresh_at_ms"], 3_000);
        assert_eq!(s.rates("a").unwrap().0, Some(10.0));
    }

    #[test]
    fn breakers_gone_from_the_source_leave_the_page() {
        let mut s = Sampler::new(5, 5);
        s.ingest(
            SEC,
            1,
            Ok(vec![
                reading("a", State::Closed, 0, 0),
                reading("b", State::Closed, 0, 0),
            ]),
        );
        s.ingest(SEC * 2, 2, Ok(vec![reading("b", State::Closed, 0, 0)]));
        let frame = s.frame(SEC);
        let names: Vec<&str> = frame["breakers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["b"]);
        assert!(s.points("a").is_empty());
    }
}
