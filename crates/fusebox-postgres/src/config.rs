//! Connection settings: a URL or connection string, completed from libpq's `PG*` variables.

use std::path::Path;
use std::str::FromStr;

use tokio_postgres::Config;

use crate::BuildError;

/// Reads `url` (a `postgres://` URL or a `key=value` connection string; `None` for none)
/// and fills what it leaves out from libpq's environment variables, as `psql` would:
/// `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD`, `PGAPPNAME`,
/// `PGCONNECT_TIMEOUT` (a URL that names a host also names its port: 5432 when left
/// out). With no host anywhere, the local socket directory is used if it
/// exists, else `localhost`; with no user, `$USER`.
///
/// `env` looks a variable up (pass `|k| std::env::var(k).ok()`).
///
/// ```
/// let env = |k: &str| match k {
///     "PGPASSWORD" => Some("secret".to_owned()),
///     "PGPORT" => Some("6543".to_owned()),
///     _ => None,
/// };
/// let config = fusebox_postgres::connection_config(Some("host=db.internal user=app dbname=orders"), env)?;
/// assert_eq!(config.get_user(), Some("app"));
/// assert_eq!(config.get_password(), Some(&b"secret"[..]));
/// assert_eq!(config.get_ports(), &[6543]);
/// assert!(fusebox_postgres::connection_config(Some("redis://localhost"), env).is_err());
/// # Ok::<(), fusebox_postgres::BuildError>(())
/// ```
pub fn connection_config(
    url: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, BuildError> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut config = match url.map(str::trim).filter(|u| !u.is_empty()) {
        Some(url) => {
            if let Some((scheme, _)) = url.split_once("://")
                && scheme != "postgres"
                && scheme != "postgresql"
            {
                return Err(BuildError::Url(format!(
                    "unsupported scheme `{scheme}://` (expected postgres:// or postgresql://)"
                )));
            }
            Config::from_str(url).map_err(|e| BuildError::Url(crate::error::flatten(&e)))?
        }
        None => Config::new(),
    };
    let port = match env("PGPORT") {
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| BuildError::Url(format!("PGPORT is not a port: {p:?}")))?,
        ),
        None => None,
    };
    if config.get_ports().is_empty()
        && let Some(port) = port
    {
        config.port(port);
    }
    if config.get_hosts().is_empty() {
        match env("PGHOST") {
            Some(hosts) => {
                for host in hosts.split(',') {
                    config.host(host);
                }
            }
            None => {
                let port = config.get_ports().first().copied().unwrap_or(5432);
                let socket_dir = ["/var/run/postgresql", "/tmp"]
                    .into_iter()
                    .find(|dir| Path::new(dir).join(format!(".s.PGSQL.{port}")).exists());
                config.host(socket_dir.unwrap_or("localhost"));
            }
        }
    }
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".to_owned());
        config.user(user);
    }
    if config.get_dbname().is_none()
        && let Some(db) = env("PGDATABASE")
    {
        config.dbname(db);
    }
    if config.get_password().is_none()
        && let Some(pw) = env("PGPASSWORD")
    {
        config.password(pw);
    }
    if config.get_application_name().is_none()
        && let Some(name) = env("PGAPPNAME")
    {
        config.application_name(name);
    }
    if config.get_connect_timeout().is_none()
        && let Some(secs) = env("PGCONNECT_TIMEOUT")
    {
        let secs: u64 = secs
            .parse()
            .map_err(|_| BuildError::Url(format!("PGCONNECT_TIMEOUT is not seconds: {secs:?}")))?;
        config.connect_timeout(std::time::Duration::from_secs(secs.max(2)));
    }
    Ok(config)
}

/// Where `config` connects, for messages ("db.internal:5432/orders"); no password.
pub(crate) fn describe(config: &Config) -> String {
    use tokio_postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config
        .get_dbname()
        .or(config.get_user())
        .unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn url_wins_over_the_environment() {
        let env = |k: &str| (k == "PGUSER").then(|| "env-user".to_owned());
        let c = connection_config(Some("postgres://u@h:1/d"), env).unwrap();
        assert_eq!(c.get_user(), Some("u"));
        assert_eq!(c.get_ports(), &[1]);
        assert_eq!(describe(&c), "h:1/d");
    }

    #[test]
    fn environment_alone() {
        let env = |k: &str| match k {
            "PGHOST" => Some("db".to_owned()),
            "PGUSER" => Some("ops".to_owned()),
            "PGDATABASE" => Some("fleet".to_owned()),
            _ => None,
        };
        let c = connection_config(None, env).unwrap();
        assert_eq!(describe(&c), "db:5432/fleet");
        assert_eq!(c.get_user(), Some("ops"));
    }

    #[test]
    fn bad_inputs() {
        assert!(connection_config(Some("http://x"), none).is_err());
        assert!(connection_config(Some("postgres://h:notaport/d"), none).is_err());
        let env = |k: &str| (k == "PGPORT").then(|| "x".to_owned());
        assert!(connection_config(None, env).is_err());
    }
}
