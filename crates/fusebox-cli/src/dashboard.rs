//! `fusebox dashboard`: the live web dashboard over the fleet store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use fusebox_core::State;
use fusebox_fleet::{FleetState, FleetView, ForcedState, StateStore};
use fusebox_tower::dashboard::{
    BreakerReading, Dashboard, Instances, MAX_INTERVAL, MIN_INTERVAL, Source, SourceError,
};

use crate::render::clean;
use crate::store::{CliError, StoreArgs};

/// Where and how often.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    store: StoreArgs,
    /// The address to serve on (`127.0.0.1:0` picks a free port; the URL is printed).
    #[arg(long, value_name = "ADDRESS:PORT", default_value = "127.0.0.1:9477")]
    listen: SocketAddr,
    /// How often the store is read and the page updated (from 50ms to 60s).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (try 500ms, 1s, 5s)"))?;
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&d) {
        return Err(format!(
            "must be from {} to {}",
            humantime::format_duration(MIN_INTERVAL),
            humantime::format_duration(MAX_INTERVAL)
        ));
    }
    Ok(d)
}

/// Every breaker the store lists, read as `fusebox status` reads them.
struct StoreSource {
    store: Arc<dyn StateStore>,
    label: String,
}

impl Source for StoreSource {
    async fn read(&self) -> Result<Vec<BreakerReading>, SourceError> {
        let views = crate::render::collect(&*self.store)
            .await
            .map_err(|e| match e {
                // The store's own message says what failed, not where.
                CliError::Unreachable(why) => SourceError::new(format!(
                    "cannot reach the store ({}): {}",
                    clean(&self.label),
                    clean(&why)
                )),
                other => SourceError::new(other.to_string()),
            })?;
        Ok(views.iter().map(reading).collect())
    }
}

/// One fleet breaker as the dashboard shows it. A forced state shows as the local state it
/// imposes on every instance: forced open as `forced_open`, forced closed as `disabled`.
/// Rates are over every outcome the instances reported, as `fusebox status` shows them;
/// the store keeps no count of rejections.
fn reading(view: &FleetView) -> BreakerReading {
    let state = match (view.record.forced, view.record.state) {
        (Some(ForcedState::Open), _) => State::ForcedOpen,
        (Some(ForcedState::Closed), _) => State::Disabled,
        (None, FleetState::Closed) => State::Closed,
        (None, FleetState::Open) => State::Open,
        (None, FleetState::HalfOpen) => State::HalfOpen,
    };
    let totals = view.totals();
    let calls = totals.successes.saturating_add(totals.failures);
    let mut r = BreakerReading::new(view.name.clone(), state);
    r.generation = view.record.generation;
    if calls > 0 {
        r.failure_rate = Some(view.failure_rate());
        r.slow_rate = Some(totals.slow as f64 / calls as f64);
    }
    r.calls = Some(calls);
    r.failures = Some(totals.failures);
    r.instances = Some(Instances {
        live: totals.live_instances,
        open_votes: totals.open_votes,
        known: u32::try_from(view.instances.len()).unwrap_or(u32::MAX),
    });
    if !view.record.reason.is_empty() {
        r.reason = Some(view.record.reason.clone());
    }
    r
}

/// Serves the dashboard until Ctrl-C (or SIGTERM).
/// `top` holds the store flags given before the command; the command's own win.
pub async fn run(top: &StoreArgs, args: Args) -> Result<(), CliError> {
    let opened = args.store.clone().over(top)?.open().await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| CliError::BadConfig(format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| CliError::BadConfig(format!("cannot listen on {}: {e}", args.listen)))?;
    let router = Dashboard::builder()
        .interval(args.interval)
        .title(opened.label.chars().take(200).collect::<String>())
        .build(StoreSource {
            store: opened.store,
            label: opened.label.clone(),
        })
        .and_then(|d| d.router())
        .map_err(|e| CliError::BadConfig(e.to_string()))?;
    crate::say(&format!(
        "fusebox dashboard on http://{address}/ for {}, every {} (Ctrl-C to quit)",
        clean(&opened.label),
        humantime::format_duration(args.interval)
    ));
    // Open event streams never end by themselves, so a stop drops the server outright
    // rather than waiting for them.
    tokio::select! {
        served = axum::serve(listener, router).into_future() => served
            .map_err(|e| CliError::BadConfig(format!("cannot serve on {address}: {e}"))),
        () = stopped() => Ok(()),
    }
}

async fn stopped() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use fusebox_fleet::{BreakerRecord, FleetTotals, InstanceView};

    #[test]
    fn forced_states_show_as_the_state_they_impose() {
        let mut view = FleetView {
            name: "pay".into(),
            ..Default::default()
        };
        let state = |v: &FleetView| reading(v).state;
        assert_eq!(state(&view), State::Closed);
        view.record.state = FleetState::HalfOpen;
        assert_eq!(state(&view), State::HalfOpen);
        view.record.forced = Some(ForcedState::Open);
        assert_eq!(state(&view), State::ForcedOpen);
        view.record.forced = Some(ForcedState::Closed);
        assert_eq!(state(&view), State::Disabled);
    }

    #[test]
    fn counts_rates_and_instances_come_from_the_fleet_totals() {
        let view = FleetView {
            name: "pay".into(),
            record: BreakerRecord {
                generation: 7,
                state: FleetState::Open,
                reason: "quorum: 2 of 3 instances open".into(),
                ..Default::default()
            },
            instances: vec![InstanceView::default(); 3],
            totals: Some(FleetTotals {
                live_instances: 2,
                open_votes: 2,
                successes: 30,
                failures: 10,
                slow: 4,
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = reading(&view);
        assert_eq!((r.state, r.generation), (State::Open, 7));
        assert_eq!(
            (r.calls, r.failures, r.rejections),
            (Some(40), Some(10), None)
        );
        assert_eq!((r.failure_rate, r.slow_rate), (Some(0.25), Some(0.1)));
        assert_eq!(
            r.instances,
            Some(Instances {
                live: 2,
                open_votes: 2,
                known: 3
            })
        );
        assert_eq!(r.reason.as_deref(), Some("quorum: 2 of 3 instances open"));
    }

    #[test]
    fn no_call_reported_means_no_rate_yet() {
        let r = reading(&FleetView::default());
        assert_eq!(
            (r.failure_rate, r.slow_rate, r.calls),
            (None, None, Some(0))
        );
        assert_eq!(r.reason, None);
    }

    #[test]
    fn intervals_out_of_range_are_refused() {
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert!(
            parse_interval("10ms")
                .unwrap_err()
                .contains("must be from 50ms to 1m")
        );
        assert!(parse_interval("2m").is_err());
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("soon").unwrap_err().contains("try 500ms"));
    }
}
