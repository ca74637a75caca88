//! Which store the command talks to, and the errors it reports.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fusebox_fleet::{StateStore, StoreError};
use fusebox_postgres::{BuildError, PostgresStore};
use fusebox_redis::RedisStore;

/// How long opening the store may take before it counts as unreachable.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the fleet's state lives.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// PostgreSQL URL or connection string [default: $DATABASE_URL, completed from libpq's
    /// PG* variables]
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Redis URL instead of PostgreSQL [default: $REDIS_URL when DATABASE_URL is unset]
    #[arg(
        long,
        global = true,
        value_name = "URL",
        conflicts_with = "database_url"
    )]
    pub redis_url: Option<String>,
    /// PostgreSQL schema holding the tables
    #[arg(
        long,
        global = true,
        env = "FUSEBOX_SCHEMA",
        default_value = fusebox_postgres::DEFAULT_SCHEMA
    )]
    pub schema: String,
    /// Redis key prefix
    #[arg(
        long,
        global = true,
        env = "FUSEBOX_REDIS_PREFIX",
        default_value = "fusebox:"
    )]
    pub prefix: String,
}

enum Target {
    Postgres(Option<String>),
    Redis(String),
}

/// An opened store and a label for headers ("postgres db:5432/app, schema fusebox").
pub struct Opened {
    pub store: Arc<dyn StateStore>,
    pub label: String,
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

impl StoreArgs {
    /// Flags first, then `DATABASE_URL`, then `REDIS_URL`, then libpq's variables alone.
    fn target(&self) -> Target {
        if let Some(url) = &self.redis_url {
            return Target::Redis(url.clone());
        }
        if let Some(url) = &self.database_url {
            return Target::Postgres(Some(url.clone()));
        }
        if let Some(url) = env("DATABASE_URL") {
            return Target::Postgres(Some(url));
        }
        if let Some(url) = env("REDIS_URL") {
            return Target::Redis(url);
        }
        Target::Postgres(None)
    }

    /// The PostgreSQL store the arguments name (for `pg-setup`).
    pub fn postgres(&self) -> Result<PostgresStore, CliError> {
        if self.redis_url.is_some() {
            return Err(CliError::BadConfig(
                "pg-setup sets up PostgreSQL; pass --database-url (Redis needs no setup)".into(),
            ));
        }
        self.postgres_at(self.database_url.clone().or_else(|| env("DATABASE_URL")))
    }

    fn postgres_at(&self, url: Option<String>) -> Result<PostgresStore, CliError> {
        let builder = match url {
            Some(url) => PostgresStore::builder(url),
            None => PostgresStore::builder_from_env(),
        };
        builder
            .schema(&self.schema)
            .pool_size(2)
            .application_name("fusebox-cli")
            .build()
            .map_err(CliError::from)
    }

    /// Opens the store the arguments name and checks that it is reachable and set up.
    pub async fn open(&self) -> Result<Opened, CliError> {
        let (store, label, server): (Arc<dyn StateStore>, String, String) = match self.target() {
            Target::Postgres(url) => {
                let pg = self.postgres_at(url)?;
                let server = pg.server();
                let label = format!("postgres {server}, schema {}", pg.schema());
                (Arc::new(pg), label, server)
            }
            Target::Redis(url) => {
                let redis = RedisStore::builder(url.as_str())
                    .prefix(&self.prefix)
                    .build()
                    .map_err(|e| match e {
                        StoreError::Invalid(m) => CliError::BadConfig(m),
                        other => CliError::from(other),
                    })?;
                let server = redacted(&url);
                let label = format!("redis {server}, prefix {}", redis.prefix());
                (Arc::new(redis), label, server)
            }
        };
        match tokio::time::timeout(OPEN_TIMEOUT, store.prepare()).await {
            Ok(Ok(())) => Ok(Opened { store, label }),
            Ok(Err(e)) => Err(CliError::store(e, &server)),
            Err(_) => Err(CliError::Unreachable(format!(
                "{server}: no answer within {}s",
                OPEN_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// A URL without its password, for messages.
fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// What went wrong, with a distinct exit code for each kind.
#[derive(Debug)]
pub enum CliError {
    /// The store could not be reached.
    Unreachable(String),
    /// A bad URL or setting.
    BadConfig(String),
    /// The tables are missing.
    NotSetUp(String),
    /// No breaker of that name.
    UnknownBreaker { name: String, known: Vec<String> },
    /// The store answered with something unexpected.
    Protocol(String),
    /// The operator did not confirm.
    NotConfirmed(String),
}

impl CliError {
    /// Maps a store error, naming the server for an outage.
    pub fn store(e: StoreError, server: &str) -> CliError {
        match e {
            StoreError::Unavailable(m) => CliError::Unreachable(format!("{server}: {m}")),
            other => CliError::from(other),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Protocol(_) => 1,
            CliError::Unreachable(_) => 3,
            CliError::BadConfig(_) => 4,
            CliError::NotSetUp(_) => 5,
            CliError::UnknownBreaker { .. } => 6,
            CliError::NotConfirmed(_) => 7,
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> CliError {
        match e {
            StoreError::Unavailable(m) => CliError::Unreachable(m),
            StoreError::NotSetUp(m) => CliError::NotSetUp(m),
            StoreError::Invalid(m) => CliError::BadConfig(m),
            StoreError::Protocol(m) => CliError::Protocol(m),
            other => CliError::Protocol(other.to_string()),
        }
    }
}

impl From<BuildError> for CliError {
    fn from(e: BuildError) -> CliError {
        CliError::BadConfig(e.to_string())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            CliError::Unreachable(m) => format!("cannot reach the store at {m}"),
            CliError::BadConfig(m) => m.clone(),
            CliError::NotSetUp(m) => m.clone(),
            CliError::UnknownBreaker { name, known } if known.is_empty() => {
                format!("no breaker named {name:?}: the store holds none yet")
            }
            CliError::UnknownBreaker { name, known } => {
                let mut list = known
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ");
                if known.len() > 10 {
                    list.push_str(", …");
                }
                format!("no breaker named {name:?} (known: {list})")
            }
            CliError::Protocol(m) => format!("unexpected answer from the store: {m}"),
            CliError::NotConfirmed(m) => m.clone(),
        };
        // One line, whatever the server said.
        f.write_str(&text.replace(['\n', '\r'], " "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redacted("redis://:pw@host:6379/0"), "redis://host:6379/0");
        assert_eq!(redacted("redis://host"), "redis://host");
    }

    #[test]
    fn every_kind_has_its_code() {
        let codes: Vec<u8> = [
            CliError::Protocol(String::new()),
            CliError::Unreachable(String::new()),
            CliError::BadConfig(String::new()),
            CliError::NotSetUp(String::new()),
            CliError::UnknownBreaker {
                name: "x".into(),
                known: vec![],
            },
            CliError::NotConfirmed(String::new()),
        ]
        .iter()
        .map(CliError::exit_code)
        .collect();
        assert_eq!(codes, [1, 3, 4, 5, 6, 7]);
    }
}
