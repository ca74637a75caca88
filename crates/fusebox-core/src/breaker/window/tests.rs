//! Tests of the windows and the outcome log: what they keep and expire, counts under
//! contention, and the sequential and atomic time windows agreeing.

use super::*;

const OK: Mark = Mark {
    failure: false,
    slow: false,
};
const FAIL: Mark = Mark {
    failure: true,
    slow: false,
};

#[test]
fn count_window_keeps_last_n() {
    let w = CountWindow::new(3);
    for m in [FAIL, FAIL, OK, OK] {
        w.record(m);
    }
    assert_eq!(
        w.stats(),
        WindowStats {
            calls: 3,
            failures: 1,
            slow_calls: 0
        }
    );
    assert_eq!(w.stats(), w.scanned());
    w.reset();
    assert_eq!(w.stats(), WindowStats::default());
}

#[test]
fn count_window_counts_match_slots_under_contention() {
    let w = std::sync::Arc::new(CountWindow::new(3));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let w = w.clone();
            std::thread::spawn(move || {
                for i in 0..50_000u32 {
                    let failure = (i + t) % 3 == 0;
                    w.record(Mark {
                        failure,
                        slow: i % 7 == 0,
                    });
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(w.stats(), w.scanned());
    assert_eq!(w.stats().calls, 3);
}

#[test]
fn time_window_expires_old_buckets() {
    // 10 buckets of 1 ms each.
    let w = TimeWindow::new(10_000_000, 10);
    let ms = 1_000_000;
    w.record(FAIL, 0);
    w.record(OK, 5 * ms);
    w.record(FAIL, 9 * ms);
    assert_eq!(w.stats(9 * ms).calls, 3);
    assert_eq!(w.stats(9 * ms).failures, 2);
    // The window keeps the current bucket and 10 whole ones before it: the call of t=0
    // is remembered for at least the 10 ms span, and leaves at 11 ms.
    assert_eq!(w.stats(10 * ms).calls, 3);
    assert_eq!(w.stats(10 * ms + ms - 1).calls, 3);
    assert_eq!(w.stats(11 * ms).calls, 2);
    assert_eq!(w.stats(11 * ms).failures, 1);
    assert_eq!(w.stats(19 * ms).calls, 1);
    assert_eq!(w.stats(20 * ms).calls, 0);
    // Records after a long idle gap start fresh.
    w.record(OK, 100 * ms);
    assert_eq!(w.stats(100 * ms).calls, 1);
    w.reset();
    assert_eq!(w.stats(100 * ms).calls, 0);
}

#[test]
fn seq_and_atomic_time_windows_agree() {
    let kind = WindowKind::Time {
        span: std::time::Duration::from_millis(50),
        buckets: 5,
    };
    let atomic = AtomicWindow::new(kind);
    let mut seq = SeqWindow::new(Some(kind));
    let mut t = 0u64;
    for i in 0..500u64 {
        t += (i * 7919) % 3_000_000;
        let m = Mark {
            failure: i % 3 == 0,
            slow: i % 5 == 0,
        };
        atomic.record(m, t);
        seq.record(m, t);
        assert_eq!(atomic.stats(t), seq.stats(t), "at step {i}");
    }
}

#[test]
fn outcome_log_is_bounded_and_ordered() {
    let log = OutcomeLog::new(3);
    for (i, code) in [1u64, 2, 3, 4, 5].into_iter().enumerate() {
        log.push(code, i as u64);
    }
    assert_eq!(log.entries(), vec![(2, 3), (3, 4), (4, 5)]);
}
