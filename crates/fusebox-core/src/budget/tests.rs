use super::algorithm::{MILLIONTHS, Rules, SLOTS};
use super::*;
use crate::clock::{Clock, ManualClock};
use proptest::prelude::*;
use std::sync::Barrier;
use std::thread;

const SECOND: u64 = 1_000_000_000;
const MILLI: u64 = 1_000_000;

fn config(ratio: f64, per_second: f64, window_secs: u64) -> BudgetConfig {
    BudgetConfig::builder()
        .ratio(ratio)
        .min_retries_per_second(per_second)
        .window(Duration::from_secs(window_secs))
        .build()
        .unwrap()
}

/// Lets one scenario run against the pure ledger and the concurrent shell alike.
trait Budget {
    fn deposit(&mut self, now_nanos: u64);
    fn try_withdraw(&mut self, now_nanos: u64) -> bool;
}

impl Budget for BudgetLedger {
    fn deposit(&mut self, now_nanos: u64) {
        BudgetLedger::deposit(self, now_nanos);
    }
    fn try_withdraw(&mut self, now_nanos: u64) -> bool {
        BudgetLedger::try_withdraw(self, now_nanos)
    }
}

impl Budget for RetryBudget {
    fn deposit(&mut self, now_nanos: u64) {
        RetryBudget::deposit(self, now_nanos);
    }
    fn try_withdraw(&mut self, now_nanos: u64) -> bool {
        RetryBudget::try_withdraw(self, now_nanos)
    }
}

/// `calls` calls to a dependency that fails every time, spread evenly over `span_nanos`: each
/// is a first attempt followed by up to three retries while the budget allows. Returns the
/// retries granted.
fn failing_storm(budget: &mut impl Budget, calls: u64, span_nanos: u64) -> u64 {
    let clock = ManualClock::new();
    let mut granted = 0;
    for call in 0..calls {
        clock.set(Duration::from_nanos(call * (span_nanos / calls)));
        budget.deposit(clock.now_nanos());
        for _retry in 0..3 {
            if !budget.try_withdraw(clock.now_nanos()) {
                break;
            }
            granted += 1;
        }
    }
    granted
}

/// The retries granted by [`failing_storm`] on the ledger and on the shell.
fn storm_both(config: &BudgetConfig, calls: u64, span_nanos: u64) -> [u64; 2] {
    [
        failing_storm(&mut BudgetLedger::new(config.clone()), calls, span_nanos),
        failing_storm(&mut RetryBudget::new(config.clone()), calls, span_nanos),
    ]
}

#[test]
fn a_failing_dependency_gets_at_most_ratio_times_calls_plus_the_floor_and_no_less() {
    for (ratio, per_second) in [(0.2, 10.0), (0.1, 1.0), (0.5, 0.0), (0.0, 3.0), (0.05, 2.5)] {
        let config = config(ratio, per_second, 10);
        let bound = (ratio * 10_000.0 + per_second * 10.0).floor() as u64;
        // 10,000 first attempts within one 10 s window.
        for granted in storm_both(&config, 10_000, 10 * SECOND) {
            assert!(granted <= bound, "{granted} > {bound} for {config:?}");
            // The bound is reached: the budget hands out everything it promises.
            assert_eq!(granted, bound, "{config:?}");
        }
    }
}

#[test]
fn over_several_windows_the_floor_renews_once_per_window() {
    let config = config(0.2, 10.0, 10);
    // 10,000 first attempts over 60 s: six windows of floor, plus the ratio.
    let bound = 2_000 + 10 * 60;
    for granted in storm_both(&config, 10_000, 60 * SECOND) {
        assert!(granted <= bound, "{granted} > {bound}");
        assert!(
            granted >= bound * 95 / 100,
            "{granted} is far below {bound}"
        );
    }
}

#[test]
fn the_floor_alone_allows_min_retries_per_second() {
    let mut ledger = BudgetLedger::new(config(0.0, 5.0, 10));
    let mut grants = Vec::new();
    // A retry asked for every 10 ms for 60 s, without a single first attempt.
    for tick in 0..6_000u64 {
        let now = tick * 10 * MILLI;
        if ledger.try_withdraw(now) {
            grants.push(now);
        }
    }
    assert_eq!(grants.len(), 5 * 60);
    // No 10 s stretch ever holds more than the 50 the floor allows.
    for (i, &at) in grants.iter().enumerate() {
        let in_window = grants[..=i]
            .iter()
            .filter(|&&t| t + 10 * SECOND > at)
            .count();
        assert!(
            in_window <= 50,
            "{in_window} grants in the 10 s before {at}"
        );
    }
}

#[test]
fn deposits_expire_after_one_window() {
    let mut ledger = BudgetLedger::new(config(1.0, 0.0, 10));
    for _ in 0..5 {
        ledger.deposit(0);
    }
    assert_eq!(ledger.available(0), 5);
    assert_eq!(ledger.available(10 * SECOND - 1), 5);
    assert_eq!(ledger.available(10 * SECOND), 0);
    assert!(!ledger.try_withdraw(10 * SECOND));
}

#[test]
fn withdrawals_expire_with_their_window_too() {
    for mut budget in [
        Box::new(BudgetLedger::new(config(1.0, 0.0, 10))) as Box<dyn BudgetWithAvailable>,
        Box::new(RetryBudget::new(config(1.0, 0.0, 10))),
    ] {
        for _ in 0..5 {
            budget.deposit(0);
        }
        for _ in 0..5 {
            assert!(budget.try_withdraw(0));
        }
        assert!(!budget.try_withdraw(0));
        for _ in 0..5 {
            budget.deposit(5 * SECOND);
        }
        assert_eq!(budget.available(5 * SECOND), 5);
        // At 10 s the first five deposits leave, and so do the five retries they paid for.
        assert_eq!(budget.available(10 * SECOND), 5);
        assert_eq!(budget.available(15 * SECOND), 0);
    }
}

trait BudgetWithAvailable: Budget {
    fn available(&self, now_nanos: u64) -> u64;
}

impl BudgetWithAvailable for BudgetLedger {
    fn available(&self, now_nanos: u64) -> u64 {
        BudgetLedger::available(self, now_nanos)
    }
}

impl BudgetWithAvailable for RetryBudget {
    fn available(&self, now_nanos: u64) -> u64 {
        RetryBudget::available(self, now_nanos)
    }
}

#[test]
fn expiry_moves_a_tenth_of_the_window_at_a_time() {
    let mut ledger = BudgetLedger::new(config(1.0, 0.0, 10));
    ledger.deposit(950 * MILLI); // in the first 1 s slot
    ledger.deposit(SECOND); // in the second
    assert_eq!(ledger.available(10 * SECOND - 1), 2);
    assert_eq!(ledger.available(10 * SECOND), 1);
    assert_eq!(ledger.available(11 * SECOND - 1), 1);
    assert_eq!(ledger.available(11 * SECOND), 0);
}

#[test]
fn a_clock_that_goes_back_counts_as_no_time_passed() {
    for mut budget in [
        Box::new(BudgetLedger::new(config(1.0, 0.0, 10))) as Box<dyn BudgetWithAvailable>,
        Box::new(RetryBudget::new(config(1.0, 0.0, 10))),
    ] {
        budget.deposit(20 * SECOND);
        budget.deposit(0); // recorded at 20 s, not in a long-expired slot
        assert_eq!(budget.available(0), 2);
        assert_eq!(budget.available(29 * SECOND), 2);
        assert_eq!(budget.available(30 * SECOND), 0);
    }
}

#[test]
fn each_invalid_setting_names_its_field() {
    let builder = BudgetConfig::builder;
    let cases = [
        ("ratio", builder().ratio(f64::NAN).build()),
        ("ratio", builder().ratio(f64::INFINITY).build()),
        ("ratio", builder().ratio(-0.1).build()),
        ("ratio", builder().ratio(1000.001).build()),
        (
            "min_retries_per_second",
            builder().min_retries_per_second(-1.0).build(),
        ),
        (
            "min_retries_per_second",
            builder().min_retries_per_second(f64::NAN).build(),
        ),
        (
            "min_retries_per_second",
            builder().min_retries_per_second(f64::INFINITY).build(),
        ),
        ("window", builder().window(Duration::ZERO).build()),
    ];
    for (field, result) in cases {
        let err = result.expect_err(field);
        assert_eq!(err.field(), Some(field), "{err}");
        assert!(err.to_string().contains(field), "{err}");
    }
    assert!(
        builder()
            .ratio(0.0)
            .min_retries_per_second(0.0)
            .build()
            .is_ok()
    );
    assert!(builder().ratio(1000.0).build().is_ok());
    assert!(builder().window(Duration::from_nanos(1)).build().is_ok());
}

#[test]
fn extreme_settings_do_not_overflow() {
    let config = BudgetConfig::builder()
        .ratio(1000.0)
        .min_retries_per_second(f64::MAX)
        .window(Duration::MAX)
        .build()
        .unwrap();
    let mut ledger = BudgetLedger::new(config.clone());
    let shell = RetryBudget::new(config);
    for now in [0, 1, u64::MAX / 2, u64::MAX] {
        ledger.deposit(now);
        shell.deposit(now);
        assert!(ledger.try_withdraw(now));
        assert!(shell.try_withdraw(now));
    }
    assert_eq!(ledger.available(u64::MAX), shell.available(u64::MAX));

    let tiny = BudgetConfig::builder()
        .window(Duration::from_nanos(1))
        .build()
        .unwrap();
    let shell = RetryBudget::new(tiny);
    for now in (0..1_000).chain([u64::MAX - 1, u64::MAX]) {
        shell.deposit(now);
        shell.try_withdraw(now);
    }
}

#[test]
fn clones_share_one_budget() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<RetryBudget>();
    shareable::<BudgetConfig>();

    let budget = RetryBudget::new(config(1.0, 0.0, 10));
    let clone = budget.clone();
    clone.deposit(0);
    assert!(budget.try_withdraw(0));
    assert!(!clone.try_withdraw(0));
    assert!(format!("{budget:?}").contains("ratio"));
}

#[test]
fn concurrent_callers_spend_exactly_what_the_ledger_allows() {
    const THREADS: usize = 4;
    const CALLS_PER_THREAD: u64 = 500;
    let config = config(0.3, 1.0, 10);
    let shell = RetryBudget::new(config.clone());
    let mut ledger = BudgetLedger::new(config);
    // Twenty rounds 1.5 s apart span three windows, so slots expire and get reused under load.
    for round in 0..20u64 {
        let now = round * 1_500 * MILLI;
        let start = Barrier::new(THREADS);
        let granted: u64 = thread::scope(|scope| {
            let workers: Vec<_> = (0..THREADS)
                .map(|_| {
                    scope.spawn(|| {
                        start.wait();
                        let mut granted = 0;
                        for _ in 0..CALLS_PER_THREAD {
                            shell.deposit(now);
                            granted += u64::from(shell.try_withdraw(now));
                            granted += u64::from(shell.try_withdraw(now));
                        }
                        granted
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        // Whatever the race left unspent is still there, and nothing more.
        let mut drained = 0;
        while shell.try_withdraw(now) {
            drained += 1;
        }

        for _ in 0..THREADS as u64 * CALLS_PER_THREAD {
            ledger.deposit(now);
        }
        let mut allowed = 0;
        while ledger.try_withdraw(now) {
            allowed += 1;
        }
        assert_eq!(granted + drained, allowed, "round {round}");
        assert!(granted <= allowed);
    }
}

#[test]
fn a_concurrent_storm_across_windows_stays_within_the_bound() {
    const THREADS: u64 = 4;
    const CALLS_PER_THREAD: u64 = 5_000;
    let config = config(0.2, 10.0, 10);
    let budget = RetryBudget::new(config);
    let clock = ManualClock::new();
    let granted: u64 = thread::scope(|scope| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (budget, clock) = (budget.clone(), clock.clone());
                scope.spawn(move || {
                    let mut granted = 0;
                    for _ in 0..CALLS_PER_THREAD {
                        // Each call moves the shared clock 3 ms: 20,000 calls over 60 s.
                        clock.advance(Duration::from_millis(3));
                        budget.deposit(clock.now_nanos());
                        for _retry in 0..3 {
                            if !budget.try_withdraw(clock.now_nanos()) {
                                break;
                            }
                            granted += 1;
                        }
                    }
                    granted
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let windows = clock.now_nanos() / (10 * SECOND) + 1;
    let bound = THREADS * CALLS_PER_THREAD / 5 + 100 * windows;
    assert!(granted <= bound, "{granted} > {bound}");
    assert!(granted >= bound * 9 / 10, "{granted} is far below {bound}");
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Deposit,
    Withdraw,
    Available,
}

fn any_step() -> impl Strategy<Value = (Step, i64)> {
    let step = prop_oneof![
        3 => Just(Step::Deposit),
        3 => Just(Step::Withdraw),
        1 => Just(Step::Available),
    ];
    // Mostly forward, sometimes a jump of several windows, sometimes back in time.
    let move_ms = prop_oneof![
        6 => 0i64..500,
        1 => 0i64..60_000,
        1 => -5_000i64..0,
    ];
    (step, move_ms)
}

fn any_config() -> impl Strategy<Value = BudgetConfig> {
    (0.0f64..3.0, 0.0f64..5.0, 1u64..30_000).prop_map(|(ratio, per_second, window_ms)| {
        BudgetConfig::builder()
            .ratio(ratio)
            .min_retries_per_second(per_second)
            .window(Duration::from_millis(window_ms))
            .build()
            .unwrap()
    })
}

proptest! {
    #[test]
    fn the_shell_answers_like_the_ledger_from_one_thread(
        config in any_config(),
        steps in prop::collection::vec(any_step(), 0..400),
    ) {
        let mut ledger = BudgetLedger::new(config.clone());
        let shell = RetryBudget::new(config);
        let mut now: u64 = 0;
        for (step, move_ms) in steps {
            now = now.saturating_add_signed(move_ms * MILLI as i64);
            match step {
                Step::Deposit => {
                    ledger.deposit(now);
                    shell.deposit(now);
                }
                Step::Withdraw => prop_assert_eq!(ledger.try_withdraw(now), shell.try_withdraw(now)),
                Step::Available => prop_assert_eq!(ledger.available(now), shell.available(now)),
            }
        }
    }

    #[test]
    fn the_ledger_grants_at_most_the_ratio_plus_one_floor_per_window(
        config in any_config(),
        steps in prop::collection::vec(any_step(), 0..400),
    ) {
        let mut ledger = BudgetLedger::new(config.clone());
        let rules = Rules::new(&config);
        let (mut now, mut newest, mut deposits, mut granted) = (0u64, 0u64, 0u64, 0u64);
        for (step, move_ms) in steps {
            now = now.saturating_add_signed(move_ms * MILLI as i64);
            newest = newest.max(now);
            match step {
                Step::Deposit => {
                    ledger.deposit(now);
                    deposits += 1;
                }
                Step::Withdraw => granted += u64::from(ledger.try_withdraw(now)),
                Step::Available => {}
            }
        }
        // Windows as the ledger counts them: ten slots each, from time zero.
        let windows = u128::from(rules.epoch(newest) / SLOTS as u64 + 1);
        let bound = (rules.ratio_millionths * u128::from(deposits)
            + rules.reserve_millionths * windows)
            / MILLIONTHS;
        prop_assert!(u128::from(granted) <= bound, "{} > {}", granted, bound);
    }
}

#[cfg(feature = "serde")]
#[test]
fn loads_from_toml_through_the_same_validation() {
    let loaded: BudgetConfig =
        toml::from_str("ratio = 0.1\nwindow = { secs = 30, nanos = 0 }").unwrap();
    assert_eq!(loaded, {
        BudgetConfig::builder()
            .ratio(0.1)
            .window(Duration::from_secs(30))
            .build()
            .unwrap()
    });
    let round_trip: BudgetConfig = toml::from_str(&toml::to_string(&loaded).unwrap()).unwrap();
    assert_eq!(round_trip, loaded);

    let err = toml::from_str::<BudgetConfig>("ratio = 2000.0").unwrap_err();
    assert!(err.to_string().contains("invalid `ratio`"), "{err}");
}

#[cfg(feature = "serde")]
#[test]
fn windows_load_in_the_human_duration_form() {
    let loaded: BudgetConfig = toml::from_str("ratio = 0.1\nwindow = \"30s\"").unwrap();
    assert_eq!(loaded.window(), Duration::from_secs(30));
    // Written back in the same form.
    let text = toml::to_string(&loaded).unwrap();
    assert!(text.contains("window = \"30s\""), "{text}");
    let err = toml::from_str::<BudgetConfig>("window = \"30\"").unwrap_err();
    assert!(err.to_string().contains("expected a duration"), "{err}");
}
