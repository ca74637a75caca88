//! Tests of the spike baselines: the recent-periods mean, the EWMA and the seasonal one,
//! and the periods they skip.

use super::*;

#[test]
fn recent_spike_reproduces_the_reference_series() {
    let policy = CostPolicy::builder(10_000.0)
        .window(CostWindow::CalendarHour)
        .baseline(CostBaseline::Recent {
            check: SpikeCheck::default(),
            periods: 3,
        });
    let mut m = meter(policy);
    for (hour, spend) in [120.0, 125.0, 118.0].into_iter().enumerate() {
        let at = MONDAY + hour as u64 * HOUR;
        admit_and_settle(&mut m, at, spend);
        if hour < 2 {
            // Fewer than 3 closed hours: not judged yet.
            assert_eq!(m.status(at + HOUR).baseline, None);
        }
    }
    let fourth = MONDAY + 3 * HOUR;
    let settled = admit_and_settle(&mut m, fourth, 260.0);
    assert!(settled.events.contains(CostEventKind::Spike));
    let Some(BaselineReading::Recent(report)) = settled.status.baseline else {
        panic!("expected a reading, got {:?}", settled.status.baseline);
    };
    assert_eq!(
        (report.latest, report.baseline, report.threshold),
        (260.0, 121.0, 181.5)
    );
    let refused = m.admit(fourth + 10 * SEC).unwrap_err();
    assert_eq!(
        refused.reason,
        CostRejectReason::Spike {
            latest: 260.0,
            threshold: 181.5
        }
    );
    // The hour's spend never falls, so the spike lasts until the hour ends.
    assert_eq!(refused.retry_after, Some(Duration::from_secs(3590)));
    // Next hour: the spike joins the history (125, 118, 260) and the window starts empty.
    assert!(m.admit(fourth + HOUR).is_ok());
}

#[test]
fn a_spike_is_refused_before_it_lands_when_in_flight_estimates_cross_the_threshold() {
    let policy = CostPolicy::builder(10_000.0)
        .window(CostWindow::CalendarHour)
        .estimated_cost(50.0)
        .baseline(CostBaseline::Recent {
            check: SpikeCheck::default(),
            periods: 1,
        });
    let mut m = meter(policy);
    admit_and_settle(&mut m, 0, 100.0);
    // Next hour the threshold is 150: four calls are admitted (the last with exactly 150
    // reserved), and the 200 then reserved is a spike before any cost is known.
    let _tickets: Vec<CostTicket> = (0..4).map(|_| m.admit(HOUR).unwrap().ticket).collect();
    let refused = m.admit(HOUR).unwrap_err();
    assert!(matches!(refused.reason, CostRejectReason::Spike { latest, .. } if latest == 200.0));
}

#[test]
fn periods_without_calls_are_skipped_not_counted_as_zero() {
    let policy = CostPolicy::builder(10_000.0)
        .window(CostWindow::CalendarHour)
        .baseline(CostBaseline::Recent {
            check: SpikeCheck::default(),
            periods: 3,
        });
    let mut m = meter(policy);
    admit_and_settle(&mut m, 0, 100.0);
    // Hours 1 to 9 see no call (a status read does not count as activity).
    let _ = m.status(5 * HOUR);
    admit_and_settle(&mut m, 10 * HOUR, 100.0);
    admit_and_settle(&mut m, 11 * HOUR, 100.0);
    let status = m.status(12 * HOUR);
    assert_eq!(status.baseline.map(|r| r.baseline()), Some(100.0));
}

#[test]
fn periods_in_which_every_call_was_refused_are_skipped() {
    let policy = CostPolicy::builder(100.0)
        .window(rolling(60, 2))
        .baseline(CostBaseline::Recent {
            check: SpikeCheck::default().with_min_baseline(1.0),
            periods: 2,
        });
    let mut m = meter(policy);
    admit_and_settle(&mut m, 0, 40.0);
    admit_and_settle(&mut m, 50 * SEC, 100.0);
    // The minute from 60 s sees only refusals: the 100 stays in the window until 90 s.
    assert_eq!(
        m.admit(65 * SEC).unwrap_err().reason,
        CostRejectReason::BudgetBreached
    );
    assert!(m.admit(89 * SEC).is_err());
    admit_and_settle(&mut m, 125 * SEC, 10.0);
    // History: 140 for the first minute, then 10; the refused minute is not a zero.
    let status = m.status(185 * SEC);
    assert_eq!(status.baseline.map(|r| r.baseline()), Some(75.0));
}

#[test]
fn ewma_baseline_learns_from_closed_periods_with_exact_numbers() {
    let policy = CostPolicy::builder(10_000.0)
        .window(CostWindow::CalendarHour)
        .baseline(CostBaseline::Ewma {
            config: EwmaConfig::default(),
            seed: 100.0,
        });
    let mut m = meter(policy);
    // The cold-start seed judges the first hour: 250 is under 3 x 100.
    let first = admit_and_settle(&mut m, 0, 250.0);
    let reading = first.status.baseline.unwrap();
    assert_eq!((reading.baseline(), reading.threshold()), (100.0, 300.0));
    assert!(!reading.is_spike());
    // Closing the hour folds 250 in: 0.9 x 100 + 0.1 x 250 = 115.
    let second = admit_and_settle(&mut m, HOUR, 345.0);
    let reading = second.status.baseline.unwrap();
    assert_eq!((reading.baseline(), reading.threshold()), (115.0, 345.0));
    assert!(!reading.is_spike(), "exactly the threshold is not a spike");
    assert!(second.events.is_empty());
    let third = admit_and_settle(&mut m, HOUR + 1, 0.5);
    assert!(third.events.contains(CostEventKind::Spike));
    assert!(matches!(
        m.admit(HOUR + 2).unwrap_err().reason,
        CostRejectReason::Spike { threshold, .. } if threshold == 345.0
    ));
}

#[test]
fn seasonal_baseline_judges_monday_nine_against_monday_nine() {
    let policy = CostPolicy::builder(1e9)
        .window(CostWindow::CalendarHour)
        .baseline(CostBaseline::Seasonal {
            config: EwmaConfig::default(),
            seed: 100.0,
        });
    let mut m = meter(policy);
    // One week: a Monday 9:00 rush of 250, 20 in every other hour.
    for hour in 0..168u64 {
        let spend = if hour == 9 { 250.0 } else { 20.0 };
        admit_and_settle(&mut m, MONDAY + hour * HOUR, spend);
    }
    let week = 168 * HOUR;
    let monday_nine = MONDAY + week + 9 * HOUR;
    // Monday 9:00 learnt 0.9 x 100 + 0.1 x 250 = 115: 340 is normal for it.
    let status = admit_and_settle(&mut m, monday_nine, 340.0).status;
    assert_eq!(status.baseline.map(|r| r.threshold()), Some(345.0));
    assert!(!status.baseline.unwrap().is_spike());
    // Monday 10:00 learnt 0.9 x 100 + 0.1 x 20 = 92: 300 is a spike there.
    let monday_ten = monday_nine + HOUR;
    let status = admit_and_settle(&mut m, monday_ten, 300.0).status;
    assert!((status.baseline.unwrap().threshold() - 276.0).abs() < 1e-9);
    assert!(status.baseline.unwrap().is_spike());
    let Some(BaselineReading::Ewma(reading)) = status.baseline else {
        panic!("expected an EWMA reading");
    };
    assert_eq!(
        reading.bucket,
        Some(HourOfWeek::from_weekday_hour(0, 10).unwrap())
    );
}
