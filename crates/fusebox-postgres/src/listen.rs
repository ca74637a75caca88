//! The background LISTEN task: one dedicated connection per store, reconnected with
//! backoff, turning notifications into [`Notice`]s.

use std::time::Duration;

use fusebox_fleet::Notice;
use rand::Rng;
use tokio::sync::{broadcast, mpsc, watch};
use tokio_postgres::{AsyncMessage, Config, NoTls};

/// Longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often an idle listening connection is checked, so that a server that vanished
/// without closing the socket is noticed.
const PING_EVERY: Duration = Duration::from_secs(10);

/// Runs until `closed` says the store is gone.
pub(crate) async fn run(
    config: Config,
    channel: String,
    notices: broadcast::Sender<Notice>,
    mut closed: watch::Receiver<()>,
) {
    let mut failures: u32 = 0;
    loop {
        let outcome = tokio::select! {
            _ = closed.changed() => return,
            outcome = listen_once(&config, &channel, &notices, &mut failures) => outcome,
        };
        if let Err(e) = outcome {
            if failures == 0 {
                tracing::warn!(channel = %channel, error = %e, "fleet store notifications lost; reconnecting");
            } else {
                tracing::debug!(channel = %channel, error = %e, "fleet store notifications: reconnect failed");
            }
        }
        failures = failures.saturating_add(1);
        let base = Duration::from_millis(50)
            .saturating_mul(1u32 << failures.min(10))
            .min(MAX_BACKOFF);
        let delay = base.mul_f64(rand::rng().random_range(0.5..=1.0));
        tokio::select! {
            _ = closed.changed() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Aborts the connection's driver when listening ends.
struct Driver(tokio::task::JoinHandle<()>);

impl Drop for Driver {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One connection's life: connect, LISTEN, forward notifications until it fails.
async fn listen_once(
    config: &Config,
    channel: &str,
    notices: &broadcast::Sender<Notice>,
    failures: &mut u32,
) -> Result<(), String> {
    let (client, mut connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| crate::error::flatten(&e))?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _driver = Driver(tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(Ok(n)).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    let _ = tx.send(Err(crate::error::flatten(&e)));
                    return;
                }
                None => {
                    let _ = tx.send(Err("connection closed".to_owned()));
                    return;
                }
            }
        }
    }));
    client
        .batch_execute(&format!("LISTEN \"{channel}\""))
        .await
        .map_err(|e| crate::error::flatten(&e))?;
    if *failures > 0 {
        tracing::info!(channel = %channel, "fleet store notifications back");
    }
    *failures = 0;
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            message = rx.recv() => match message {
                Some(Ok(n)) => {
                    if let Some(notice) = parse(n.payload()) {
                        // No subscriber is fine: the periodic sync is the backstop.
                        let _ = notices.send(notice);
                    }
                }
                Some(Err(e)) => return Err(e),
                None => return Err("connection closed".to_owned()),
            },
            _ = ping.tick() => {
                let answered = tokio::time::timeout(Duration::from_secs(5), client.simple_query("")).await;
                match answered {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(crate::error::flatten(&e)),
                    Err(_) => return Err("the listening connection stopped answering".to_owned()),
                }
            }
        }
    }
}

/// Reads a payload written by the store functions: `generation:breaker`.
pub(crate) fn parse(payload: &str) -> Option<Notice> {
    let (generation, breaker) = payload.split_once(':')?;
    Some(Notice {
        breaker: breaker.to_owned(),
        generation: generation.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn payloads() {
        let n = parse("7:db:primary").unwrap();
        assert_eq!((n.generation, n.breaker.as_str()), (7, "db:primary"));
        assert!(parse("x:db").is_none());
        assert!(parse("7").is_none());
    }
}
