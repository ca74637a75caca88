//! The subscription to the events channel, on one server or on a cluster.
//!
//! On a cluster the scripts announce with classic `PUBLISH`, which the cluster bus carries
//! to every node, so one subscription on any node hears every breaker. Sharded pub/sub
//! (`SPUBLISH`) would need one channel per breaker's slot and a subscription per breaker,
//! following slot moves, to save bus traffic that transitions (rare, a few bytes each) do
//! not cause.

use std::sync::Weak;
use std::time::Duration;

use fusebox_fleet::Notice;
use futures_util::StreamExt;
use redis::{ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{broadcast, mpsc};

use crate::connection::cluster_builder;

type Sender = Weak<broadcast::Sender<Notice>>;

/// Keeps a subscription to `channel` on one server until the store is dropped, reconnecting
/// with backoff.
pub(crate) async fn listen_single(client: redis::Client, channel: String, sender: Sender) {
    let mut delay = Backoff::new();
    loop {
        if sender.strong_count() == 0 {
            return;
        }
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    delay.reset();
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        let Some(sender) = sender.upgrade() else {
                            return;
                        };
                        if let Some(notice) = parse_notice(msg.get_payload_bytes()) {
                            let _ = sender.send(notice);
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "fleet events subscription failed"),
            },
            Err(e) => tracing::debug!(error = %e, "fleet events connection failed"),
        }
        delay.wait().await;
    }
}

/// Keeps a subscription to `channel` on a cluster until the store is dropped. The cluster
/// connection (RESP3, pushes into a channel) resubscribes by itself after a node is lost or
/// the topology changes; this loop only retries until the first subscription holds.
pub(crate) async fn listen_cluster(
    seeds: Vec<redis::ConnectionInfo>,
    timeout: Duration,
    channel: String,
    sender: Sender,
) {
    let mut delay = Backoff::new();
    loop {
        if sender.strong_count() == 0 {
            return;
        }
        let (pushes, mut received) = mpsc::unbounded_channel::<PushInfo>();
        let subscribed = async {
            let client = cluster_builder(&seeds, timeout)
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(pushes)
                .build()?;
            let mut connection = client.get_async_connection().await?;
            connection.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(connection)
        };
        match subscribed.await {
            Ok(_connection) => {
                // `_connection` lives as long as this loop reads its pushes.
                while let Some(push) = received.recv().await {
                    let Some(sender) = sender.upgrade() else {
                        return;
                    };
                    if let Some(notice) = push_notice(&push) {
                        let _ = sender.send(notice);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "fleet events subscription failed"),
        }
        delay.wait().await;
    }
}

struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(Duration::from_millis(50))
    }

    fn reset(&mut self) {
        *self = Backoff::new();
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
    }
}

/// A message push carries the channel, then the payload.
fn push_notice(push: &PushInfo) -> Option<Notice> {
    if push.kind != PushKind::Message {
        return None;
    }
    match push.data.get(1)? {
        Value::BulkString(payload) => parse_notice(payload),
        _ => None,
    }
}

/// `"{generation} {name}"`, as the scripts publish it.
pub(crate) fn parse_notice(payload: &[u8]) -> Option<Notice> {
    let text = std::str::from_utf8(payload).ok()?;
    let (generation, breaker) = text.split_once(' ')?;
    Some(Notice {
        breaker: breaker.to_owned(),
        generation: generation.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_parse_names_with_spaces() {
        let n = parse_notice(b"12 payments eu").expect("a notice");
        assert_eq!((n.generation, n.breaker.as_str()), (12, "payments eu"));
        assert!(parse_notice(b"nonsense").is_none());
        assert!(parse_notice(b"x name").is_none());
    }

    #[test]
    fn only_message_pushes_are_notices() {
        let message = PushInfo {
            kind: PushKind::Message,
            data: vec![
                Value::BulkString(b"fusebox:events".to_vec()),
                Value::BulkString(b"3 dep".to_vec()),
            ],
        };
        let n = push_notice(&message).expect("a notice");
        assert_eq!((n.generation, n.breaker.as_str()), (3, "dep"));
        let confirmation = PushInfo {
            kind: PushKind::Subscribe,
            data: vec![Value::BulkString(b"fusebox:events".to_vec()), Value::Int(1)],
        };
        assert!(push_notice(&confirmation).is_none());
        let disconnection = PushInfo {
            kind: PushKind::Disconnection,
            data: vec![],
        };
        assert!(push_notice(&disconnection).is_none());
    }
}
