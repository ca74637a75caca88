//! The ejection rules over a set of endpoints, free of locks and clocks: the caller passes
//! `now` (nanoseconds on its clock) and gets a decision back.
//!
//! - An endpoint is ejected after `consecutive_failures` failures in a row, or when its
//!   failure rate over the current window reaches `ratio` with at least `min_calls` calls.
//!   The window is tumbling: its counts start over once it is `window` old.
//! - The `n`-th ejection in a row lasts `base × n`, capped at `max`. Once it is over the
//!   endpoint returns with its counts cleared, and `n` falls by one for every `base` that
//!   passes without a new ejection, so an endpoint that recovered for good is treated as new.
//! - At most `floor(known × percent / 100)` endpoints are ejected at once, but one may be
//!   ejected whenever at least two are known and `percent` is above zero (one of two at
//!   10 %), so a pair still protects itself; a lone endpoint is never ejected. An outlier
//!   found while the cap is reached stays in, its counts kept, and is ejected on its next
//!   failure if room has been made by then.

use std::collections::HashMap;
use std::hash::Hash;

/// Why an endpoint was ejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EjectionReason {
    /// `consecutive_failures` failures in a row.
    ConsecutiveFailures,
    /// The failure rate over the window reached the configured ratio.
    FailureRate,
}

impl EjectionReason {
    /// A stable lower-case name, for labels and logs.
    ///
    /// ```
    /// use fusebox_policy::policy::EjectionReason;
    /// assert_eq!(EjectionReason::FailureRate.as_str(), "failure_rate");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            EjectionReason::ConsecutiveFailures => "consecutive_failures",
            EjectionReason::FailureRate => "failure_rate",
        }
    }
}

/// The rate rule: eject once `failures / calls >= ratio` over a window of `window_nanos`
/// holding at least `min_calls` calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateRule {
    pub(crate) ratio: f64,
    pub(crate) min_calls: u32,
    pub(crate) window_nanos: u64,
}

/// Validated settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) rate: Option<RateRule>,
    pub(crate) base_nanos: u64,
    pub(crate) max_nanos: u64,
    pub(crate) max_percent: u32,
}

impl Rules {
    /// How many of `known` endpoints may be ejected at once.
    pub(crate) fn cap(&self, known: usize) -> usize {
        let floor = known.saturating_mul(self.max_percent as usize) / 100;
        if floor == 0 && known >= 2 && self.max_percent > 0 {
            1
        } else {
            floor
        }
    }

    fn ejection_nanos(&self, ejections: u32) -> u64 {
        self.base_nanos
            .saturating_mul(u64::from(ejections))
            .min(self.max_nanos)
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Endpoint {
    consecutive: u32,
    calls: u32,
    failures: u32,
    window_start: u64,
    /// While ejected, when the ejection ends.
    ejected_until: Option<u64>,
    /// Ejections counted toward the next one's length.
    ejections: u32,
    /// From when the ejection count decays, one step per base ejection time.
    decay_from: u64,
}

impl Endpoint {
    fn clear_counts(&mut self, now: u64) {
        self.consecutive = 0;
        self.calls = 0;
        self.failures = 0;
        self.window_start = now;
    }

    fn decay(&mut self, now: u64, base_nanos: u64) {
        if self.ejections == 0 || self.ejected_until.is_some() {
            return;
        }
        let steps = now.saturating_sub(self.decay_from) / base_nanos;
        if steps > 0 {
            let steps32 = u32::try_from(steps).unwrap_or(u32::MAX);
            self.ejections = self.ejections.saturating_sub(steps32);
            self.decay_from = self
                .decay_from
                .saturating_add(steps.saturating_mul(base_nanos));
        }
    }
}

/// What [`Endpoints::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Not ejected: send the call.
    Admit,
    /// The endpoint's ejection just ended: it is back, and the call may be sent.
    Returned,
    /// Ejected for `remaining_nanos` more.
    Ejected { remaining_nanos: u64 },
}

/// What [`Endpoints::record`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing changes.
    Stay,
    /// The endpoint is ejected now, for `for_nanos`; it is its `ejections`-th in a row.
    Eject {
        reason: EjectionReason,
        for_nanos: u64,
        ejections: u32,
    },
    /// The endpoint is an outlier but the cap on ejections is reached: it stays in.
    Capped { reason: EjectionReason },
}

/// Every known endpoint's counts and ejection.
#[derive(Debug)]
pub(crate) struct Endpoints<K> {
    rules: Rules,
    endpoints: HashMap<K, Endpoint>,
    /// Endpoints with an ejection not yet seen to have ended, expired ones included.
    ejected: usize,
}

impl<K> Endpoints<K> {
    pub(crate) fn new(rules: Rules) -> Self {
        Endpoints {
            rules,
            endpoints: HashMap::new(),
            ejected: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn rules(&self) -> &Rules {
        &self.rules
    }

    pub(crate) fn known(&self) -> usize {
        self.endpoints.len()
    }
}

impl<K: Hash + Eq + Clone> Endpoints<K> {
    fn entry(&mut self, key: &K, now: u64) -> &mut Endpoint {
        if !self.endpoints.contains_key(key) {
            self.endpoints.insert(
                key.clone(),
                Endpoint {
                    window_start: now,
                    ..Endpoint::default()
                },
            );
        }
        self.endpoints
            .get_mut(key)
            .expect("the endpoint was just inserted")
    }

    /// Makes `key` known (ejected endpoints are capped as a share of the known ones).
    pub(crate) fn register(&mut self, key: &K, now: u64) {
        self.entry(key, now);
    }

    /// Forgets `key`; returns whether it was known.
    pub(crate) fn forget(&mut self, key: &K) -> bool {
        match self.endpoints.remove(key) {
            Some(endpoint) => {
                if endpoint.ejected_until.is_some() {
                    self.ejected -= 1;
                }
                true
            }
            None => false,
        }
    }

    /// Whether a call to `key` may be sent now; an ejection that is over ends here.
    pub(crate) fn check(&mut self, key: &K, now: u64) -> Check {
        let endpoint = self.entry(key, now);
        match endpoint.ejected_until {
            None => Check::Admit,
            Some(until) if now < until => Check::Ejected {
                remaining_nanos: until - now,
            },
            Some(_) => {
                Self::end_ejection(endpoint, now);
                self.ejected -= 1;
                Check::Returned
            }
        }
    }

    /// Whether `key` is ejected at `now`, without ending an expired ejection.
    pub(crate) fn is_ejected(&self, key: &K, now: u64) -> bool {
        self.endpoints
            .get(key)
            .and_then(|e| e.ejected_until)
            .is_some_and(|until| now < until)
    }

    fn end_ejection(endpoint: &mut Endpoint, now: u64) {
        // Back since the deadline, however late that is noticed: decay counts from there.
        endpoint.decay_from = endpoint.ejected_until.take().unwrap_or(now);
        endpoint.clear_counts(now);
    }

    /// Ends every ejection that is over, calling `returned` with each endpoint back.
    pub(crate) fn sweep(&mut self, now: u64, mut returned: impl FnMut(&K)) {
        if self.ejected == 0 {
            return;
        }
        for (key, endpoint) in &mut self.endpoints {
            if endpoint.ejected_until.is_some_and(|until| now >= until) {
                Self::end_ejection(endpoint, now);
                self.ejected -= 1;
                returned(key);
            }
        }
    }

    /// Endpoints ejected at `now`.
    pub(crate) fn ejected_keys(&self, now: u64) -> impl Iterator<Item = &K> {
        self.endpoints
            .iter()
            .filter(move |(_, e)| e.ejected_until.is_some_and(|until| now < until))
            .map(|(k, _)| k)
    }

    /// Endpoints with an ejection not yet ended (ended ones stay counted until a sweep).
    pub(crate) fn ejected_count(&self) -> usize {
        self.ejected
    }

    /// Counts a call's outcome (`failed` or not) and decides whether `key` is ejected. A
    /// result that arrives while `key` is ejected (a call sent before) changes nothing; one
    /// that arrives after the ejection is over ends it first.
    /// `returned` hears of endpoints whose ejection ended, found while making room.
    pub(crate) fn record(
        &mut self,
        key: &K,
        failed: bool,
        now: u64,
        mut returned: impl FnMut(&K),
    ) -> Verdict {
        let rules = self.rules;
        let endpoint = self.entry(key, now);
        match endpoint.ejected_until {
            Some(until) if now < until => return Verdict::Stay,
            Some(_) => {
                Self::end_ejection(endpoint, now);
                self.ejected -= 1;
                returned(key);
            }
            None => {}
        }
        let endpoint = self.entry(key, now);
        endpoint.decay(now, rules.base_nanos);
        if let Some(rate) = rules.rate
            && now.saturating_sub(endpoint.window_start) >= rate.window_nanos
        {
            endpoint.calls = 0;
            endpoint.failures = 0;
            endpoint.window_start = now;
        }
        endpoint.calls = endpoint.calls.saturating_add(1);
        if !failed {
            endpoint.consecutive = 0;
            return Verdict::Stay;
        }
        endpoint.failures = endpoint.failures.saturating_add(1);
        endpoint.consecutive = endpoint.consecutive.saturating_add(1);
        let reason = if rules
            .consecutive_failures
            .is_some_and(|n| endpoint.consecutive >= n)
        {
            EjectionReason::ConsecutiveFailures
        } else if rules.rate.is_some_and(|rate| {
            endpoint.calls >= rate.min_calls
                && f64::from(endpoint.failures) >= rate.ratio * f64::from(endpoint.calls)
        }) {
            EjectionReason::FailureRate
        } else {
            return Verdict::Stay;
        };
        let cap = rules.cap(self.endpoints.len());
        if self.ejected >= cap {
            self.sweep(now, &mut returned);
            if self.ejected >= cap {
                return Verdict::Capped { reason };
            }
        }
        let endpoint = self
            .endpoints
            .get_mut(key)
            .expect("the endpoint was counted above");
        endpoint.ejections = endpoint.ejections.saturating_add(1);
        let for_nanos = rules.ejection_nanos(endpoint.ejections);
        endpoint.ejected_until = Some(now.saturating_add(for_nanos));
        endpoint.clear_counts(now);
        self.ejected += 1;
        Verdict::Eject {
            reason,
            for_nanos,
            ejections: endpoint.ejections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECOND: u64 = 1_000_000_000;

    fn rules() -> Rules {
        Rules {
            consecutive_failures: Some(3),
            rate: None,
            base_nanos: 10 * SECOND,
            max_nanos: 25 * SECOND,
            max_percent: 50,
        }
    }

    fn fail(endpoints: &mut Endpoints<u32>, key: u32, times: u32, now: u64) -> Verdict {
        let mut verdict = Verdict::Stay;
        for _ in 0..times {
            verdict = endpoints.record(&key, true, now, |_| {});
        }
        verdict
    }

    #[test]
    fn the_cap_is_a_floor_with_one_allowed_from_two_endpoints() {
        let tenth = Rules {
            max_percent: 10,
            ..rules()
        };
        let caps: Vec<usize> = [0, 1, 2, 9, 10, 25].iter().map(|&n| tenth.cap(n)).collect();
        assert_eq!(caps, [0, 0, 1, 1, 1, 2]);
        let none = Rules {
            max_percent: 0,
            ..rules()
        };
        assert_eq!(none.cap(100), 0);
    }

    #[test]
    fn consecutive_failures_eject_and_a_success_resets_the_run() {
        let mut endpoints = Endpoints::new(rules());
        endpoints.register(&2, 0);
        assert_eq!(fail(&mut endpoints, 1, 2, 0), Verdict::Stay);
        assert_eq!(endpoints.record(&1, false, 0, |_| {}), Verdict::Stay);
        assert_eq!(fail(&mut endpoints, 1, 2, 0), Verdict::Stay);
        assert_eq!(
            fail(&mut endpoints, 1, 1, 0),
            Verdict::Eject {
                reason: EjectionReason::ConsecutiveFailures,
                for_nanos: 10 * SECOND,
                ejections: 1
            }
        );
        assert_eq!(
            endpoints.check(&1, 4 * SECOND),
            Check::Ejected {
                remaining_nanos: 6 * SECOND
            }
        );
        assert_eq!(endpoints.check(&1, 10 * SECOND), Check::Returned);
        assert_eq!(endpoints.check(&1, 10 * SECOND), Check::Admit);
    }

    #[test]
    fn ejections_lengthen_up_to_the_max_and_decay_one_per_base_interval() {
        let mut endpoints = Endpoints::new(rules());
        endpoints.register(&2, 0);
        let mut now = 0;
        let mut lengths = Vec::new();
        for _ in 0..3 {
            match fail(&mut endpoints, 1, 3, now) {
                Verdict::Eject { for_nanos, .. } => lengths.push(for_nanos / SECOND),
                other => panic!("{other:?}"),
            }
            now += lengths.last().unwrap() * SECOND;
            assert_eq!(endpoints.check(&1, now), Check::Returned);
        }
        assert_eq!(lengths, [10, 20, 25]);
        // Two base intervals in: the count fell from 3 to 1, so the next lasts 2 × base.
        now += 20 * SECOND;
        assert!(matches!(
            fail(&mut endpoints, 1, 3, now),
            Verdict::Eject { for_nanos, ejections: 2, .. } if for_nanos == 20 * SECOND
        ));
    }

    #[test]
    fn the_rate_rule_needs_its_minimum_and_its_window_tumbles() {
        let mut endpoints = Endpoints::new(Rules {
            consecutive_failures: None,
            rate: Some(RateRule {
                ratio: 0.5,
                min_calls: 4,
                window_nanos: 10 * SECOND,
            }),
            ..rules()
        });
        endpoints.register(&2, 0);
        endpoints.record(&1, false, 0, |_| {});
        assert_eq!(fail(&mut endpoints, 1, 2, 0), Verdict::Stay); // 2 of 3: under min_calls
        // A new window: the old counts are gone, 1 of 1 and 2 of 2 are under min_calls.
        assert_eq!(fail(&mut endpoints, 1, 2, 10 * SECOND), Verdict::Stay);
        endpoints.record(&1, false, 10 * SECOND, |_| {});
        assert!(matches!(
            fail(&mut endpoints, 1, 1, 10 * SECOND),
            Verdict::Eject {
                reason: EjectionReason::FailureRate,
                ..
            }
        ));
    }

    #[test]
    fn a_capped_outlier_stays_in_until_room_is_made() {
        let mut endpoints = Endpoints::new(rules());
        assert_eq!(
            fail(&mut endpoints, 1, 3, 0),
            Verdict::Capped {
                reason: EjectionReason::ConsecutiveFailures
            },
            "a lone endpoint is never ejected"
        );
        endpoints.register(&2, 0);
        assert!(matches!(
            fail(&mut endpoints, 1, 1, 0),
            Verdict::Eject { .. }
        ));
        assert!(matches!(
            fail(&mut endpoints, 2, 3, 0),
            Verdict::Capped { .. }
        ));
        let mut back = Vec::new();
        let verdict = endpoints.record(&2, true, 10 * SECOND, |k| back.push(*k));
        assert!(matches!(verdict, Verdict::Eject { .. }), "{verdict:?}");
        assert_eq!(back, [1], "the sweep that made room returned endpoint 1");
    }

    proptest! {
        #[test]
        fn never_more_ejected_than_the_cap(
            percent in 0u32..=100,
            known in 1u32..12,
            steps in prop::collection::vec((0u32..12, any::<bool>(), 0u64..3 * SECOND), 1..400),
        ) {
            let mut endpoints = Endpoints::new(Rules { max_percent: percent, ..rules() });
            for key in 0..known {
                endpoints.register(&key, 0);
            }
            let mut now = 0;
            for (key, failed, wait) in steps {
                now += wait;
                let key = key % known;
                if let Check::Ejected { .. } = endpoints.check(&key, now) {
                    continue;
                }
                endpoints.record(&key, failed, now, |_| {});
                let cap = endpoints.rules().cap(endpoints.known());
                prop_assert!(endpoints.ejected_count() <= cap);
                prop_assert!(endpoints.ejected_keys(now).count() <= cap);
            }
        }
    }
}
