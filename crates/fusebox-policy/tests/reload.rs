//! Live settings from a file: reloads on demand and on change, all or nothing, state kept.
#![cfg(feature = "reload")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use fusebox_core::backoff::Backoff;
use fusebox_core::breaker::{Breaker, State};
use fusebox_core::budget::{BudgetConfig, RetryBudget};
use fusebox_core::{Error, Outcome};
use fusebox_policy::policy::Retry;
use fusebox_policy::settings::{ReloadError, ReloadReport, Reloader};

/// A settings file of this test's own, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(test: &str, text: &str) -> TempFile {
        let dir =
            std::env::temp_dir().join(format!("fusebox-reload-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = TempFile(dir.join("fusebox.toml"));
        file.write(text);
        file
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }

    /// Replaces the file as editors and deploy tools do: a new file renamed over it.
    fn replace(&self, text: &str) {
        let next = self.0.with_extension("toml.next");
        std::fs::write(&next, text).unwrap();
        std::fs::rename(&next, &self.0).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn fail(breaker: &Breaker, n: usize) {
    for _ in 0..n {
        breaker
            .try_acquire()
            .expect("admitted")
            .record(Outcome::Failure);
    }
}

#[test]
fn a_reload_applies_what_changed_and_keeps_the_breakers_counts() {
    let file = TempFile::new(
        "applies",
        "[breakers.payments]\nconsecutive_failures = 5\n[breakers.search]\nconsecutive_failures = 5\n",
    );
    let payments = Breaker::builder("payments").build().unwrap();
    let search = Breaker::builder("search").build().unwrap();
    let ledger = Breaker::builder("ledger").build().unwrap();
    let reloader = Reloader::new(&file.0)
        .breaker("payments", &payments)
        .breaker("search", &search)
        .breaker("ledger", &ledger);
    let first = reloader.reload().unwrap();
    assert_eq!(first.applied, ["breakers.payments", "breakers.search"]);
    assert_eq!(first.absent, ["breakers.ledger"]);

    fail(&payments, 3);
    file.write("[breakers.payments]\nconsecutive_failures = 3\n[breakers.search]\nconsecutive_failures = 5\n");
    let second = reloader.reload().unwrap();
    assert_eq!(second.applied, ["breakers.payments"]);
    assert_eq!(second.unchanged, ["breakers.search"]);
    assert_eq!(
        payments.state(),
        State::Open,
        "the kept run of 3 meets the new threshold"
    );
    assert_eq!(
        (payments.revision(), search.revision(), ledger.revision()),
        (2, 1, 0)
    );
}

#[test]
fn one_bad_table_refuses_the_whole_file_and_names_the_setting() {
    let file = TempFile::new("atomic", "[breakers.a]\nconsecutive_failures = 4\n");
    let (a, b) = (
        Breaker::builder("a").build().unwrap(),
        Breaker::builder("b").build().unwrap(),
    );
    let retry = Retry::<(), ()>::builder().max_retries(1).build().unwrap();
    let reloader = Reloader::new(&file.0)
        .breaker("a", &a)
        .breaker("b", &b)
        .retry("calls", &retry);
    reloader.reload().unwrap();

    let cases: [(&str, &str); 6] = [
        (
            "[breakers.a]\nconsecutive_failures = 2\n[breakers.b]\nfailure_rate = 1.5\n",
            "breakers.b.failure_rate",
        ),
        (
            "[breakers.a]\nconsecutive_failures = 2\n[retries.calls]\nmax_elapsed = \"0s\"\n",
            "retries.calls.max_elapsed",
        ),
        (
            "[breakers.typo]\nconsecutive_failures = 2\n",
            "breakers.typo",
        ),
        ("[breakers.a]\noutcome_log = 16\n", "breakers.a.outcome_log"),
        ("[retries.calls]\nseed = 9\n", "retries.calls.seed"),
        (
            "[retries.calls]\nbudget = { ratio = 0.2 }\n",
            "retries.calls.budget",
        ),
    ];
    for (text, setting) in cases {
        file.write(text);
        let err = reloader.reload().unwrap_err();
        assert_eq!(err.setting(), Some(setting), "{err}");
        assert_eq!(
            a.config().consecutive_failures(),
            Some(4),
            "nothing applied: {text}"
        );
        assert_eq!((a.revision(), b.revision(), retry.revision()), (1, 0, 0));
    }
    assert_eq!(retry.max_retries(), 1);
}

#[test]
fn a_file_that_does_not_parse_is_refused() {
    let file = TempFile::new("parse", "[breakers.a]\nconsecutive_failures = \n");
    let a = Breaker::builder("a").build().unwrap();
    let reloader = Reloader::new(&file.0).breaker("a", &a);
    assert!(matches!(reloader.reload(), Err(ReloadError::Parse { .. })));
    file.write("[breakers.a]\nconsecutive_failure = 2\n"); // a typo of a key
    let err = reloader.reload().unwrap_err();
    assert!(err.to_string().contains("consecutive_failure"), "{err}");
    file.write("[breaker.a]\n");
    assert!(matches!(reloader.reload(), Err(ReloadError::Parse { .. })));
    assert_eq!(a.revision(), 0);
}

#[test]
fn settings_repeating_a_retrys_fixed_parts_are_accepted() {
    let budget = RetryBudget::new(BudgetConfig::builder().ratio(0.2).build().unwrap());
    let retry = Retry::<(), ()>::builder()
        .budget(budget)
        .seed(9)
        .build()
        .unwrap();
    let file = TempFile::new(
        "fixed",
        "[retries.calls]\nmax_retries = 6\nseed = 9\nbudget = { ratio = 0.2 }\n",
    );
    let report = Reloader::new(&file.0)
        .retry("calls", &retry)
        .reload()
        .unwrap();
    assert_eq!(report.applied, ["retries.calls"]);
    assert_eq!(retry.max_retries(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_call_already_retrying_keeps_its_plan_and_new_calls_take_the_new_one() {
    let retry = Retry::<(), &str>::builder()
        .max_retries(2)
        .backoff(Backoff::fixed(Duration::from_secs(1)).build().unwrap())
        .build()
        .unwrap();
    let attempts = AtomicU32::new(0);
    let call = retry.call(|| async {
        attempts.fetch_add(1, Ordering::Relaxed);
        Err("down")
    });
    tokio::pin!(call);
    // The first attempt fails and the call starts waiting for its first retry.
    assert!(futures_poll(&mut call).is_none());
    assert_eq!(attempts.load(Ordering::Relaxed), 1);

    let file = TempFile::new(
        "plan",
        "[retries.calls]\nmax_retries = 5\nbackoff = { kind = \"fixed\", delay = \"10ms\" }\n",
    );
    Reloader::new(&file.0)
        .retry("calls", &retry)
        .reload()
        .unwrap();

    let started = tokio::time::Instant::now();
    assert!(matches!(call.await, Err(Error::Inner("down"))));
    assert_eq!(
        attempts.load(Ordering::Relaxed),
        3,
        "the old plan: 2 retries"
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "1 s apart, the old backoff"
    );

    let fresh = AtomicU32::new(0);
    let started = tokio::time::Instant::now();
    let _ = retry
        .call(|| async {
            fresh.fetch_add(1, Ordering::Relaxed);
            Err::<(), _>("down")
        })
        .await;
    assert_eq!(fresh.load(Ordering::Relaxed), 6, "the new plan: 5 retries");
    assert_eq!(started.elapsed(), Duration::from_millis(50));
}

/// Polls a future once; `Some` when it completed.
fn futures_poll<F: std::future::Future + Unpin>(future: &mut F) -> Option<F::Output> {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match std::pin::Pin::new(future).poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

#[test]
fn a_watch_applies_the_file_when_it_is_written_or_replaced() {
    let file = TempFile::new("watch", "[breakers.payments]\nconsecutive_failures = 4\n");
    let breaker = Breaker::builder("payments").build().unwrap();
    let (outcomes, reloads) = mpsc::channel::<Result<ReloadReport, String>>();
    let watching = Reloader::new(&file.0)
        .breaker("payments", &breaker)
        .watch(move |outcome| {
            let _ = outcomes.send(outcome.map_err(|e| e.to_string()));
        })
        .unwrap();
    let next = || {
        reloads
            .recv_timeout(Duration::from_secs(10))
            .expect("a reload within 10 s")
    };
    assert_eq!(
        next().unwrap().applied,
        ["breakers.payments"],
        "applied at once"
    );
    assert_eq!(breaker.config().consecutive_failures(), Some(4));

    file.write("[breakers.payments]\nconsecutive_failures = 2\n");
    let applied = loop {
        // An in-place write may be seen as more than one burst of events.
        let report = next().unwrap();
        if !report.applied.is_empty() {
            break report;
        }
    };
    assert_eq!(applied.applied, ["breakers.payments"]);
    assert_eq!(breaker.config().consecutive_failures(), Some(2));

    file.replace("[breakers.payments]\nfailure_rate = 7.0\n");
    let refused = next().unwrap_err();
    assert!(
        refused.contains("breakers.payments.failure_rate"),
        "{refused}"
    );
    assert_eq!(
        breaker.config().consecutive_failures(),
        Some(2),
        "the old config stays"
    );

    file.replace("[breakers.payments]\nconsecutive_failures = 9\n");
    loop {
        if let Ok(report) = next()
            && !report.applied.is_empty()
        {
            break;
        }
    }
    assert_eq!(breaker.config().consecutive_failures(), Some(9));
    assert_eq!(watching.reload().unwrap().unchanged, ["breakers.payments"]);
    drop(watching);
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let breaker = Breaker::builder("a").build().unwrap();
    let err = Reloader::new("/nonexistent/fusebox.toml")
        .breaker("a", &breaker)
        .reload()
        .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/fusebox.toml"),
        "{err}"
    );
}

#[test]
fn a_registry_takes_new_defaults_and_overrides_and_its_breakers_keep_their_counts() {
    use fusebox_core::keyed::BreakerRegistry;
    let file = TempFile::new(
        "registry",
        "[registries.hosts.defaults]\nconsecutive_failures = 5\n",
    );
    let hosts = BreakerRegistry::<String>::builder("host").build().unwrap();
    let reloader = Reloader::new(&file.0).registry("hosts", &hosts);
    reloader.reload().unwrap();
    let a = hosts.get_or_create(&"a.example".to_string());
    fail(&a, 2);

    file.write(
        "[registries.hosts.defaults]\nconsecutive_failures = 4\n\
         [registries.hosts.keys.\"a.example\"]\nconsecutive_failures = 2\n",
    );
    let report = reloader.reload().unwrap();
    assert_eq!(report.applied, ["registries.hosts"]);
    assert_eq!(
        a.state(),
        State::Open,
        "the kept run of 2 meets the key's new threshold"
    );
    let b = hosts.get_or_create(&"b.example".to_string());
    assert_eq!(
        b.config().consecutive_failures(),
        Some(4),
        "new keys take the new defaults"
    );

    // A bad override refuses the whole file, naming the key and the field.
    file.write(
        "[registries.hosts.defaults]\nconsecutive_failures = 3\n\
         [registries.hosts.keys.\"a.example\"]\nfailure_rate = 1.5\n",
    );
    let err = reloader.reload().unwrap_err();
    assert_eq!(
        err.setting(),
        Some("registries.hosts.keys.\"a.example\".failure_rate"),
        "{err}"
    );
    assert_eq!(
        b.config().consecutive_failures(),
        Some(4),
        "nothing applied"
    );
    // A field only a build sets is refused for a held key too.
    file.write("[registries.hosts.defaults]\noutcome_log = 8\n");
    let err = reloader.reload().unwrap_err();
    assert_eq!(
        err.setting(),
        Some("registries.hosts.defaults.outcome_log"),
        "{err}"
    );
    assert_eq!(b.config().consecutive_failures(), Some(4));
}
