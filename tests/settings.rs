//! Whole pipelines from TOML and the environment: the same validation as code, errors that
//! name the field's path (and the variable), one human duration form, and settings laid over
//! what code chose.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fusebox::breaker::{Breaker, BreakerSettings, Cooldown, State, WindowKind};
use fusebox::pipeline::Pipeline;
use fusebox::policy::{Fallback, Retry};
use fusebox::settings::{PipelineSettings, RetrySettings, SettingsError};

#[derive(serde::Deserialize)]
struct ServiceSettings {
    payments: PipelineSettings,
}

const PAYMENTS: &str = r#"
    [payments]
    timeout = "5s"
    attempt_timeout = "100ms"

    [payments.retry]
    max_retries = 2
    backoff = { kind = "fixed", delay = "10ms" }
    budget = { ratio = 1.0, min_retries_per_second = 100.0, window = "10s" }

    [payments.breaker]
    consecutive_failures = 6
    cooldown = "30s"

    [payments.bulkhead]
    max_concurrent = 4
"#;

fn payments() -> PipelineSettings {
    toml::from_str::<ServiceSettings>(PAYMENTS)
        .unwrap()
        .payments
}

fn build(settings: &PipelineSettings) -> Result<Pipeline<u32, &'static str>, SettingsError> {
    settings.build("payments")
}

#[tokio::test(start_paused = true)]
async fn a_pipeline_from_toml_runs_every_level_in_order() {
    let pipeline = build(&payments()).unwrap();
    assert_eq!(pipeline.depth(), 5);

    // Retry outside the breaker: 3 attempts per call, each counted by the breaker.
    let attempts = AtomicU32::new(0);
    let failing = || async {
        attempts.fetch_add(1, Ordering::Relaxed);
        Err::<u32, _>("down")
    };
    let started = tokio::time::Instant::now();
    assert_eq!(
        pipeline.call(failing).await.unwrap_err().into_inner(),
        Some("down")
    );
    assert_eq!(attempts.load(Ordering::Relaxed), 3);
    assert_eq!(started.elapsed(), Duration::from_millis(20)); // two fixed 10 ms delays
    // 6 consecutive failures trip it: the third call is rejected before any attempt.
    assert!(pipeline.call(failing).await.is_err());
    assert_eq!(attempts.load(Ordering::Relaxed), 6);
    assert!(pipeline.call(failing).await.unwrap_err().is_rejected());
    assert_eq!(attempts.load(Ordering::Relaxed), 6);
}

#[tokio::test(start_paused = true)]
async fn the_attempt_timeout_bounds_each_attempt_and_the_timeout_the_whole_call() {
    let mut settings = payments();
    settings.timeout = Some(Duration::from_millis(150));
    let pipeline = build(&settings).unwrap();
    let attempts = AtomicU32::new(0);
    let started = tokio::time::Instant::now();
    let slow = pipeline
        .call(|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(1)
        })
        .await;
    assert_eq!(slow.unwrap_err().stopped_by(), Some("timeout"));
    // 100 ms attempt, 10 ms delay, second attempt cut by the whole call's 150 ms.
    assert_eq!(attempts.load(Ordering::Relaxed), 2);
    assert_eq!(started.elapsed(), Duration::from_millis(150));
}

fn error_of(text: &str) -> SettingsError {
    let settings: PipelineSettings = toml::from_str(text).unwrap();
    build(&settings).unwrap_err()
}

#[test]
fn errors_name_the_path_of_the_field() {
    let cases = [
        ("timeout = \"0s\"", "timeout"),
        ("attempt_timeout = \"0s\"", "attempt_timeout"),
        ("[retry]\nmax_elapsed = \"0s\"", "retry.max_elapsed"),
        (
            "[retry]\nbackoff = { kind = \"exponential\", min = \"1s\", max = \"0s\" }",
            "retry.backoff.max",
        ),
        (
            "[retry]\nbackoff = { kind = \"exponential\", min = \"1s\", max = \"2s\", factor = nan }",
            "retry.backoff.factor",
        ),
        (
            "[retry]\nbackoff = { kind = \"fixed\", delay = \"1s\", cap = \"2s\" }",
            "retry.backoff.cap",
        ),
        (
            "[retry]\nbackoff = { delay = \"1s\" }",
            "retry.backoff.kind",
        ),
        ("[retry]\nbudget = { ratio = -1.0 }", "retry.budget.ratio"),
        (
            "[retry]\nbudget = { window = \"0s\" }",
            "retry.budget.window",
        ),
        ("[breaker]\nfailure_rate = 1.5", "breaker.failure_rate"),
        ("[bulkhead]\nmax_concurrent = 0", "bulkhead.max_concurrent"),
        ("[bulkhead]\nmax_wait = \"0s\"", "bulkhead.max_wait"),
    ];
    for (text, path) in cases {
        let err = error_of(text);
        assert_eq!(err.path(), path, "{text}: {err}");
        assert!(err.to_string().contains(&format!("`{path}`")), "{err}");
    }
    let conflict = error_of("[breaker]\nwindow_calls = 10\nwindow_span = \"1m\"");
    assert_eq!(conflict.path(), "breaker.window_calls");
    assert!(
        conflict.to_string().contains("`breaker.window_span`"),
        "{conflict}"
    );
}

#[test]
fn unknown_keys_and_bad_durations_fail_at_parse_time_naming_the_key() {
    let typo = toml::from_str::<PipelineSettings>("[retry]\nmax_retrys = 3").unwrap_err();
    assert!(typo.to_string().contains("max_retrys"), "{typo}");
    let unitless = toml::from_str::<PipelineSettings>("timeout = \"5\"").unwrap_err();
    assert!(
        unitless.to_string().contains("expected a duration"),
        "{unitless}"
    );
    let kind = toml::from_str::<PipelineSettings>("[retry]\nbackoff = { kind = \"linear\" }");
    assert!(kind.unwrap_err().to_string().contains("linear"));
}

#[test]
fn durations_are_one_human_form_everywhere_and_round_trip() {
    let settings = payments();
    let text = toml::to_string(&settings).unwrap();
    for written in [
        "timeout = \"5s\"",
        "attempt_timeout = \"100ms\"",
        "delay = \"10ms\"",
        "window = \"10s\"",
        "cooldown = \"30s\"",
    ] {
        assert!(text.contains(written), "{written} missing from:\n{text}");
    }
    assert_eq!(toml::from_str::<PipelineSettings>(&text).unwrap(), settings);
    // Files from before durations were strings everywhere still load.
    let legacy: PipelineSettings =
        toml::from_str("[retry]\nbackoff = { kind = \"fixed\", delay = { secs = 1, nanos = 0 } }")
            .unwrap();
    let backoff = legacy.retry.unwrap().backoff.unwrap();
    assert_eq!(backoff.delay, Some(Duration::from_secs(1)));
}

#[test]
fn environment_variables_override_the_file() {
    let mut settings = payments();
    settings
        .apply_vars(
            "payments",
            [
                ("FUSEBOX_PAYMENTS__TIMEOUT", "2s"),
                ("FUSEBOX_PAYMENTS__RETRY__MAX_RETRIES", "5"),
                ("FUSEBOX_PAYMENTS__RETRY__BACKOFF__DELAY", "250ms"),
                ("FUSEBOX_PAYMENTS__RETRY__BUDGET__RATIO", "0.5"),
                ("FUSEBOX_PAYMENTS__BREAKER__COOLDOWN", "1m"),
                ("FUSEBOX_PAYMENTS__BULKHEAD__MAX_QUEUED", "8"),
                ("FUSEBOX_SEARCH__TIMEOUT", "9s"), // another pipeline's
            ],
        )
        .unwrap();
    assert_eq!(settings.timeout, Some(Duration::from_secs(2)));
    let retry = settings.retry.as_ref().unwrap();
    assert_eq!(retry.max_retries, Some(5));
    assert_eq!(
        retry.backoff.as_ref().unwrap().delay,
        Some(Duration::from_millis(250))
    );
    assert_eq!(retry.budget.as_ref().unwrap().ratio, Some(0.5));
    assert_eq!(
        retry.budget.as_ref().unwrap().window,
        Some(Duration::from_secs(10))
    ); // kept
    let breaker = settings.breaker.as_ref().unwrap();
    assert_eq!(breaker.cooldown, Some(Duration::from_secs(60)));
    assert_eq!(breaker.consecutive_failures, Some(6)); // kept from the file
    assert_eq!(settings.bulkhead.as_ref().unwrap().max_queued, Some(8));
    assert!(build(&settings).is_ok());

    // A level absent from the file is created by its first variable.
    let mut empty = PipelineSettings::default();
    empty
        .apply_vars(
            "payments",
            [("FUSEBOX_PAYMENTS__BULKHEAD__MAX_CONCURRENT", "2")],
        )
        .unwrap();
    assert_eq!(build(&empty).unwrap().depth(), 1);
}

#[test]
fn environment_errors_name_the_variable_and_the_setting() {
    let cases = [
        (
            "FUSEBOX_PAYMENTS__RETRY__MAX_RETRIES",
            "many",
            "retry.max_retries",
            "expected a number",
        ),
        (
            "FUSEBOX_PAYMENTS__TIMEOUT",
            "5",
            "timeout",
            "expected a duration",
        ),
        (
            "FUSEBOX_PAYMENTS__RETRY__MAX_RETRYS",
            "3",
            "retry.max_retrys",
            "names no setting",
        ),
        (
            "FUSEBOX_PAYMENTS__BREAKER__COOLDOWN__MAX",
            "3s",
            "breaker.cooldown.max",
            "names no setting",
        ),
        (
            "FUSEBOX_PAYMENTS__RETRY__BACKOFF__KIND",
            "linear",
            "retry.backoff.kind",
            "linear",
        ),
        (
            "FUSEBOX_PAYMENTS__RETRY__BACKOFF__JITTER",
            "lots",
            "retry.backoff.jitter",
            "lots",
        ),
    ];
    for (variable, value, path, reason) in cases {
        let mut settings = payments();
        let err = settings
            .apply_vars("payments", [(variable, value)])
            .unwrap_err();
        match &err {
            SettingsError::Env {
                variable: v,
                path: p,
                reason: r,
                ..
            } => {
                assert_eq!((v.as_str(), p.as_str()), (variable, path));
                assert!(r.contains(reason), "{err}");
            }
            other => panic!("not an environment error: {other}"),
        }
        assert!(err.to_string().contains(variable), "{err}");
    }
    // Values that parse but are out of range fail at build, like a file's.
    let mut settings = payments();
    settings
        .apply_vars(
            "payments",
            [("FUSEBOX_PAYMENTS__BREAKER__FAILURE_RATE", "NaN")],
        )
        .unwrap();
    assert_eq!(build(&settings).unwrap_err().path(), "breaker.failure_rate");
}

/// Runs in a child process with the variables set, since the process environment cannot be
/// changed safely while other tests run.
#[test]
fn apply_env_reads_the_process_environment() {
    const CHILD: &str = "FUSEBOX_ENV_TEST_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let mut settings = PipelineSettings::default();
        settings.apply_env("env-test").unwrap();
        assert_eq!(settings.retry.unwrap().max_retries, Some(7));
        assert_eq!(settings.attempt_timeout, Some(Duration::from_millis(40)));
        let mut bad = PipelineSettings::default();
        let err = bad.apply_env("env-bad").unwrap_err();
        assert!(
            err.to_string().contains("FUSEBOX_ENV_BAD__TIMEOUT"),
            "{err}"
        );
        return;
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "apply_env_reads_the_process_environment",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("FUSEBOX_ENV_TEST__RETRY__MAX_RETRIES", "7")
        .env("FUSEBOX_ENV_TEST__ATTEMPT_TIMEOUT", "40ms")
        .env("FUSEBOX_ENV_BAD__TIMEOUT", "soon")
        .status()
        .unwrap();
    assert!(status.success(), "the child run failed: {status}");
}

#[tokio::test(start_paused = true)]
async fn settings_merge_over_the_builders_code_gives() {
    let settings = payments();
    let fallbacks = AtomicU32::new(0);
    let pipeline = settings
        .pipeline::<u32, &'static str>("payments")
        .outer(Pipeline::builder().fallback(Fallback::value(0)))
        // Code gives the classification; the file's numbers (2 retries) win over code's 9.
        .retry(
            Retry::builder()
                .max_retries(9)
                .retry_on(|e: &&str| *e == "busy"),
        )
        .breaker(Breaker::builder("payments-code").consecutive_failures(100))
        .build()
        .unwrap();
    assert_eq!(pipeline.depth(), 6);
    let attempts = AtomicU32::new(0);
    let busy = pipeline
        .call(|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            Err::<u32, _>("busy")
        })
        .await;
    assert_eq!(busy.unwrap(), 0); // answered by the code's fallback
    assert_eq!(attempts.load(Ordering::Relaxed), 3); // 1 + the file's 2 retries
    let refused = pipeline
        .call(|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            fallbacks.fetch_add(1, Ordering::Relaxed);
            Err::<u32, _>("bad request")
        })
        .await;
    assert_eq!(refused.unwrap(), 0);
    assert_eq!(fallbacks.load(Ordering::Relaxed), 1); // the code's classification: not retried
}

#[test]
fn retry_settings_merge_and_breaker_settings_replace_or_merge_as_documented() {
    // RetrySettings::apply: set fields win, the rest stays.
    let file = RetrySettings {
        max_retries: Some(1),
        ..Default::default()
    };
    let retry = file
        .apply(Retry::<(), ()>::builder().name("kept").max_retries(5))
        .unwrap()
        .build()
        .unwrap();
    assert_eq!((retry.name().as_str(), retry.max_retries()), ("kept", 1));
    let untouched = RetrySettings::default()
        .apply(Retry::<(), ()>::builder().max_retries(5))
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(untouched.max_retries(), 5);

    // BreakerBuilder::settings replaces; merge_settings merges.
    let file = BreakerSettings {
        cooldown: Some(Duration::from_secs(9)),
        ..Default::default()
    };
    let code = || Breaker::builder("b").failures_in_last(3, 10);
    let replaced = code().settings(file.clone()).build().unwrap();
    assert_eq!(replaced.config().window(), None);
    let merged = code().merge_settings(file).build().unwrap();
    assert_eq!(
        merged.config().window(),
        Some(WindowKind::Count { calls: 10 })
    );
    assert!(matches!(
        merged.config().cooldown(),
        Cooldown::Fixed { duration, .. } if duration == Duration::from_secs(9)
    ));
    assert_eq!(merged.state(), State::Closed);
}

// ---------------------------------------------------------------------------------------
// Keyed breakers: defaults and overrides per key
// ---------------------------------------------------------------------------------------

const HOSTS: &str = r#"
    max_keys = 50
    idle_timeout = "90s"

    [defaults]
    consecutive_failures = 4
    cooldown = "20s"
    half_open_successes = 2

    [keys."payments.internal"]
    consecutive_failures = 1

    [keys.search]
    cooldown = "2s"
    half_open_successes = 1
"#;

#[test]
fn per_key_overrides_are_laid_over_the_defaults_field_by_field() {
    use fusebox::settings::RegistrySettings;

    let settings: RegistrySettings = toml::from_str(HOSTS).expect("valid TOML");
    let hosts = settings.build::<String>("host").expect("valid settings");
    assert_eq!(hosts.max_keys(), 50);
    assert_eq!(hosts.idle_timeout(), Duration::from_secs(90));

    let payments = hosts.get_or_create(&"payments.internal".to_string());
    assert_eq!(payments.name(), "host:payments.internal");
    assert_eq!(payments.config().consecutive_failures(), Some(1));
    assert!(
        matches!(payments.config().cooldown(), Cooldown::Fixed { duration, .. } if duration == Duration::from_secs(20)),
        "the default cooldown is kept"
    );
    assert_eq!(payments.config().close_rule().successes, 2);

    let search = hosts.get_or_create(&"search".to_string());
    assert_eq!(search.config().consecutive_failures(), Some(4));
    assert_eq!(search.config().close_rule().successes, 1);

    let other = hosts.get_or_create(&"cdn".to_string());
    assert_eq!(other.config().consecutive_failures(), Some(4));
    assert_eq!(hosts.stats().config_fallbacks, 0);

    // The override acts: one failure opens payments, the default needs four.
    payments.record_failure();
    other.record_failure();
    assert_eq!(payments.state(), State::Open);
    assert_eq!(other.state(), State::Closed);
}

#[test]
fn a_bad_key_is_refused_at_build_with_its_path() {
    use fusebox::settings::RegistrySettings;

    let bad: RegistrySettings = toml::from_str(
        r#"
        [defaults]
        half_open_trials = 2
        [keys."api.example.com"]
        half_open_successes = 3
    "#,
    )
    .expect("valid TOML");
    let err = bad.build::<String>("host").unwrap_err();
    assert_eq!(err.path(), r#"keys."api.example.com".half_open_successes"#);
    assert!(err.to_string().contains("3 successes"), "{err}");

    let bad: RegistrySettings =
        toml::from_str("[defaults]\ncooldown = \"0s\"").expect("valid TOML");
    assert_eq!(
        bad.build::<String>("host").unwrap_err().path(),
        "defaults.cooldown"
    );

    let bad: RegistrySettings = toml::from_str("[keys.\"\"]\nconsecutive_failures = 2").unwrap();
    assert_eq!(bad.build::<String>("host").unwrap_err().path(), "keys");

    let typo = toml::from_str::<fusebox::settings::RegistrySettings>(
        "[keys.search]\nconsecutive_failure = 2",
    );
    assert!(
        typo.unwrap_err()
            .to_string()
            .contains("consecutive_failure"),
        "an unknown field is named"
    );
    let negative = toml::from_str::<fusebox::settings::RegistrySettings>("idle_timeout = \"-1s\"");
    assert!(negative.is_err(), "a negative duration does not parse");
}

#[tokio::test(start_paused = true)]
async fn the_load_adaptive_policies_load_from_toml_and_the_environment() {
    let mut settings: PipelineSettings = toml::from_str(
        r#"
        rate_limit = { permits = 2, per = "1s", burst = 2 }
        retry = { max_retries = 0 }
        throttle = { k = 2.0, window = "4s", buckets = 8, seed = 3 }
        concurrency_limit = { algorithm = "vegas", min_limit = 1, initial_limit = 4 }
    "#,
    )
    .unwrap();
    settings
        .apply_vars(
            "search",
            [
                ("FUSEBOX_SEARCH__RATE_LIMIT__BURST", "3"),
                ("FUSEBOX_SEARCH__CONCURRENCY_LIMIT__MAX_LIMIT", "50"),
                ("FUSEBOX_SEARCH__THROTTLE__K", "1.5"),
            ],
        )
        .unwrap();
    assert_eq!(settings.rate_limit.as_ref().unwrap().burst, Some(3));
    let pipeline: Pipeline<u32, &str> = settings.build("search").unwrap();
    assert_eq!(pipeline.depth(), 4);
    for _ in 0..3 {
        assert_eq!(pipeline.call(|| async { Ok(1) }).await.unwrap(), 1);
    }
    let limited = pipeline.call(|| async { Ok(1) }).await.unwrap_err();
    assert_eq!(limited.stopped_by(), Some("rate_limit"), "a burst of 3");

    let bad = |text: &str| {
        let settings: PipelineSettings = toml::from_str(text).unwrap();
        settings
            .build::<u32, &str>("search")
            .unwrap_err()
            .path()
            .to_owned()
    };
    assert_eq!(bad("rate_limit = { permits = 0 }"), "rate_limit.permits");
    assert_eq!(
        bad("rate_limit = { permits = 5, max_wait = \"1s\" }"),
        "rate_limit.max_wait"
    );
    assert_eq!(bad("throttle = { k = 0.5 }"), "throttle.k");
    assert_eq!(bad("throttle = { buckets = 0 }"), "throttle.buckets");
    assert_eq!(
        bad("concurrency_limit = { min_limit = 0 }"),
        "concurrency_limit.min_limit"
    );
    assert_eq!(
        bad("concurrency_limit = { min_limit = 10, max_limit = 5 }"),
        "concurrency_limit.max_limit"
    );
    let unknown: Result<PipelineSettings, _> =
        toml::from_str("concurrency_limit = { algorithm = \"fifo\" }");
    assert!(unknown.is_err());
    let mut env = PipelineSettings::default();
    let err = env
        .apply_vars(
            "search",
            [("FUSEBOX_SEARCH__CONCURRENCY_LIMIT__ALGORITHM", "fifo")],
        )
        .unwrap_err();
    assert!(err.to_string().contains("gradient2"), "{err}");
}

#[test]
fn breaker_shadow_mode_and_the_retry_after_cap_come_from_the_environment() {
    let mut settings = PipelineSettings::default();
    settings
        .apply_vars(
            "pay",
            [
                ("FUSEBOX_PAY__BREAKER__SHADOW", "true"),
                ("FUSEBOX_PAY__BREAKER__RETRY_AFTER_MAX", "2m"),
            ],
        )
        .unwrap();
    let breaker = settings.breaker.unwrap();
    assert_eq!(breaker.shadow, Some(true));
    assert_eq!(breaker.retry_after_max, Some(Duration::from_secs(120)));
}
