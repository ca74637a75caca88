//! The store's builder: where to connect, which schema, the pool and its timeouts.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{broadcast, watch};
use tokio_postgres::NoTls;

use crate::*;

pub(crate) enum Source {
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
    pub(crate) source: Source,
    pub(crate) schema: String,
    pub(crate) pool_size: usize,
    pub(crate) connect_timeout: Duration,
    pub(crate) statement_timeout: Duration,
    pub(crate) application_name: Option<String>,
    pub(crate) setup_on_prepare: bool,
}

impl std::fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PostgresStoreBuilder {
    pub(crate) fn new(source: Source) -> Self {
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

    /// Whether [`prepare`](fusebox_fleet::StateStore::prepare) runs [`setup`](PostgresStore::setup) when
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
