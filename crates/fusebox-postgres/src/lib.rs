//! A PostgreSQL store for fusebox's fleet-wide breakers.
//!
//! Every instance of a service keeps deciding its calls locally; a background task per
//! breaker flushes outcome deltas to PostgreSQL and reads the fleet's record (see
//! [`fusebox_fleet`]). This crate is that store:
//!
//! * two tables in a schema of your choice (`fusebox` by default), `breakers` and
//!   `instances`, created by a shipped, versioned migration ([`PostgresStore::setup`], or
//!   `fusebox pg-setup` from the CLI, or [`setup_sql`] for review);
//! * every change is one call of a plpgsql function in one statement: the breaker's row
//!   lock is held for that statement and never across calls, and transitions are
//!   compare-and-set on the record's generation;
//! * transitions are announced with `NOTIFY`; a background `LISTEN` connection per store
//!   turns them into [`Notice`]s and reconnects with backoff when the server goes away,
//!   while the fleet's periodic sync is the backstop;
//! * all times come from the database's clock (`clock_timestamp()`, in milliseconds);
//! * the state is readable with plain SQL for dashboards and alerts: the views
//!   `breaker_status` and `instance_status`.
//!
//! ```no_run
//! use fusebox_core::breaker::Breaker;
//! use fusebox_fleet::{Fleet, FleetMode};
//! use fusebox_postgres::PostgresStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = PostgresStore::builder("postgres://app@db.internal/orders")
//!     .schema("fusebox")
//!     .build()?;
//! store.setup().await?; // or `fusebox pg-setup --yes` once, by an operator
//! let fleet = Fleet::builder(store).build()?;
//! let breaker = fleet.breaker(
//!     Breaker::builder("payments-api").failures_in_last(5, 20),
//!     FleetMode::quorum(2, 0.5)?,
//! )?;
//! # drop(breaker);
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod error;
mod listen;
mod schema;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use fusebox_fleet::{
    BreakerRecord, Cas, Claim, FleetChange, FleetState, FleetView, ForcedState, InstanceView,
    Notice, StateStore, StoreError, StoreFuture, SyncRequest, check_force_ms, check_span_ms,
};
use tokio::sync::{broadcast, watch};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

pub use config::connection_config;
pub use error::BuildError;
pub use schema::{DEFAULT_SCHEMA, MAX_SCHEMA_LEN, SCHEMA_VERSION, setup_sql};
/// The driver's connection settings, re-exported for
/// [`PostgresStore::builder_with_config`].
///
/// ```
/// let mut config = fusebox_postgres::Config::new();
/// config.host("db.internal").user("app").dbname("orders");
/// ```
pub use tokio_postgres::Config;

/// Key of the advisory lock that serializes setups on one database.
const SETUP_LOCK: i64 = 0x0066_7573_6562_6f78; // "fusebox"

/// Longest breaker name or instance id accepted (a notification's payload is bounded).
const MAX_NAME_LEN: usize = 4096;

/// A fleet store on PostgreSQL. Clones share one connection pool and one `LISTEN`
/// connection; every handle on the same database and schema sees the same fleet.
///
/// ```no_run
/// use fusebox_fleet::StateStore;
/// use fusebox_postgres::PostgresStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::builder("postgres://postgres@127.0.0.1/test").build()?;
/// store.prepare().await?; // fails with `NotSetUp` until the tables exist
/// for name in store.breakers().await? {
///     let view = store.view(&name).await?.expect("listed");
///     println!("{name}: {} ({} live)", view.record.state, view.live_instances());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    config: Config,
    schema: String,
    setup_on_prepare: bool,
    notices: broadcast::Sender<Notice>,
    listening: AtomicBool,
    /// Dropped with the store, which ends the LISTEN task.
    closed: watch::Sender<()>,
    sql: Queries,
}

struct Queries {
    sync: String,
    transition: String,
    claim: String,
    force: String,
    view: String,
    breakers: String,
    version: String,
}

impl Queries {
    fn new(schema: &str) -> Queries {
        let s = schema::quoted(schema);
        Queries {
            sync: format!(
                "SELECT * FROM {s}.sync($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ),
            transition: format!("SELECT * FROM {s}.transition($1, $2, $3, $4, $5)"),
            claim: format!("SELECT * FROM {s}.claim_trials($1, $2, $3, $4)"),
            force: format!("SELECT * FROM {s}.force($1, $2, $3)"),
            view: format!("SELECT * FROM {s}.fleet_rows($1, {s}.now_ms(), 0)"),
            breakers: format!("SELECT name FROM {s}.breakers ORDER BY name COLLATE \"C\""),
            version: format!("SELECT coalesce(max(version), 0) FROM {s}.fusebox_migrations"),
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("server", &config::describe(&self.inner.config))
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

enum Source {
    Url(String),
    Env,
    Config(Box<Config>),
}

/// Builds a [`PostgresStore`]; every setting is checked by [`build`](Self::build), which
/// connects to nothing (connections open on first use).
///
/// ```
/// use fusebox_postgres::PostgresStore;
/// use std::time::Duration;
/// let store = PostgresStore::builder("postgres://app@db.internal/orders")
///     .schema("payments_fleet")
///     .pool_size(4)
///     .connect_timeout(Duration::from_secs(2))
///     .application_name("checkout")
///     .build()?;
/// assert_eq!(store.schema(), "payments_fleet");
/// # Ok::<(), fusebox_postgres::BuildError>(())
/// ```
pub struct PostgresStoreBuilder {
    source: Source,
    schema: String,
    pool_size: usize,
    connect_timeout: Duration,
    statement_timeout: Duration,
    application_name: Option<String>,
    setup_on_prepare: bool,
}

impl std::fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Starts building a store on `url`: a `postgres://` URL or a `key=value` connection
    /// string. What it leaves out comes from libpq's `PG*` variables (see
    /// [`connection_config`]).
    ///
    /// ```
    /// use fusebox_postgres::PostgresStore;
    /// let store = PostgresStore::builder("host=127.0.0.1 user=postgres dbname=test").build()?;
    /// assert_eq!(store.schema(), "fusebox");
    /// # Ok::<(), fusebox_postgres::BuildError>(())
    /// ```
    pub fn builder(url: impl Into<String>) -> PostgresStoreBuilder {
        PostgresStoreBuilder::new(Source::Url(url.into()))
    }

    /// Starts building a store from the environment alone: `DATABASE_URL` if set, libpq's
    /// `PG*` variables for the rest.
    ///
    /// ```
    /// use fusebox_postgres::PostgresStore;
    /// let builder = PostgresStore::builder_from_env().schema("ops");
    /// # drop(builder);
    /// ```
    pub fn builder_from_env() -> PostgresStoreBuilder {
        PostgresStoreBuilder::new(Source::Env)
    }

    /// Starts building a store on connection settings made by hand (no environment read).
    ///
    /// ```
    /// use fusebox_postgres::{Config, PostgresStore};
    /// let mut config = Config::new();
    /// config.host("127.0.0.1").user("postgres").dbname("test");
    /// let store = PostgresStore::builder_with_config(config).build()?;
    /// # drop(store);
    /// # Ok::<(), fusebox_postgres::BuildError>(())
    /// ```
    pub fn builder_with_config(config: Config) -> PostgresStoreBuilder {
        PostgresStoreBuilder::new(Source::Config(Box::new(config)))
    }

    /// The schema holding the tables.
    ///
    /// ```
    /// use fusebox_postgres::PostgresStore;
    /// let store = PostgresStore::builder("postgres://localhost/app").schema("ops").build()?;
    /// assert_eq!(store.schema(), "ops");
    /// # Ok::<(), fusebox_postgres::BuildError>(())
    /// ```
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// Where the store connects, for messages: `host:port/database` (never a password).
    ///
    /// ```
    /// use fusebox_postgres::PostgresStore;
    /// let store = PostgresStore::builder("postgres://u:secret@db:6000/app").build()?;
    /// assert_eq!(store.server(), "db:6000/app");
    /// # Ok::<(), fusebox_postgres::BuildError>(())
    /// ```
    pub fn server(&self) -> String {
        config::describe(&self.inner.config)
    }

    /// Creates the schema, tables, functions and views, or brings them up to this build's
    /// version. Running it again is harmless; concurrent setups on one database wait for
    /// each other (an advisory lock), and each runs in one transaction.
    ///
    /// ```no_run
    /// use fusebox_postgres::PostgresStore;
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresStore::builder("postgres://postgres@127.0.0.1/test").build()?;
    /// let report = store.setup().await?;
    /// println!("schema {} at version {}", report.schema, report.version);
    /// assert!(store.setup().await?.applied.is_empty()); // the second time, nothing to do
    /// # Ok(())
    /// # }
    /// ```
    pub async fn setup(&self) -> Result<SetupReport, StoreError> {
        let schema = self.inner.schema.as_str();
        let pg = |e: tokio_postgres::Error| error::from_pg(&e, schema);
        let mut client = self
            .inner
            .pool
            .get()
            .await
            .map_err(|e| error::from_pool(e, schema))?;
        let tx = client.transaction().await.map_err(pg)?;
        tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({SETUP_LOCK})"))
            .await
            .map_err(pg)?;
        tx.batch_execute(&schema::bootstrap(schema))
            .await
            .map_err(pg)?;
        let from: i32 = tx
            .query_one(&self.inner.sql.version, &[])
            .await
            .map_err(pg)?
            .try_get(0)
            .map_err(|e| StoreError::Protocol(e.to_string()))?;
        if from > SCHEMA_VERSION {
            return Err(newer_schema(schema, from));
        }
        let mut applied = Vec::new();
        for m in schema::MIGRATIONS.iter().filter(|m| m.version > from) {
            tx.batch_execute(&m.render(schema)).await.map_err(pg)?;
            tx.execute(
                &format!(
                    "INSERT INTO {}.fusebox_migrations (version, description) VALUES ($1, $2)",
                    schema::quoted(schema)
                ),
                &[&m.version, &m.description],
            )
            .await
            .map_err(pg)?;
            applied.push(m.version);
        }
        tx.commit().await.map_err(pg)?;
        Ok(SetupReport {
            schema: schema.to_owned(),
            previous_version: from,
            version: SCHEMA_VERSION,
            applied,
        })
    }

    /// The schema version found in the database; `None` when the schema was never set up.
    ///
    /// ```no_run
    /// use fusebox_postgres::{PostgresStore, SCHEMA_VERSION};
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresStore::builder("postgres://postgres@127.0.0.1/test").build()?;
    /// if store.schema_version().await? != Some(SCHEMA_VERSION) {
    ///     eprintln!("run `fusebox pg-setup`");
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn schema_version(&self) -> Result<Option<i32>, StoreError> {
        match self.query(&self.inner.sql.version, &[]).await {
            Ok(rows) => {
                let v: i32 = rows
                    .first()
                    .ok_or_else(|| StoreError::Protocol("no version row".into()))?
                    .try_get(0)
                    .map_err(|e| StoreError::Protocol(e.to_string()))?;
                Ok((v > 0).then_some(v))
            }
            Err(StoreError::NotSetUp(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let schema = self.inner.schema.as_str();
        let client = self
            .inner
            .pool
            .get()
            .await
            .map_err(|e| error::from_pool(e, schema))?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| error::from_pg(&e, schema))?;
        client
            .query(&statement, params)
            .await
            .map_err(|e| error::from_pg(&e, schema))
    }

    /// Runs a store function and reads its rows as a view.
    async fn call(
        &self,
        breaker: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<(i64, FleetView), StoreError> {
        let rows = self.query(sql, params).await?;
        read_view(breaker, &rows)?
            .ok_or_else(|| StoreError::Protocol(format!("no record returned for {breaker:?}")))
    }

    fn start_listener(&self) {
        if self.inner.listening.swap(true, Ordering::AcqRel) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(listen::run(
                    self.inner.config.clone(),
                    schema::channel(&self.inner.schema),
                    self.inner.notices.clone(),
                    self.inner.closed.subscribe(),
                ));
            }
            // No runtime: no notices; a later subscribe from a runtime starts them.
            Err(_) => self.inner.listening.store(false, Ordering::Release),
        }
    }
}

/// What [`PostgresStore::setup`] did.
///
/// ```
/// use fusebox_postgres::SetupReport;
/// let r = SetupReport { schema: "fusebox".into(), previous_version: 0, version: 1, applied: vec![1] };
/// assert!(r.created());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupReport {
    /// The schema set up.
    pub schema: String,
    /// The version found before (0: none).
    pub previous_version: i32,
    /// The version now.
    pub version: i32,
    /// The migrations applied by this call, oldest first (empty when already current).
    pub applied: Vec<i32>,
}

impl SetupReport {
    /// True when this call created the tables from nothing.
    ///
    /// ```
    /// use fusebox_postgres::SetupReport;
    /// let r = SetupReport { schema: "fusebox".into(), previous_version: 1, version: 1, applied: vec![] };
    /// assert!(!r.created());
    /// ```
    pub fn created(&self) -> bool {
        self.previous_version == 0 && !self.applied.is_empty()
    }
}

impl PostgresStoreBuilder {
    fn new(source: Source) -> Self {
        PostgresStoreBuilder {
            source,
            schema: DEFAULT_SCHEMA.to_owned(),
            pool_size: 8,
            connect_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
            application_name: None,
            setup_on_prepare: false,
        }
    }

    /// The schema holding the tables (default `fusebox`): lower-case letters, digits and
    /// `_`, at most [`MAX_SCHEMA_LEN`] bytes.
    ///
    /// ```
    /// use fusebox_postgres::PostgresStore;
    /// assert!(PostgresStore::builder("postgres://localhost/app").schema("a-b").build().is_err());
    /// ```
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Connections the pool may hold (default 8; at least 1). One more, outside the pool,
    /// listens for notifications.
    ///
    /// ```
    /// use fusebox_postgres::PostgresStore;
    /// assert!(PostgresStore::builder("postgres://localhost/app").pool_size(0).build().is_err());
    /// ```
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// How long opening a connection may take (default 3 s; a value in the URL wins).
    ///
    /// ```
    /// use fusebox_postgres::PostgresStore;
    /// use std::time::Duration;
    /// let b = PostgresStore::builder("postgres://localhost/app").connect_timeout(Duration::from_millis(500));
    /// assert!(b.build().is_ok());
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The server-side `statement_timeout` of the store's connections (default 5 s), so a
    /// stuck statement never holds a breaker's row lock for long.
    ///
    /// ```
    /// use fusebox_postgres::PostgresStore;
    /// use std::time::Duration;
    /// assert!(PostgresStore::builder("postgres://localhost/app")
    ///     .statement_timeout(Duration::ZERO).build().is_err());
    /// ```
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// The `application_name` the connections report in `pg_stat_activity` (default
    /// `fusebox`, unless the URL or `PGAPPNAME` names one).
    ///
    /// ```
    /// use fusebox_postgres::PostgresStore;
    /// let store = PostgresStore::builder("postgres://localhost/app").application_name("checkout").build()?;
    /// # drop(store);
    /// # Ok::<(), fusebox_postgres::BuildError>(())
    /// ```
    pub fn application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = Some(name.into());
        self
    }

    /// Whether [`prepare`](StateStore::prepare) runs [`setup`](PostgresStore::setup) when
    /// the tables are missing or older (default false: `prepare` answers
    /// [`StoreError::NotSetUp`], and an operator runs `fusebox pg-setup`).
    ///
    /// ```
    /// use fusebox_postgres::PostgresStore;
    /// let store = PostgresStore::builder("postgres://localhost/app").setup_on_prepare(true).build()?;
    /// # drop(store);
    /// # Ok::<(), fusebox_postgres::BuildError>(())
    /// ```
    pub fn setup_on_prepare(mut self, yes: bool) -> Self {
        self.setup_on_prepare = yes;
        self
    }

    /// Checks the settings and makes the store. Connects to nothing.
    ///
    /// ```
    /// use fusebox_postgres::{BuildError, PostgresStore};
    /// let err = PostgresStore::builder("postgres://h:notaport/app").build().unwrap_err();
    /// assert!(matches!(err, BuildError::Url(_)));
    /// ```
    pub fn build(self) -> Result<PostgresStore, BuildError> {
        let schema = schema::validate(&self.schema)?;
        if self.pool_size == 0 {
            return Err(BuildError::Setting {
                field: "pool_size",
                reason: "must be at least 1".into(),
            });
        }
        for (field, d) in [
            ("connect_timeout", self.connect_timeout),
            ("statement_timeout", self.statement_timeout),
        ] {
            if d.is_zero() {
                return Err(BuildError::Setting {
                    field,
                    reason: "must be more than zero".into(),
                });
            }
        }
        let env = |k: &str| std::env::var(k).ok();
        let mut config = match self.source {
            Source::Url(url) => connection_config(Some(&url), env)?,
            Source::Env => connection_config(env("DATABASE_URL").as_deref(), env)?,
            Source::Config(config) => *config,
        };
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(self.connect_timeout);
        }
        if let Some(name) = self.application_name {
            config.application_name(name);
        } else if config.get_application_name().is_none() {
            config.application_name("fusebox");
        }
        let timeout = format!(
            "-c statement_timeout={}",
            self.statement_timeout.as_millis().max(1)
        );
        let options = match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} {timeout}"),
            _ => timeout,
        };
        config.options(options);
        config.keepalives_idle(Duration::from_secs(30));

        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(self.connect_timeout))
            .wait_timeout(Some(self.connect_timeout + self.statement_timeout))
            .recycle_timeout(Some(self.connect_timeout))
            .build()
            .map_err(|e| BuildError::Setting {
                field: "pool_size",
                reason: e.to_string(),
            })?;
        let (notices, _) = broadcast::channel(256);
        let (closed, _) = watch::channel(());
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                pool,
                config,
                sql: Queries::new(&schema),
                schema,
                setup_on_prepare: self.setup_on_prepare,
                notices,
                listening: AtomicBool::new(false),
                closed,
            }),
        })
    }
}

fn newer_schema(schema: &str, found: i32) -> StoreError {
    StoreError::Protocol(format!(
        "schema \"{schema}\" is at version {found}, newer than this build's {SCHEMA_VERSION}; upgrade fusebox"
    ))
}

fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::Invalid(format!("empty {what}")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(StoreError::Invalid(format!(
            "{what} longer than {MAX_NAME_LEN} bytes"
        )));
    }
    if name.contains('\0') {
        return Err(StoreError::Invalid(format!("{what} holds a NUL byte")));
    }
    Ok(())
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    column: &str,
) -> Result<T, StoreError> {
    row.try_get(column)
        .map_err(|e| StoreError::Protocol(format!("column {column}: {e}")))
}

/// Reads the rows of `fleet_rows`: the call's outcome and the view; `None` for no row.
fn read_view(name: &str, rows: &[Row]) -> Result<Option<(i64, FleetView)>, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let state: String = get(first, "state")?;
    let forced: Option<String> = get(first, "forced")?;
    let record = BreakerRecord {
        generation: to_u64(get(first, "generation")?),
        state: FleetState::parse(&state)
            .ok_or_else(|| StoreError::Protocol(format!("unknown state {state:?}")))?,
        open_until_ms: to_u64(get(first, "open_until_ms")?),
        trips: to_u32(get(first, "trips")?),
        trial_successes: to_u32(get(first, "trial_successes")?),
        trial_failures: to_u32(get(first, "trial_failures")?),
        forced: match forced {
            None => None,
            Some(f) => Some(
                ForcedState::parse(&f)
                    .ok_or_else(|| StoreError::Protocol(format!("unknown forced state {f:?}")))?,
            ),
        },
        forced_until_ms: get::<Option<i64>>(first, "forced_until_ms")?.map(to_u64),
        transitions: to_u64(get(first, "transitions")?),
        opens: to_u64(get(first, "opens")?),
        changed_ms: to_u64(get(first, "changed_ms")?),
        mode: get(first, "mode")?,
        reason: get(first, "reason")?,
    };
    let now_ms = to_u64(get(first, "now_ms")?);
    let mut instances = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(id) = get::<Option<String>>(row, "instance")? else {
            continue; // the breaker has no instance: one row with nulls
        };
        let lease_until = to_u64(get(row, "lease_until_ms")?);
        instances.push(InstanceView {
            id,
            live: lease_until > now_ms,
            lease_remaining_ms: lease_until.saturating_sub(now_ms),
            local_open: get(row, "local_open")?,
            successes: to_u64(get(row, "successes")?),
            failures: to_u64(get(row, "failures")?),
            slow: to_u64(get(row, "slow")?),
            seq: to_u64(get(row, "seq")?),
            trials_claimed: to_u32(get(row, "claims")?),
        });
    }
    let outcome: i64 = get(first, "outcome")?;
    Ok(Some((
        outcome,
        FleetView {
            name: name.to_owned(),
            now_ms,
            record,
            instances,
        },
    )))
}

impl StateStore for PostgresStore {
    fn prepare(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let schema = &self.inner.schema;
            let found = self.schema_version().await?;
            match found {
                Some(v) if v == SCHEMA_VERSION => Ok(()),
                Some(v) if v > SCHEMA_VERSION => Err(newer_schema(schema, v)),
                _ if self.inner.setup_on_prepare => self.setup().await.map(drop),
                None => Err(error::not_set_up(schema, "no schema version recorded")),
                Some(v) => Err(error::not_set_up(
                    schema,
                    &format!("version {v}, this build needs {SCHEMA_VERSION}"),
                )),
            }
        })
    }

    fn sync<'a>(&'a self, req: &'a SyncRequest) -> StoreFuture<'a, FleetView> {
        Box::pin(async move {
            check_name("breaker name", &req.breaker)?;
            check_name("instance id", &req.instance)?;
            check_span_ms("lease_ttl_ms", req.lease_ttl_ms)?;
            let params: [&(dyn ToSql + Sync); 13] = [
                &req.breaker,
                &req.instance,
                &to_i64(req.lease_ttl_ms),
                &to_i64(req.seq),
                &to_i64(req.outcomes.successes),
                &to_i64(req.outcomes.failures),
                &to_i64(req.outcomes.slow),
                &to_i64(req.trials.generation),
                &i64::from(req.trials.successes),
                &i64::from(req.trials.failures),
                &i64::from(req.trials.release),
                &req.local_open,
                &req.mode,
            ];
            let (_, view) = self
                .call(&req.breaker, &self.inner.sql.sync, &params)
                .await?;
            Ok(view)
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
            check_name("breaker name", breaker)?;
            change.check()?;
            let cooldown = match change {
                FleetChange::Open { cooldown_ms } => to_i64(cooldown_ms),
                FleetChange::HalfOpen | FleetChange::Closed => 0,
            };
            let target = change.target().as_str();
            let params: [&(dyn ToSql + Sync); 5] = [
                &breaker,
                &to_i64(expected_generation),
                &target,
                &cooldown,
                &reason,
            ];
            let (won, view) = self
                .call(breaker, &self.inner.sql.transition, &params)
                .await?;
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
            check_name("breaker name", breaker)?;
            check_name("instance id", instance)?;
            let params: [&(dyn ToSql + Sync); 4] =
                [&breaker, &instance, &i64::from(want), &i64::from(permitted)];
            let (granted, view) = self.call(breaker, &self.inner.sql.claim, &params).await?;
            Ok(Claim {
                granted: to_u32(granted),
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
            check_name("breaker name", breaker)?;
            check_force_ms(for_ms)?;
            let state = forced.map(ForcedState::as_str);
            let for_ms = for_ms.map(to_i64);
            let params: [&(dyn ToSql + Sync); 3] = [&breaker, &state, &for_ms];
            let (_, view) = self.call(breaker, &self.inner.sql.force, &params).await?;
            Ok(view)
        })
    }

    fn view<'a>(&'a self, breaker: &'a str) -> StoreFuture<'a, Option<FleetView>> {
        Box::pin(async move {
            check_name("breaker name", breaker)?;
            let rows = self.query(&self.inner.sql.view, &[&breaker]).await?;
            Ok(read_view(breaker, &rows)?.map(|(_, view)| view))
        })
    }

    fn breakers(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            let rows = self.query(&self.inner.sql.breakers, &[]).await?;
            rows.iter().map(|r| get(r, "name")).collect()
        })
    }

    fn subscribe(&self) -> broadcast::Receiver<Notice> {
        let receiver = self.inner.notices.subscribe();
        self.start_listener();
        receiver
    }
}
