//! Model-based property tests: random sequences of acquire / outcome / cancel / time advance,
//! run against the concurrent breaker, the sans-IO machine and a deliberately naive reference
//! model written here from the rules in plain words. All three must agree at every step.

use std::collections::VecDeque;
use std::time::Duration;

use fusebox::Outcome;
use fusebox::breaker::{Breaker, Machine, OwnedPermit, State, Ticket};
use fusebox::clock::ManualClock;
use proptest::prelude::*;

const MS: u64 = 1_000_000;

#[derive(Debug, Clone)]
struct Cfg {
    consecutive: Option<u32>,
    /// (failures, window size): "k of the last n".
    k_of_n: Option<(u32, u32)>,
    /// (rate, min calls) over the same count window (size 6 when no k_of_n).
    rate: Option<(f64, u32)>,
    successes: u32,
    trials: u32,
    concurrency: u32,
    cooldown_ms: u64,
    half_open_max_ms: Option<u64>,
}

impl Cfg {
    /// With no rule at all, a breaker trips after 5 failures in a row.
    fn consecutive_rule(&self) -> Option<u32> {
        match (self.consecutive, self.k_of_n, self.rate) {
            (None, None, None) => Some(5),
            (c, _, _) => c,
        }
    }

    fn window(&self) -> Option<u32> {
        match (self.k_of_n, self.rate) {
            (Some((_, n)), _) => Some(n),
            (None, Some(_)) => Some(6),
            (None, None) => None,
        }
    }

    fn breaker(&self, clock: &ManualClock) -> Breaker {
        let mut b = Breaker::builder("model")
            .half_open_trials(self.successes, self.trials)
            .half_open_concurrency(self.concurrency)
            .cooldown(Duration::from_millis(self.cooldown_ms))
            .clock(clock.clone());
        if let Some(n) = self.consecutive {
            b = b.consecutive_failures(n);
        }
        if let Some(n) = self.window() {
            b = b.count_window(n);
        }
        if let Some((k, n)) = self.k_of_n {
            b = b.failures_in_last(k, n);
        }
        if let Some((rate, min)) = self.rate {
            b = b.failure_rate(rate).min_calls(min);
        }
        if let Some(ms) = self.half_open_max_ms {
            b = b.half_open_max_duration(Duration::from_millis(ms));
        }
        b.build().expect("strategy only makes valid configs")
    }
}

fn cfg_strategy() -> impl Strategy<Value = Cfg> {
    (
        proptest::option::of(1u32..5),
        proptest::option::of((1u32..7).prop_flat_map(|n| (1..=n, Just(n)))),
        proptest::option::of((0.2f64..1.0, 1u32..7)),
        (1u32..4).prop_flat_map(|s| (Just(s), s..5)),
        1u32..5,
        1u64..20,
        proptest::option::of(1u64..30),
    )
        .prop_map(
            |(consecutive, k_of_n, rate, (successes, trials), conc, cooldown_ms, ho)| {
                let rate = rate.map(|(r, min)| {
                    let window = k_of_n.map(|(_, n)| n).unwrap_or(6);
                    (r, min.min(window))
                });
                Cfg {
                    consecutive,
                    k_of_n,
                    rate,
                    successes,
                    trials,
                    // Above the trials too: the first results decide, the rest are
                    // not counted.
                    concurrency: conc,
                    cooldown_ms,
                    half_open_max_ms: ho,
                }
            },
        )
}

#[derive(Debug, Clone)]
enum Op {
    Acquire,
    Finish(usize, Outcome),
    Cancel(usize),
    Advance(u64),
    State,
    Reset,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        4 => (any::<usize>(), prop_oneof![
            3 => Just(Outcome::Failure),
            3 => Just(Outcome::Success),
            1 => Just(Outcome::Ignored)
        ]).prop_map(|(i, o)| Op::Finish(i, o)),
        1 => any::<usize>().prop_map(Op::Cancel),
        2 => (0u64..12).prop_map(Op::Advance),
        1 => Just(Op::State),
        1 => Just(Op::Reset).prop_filter("rare", |_| true),
    ]
}

/// The reference: the rules, written as plainly as possible.
struct Model {
    cfg: Cfg,
    state: State,
    generation: u64,
    failures_in_a_row: u32,
    window: VecDeque<bool>,
    open_until: u64,
    half_open_since: u64,
    in_flight: u32,
    trial_ok: u32,
    trial_bad: u32,
}

#[derive(Debug, Clone, Copy)]
struct ModelTicket {
    generation: u64,
    trial: bool,
}

impl Model {
    fn new(cfg: Cfg) -> Self {
        Model {
            cfg,
            state: State::Closed,
            generation: 0,
            failures_in_a_row: 0,
            window: VecDeque::new(),
            open_until: 0,
            half_open_since: 0,
            in_flight: 0,
            trial_ok: 0,
            trial_bad: 0,
        }
    }

    fn go(&mut self, to: State, now: u64) {
        match to {
            State::Open => self.open_until = now + self.cfg.cooldown_ms * MS,
            State::HalfOpen => {
                self.in_flight = 0;
                self.trial_ok = 0;
                self.trial_bad = 0;
                self.half_open_since = now;
            }
            State::Closed => {
                self.window.clear();
                self.failures_in_a_row = 0;
            }
            _ => {}
        }
        self.state = to;
        self.generation += 1;
    }

    fn half_open_too_long(&self, now: u64) -> bool {
        matches!(self.cfg.half_open_max_ms, Some(max) if now - self.half_open_since >= max * MS)
    }

    fn state(&mut self, now: u64) -> State {
        if self.state == State::Open && now >= self.open_until {
            self.go(State::HalfOpen, now);
        }
        if self.state == State::HalfOpen && self.half_open_too_long(now) {
            self.go(State::Open, now);
        }
        self.state
    }

    fn acquire(&mut self, now: u64) -> Result<ModelTicket, (State, Option<u64>)> {
        if self.state == State::Open {
            if now < self.open_until {
                return Err((State::Open, Some(self.open_until - now)));
            }
            self.go(State::HalfOpen, now);
        }
        if self.state == State::HalfOpen {
            let started = self.in_flight + self.trial_ok + self.trial_bad;
            let starts = self.cfg.trials.max(self.cfg.concurrency);
            if self.in_flight < self.cfg.concurrency && started < starts {
                self.in_flight += 1;
                return Ok(ModelTicket {
                    generation: self.generation,
                    trial: true,
                });
            }
            if self.half_open_too_long(now) {
                self.go(State::Open, now);
                return Err((State::Open, Some(self.open_until - now)));
            }
            return Err((State::HalfOpen, None));
        }
        Ok(ModelTicket {
            generation: self.generation,
            trial: false,
        })
    }

    fn finish(&mut self, t: ModelTicket, outcome: Outcome, now: u64) {
        if t.generation != self.generation {
            return;
        }
        if t.trial {
            if self.state != State::HalfOpen || self.in_flight == 0 {
                return;
            }
            self.in_flight -= 1;
            match outcome {
                Outcome::Ignored => return,
                Outcome::Success => self.trial_ok += 1,
                Outcome::Failure => self.trial_bad += 1,
            }
            if self.trial_ok >= self.cfg.successes {
                self.go(State::Closed, now);
            } else if self.trial_bad > self.cfg.trials - self.cfg.successes {
                self.go(State::Open, now);
            }
            return;
        }
        if outcome == Outcome::Ignored {
            return;
        }
        let failed = outcome == Outcome::Failure;
        if let Some(n) = self.cfg.window() {
            if self.window.len() == n as usize {
                self.window.pop_front();
            }
            self.window.push_back(failed);
        }
        if failed {
            self.failures_in_a_row += 1;
        } else {
            self.failures_in_a_row = 0;
        }
        // Every rule is judged after every outcome recorded in CLOSED: a success cannot
        // raise a count, but it can bring the window to its minimum at a rate already over
        // the threshold.
        if self.state != State::Closed {
            return;
        }
        let calls = self.window.len() as u32;
        let failures = self.window.iter().filter(|f| **f).count() as u32;
        let trips = self
            .cfg
            .consecutive_rule()
            .is_some_and(|n| self.failures_in_a_row >= n)
            || self.cfg.k_of_n.is_some_and(|(k, _)| failures >= k)
            || self.cfg.rate.is_some_and(|(rate, min)| {
                calls >= min && calls > 0 && f64::from(failures) / f64::from(calls) >= rate
            });
        if trips {
            self.go(State::Open, now);
        }
    }

    fn cancel(&mut self, t: ModelTicket) {
        if t.trial && t.generation == self.generation && self.state == State::HalfOpen {
            self.in_flight = self.in_flight.saturating_sub(1);
        }
    }

    fn reset(&mut self, now: u64) {
        if self.state == State::Closed {
            self.window.clear();
            self.failures_in_a_row = 0;
        } else {
            self.go(State::Closed, now);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn breaker_machine_and_model_agree(cfg in cfg_strategy(), ops in proptest::collection::vec(op_strategy(), 1..120)) {
        let clock = ManualClock::new();
        let breaker = cfg.breaker(&clock);
        let mut machine = Machine::new(breaker.name().clone(), breaker.config().clone());
        let mut model = Model::new(cfg.clone());
        let mut permits: Vec<(OwnedPermit, Ticket, ModelTicket)> = Vec::new();

        for (step, op) in ops.into_iter().enumerate() {
            let now = clock.now_nanos_for_test();
            match op {
                Op::Acquire => {
                    let b = breaker.try_acquire_owned();
                    let m = machine.acquire(now);
                    let r = model.acquire(now);
                    match (b, m, r) {
                        (Ok(bp), Ok(mt), Ok(rt)) => {
                            prop_assert_eq!(bp.is_trial(), rt.trial, "step {}", step);
                            prop_assert_eq!(mt.is_trial(), rt.trial, "step {}", step);
                            permits.push((bp, mt, rt));
                        }
                        (Err(be), Err(me), Err((state, left))) => {
                            prop_assert_eq!(be.state(), state, "step {}", step);
                            prop_assert_eq!(me.state(), state, "step {}", step);
                            let left = left.map(Duration::from_nanos);
                            prop_assert_eq!(be.retry_after(), left, "step {}", step);
                            prop_assert_eq!(me.retry_after(), left, "step {}", step);
                        }
                        (b, m, r) => prop_assert!(false, "step {}: breaker {:?}, machine {:?}, model {:?}",
                            step, b.map(|p| p.is_trial()), m, r),
                    }
                }
                Op::Finish(i, outcome) if !permits.is_empty() => {
                    let (bp, mt, rt) = permits.swap_remove(i % permits.len());
                    bp.record(outcome);
                    machine.record(mt, outcome, now);
                    model.finish(rt, outcome, now);
                }
                Op::Cancel(i) if !permits.is_empty() => {
                    let (bp, mt, rt) = permits.swap_remove(i % permits.len());
                    drop(bp);
                    machine.cancel(mt);
                    model.cancel(rt);
                }
                Op::Finish(..) | Op::Cancel(_) => {}
                Op::Advance(ms) => clock.advance(Duration::from_millis(ms)),
                Op::State => {}
                Op::Reset => {
                    breaker.reset();
                    machine.reset(now);
                    model.reset(now);
                }
            }
            let now = clock.now_nanos_for_test();
            let expected = model.state(now);
            prop_assert_eq!(breaker.state(), expected, "step {}", step);
            prop_assert_eq!(machine.state(now), expected, "step {}", step);
            let snapshot = breaker.snapshot();
            prop_assert_eq!(snapshot.generation, model.generation, "step {}", step);
            prop_assert_eq!(machine.generation(), model.generation, "step {}", step);
            prop_assert_eq!(snapshot.consecutive_failures, model.failures_in_a_row, "step {}", step);
            prop_assert_eq!(machine.consecutive_failures(), model.failures_in_a_row, "step {}", step);
            if cfg.window().is_some() {
                let failures = model.window.iter().filter(|f| **f).count() as u64;
                prop_assert_eq!(snapshot.window.calls, model.window.len() as u64, "step {}", step);
                prop_assert_eq!(snapshot.window.failures, failures, "step {}", step);
                prop_assert_eq!(machine.window_stats(now), snapshot.window, "step {}", step);
            }
            if expected == State::HalfOpen {
                prop_assert_eq!(snapshot.trials_in_flight, model.in_flight, "step {}", step);
                prop_assert_eq!(machine.trials_in_flight(), model.in_flight, "step {}", step);
                prop_assert_eq!((snapshot.trial_successes, snapshot.trial_failures), (model.trial_ok, model.trial_bad), "step {}", step);
            }
        }
    }
}

trait NowForTest {
    fn now_nanos_for_test(&self) -> u64;
}

impl NowForTest for ManualClock {
    fn now_nanos_for_test(&self) -> u64 {
        use fusebox::clock::Clock;
        self.now_nanos()
    }
}
