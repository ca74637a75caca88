//! Configuration errors, and how server errors map to [`StoreError`].

use fusebox_fleet::StoreError;
use tokio_postgres::error::SqlState;

/// Why a [`PostgresStore`](crate::PostgresStore) could not be configured.
///
/// ```
/// use fusebox_postgres::{BuildError, PostgresStore};
/// let err = PostgresStore::builder("mysql://localhost/app").build().unwrap_err();
/// assert!(matches!(err, BuildError::Url(_)));
/// let err = PostgresStore::builder("postgres://localhost/app").schema("Ops").build().unwrap_err();
/// assert!(matches!(err, BuildError::Schema { .. }));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The connection URL or connection string could not be read.
    #[error("invalid PostgreSQL URL: {0}")]
    Url(String),
    /// The schema name is not a plain lower-case identifier.
    #[error("invalid schema name {schema:?}: {reason}")]
    Schema {
        /// The name given.
        schema: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is out of range.
    #[error("invalid setting `{field}`: {reason}")]
    Setting {
        /// The builder method's name.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

/// The message that tells an operator what to do about a missing schema.
pub(crate) fn not_set_up(schema: &str, detail: &str) -> StoreError {
    StoreError::NotSetUp(format!(
        "the fusebox tables are missing in schema \"{schema}\" ({detail}); run `fusebox pg-setup --schema {schema}`"
    ))
}

/// A schema set up by an earlier release, which this build cannot use until it is upgraded.
pub(crate) fn outdated(schema: &str, found: i32, needed: i32) -> StoreError {
    StoreError::NotSetUp(format!(
        "schema \"{schema}\" is at version {found}, this build needs {needed}; run `fusebox pg-setup --schema {schema}` to upgrade it in place"
    ))
}

/// Maps a driver error: connection trouble is `Unavailable` (a reconnect may cure it), a
/// missing schema, table or function is `NotSetUp`, anything else the server refused is
/// `Protocol`.
pub(crate) fn from_pg(e: &tokio_postgres::Error, schema: &str) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // I/O, a closed connection, a timeout while connecting.
        return StoreError::Unavailable(flatten(e));
    };
    let code = db.code();
    if *code == SqlState::UNDEFINED_TABLE
        || *code == SqlState::UNDEFINED_FUNCTION
        || *code == SqlState::INVALID_SCHEMA_NAME
        || *code == SqlState::UNDEFINED_OBJECT
    {
        return not_set_up(schema, db.message());
    }
    let class = &code.code()[..2];
    match class {
        // Connection exception, insufficient resources, operator intervention (a terminated
        // backend, a shutdown), system error, invalid authorization or database.
        "08" | "53" | "57" | "58" | "28" | "3D" => {
            StoreError::Unavailable(format!("{} ({})", db.message(), code.code()))
        }
        // Serialization failures and deadlocks: worth retrying.
        "40" => StoreError::Unavailable(format!("{} ({})", db.message(), code.code())),
        _ => StoreError::Protocol(format!("{} ({})", db.message(), code.code())),
    }
}

/// Maps a pool error.
pub(crate) fn from_pool(e: deadpool_postgres::PoolError, schema: &str) -> StoreError {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => from_pg(&e, schema),
        PoolError::Timeout(kind) => {
            StoreError::Unavailable(format!("no connection from the pool in time ({kind:?})"))
        }
        PoolError::Closed => StoreError::Unavailable("the connection pool is closed".into()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// The error and its sources on one line ("error connecting to server: Connection refused").
pub(crate) fn flatten(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
