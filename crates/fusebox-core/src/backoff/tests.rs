use super::*;
use proptest::prelude::*;
use rand::SeedableRng;

const DRAWS: u32 = 10_000;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn nanos(duration: Duration) -> u128 {
    duration.as_nanos()
}

/// Draws `DRAWS` delays over attempts 1..=8 and hands each to `check` with its un-jittered delay.
fn draw_each(backoff: &Backoff, mut check: impl FnMut(Duration, Duration)) {
    let mut rng = SmallRng::seed_from_u64(2024);
    for draw in 0..DRAWS {
        let attempt = draw % 8 + 1;
        let delay = backoff.delay(attempt, &mut rng).unwrap();
        check(delay, backoff.base_delay(attempt).unwrap());
    }
}

#[test]
fn fixed_repeats_its_delay_up_to_max_delays() {
    let backoff = Backoff::fixed(millis(250)).max_delays(4).build().unwrap();
    assert_eq!(backoff.seeded(1).collect::<Vec<_>>(), [millis(250); 4]);
    assert_eq!(backoff.base_delay(4), Some(millis(250)));
    assert_eq!(backoff.base_delay(5), None);
}

#[test]
fn exponential_grows_by_factor_and_clamps_at_max() {
    let doubling = Backoff::exponential(secs(1), secs(10)).build().unwrap();
    let delays: Vec<_> = doubling.seeded(1).take(7).collect();
    assert_eq!(
        delays,
        [
            secs(1),
            secs(2),
            secs(4),
            secs(8),
            secs(10),
            secs(10),
            secs(10)
        ]
    );

    let slower = Backoff::exponential(millis(100), secs(1))
        .factor(1.5)
        .build()
        .unwrap();
    let delays: Vec<_> = slower.seeded(1).take(7).collect();
    let expected_nanos = [
        100_000_000,
        150_000_000,
        225_000_000,
        337_500_000,
        506_250_000,
        759_375_000,
        1_000_000_000,
    ];
    assert_eq!(delays, expected_nanos.map(Duration::from_nanos));

    let flat = Backoff::exponential(secs(3), secs(3))
        .factor(1.0)
        .build()
        .unwrap();
    assert!(flat.seeded(1).take(100).all(|d| d == secs(3)));
}

#[test]
fn very_late_attempts_stay_at_max() {
    let backoff = Backoff::exponential(Duration::from_nanos(1), secs(30))
        .build()
        .unwrap();
    assert_eq!(backoff.base_delay(64), Some(secs(30)));
    assert_eq!(backoff.base_delay(u32::MAX), Some(secs(30)));
}

#[test]
fn elapsed_cap_ends_before_the_sum_would_exceed_it() {
    let capped = |total: u64| {
        Backoff::exponential(secs(1), secs(60))
            .max_elapsed(secs(total))
            .build()
            .unwrap()
            .seeded(1)
            .collect::<Vec<_>>()
    };
    // 1 + 2 + 4 = 7, and 7 + 8 = 15.
    assert_eq!(capped(10), [secs(1), secs(2), secs(4)]);
    assert_eq!(capped(7), [secs(1), secs(2), secs(4)]);
    assert_eq!(capped(6), [secs(1), secs(2)]);
    assert_eq!(capped(15), [secs(1), secs(2), secs(4), secs(8)]);

    let fixed = Backoff::fixed(secs(3))
        .max_elapsed(secs(10))
        .build()
        .unwrap();
    let mut delays = fixed.seeded(1);
    assert_eq!(delays.by_ref().collect::<Vec<_>>(), [secs(3); 3]);
    assert_eq!(delays.elapsed(), secs(9));
    assert_eq!(delays.next(), None, "stays ended");
}

#[test]
fn the_first_limit_reached_ends_the_sequence() {
    let by_count = Backoff::fixed(secs(1))
        .max_delays(2)
        .max_elapsed(secs(100))
        .build()
        .unwrap();
    assert_eq!(by_count.seeded(1).count(), 2);
    let by_time = Backoff::fixed(secs(1))
        .max_delays(100)
        .max_elapsed(secs(5))
        .build()
        .unwrap();
    assert_eq!(by_time.seeded(1).count(), 5);
}

#[test]
fn proportional_jitter_stays_within_its_fraction() {
    let max = secs(10);
    let backoff = Backoff::exponential(secs(1), max)
        .jitter(Jitter::Proportional(0.1))
        .build()
        .unwrap();
    let (mut lowest, mut highest) = (f64::MAX, f64::MIN);
    draw_each(&backoff, |delay, base| {
        let low = (nanos(base) as f64 * 0.9).floor() as u128;
        let high = ((nanos(base) as f64 * 1.1).ceil() as u128).min(nanos(max));
        assert!(
            (low..=high).contains(&nanos(delay)),
            "{delay:?} outside 0.9..1.1 x {base:?}"
        );
        if base < max {
            let ratio = nanos(delay) as f64 / nanos(base) as f64;
            lowest = lowest.min(ratio);
            highest = highest.max(ratio);
        }
    });
    // The draws really spread across the band, so the bounds above are not vacuous.
    assert!(lowest < 0.905 && highest > 1.095, "{lowest}..{highest}");
}

#[test]
fn full_jitter_stays_between_zero_and_the_envelope() {
    let backoff = Backoff::exponential(millis(100), secs(5))
        .jitter(Jitter::Full)
        .build()
        .unwrap();
    let mut shortest_share = 1.0_f64;
    draw_each(&backoff, |delay, base| {
        assert!(delay <= base, "{delay:?} above {base:?}");
        shortest_share = shortest_share.min(nanos(delay) as f64 / nanos(base) as f64);
    });
    assert!(shortest_share < 0.01);
}

#[test]
fn equal_jitter_stays_between_half_and_the_envelope() {
    let backoff = Backoff::exponential(millis(100), secs(5))
        .jitter(Jitter::Equal)
        .build()
        .unwrap();
    let mut shortest_share = 1.0_f64;
    draw_each(&backoff, |delay, base| {
        assert!(delay >= base / 2 && delay <= base, "{delay:?} vs {base:?}");
        shortest_share = shortest_share.min(nanos(delay) as f64 / nanos(base) as f64);
    });
    assert!(shortest_share < 0.51);
}

#[test]
fn decorrelated_jitter_stays_between_base_and_cap() {
    let (base, cap) = (millis(10), secs(2));
    let backoff = Backoff::decorrelated(base, cap).build().unwrap();
    let mut previous = base;
    let mut reached_cap = false;
    for delay in backoff.seeded(77).take(DRAWS as usize) {
        assert!(delay >= base && delay <= cap, "{delay:?}");
        assert!(
            nanos(delay) <= nanos(previous) * 3 + 1,
            "{delay:?} more than three times {previous:?}"
        );
        reached_cap |= delay == cap;
        previous = delay;
    }
    assert!(reached_cap, "the cap is a real bound, reached in practice");
}

#[test]
fn the_same_seed_gives_the_same_delays() {
    let backoffs = [
        Backoff::exponential(millis(10), secs(10))
            .jitter(Jitter::Proportional(0.3))
            .build(),
        Backoff::exponential(millis(10), secs(10))
            .jitter(Jitter::Full)
            .build(),
        Backoff::exponential(millis(10), secs(10))
            .jitter(Jitter::Equal)
            .build(),
        Backoff::decorrelated(millis(10), secs(10)).build(),
    ];
    for backoff in backoffs.map(Result::unwrap) {
        let first: Vec<_> = backoff.seeded(42).take(50).collect();
        assert_eq!(
            first,
            backoff.clone().seeded(42).take(50).collect::<Vec<_>>()
        );
        assert_ne!(first, backoff.seeded(43).take(50).collect::<Vec<_>>());
    }
}

#[test]
fn delay_by_attempt_matches_the_iterator() {
    let backoff = Backoff::exponential(millis(10), secs(10))
        .jitter(Jitter::Proportional(0.5))
        .max_delays(20)
        .build()
        .unwrap();
    let mut rng = SmallRng::seed_from_u64(5);
    let direct: Vec<_> = (1..=20)
        .map(|attempt| backoff.delay(attempt, &mut rng).unwrap())
        .collect();
    assert_eq!(direct, backoff.seeded(5).collect::<Vec<_>>());
    assert_eq!(backoff.delay(21, &mut rng), None);
    assert_eq!(backoff.delay(0, &mut rng), None);

    let decorrelated = Backoff::decorrelated(millis(10), secs(1)).build().unwrap();
    assert_eq!(decorrelated.delay(1, &mut rng), None);
    assert_eq!(decorrelated.base_delay(1), None);
}

#[test]
fn each_invalid_setting_names_its_field() {
    let exponential = || Backoff::exponential(secs(1), secs(10));
    let cases = [
        ("min", Backoff::exponential(Duration::ZERO, secs(1)).build()),
        ("max", Backoff::exponential(secs(1), Duration::ZERO).build()),
        ("min", Backoff::exponential(secs(2), secs(1)).build()),
        ("factor", exponential().factor(f64::NAN).build()),
        ("factor", exponential().factor(f64::INFINITY).build()),
        ("factor", exponential().factor(-2.0).build()),
        ("factor", exponential().factor(0.99).build()),
        (
            "jitter",
            exponential().jitter(Jitter::Proportional(-0.1)).build(),
        ),
        (
            "jitter",
            exponential().jitter(Jitter::Proportional(1.5)).build(),
        ),
        (
            "jitter",
            exponential().jitter(Jitter::Proportional(f64::NAN)).build(),
        ),
        (
            "base",
            Backoff::decorrelated(Duration::ZERO, secs(1)).build(),
        ),
        (
            "cap",
            Backoff::decorrelated(secs(1), Duration::ZERO).build(),
        ),
        ("base", Backoff::decorrelated(secs(2), secs(1)).build()),
        ("max_delays", Backoff::fixed(secs(1)).max_delays(0).build()),
        (
            "max_elapsed",
            Backoff::fixed(secs(1)).max_elapsed(Duration::ZERO).build(),
        ),
    ];
    for (field, result) in cases {
        let err = result.expect_err(field);
        assert_eq!(err.field(), Some(field), "{err}");
        assert!(err.to_string().contains(field), "{err}");
    }
    let conflict = Backoff::exponential(secs(2), secs(1)).build().unwrap_err();
    assert!(matches!(
        conflict,
        ConfigError::Conflict {
            first: "min",
            second: "max",
            ..
        }
    ));
    // The edges of each range are accepted.
    assert!(exponential().factor(1.0).build().is_ok());
    assert!(
        exponential()
            .jitter(Jitter::Proportional(0.0))
            .build()
            .is_ok()
    );
    assert!(
        exponential()
            .jitter(Jitter::Proportional(1.0))
            .build()
            .is_ok()
    );
    assert!(Backoff::exponential(secs(1), secs(1)).build().is_ok());
    assert!(Backoff::fixed(Duration::ZERO).build().is_ok());
}

#[test]
fn backoff_is_a_cheap_shareable_config() {
    fn shareable<T: Clone + std::fmt::Debug + Send + Sync + 'static>() {}
    fn sendable<T: Send + 'static>() {}
    shareable::<Backoff>();
    sendable::<Delays>();
    // Everything lives inline: cloning and iterating never touch the heap.
    assert!(std::mem::size_of::<Backoff>() <= 96);
}

#[test]
fn extreme_durations_neither_panic_nor_overflow() {
    let huge = Backoff::exponential(Duration::from_nanos(1), Duration::MAX)
        .factor(1e300)
        .jitter(Jitter::Proportional(1.0))
        .build()
        .unwrap();
    assert!(huge.seeded(1).take(1000).all(|d| d <= Duration::MAX));

    let fixed = Backoff::fixed(Duration::MAX)
        .max_elapsed(Duration::MAX)
        .build()
        .unwrap();
    assert_eq!(fixed.seeded(1).collect::<Vec<_>>(), [Duration::MAX]);

    let unbounded_sum = Backoff::fixed(Duration::MAX).build().unwrap();
    let mut delays = unbounded_sum.seeded(1);
    assert_eq!(delays.nth(3), Some(Duration::MAX));
    assert_eq!(delays.elapsed(), Duration::MAX);

    let decorrelated = Backoff::decorrelated(Duration::MAX, Duration::MAX)
        .build()
        .unwrap();
    assert!(decorrelated.seeded(1).take(10).all(|d| d == Duration::MAX));
}

#[test]
fn size_hint_counts_the_delays_left() {
    let backoff = Backoff::fixed(secs(1)).max_delays(3).build().unwrap();
    let mut delays = backoff.seeded(1);
    assert_eq!(delays.size_hint(), (0, Some(3)));
    delays.next();
    assert_eq!(delays.size_hint(), (0, Some(2)));
    assert_eq!(
        Backoff::fixed(secs(1))
            .build()
            .unwrap()
            .seeded(1)
            .size_hint(),
        (0, None)
    );
}

fn any_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        Just(Duration::MAX),
        any::<u64>().prop_map(Duration::from_nanos),
        (0u64..100_000).prop_map(Duration::from_millis),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
    ]
}

fn any_factor() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        1.0f64..10.0,
        Just(1.0),
        Just(f64::MAX),
        Just(f64::INFINITY),
        Just(f64::NAN),
    ]
}

fn any_jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        any::<f64>().prop_map(Jitter::Proportional),
        (0.0f64..=1.0).prop_map(Jitter::Proportional),
    ]
}

fn any_builder_result() -> impl Strategy<Value = Result<Backoff, ConfigError>> {
    let limits = (
        prop::option::of(any::<u32>()),
        prop::option::of(any_duration()),
    );
    (
        0..3u8,
        any_duration(),
        any_duration(),
        any_factor(),
        any_jitter(),
        limits,
    )
        .prop_map(|(shape, a, b, factor, jitter, (max_delays, max_elapsed))| {
            fn limited<S: Shape>(
                mut builder: BackoffBuilder<S>,
                max_delays: Option<u32>,
                max_elapsed: Option<Duration>,
            ) -> Result<Backoff, ConfigError> {
                if let Some(count) = max_delays {
                    builder = builder.max_delays(count);
                }
                if let Some(total) = max_elapsed {
                    builder = builder.max_elapsed(total);
                }
                builder.build()
            }
            match shape {
                0 => limited(Backoff::fixed(a), max_delays, max_elapsed),
                1 => limited(
                    Backoff::exponential(a, b).factor(factor).jitter(jitter),
                    max_delays,
                    max_elapsed,
                ),
                _ => limited(Backoff::decorrelated(a, b), max_delays, max_elapsed),
            }
        })
}

proptest! {
    #[test]
    fn accepted_configs_never_panic_and_stay_within_max(
        result in any_builder_result(),
        seed in any::<u64>(),
        attempt in any::<u32>(),
    ) {
        let Ok(backoff) = result else { return Ok(()) };
        let mut count = 0u32;
        let mut total = Duration::ZERO;
        for delay in backoff.seeded(seed).take(1000) {
            prop_assert!(delay <= backoff.max_delay(), "{:?} > {:?}", delay, backoff.max_delay());
            count += 1;
            total = total.saturating_add(delay);
        }
        prop_assert!(backoff.max_delays().is_none_or(|max| count <= max));
        prop_assert!(backoff.max_elapsed().is_none_or(|max| total <= max));

        let mut rng = SmallRng::seed_from_u64(seed);
        if let Some(delay) = backoff.delay(attempt, &mut rng) {
            prop_assert!(delay <= backoff.max_delay());
        }
        if let Some(delay) = backoff.base_delay(attempt) {
            prop_assert!(delay <= backoff.max_delay());
        }
    }
}

#[cfg(feature = "serde")]
#[test]
fn loads_from_toml_through_the_same_validation() {
    let text = r#"
        kind = "exponential"
        min = { secs = 1, nanos = 0 }
        max = { secs = 10, nanos = 0 }
        jitter = { proportional = 0.1 }
        max_delays = 5
    "#;
    let loaded: Backoff = toml::from_str(text).unwrap();
    let built = Backoff::exponential(secs(1), secs(10))
        .jitter(Jitter::Proportional(0.1))
        .max_delays(5)
        .build()
        .unwrap();
    assert_eq!(loaded, built);
    let round_trip: Backoff = toml::from_str(&toml::to_string(&built).unwrap()).unwrap();
    assert_eq!(round_trip, built);

    let invalid = text.replace("0.1", "1.5");
    let err = toml::from_str::<Backoff>(&invalid).unwrap_err();
    assert!(err.to_string().contains("invalid `jitter`"), "{err}");
}

#[cfg(feature = "serde")]
#[test]
fn durations_load_in_the_human_form_and_are_written_in_it() {
    let text = r#"
        kind = "exponential"
        min = "100ms"
        max = "10s"
        jitter = "full"
        max_elapsed = "1m"
    "#;
    let loaded: Backoff = toml::from_str(text).unwrap();
    let built = Backoff::exponential(Duration::from_millis(100), secs(10))
        .jitter(Jitter::Full)
        .max_elapsed(secs(60))
        .build()
        .unwrap();
    assert_eq!(loaded, built);
    let written = toml::to_string(&built).unwrap();
    assert!(written.contains("min = \"100ms\""), "{written}");
    assert!(written.contains("max_elapsed = \"1m\""), "{written}");

    let fixed: Backoff = toml::from_str("kind = \"fixed\"\ndelay = \"10ms\"").unwrap();
    assert_eq!(
        fixed,
        Backoff::fixed(Duration::from_millis(10)).build().unwrap()
    );
    let err = toml::from_str::<Backoff>("kind = \"fixed\"\ndelay = 10").unwrap_err();
    assert!(err.to_string().contains("expected a duration"), "{err}");
    let zero_min = "kind = \"exponential\"\nmin = \"0s\"\nmax = \"1s\"";
    let err = toml::from_str::<Backoff>(zero_min).unwrap_err();
    assert!(err.to_string().contains("invalid `min`"), "{err}");
}
