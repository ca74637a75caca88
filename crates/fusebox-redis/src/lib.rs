//! # fusebox-redis
//!
//! A Redis [`StateStore`] for fleet-wide fusebox breakers. Calls never touch Redis: each
//! breaker's sync task flushes behind and reads by subscription (see
//! [`fusebox_fleet`]).
//!
//! * One hash per breaker plus one lease key per instance, under a prefix (default
//!   `fusebox:`); every multi-key update is one Lua script, so it is atomic.
//! * Transitions are announced on the channel `{prefix}events`; a background task keeps a
//!   subscription and reconnects with backoff.
//! * Idle breakers expire (default after a day without a flush).
//! * Times come from Redis's clock (`TIME`), so instances with skewed clocks agree.
//!
//! ```no_run
//! use fusebox_core::breaker::Breaker;
//! use fusebox_fleet::{Fleet, FleetMode};
//! use fusebox_redis::RedisStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder("redis://127.0.0.1:6379").prefix("checkout:").build()?;
//! let fleet = Fleet::builder(store).build()?;
//! let payments = fleet.breaker(
//!     Breaker::builder("payments").failures_in_last(5, 20),
//!     FleetMode::quorum(2, 0.5)?,
//! )?;
//! # drop(payments);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

mod keys;
mod scripts;

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use fusebox_fleet::{
    BreakerRecord, Cas, Claim, FleetChange, FleetState, FleetTotals, FleetView, ForcedState,
    InstanceView, Notice, StateStore, StoreError, StoreFuture, SyncRequest, check_force_ms,
    check_span_ms,
};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Value};
use tokio::sync::{OnceCell, broadcast};

use keys::key_part;
use scripts::Scripts;

/// A fleet store on Redis.
///
/// Cheap to clone; clones share one multiplexed connection and one subscription.
///
/// ```no_run
/// use fusebox_fleet::StateStore;
/// use fusebox_redis::RedisStore;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::new("redis://127.0.0.1:6379")?;
/// store.prepare().await?; // checks the server answers
/// for name in store.breakers().await? {
///     println!("{name}");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    scripts: Scripts,
    prefix: String,
    idle_ttl: Duration,
    response_timeout: Duration,
    notices: Arc<broadcast::Sender<Notice>>,
    listening: std::sync::Once,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisStore`].
///
/// ```
/// use fusebox_redis::RedisStore;
/// let err = RedisStore::builder("not a url").build().unwrap_err();
/// assert!(err.to_string().contains("invalid"), "{err}");
/// ```
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    idle_ttl: Duration,
    response_timeout: Duration,
}

impl RedisStore {
    /// A store on `url` with the default prefix `fusebox:`. Connects lazily: a server that
    /// is down now is not an error until the store is used.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// let store = RedisStore::new("redis://127.0.0.1:6379")?;
    /// assert_eq!(store.prefix(), "fusebox:");
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn new(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::builder(url).build()
    }

    /// Starts building a store on `url` (`redis://[user:password@]host[:port][/db]`).
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// use std::time::Duration;
    /// let store = RedisStore::builder("redis://127.0.0.1:6379")
    ///     .prefix("orders:")
    ///     .idle_ttl(Duration::from_secs(3600))
    ///     .build()?;
    /// assert_eq!(store.prefix(), "orders:");
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: "fusebox:".to_owned(),
            idle_ttl: Duration::from_secs(24 * 3600),
            response_timeout: Duration::from_secs(1),
        }
    }

    /// The key prefix.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// assert_eq!(RedisStore::new("redis://127.0.0.1")?.prefix(), "fusebox:");
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The hash that holds breaker `name`. The name sits in braces, so all of a breaker's
    /// keys share one cluster slot, with `%`, `{` and `}` written as `%25`, `%7B` and `%7D`,
    /// so that no name can close the braces early and spell another breaker's key.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// let store = RedisStore::new("redis://127.0.0.1")?;
    /// assert_eq!(store.breaker_key("payments"), "fusebox:{payments}");
    /// assert_eq!(store.breaker_key("a}:lease:y"), "fusebox:{a%7D:lease:y}");
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn breaker_key(&self, name: &str) -> String {
        format!("{}{{{}}}", self.inner.prefix, key_part(name))
    }

    /// The channel transitions are announced on.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// assert_eq!(RedisStore::new("redis://127.0.0.1")?.channel(), "fusebox:events");
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn channel(&self) -> String {
        format!("{}events", self.inner.prefix)
    }

    fn names_key(&self) -> String {
        format!("{}breakers", self.inner.prefix)
    }

    /// The keys beside a breaker's hash `base`: its leases, open votes and claims.
    fn side_keys(base: &str) -> [String; 3] {
        [
            format!("{base}:leases"),
            format!("{base}:open"),
            format!("{base}:claims"),
        ]
    }

    async fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let inner = &self.inner;
        let connection = inner
            .connection
            .get_or_try_init(|| async {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(inner.response_timeout))
                    .set_response_timeout(Some(inner.response_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_lazy_with_config(inner.client.clone(), config)
                    .map_err(store_error)
            })
            .await?;
        Ok(connection.clone())
    }

    async fn run_script(
        &self,
        script: &redis::Script,
        name: &str,
        args: &[String],
    ) -> Result<Value, StoreError> {
        if name.is_empty() {
            return Err(StoreError::Invalid("empty breaker name".into()));
        }
        let mut con = self.connection().await?;
        let mut invocation = script.prepare_invoke();
        // Every key of the breaker derives from its hash's key, written once per call.
        let base = self.breaker_key(name);
        let [leases, voters, claims] = Self::side_keys(&base);
        let lease_prefix = format!("{base}:lease:");
        invocation
            .key(base)
            .key(self.names_key())
            .key(leases)
            .key(voters)
            .key(claims)
            .arg(name)
            .arg(lease_prefix)
            .arg(self.channel())
            .arg(millis(self.inner.idle_ttl).max(1));
        for a in args {
            invocation.arg(a);
        }
        match invocation.invoke_async::<Value>(&mut con).await {
            // After an outage the connection manager answers the first command with the
            // refusal it cached while the server was away, and only then reconnects. A
            // refused connection sent nothing, so the script is run once more at once
            // rather than after the caller's backoff.
            Err(e) if e.is_connection_refusal() => invocation
                .invoke_async::<Value>(&mut con)
                .await
                .map_err(store_error),
            result => result.map_err(store_error),
        }
    }

    fn listen(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime: the periodic sync is the backstop
        };
        let sender = Arc::downgrade(&self.inner.notices);
        let client = self.inner.client.clone();
        let channel = self.channel();
        runtime.spawn(listen(client, channel, sender));
    }
}

/// Keeps a subscription to the events channel until the store is dropped, reconnecting with
/// backoff.
async fn listen(client: redis::Client, channel: String, sender: Weak<broadcast::Sender<Notice>>) {
    let mut delay = Duration::from_millis(50);
    loop {
        if sender.strong_count() == 0 {
            return;
        }
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    delay = Duration::from_millis(50);
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
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

fn parse_notice(payload: &[u8]) -> Option<Notice> {
    let text = std::str::from_utf8(payload).ok()?;
    let (generation, breaker) = text.split_once(' ')?;
    Some(Notice {
        breaker: breaker.to_owned(),
        generation: generation.parse().ok()?,
    })
}

impl RedisStoreBuilder {
    /// The key prefix (default `fusebox:`); give each application or environment its own.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// assert!(RedisStore::builder("redis://127.0.0.1").prefix("").build().is_err());
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a breaker's keys live without a flush (default one day).
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// use std::time::Duration;
    /// assert!(RedisStore::builder("redis://127.0.0.1").idle_ttl(Duration::ZERO).build().is_err());
    /// ```
    pub fn idle_ttl(mut self, ttl: Duration) -> Self {
        self.idle_ttl = ttl;
        self
    }

    /// How long to wait for a connection or a reply before the store counts as
    /// unavailable (default 1 s).
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// use std::time::Duration;
    /// let store = RedisStore::builder("redis://127.0.0.1")
    ///     .response_timeout(Duration::from_millis(200))
    ///     .build()?;
    /// # drop(store);
    /// # Ok::<(), fusebox_fleet::StoreError>(())
    /// ```
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Checks the settings and the URL; connects lazily.
    ///
    /// ```
    /// use fusebox_redis::RedisStore;
    /// assert!(RedisStore::builder("redis://127.0.0.1:6379").build().is_ok());
    /// assert!(RedisStore::builder("http://127.0.0.1").build().is_err());
    /// ```
    pub fn build(self) -> Result<RedisStore, StoreError> {
        if self.prefix.is_empty() {
            return Err(StoreError::Invalid(
                "prefix: must not be empty (keys would collide with other data)".into(),
            ));
        }
        if self.idle_ttl.is_zero() {
            return Err(StoreError::Invalid(
                "idle_ttl: must be longer than zero".into(),
            ));
        }
        if self.response_timeout.is_zero() {
            return Err(StoreError::Invalid(
                "response_timeout: must be longer than zero".into(),
            ));
        }
        let client = redis::Client::open(self.url.as_str())
            .map_err(|e| StoreError::Invalid(format!("invalid Redis URL: {e}")))?;
        let (notices, _) = broadcast::channel(1024);
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                connection: OnceCell::new(),
                scripts: Scripts::new(),
                prefix: self.prefix,
                idle_ttl: self.idle_ttl,
                response_timeout: self.response_timeout,
                notices: Arc::new(notices),
                listening: std::sync::Once::new(),
            }),
        })
    }
}

impl StateStore for RedisStore {
    fn prepare(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut con = self.connection().await?;
            let _: String = redis::cmd("PING")
                .query_async(&mut con)
                .await
                .map_err(store_error)?;
            Ok(())
        })
    }

    fn sync<'a>(&'a self, req: &'a SyncRequest) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            if req.instance.is_empty() {
                return Err(StoreError::Invalid("empty instance id".into()));
            }
            check_span_ms("lease_ttl_ms", req.lease_ttl_ms)?;
            let args = [
                req.instance.clone(),
                req.lease_ttl_ms.max(1).to_string(),
                req.seq.to_string(),
                req.outcomes.successes.to_string(),
                req.outcomes.failures.to_string(),
                req.outcomes.slow.to_string(),
                req.trials.generation.to_string(),
                req.trials.successes.to_string(),
                req.trials.failures.to_string(),
                req.trials.release.to_string(),
                u8::from(req.local_open).to_string(),
                req.mode.clone(),
                req.incarnation.to_string(),
            ];
            let reply = self
                .run_script(&self.inner.scripts.sync, &req.breaker, &args)
                .await?;
            Ok(decode_view(&req.breaker, &reply)?.0)
        })
    }

    fn transition<'a>(
        &'a self,
        breaker: &'a str,
        expected_generation: u64,
        change: FleetChange,
        reason: &'a str,
    ) -> StoreFuture<'a, Cas> {
        Box::pin(async move {
            change.check()?;
            let cooldown = match change {
                FleetChange::Open { cooldown_ms } => cooldown_ms,
                FleetChange::HalfOpen | FleetChange::Closed => 0,
            };
            let args = [
                expected_generation.to_string(),
                change.target().as_str().to_owned(),
                cooldown.to_string(),
                reason.to_owned(),
            ];
            let reply = self
                .run_script(&self.inner.scripts.transition, breaker, &args)
                .await?;
            let (view, won) = decode_view(breaker, &reply)?;
            Ok(Cas {
                won: won == 1,
                view,
            })
        })
    }

    fn claim_trials<'a>(
        &'a self,
        breaker: &'a str,
        instance: &'a str,
        want: u32,
        permitted: u32,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let args = [instance.to_owned(), want.to_string(), permitted.to_string()];
            let reply = self
                .run_script(&self.inner.scripts.claim, breaker, &args)
                .await?;
            let (view, granted) = decode_view(breaker, &reply)?;
            Ok(Claim {
                granted: u32::try_from(granted).unwrap_or(0),
                view,
            })
        })
    }

    fn force<'a>(
        &'a self,
        breaker: &'a str,
        forced: Option<ForcedState>,
        for_ms: Option<u64>,
    ) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            check_force_ms(for_ms)?;
            let args = [
                forced.map(ForcedState::as_str).unwrap_or("").to_owned(),
                for_ms.unwrap_or(0).to_string(),
            ];
            let reply = self
                .run_script(&self.inner.scripts.force, breaker, &args)
                .await?;
            Ok(decode_view(breaker, &reply)?.0)
        })
    }

    fn view<'a>(&'a self, breaker: &'a str) -> StoreFuture<'a, Option<FleetView>> {
        Box::pin(async move {
            let reply = self
                .run_script(&self.inner.scripts.view, breaker, &[])
                .await?;
            match reply {
                Value::Nil => Ok(None),
                other => Ok(Some(decode_view(breaker, &other)?.0)),
            }
        })
    }

    fn breakers(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let mut con = self.connection().await?;
            let names: Vec<String> = self
                .inner
                .scripts
                .breakers
                .key(self.names_key())
                .arg(&self.inner.prefix)
                .invoke_async(&mut con)
                .await
                .map_err(store_error)?;
            Ok(names)
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        let receiver = self.inner.notices.subscribe();
        self.inner.listening.call_once(|| self.listen());
        receiver
    }
}

fn store_error(e: RedisError) -> StoreError {
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
    {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Protocol(e.to_string())
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reads the flat array the scripts return: 15 record fields (the last is the script's own
/// result), a flag (1 when the fleet's totals follow) and the 6 totals (live instances, open
/// votes, live claims, successes, failures, slow), the instance count, then 9 fields per
/// instance.
fn decode_view(name: &str, reply: &Value) -> Result<(FleetView, u64), StoreError> {
    let Value::Array(items) = reply else {
        return Err(StoreError::Protocol(format!(
            "unexpected reply to a script: {reply:?}"
        )));
    };
    let text = |i: usize| -> Result<String, StoreError> {
        match items.get(i) {
            Some(Value::BulkString(b)) => Ok(String::from_utf8_lossy(b).into_owned()),
            Some(Value::SimpleString(s)) => Ok(s.clone()),
            Some(Value::Int(n)) => Ok(n.to_string()),
            other => Err(StoreError::Protocol(format!(
                "field {i} of a script reply: {other:?}"
            ))),
        }
    };
    let number = |i: usize| -> Result<u64, StoreError> {
        let t = text(i)?;
        t.parse::<u64>()
            .map_err(|_| StoreError::Protocol(format!("field {i} is not a count: {t:?}")))
    };
    let small =
        |i: usize| -> Result<u32, StoreError> { Ok(u32::try_from(number(i)?).unwrap_or(u32::MAX)) };
    let state = text(2)?;
    let forced = text(7)?;
    let forced_until = number(8)?;
    let record = BreakerRecord {
        generation: number(1)?,
        state: FleetState::parse(&state)
            .ok_or_else(|| StoreError::Protocol(format!("unknown state {state:?}")))?,
        open_until_ms: number(3)?,
        trips: small(4)?,
        trial_successes: small(5)?,
        trial_failures: small(6)?,
        forced: ForcedState::parse(&forced),
        forced_until_ms: (forced_until > 0).then_some(forced_until),
        transitions: number(9)?,
        opens: number(10)?,
        changed_ms: number(11)?,
        mode: text(12)?,
        reason: text(13)?,
    };
    let extra = number(14)?;
    let totals = match number(15)? {
        0 => None,
        _ => Some(FleetTotals {
            live_instances: small(16)?,
            open_votes: small(17)?,
            live_claims: small(18)?,
            successes: number(19)?,
            failures: number(20)?,
            slow: number(21)?,
        }),
    };
    let count = usize::try_from(number(22)?).unwrap_or(usize::MAX);
    let mut instances = Vec::with_capacity(count.min(1024));
    for k in 0..count {
        let at = 23 + k * 9;
        instances.push(InstanceView {
            id: text(at)?,
            live: number(at + 1)? == 1,
            lease_remaining_ms: number(at + 2)?,
            local_open: number(at + 3)? == 1,
            successes: number(at + 4)?,
            failures: number(at + 5)?,
            slow: number(at + 6)?,
            seq: number(at + 7)?,
            trials_claimed: small(at + 8)?,
        });
    }
    Ok((
        FleetView {
            name: name.to_owned(),
            now_ms: number(0)?,
            record,
            instances,
            totals,
        },
        extra,
    ))
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
    fn malformed_replies_are_protocol_errors() {
        let err = decode_view("a", &Value::Int(3)).unwrap_err();
        assert!(matches!(err, StoreError::Protocol(_)));
        let short = Value::Array(vec![Value::BulkString(b"1".to_vec())]);
        assert!(matches!(
            decode_view("a", &short).unwrap_err(),
            StoreError::Protocol(_)
        ));
    }
}
