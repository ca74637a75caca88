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

mod builder;
mod config;
mod error;
mod listen;
mod schema;
mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use deadpool_postgres::Pool;
use fusebox_fleet::{FleetView, Notice, StoreError};
use tokio::sync::{broadcast, watch};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

pub use builder::PostgresStoreBuilder;
use builder::Source;
pub use config::connection_config;
pub use error::BuildError;
pub use schema::{DEFAULT_SCHEMA, MAX_SCHEMA_LEN, SCHEMA_VERSION, setup_sql};
use store::{newer_schema, read_view};

/// The driver's connection settings, re-exported for
/// [`PostgresStore::builder_with_config`].
///
/// ```
/// let mut config = fusebox_postgres::Config::new();
/// config.host("db.internal").user("app").dbname("orders");
/// ```
pub use tokio_postgres::Config;

/// Key of the advisory lock that serializes setups on one database.
pub(crate) const SETUP_LOCK: i64 = 0x0066_7573_6562_6f78; // "fusebox"

/// Longest breaker name or instance id accepted (a notification's payload is bounded).
pub(crate) const MAX_NAME_LEN: usize = 4096;

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
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: Pool,
    pub(crate) config: Config,
    pub(crate) schema: String,
    pub(crate) setup_on_prepare: bool,
    pub(crate) notices: broadcast::Sender<Notice>,
    pub(crate) listening: AtomicBool,
    /// Dropped with the store, which ends the LISTEN task.
    pub(crate) closed: watch::Sender<()>,
    pub(crate) sql: Queries,
}

pub(crate) struct Queries {
    pub(crate) sync: String,
    pub(crate) transition: String,
    pub(crate) claim: String,
    pub(crate) force: String,
    pub(crate) view: String,
    pub(crate) breakers: String,
    pub(crate) version: String,
}

impl Queries {
    pub(crate) fn new(schema: &str) -> Queries {
        let s = schema::quoted(schema);
        Queries {
            sync: format!(
                "SELECT * FROM {s}.sync_v3($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ),
            transition: format!("SELECT * FROM {s}.transition_v3($1, $2, $3, $4, $5)"),
            claim: format!("SELECT * FROM {s}.claim_trials_v3($1, $2, $3, $4)"),
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

    pub(crate) fn start_listener(&self) {
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
