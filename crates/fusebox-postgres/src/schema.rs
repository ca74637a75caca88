//! The shipped, versioned migrations and the schema name they are written for.

use crate::BuildError;

/// The longest schema name accepted: the LISTEN channel, `fusebox_` and the schema, must
/// stay under PostgreSQL's 63-byte identifier limit.
///
/// ```
/// use fusebox_postgres::{MAX_SCHEMA_LEN, PostgresStore};
/// let long = "s".repeat(MAX_SCHEMA_LEN + 1);
/// assert!(PostgresStore::builder("postgres://localhost/app").schema(long).build().is_err());
/// ```
pub const MAX_SCHEMA_LEN: usize = 48;

/// The schema used when none is configured.
///
/// ```
/// use fusebox_postgres::{DEFAULT_SCHEMA, PostgresStore};
/// let store = PostgresStore::builder("postgres://localhost/app").build()?;
/// assert_eq!(store.schema(), DEFAULT_SCHEMA);
/// # Ok::<(), fusebox_postgres::BuildError>(())
/// ```
pub const DEFAULT_SCHEMA: &str = "fusebox";

/// One shipped migration: its version, what it does, and its SQL (with placeholders).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The schema version it leads to.
    pub(crate) version: i32,
    /// One line for operators.
    pub(crate) description: &'static str,
    sql: &'static str,
}

/// Every migration, oldest first. Versions only grow; a shipped migration never changes.
pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "breakers, instance leases, store functions, status views",
        sql: include_str!("../migrations/0001_fleet.sql"),
    },
    Migration {
        version: 2,
        description: "instance incarnations: a restart under the same id starts a new sequence",
        sql: include_str!("../migrations/0002_incarnation.sql"),
    },
    Migration {
        version: 3,
        description: "fleet totals kept as flushes apply: syncs no longer visit every instance",
        sql: include_str!("../migrations/0003_fleet_totals.sql"),
    },
];

/// The schema version this build needs.
///
/// ```
/// assert_eq!(fusebox_postgres::SCHEMA_VERSION, 3);
/// ```
pub const SCHEMA_VERSION: i32 = 3;

/// A validated schema name: lower-case ASCII letters, digits and `_`, starting with a
/// letter or `_`, not `pg_…`, at most [`MAX_SCHEMA_LEN`] bytes.
pub(crate) fn validate(schema: &str) -> Result<String, BuildError> {
    let bad = |why: &str| BuildError::Schema {
        schema: schema.to_owned(),
        reason: why.to_owned(),
    };
    if schema.is_empty() {
        return Err(bad("must not be empty"));
    }
    if schema.len() > MAX_SCHEMA_LEN {
        return Err(bad(&format!("longer than {MAX_SCHEMA_LEN} bytes")));
    }
    let mut chars = schema.chars();
    let first = chars.next().unwrap_or('0');
    if !(first.is_ascii_lowercase() || first == '_') {
        return Err(bad("must start with a lower-case letter or `_`"));
    }
    if !schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(bad("may hold only lower-case letters, digits and `_`"));
    }
    if schema.starts_with("pg_") {
        return Err(bad("`pg_` names are reserved by PostgreSQL"));
    }
    Ok(schema.to_owned())
}

/// The LISTEN/NOTIFY channel of a schema.
pub(crate) fn channel(schema: &str) -> String {
    format!("fusebox_{schema}")
}

/// A quoted identifier (the schema is validated, quoting is belt and braces).
pub(crate) fn quoted(schema: &str) -> String {
    format!("\"{schema}\"")
}

impl Migration {
    /// The migration's SQL for `schema` (validated).
    pub(crate) fn render(&self, schema: &str) -> String {
        self.sql
            .replace("__SCHEMA__", &quoted(schema))
            .replace("__CHANNEL__", &channel(schema))
    }
}

/// The statements run before any migration: the schema and the table of applied versions.
pub(crate) fn bootstrap(schema: &str) -> String {
    let s = quoted(schema);
    format!(
        "CREATE SCHEMA IF NOT EXISTS {s};\n\
         CREATE TABLE IF NOT EXISTS {s}.fusebox_migrations (\n    \
             version     integer PRIMARY KEY,\n    \
             description text NOT NULL,\n    \
             applied_at  timestamptz NOT NULL DEFAULT now()\n\
         );\n"
    )
}

/// The whole setup for `schema` as one SQL script, for review (`pg-setup --dry-run`) or for
/// running by hand with `psql`. It is what [`PostgresStore::setup`](crate::PostgresStore::setup)
/// runs on a fresh schema; `setup` also skips the migrations already applied.
///
/// ```
/// let sql = fusebox_postgres::setup_sql("fusebox")?;
/// assert!(sql.contains("CREATE TABLE \"fusebox\".breakers"));
/// assert!(fusebox_postgres::setup_sql("Robert'); DROP TABLE students;--").is_err());
/// # Ok::<(), fusebox_postgres::BuildError>(())
/// ```
pub fn setup_sql(schema: &str) -> Result<String, BuildError> {
    let schema = validate(schema)?;
    let mut out = String::from("BEGIN;\n");
    out.push_str(&bootstrap(&schema));
    for m in MIGRATIONS {
        out.push_str(&format!(
            "\n-- migration {}: {}\n{}\n",
            m.version,
            m.description,
            m.render(&schema)
        ));
        out.push_str(&format!(
            "INSERT INTO {}.fusebox_migrations (version, description) VALUES ({}, '{}') \
             ON CONFLICT (version) DO NOTHING;\n",
            quoted(&schema),
            m.version,
            m.description.replace('\'', "''")
        ));
    }
    out.push_str("COMMIT;\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert!(validate("fusebox").is_ok());
        assert!(validate("_x1").is_ok());
        for bad in [
            "",
            "Fusebox",
            "1abc",
            "a-b",
            "pg_x",
            "a b",
            "é",
            &"a".repeat(49),
        ] {
            assert!(validate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn versions_grow_and_the_last_is_current() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(versions.last().copied(), Some(SCHEMA_VERSION));
    }

    #[test]
    fn rendering_leaves_no_placeholder() {
        let sql = setup_sql("ops").unwrap();
        assert!(!sql.contains("__SCHEMA__") && !sql.contains("__CHANNEL__"));
        assert!(sql.contains("pg_notify('fusebox_ops'"));
    }
}
