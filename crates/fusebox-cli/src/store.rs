//! Which store the command talks to, and the errors it reports.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fusebox_fleet::{StateStore, StoreError};
use fusebox_postgres::{BuildError, PostgresStore};
use fusebox_redis::RedisStore;

use crate::render::clean;

/// How long opening the store may take before it counts as unreachable.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The Redis key prefix when none is given.
const DEFAULT_PREFIX: &str = "fusebox:";

/// Where the fleet's state lives. Given before the command (`fusebox --redis-url URL
/// status`) or after it (`fusebox status --redis-url URL`); after wins.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct StoreArgs {
    /// PostgreSQL URL or connection string [default: $DATABASE_URL, completed from libpq's
    /// PG* variables]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Redis URL instead of PostgreSQL [default: $REDIS_URL when DATABASE_URL is unset]
    #[arg(long, value_name = "URL", conflicts_with = "database_url")]
    pub redis_url: Option<String>,
    /// Redis Cluster seed nodes instead, comma-separated (`redis://10.0.0.1:7000,...`)
    /// [default: $FUSEBOX_REDIS_CLUSTER when no other store is named]
    #[arg(
        long,
        value_name = "URLS",
        value_delimiter = ',',
        conflicts_with_all = ["database_url", "redis_url"]
    )]
    pub redis_cluster: Vec<String>,
    /// PostgreSQL schema holding the tables [env: FUSEBOX_SCHEMA] [default: fusebox]
    #[arg(long)]
    pub schema: Option<String>,
    /// Redis key prefix [env: FUSEBOX_REDIS_PREFIX] [default: fusebox:]
    #[arg(long)]
    pub prefix: Option<String>,
}

/// Where `pg-setup` works: PostgreSQL settings only.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct PgArgs {
    /// PostgreSQL URL or connection string [default: $DATABASE_URL, completed from libpq's
    /// PG* variables]
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// PostgreSQL schema to create or upgrade [env: FUSEBOX_SCHEMA] [default: fusebox]
    #[arg(long)]
    pub schema: Option<String>,
}

impl From<PgArgs> for StoreArgs {
    fn from(pg: PgArgs) -> StoreArgs {
        StoreArgs {
            database_url: pg.database_url,
            schema: pg.schema,
            ..StoreArgs::default()
        }
    }
}

enum Target {
    Postgres(Option<String>),
    Redis(String),
    RedisCluster(Vec<String>),
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
    /// These settings over `under` (the ones given before the command). Naming both
    /// stores, one on each side of the command, is refused rather than guessed.
    pub fn over(self, under: &StoreArgs) -> Result<StoreArgs, CliError> {
        let merged = StoreArgs {
            database_url: self.database_url.or_else(|| under.database_url.clone()),
            redis_url: self.redis_url.or_else(|| under.redis_url.clone()),
            redis_cluster: if self.redis_cluster.is_empty() {
                under.redis_cluster.clone()
            } else {
                self.redis_cluster
            },
            schema: self.schema.or_else(|| under.schema.clone()),
            prefix: self.prefix.or_else(|| under.prefix.clone()),
        };
        let named: Vec<&str> = [
            ("--database-url", merged.database_url.is_some()),
            ("--redis-url", merged.redis_url.is_some()),
            ("--redis-cluster", !merged.redis_cluster.is_empty()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect();
        if named.len() > 1 {
            let which = match named.as_slice() {
                [a, b] => format!("both {a} and {b}"),
                all => format!("all of {}", all.join(", ")),
            };
            return Err(CliError::BadConfig(format!(
                "{which} given; name one store"
            )));
        }
        Ok(merged)
    }

    /// The PostgreSQL schema: the flag, else `FUSEBOX_SCHEMA`, else the default. (The
    /// variable is read here rather than by clap so that a flag before the command is not
    /// overridden by the variable filling the command's own flag.)
    pub fn schema(&self) -> String {
        self.schema
            .clone()
            .or_else(|| env("FUSEBOX_SCHEMA"))
            .unwrap_or_else(|| fusebox_postgres::DEFAULT_SCHEMA.to_owned())
    }

    /// The Redis key prefix: the flag, else `FUSEBOX_REDIS_PREFIX`, else the default.
    fn prefix(&self) -> String {
        self.prefix
            .clone()
            .or_else(|| env("FUSEBOX_REDIS_PREFIX"))
            .unwrap_or_else(|| DEFAULT_PREFIX.to_owned())
    }

    /// Flags first, then `DATABASE_URL`, then `REDIS_URL`, then libpq's variables alone.
    fn target(&self) -> Target {
        if let Some(url) = &self.redis_url {
            return Target::Redis(url.clone());
        }
        if !self.redis_cluster.is_empty() {
            return Target::RedisCluster(self.redis_cluster.clone());
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
        if let Some(seeds) = env("FUSEBOX_REDIS_CLUSTER") {
            return Target::RedisCluster(seeds.split(',').map(|s| s.trim().to_owned()).collect());
        }
        Target::Postgres(None)
    }

    /// The PostgreSQL store the arguments name (for `pg-setup`).
    pub fn postgres(&self) -> Result<PostgresStore, CliError> {
        if self.redis_url.is_some() || !self.redis_cluster.is_empty() {
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
            .schema(self.schema())
            .pool_size(2)
            .application_name("fusebox-cli")
            .build()
            .map_err(CliError::from)
    }

    /// A Redis store (standalone or cluster) with the prefix the arguments give; a URL
    /// that does not parse is a configuration error.
    fn redis(&self, builder: fusebox_redis::RedisStoreBuilder) -> Result<RedisStore, CliError> {
        builder.prefix(self.prefix()).build().map_err(|e| match e {
            StoreError::Invalid(m) => CliError::BadConfig(m),
            other => CliError::from(other),
        })
    }

    /// Opens the store the arguments name and checks that it is reachable and set up.
    pub async fn open(&self) -> Result<Opened, CliError> {
        let (store, label, server): (Arc<dyn StateStore>, String, String) = match self.target() {
            Target::Postgres(url) => {
                let implicit = url.is_none();
                let pg = self.postgres_at(url)?;
                let server = pg.server();
                if implicit {
                    // Nothing named a store: say which database libpq's defaults chose.
                    eprintln!(
                        "fusebox: no --database-url, --redis-url, --redis-cluster, DATABASE_URL, \
                         REDIS_URL or FUSEBOX_REDIS_CLUSTER; \
                         using PostgreSQL at {} (libpq's defaults)",
                        clean(&server)
                    );
                }
                let label = format!("postgres {server}, schema {}", pg.schema());
                (Arc::new(pg), label, server)
            }
            Target::Redis(url) => {
                let redis = self.redis(RedisStore::builder(url.as_str()))?;
                let server = redacted(&url);
                let label = format!("redis {server}, prefix {}", redis.prefix());
                (Arc::new(redis), label, server)
            }
            Target::RedisCluster(seeds) => {
                if seeds.iter().any(|s| s.trim().is_empty()) {
                    return Err(CliError::BadConfig(
                        "--redis-cluster: an empty seed URL (a stray comma?)".into(),
                    ));
                }
                let redis = self.redis(RedisStore::cluster_builder(seeds.iter().cloned()))?;
                let server = seeds
                    .iter()
                    .map(|s| redacted(s))
                    .collect::<Vec<_>>()
                    .join(",");
                let label = format!("redis cluster {server}, prefix {}", redis.prefix());
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

/// A store URL or connection string without its secrets, for messages.
///
/// A URL loses everything before its last `@`: a password may hold `@`, `/`, `?` or `#`
/// unescaped, and clients disagree on where it ends (tokio-postgres stops at the first
/// `@`, the URL parser at the authority's last), so cutting at the last one shows no
/// password to either reading; an `@` further on, in a path or query, costs only detail.
/// `password=`, `sslpassword=` and `pass=` values, in a URL's query or a `key=value`
/// connection string, become `***`.
fn redacted(target: &str) -> String {
    if is_conninfo(target) {
        return masked_pairs(target);
    }
    match target.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", without_user_info(&masked_query(rest))),
        // `user:password@host` with no scheme.
        None => without_user_info(&masked_query(target)).to_owned(),
    }
}

/// What follows the last `@`.
fn without_user_info(text: &str) -> &str {
    text.rsplit_once('@').map_or(text, |(_, rest)| rest)
}

/// Whether the text starts as a libpq `key=value` string does, with a plain keyword: a
/// URL's first `=` comes after its scheme, or after a `:` in its user-info.
fn is_conninfo(target: &str) -> bool {
    target.split_once('=').is_some_and(|(key, _)| {
        let key = key.trim();
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// Whether a setting carries a secret.
fn secret_key(key: &str) -> bool {
    let key = key.trim().to_ascii_lowercase();
    key == "pass" || key.ends_with("password")
}

/// The URL with the secret values of its query masked. A query is whatever follows the
/// first `?`; one that is really inside a password is cut away later with the user-info.
fn masked_query(url: &str) -> String {
    let Some((head, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            Some((key, _)) if secret_key(key) => format!("{key}=***"),
            _ => param.to_owned(),
        })
        .collect();
    let mut out = format!("{head}?{}", params.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// A libpq `key=value` connection string with its secret values masked: values may be
/// quoted with `'` and hold `\`-escapes, so a quoted password is masked whole.
fn masked_pairs(conninfo: &str) -> String {
    let bytes = conninfo.as_bytes();
    let mut out = String::with_capacity(conninfo.len());
    let mut i = 0;
    // Every index the loop stops at is an ASCII delimiter, so slicing there is safe.
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &conninfo[key_start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= bytes.len() || bytes[i] != b'=' {
            // Not a setting (libpq would refuse the string): kept as it is.
            out.push_str(&conninfo[start..i]);
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let value_start = i;
        let quoted = i < bytes.len() && bytes[i] == b'\'';
        if quoted {
            i += 1;
        }
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'\'' if quoted => {
                    i += 1;
                    break;
                }
                b if !quoted && b.is_ascii_whitespace() => break,
                _ => i += 1,
            }
        }
        i = i.min(bytes.len());
        out.push_str(&conninfo[start..value_start]);
        if secret_key(key) {
            out.push_str("***");
        } else {
            out.push_str(&conninfo[value_start..i]);
        }
    }
    out
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
            StoreError::NotSetUp(m) => CliError::NotSetUp(format!("{server}: {m}")),
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
                format!(
                    "no breaker named \"{}\": the store holds none yet",
                    clean(name)
                )
            }
            CliError::UnknownBreaker { name, known } => {
                let mut list = known
                    .iter()
                    .take(10)
                    .map(|n| clean(n))
                    .collect::<Vec<_>>()
                    .join(", ");
                if known.len() > 10 {
                    list.push_str(", …");
                }
                format!("no breaker named \"{}\" (known: {list})", clean(name))
            }
            CliError::Protocol(m) => format!("unexpected answer from the store: {m}"),
            CliError::NotConfirmed(m) => m.clone(),
        };
        // One line, whatever the server said, and no control character from it or a name
        // (names are escaped above, so theirs show as `\n` rather than a space).
        f.write_str(&clean(&text.replace(['\n', '\r'], " ")))
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
    fn urls_lose_their_credentials() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            (
                "redis://host:6379/0?protocol=resp3",
                "redis://host:6379/0?protocol=resp3",
            ),
            ("redis://u:pw@host:6379", "redis://host:6379"),
            ("redis://u@host", "redis://host"),
            ("rediss://:pw@host:6380/2", "rediss://host:6380/2"),
            // `@` in the password: cut at the last one, never showing the password's tail.
            ("redis://u:p@ss@host:6379", "redis://host:6379"),
            ("redis://u:p@s@s@host:6379/1?x=y", "redis://host:6379/1?x=y"),
            // `/`, `?` or `#` in the password, unescaped.
            ("redis://u:pa/ss@host:6379/0", "redis://host:6379/0"),
            ("redis://u:pa?ss@host:6379", "redis://host:6379"),
            ("redis://u:pa#ss@host:6379", "redis://host:6379"),
            (
                "postgres://ops:s3cr%40t@db:5432/app",
                "postgres://db:5432/app",
            ),
            (
                "postgresql://ops:p@ss@db1:5432,db2:5433/app?sslmode=require",
                "postgresql://db1:5432,db2:5433/app?sslmode=require",
            ),
            (
                "postgres://db/app?user=ops&password=hunter2&sslmode=require",
                "postgres://db/app?user=ops&password=***&sslmode=require",
            ),
            (
                "postgres://db/app?sslpassword=k3y#frag",
                "postgres://db/app?sslpassword=***#frag",
            ),
            // An `@` inside a query password is masked with it, not cut at.
            (
                "postgres://db/app?Password=p@ss",
                "postgres://db/app?Password=***",
            ),
            (
                "redis+unix:///run/redis.sock?db=1&pass=hunter2",
                "redis+unix:///run/redis.sock?db=1&pass=***",
            ),
            ("u:pw@host:6379", "host:6379"),
            // `=` or `://` where a connection string or a URL would have them.
            ("u:p=w@host:6379", "host:6379"),
            ("redis://u:p=w@host:6379", "redis://host:6379"),
            ("", ""),
            ("://", "://"),
            ("redis://@", "redis://"),
        ] {
            assert_eq!(redacted(url), shown, "{url}");
        }
    }

    #[test]
    fn connection_strings_lose_their_passwords() {
        for (conninfo, shown) in [
            ("host=db dbname=app", "host=db dbname=app"),
            (
                "host=db user=ops password=hunter2 dbname=app",
                "host=db user=ops password=*** dbname=app",
            ),
            ("password=p@ss@word host=db", "password=*** host=db"),
            ("host=db password = hunter2", "host=db password = ***"),
            (
                "host=db password='two words \\' quoted' dbname=app",
                "host=db password=*** dbname=app",
            ),
            ("password=esc\\ aped host=db", "password=*** host=db"),
            (
                "host=db PASSWORD=x sslpassword=y",
                "host=db PASSWORD=*** sslpassword=***",
            ),
            // Unterminated or odd input: masked to the end, never a panic.
            ("host=db password='never closed", "host=db password=***"),
            ("password=trailing\\", "password=***"),
            ("host=db password=", "host=db password=***"),
            ("host=db junk password=x", "host=db junk password=***"),
            ("host=db password=пароль", "host=db password=***"),
            ("user=é password=x", "user=é password=***"),
            ("host=db password=a://b@c", "host=db password=***"),
            ("  host = db password=x", "  host = db password=***"),
        ] {
            assert_eq!(redacted(conninfo), shown, "{conninfo}");
        }
    }

    #[test]
    fn no_text_panics_the_redaction() {
        const ALPHABET: [char; 10] = ['p', '=', ' ', '\'', '\\', '@', 'é', ':', '/', '?'];
        let mut text = String::new();
        for n in 0..10_usize.pow(5) {
            text.clear();
            let mut k = n;
            while k > 0 {
                text.push(ALPHABET[k % 10]);
                k /= 10;
            }
            let _ = redacted(&text);
            let _ = redacted(&format!("password={text}"));
        }
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
