//! Configuration, read from the environment only. Passwords come from files (Compose and
//! Swarm secrets), never from a variable's value or a URL that `docker inspect` would show.

use std::{fmt, net::SocketAddr, str::FromStr, time::Duration};

pub const DEFAULT_ADDR: &str = "0.0.0.0:8000";

#[derive(Clone)]
pub struct Config {
    pub database: tokio_postgres::Config,
    /// For `app migrate`: the role the web service connects as, made and granted by it.
    pub app_role: Option<AppRole>,
    pub addr: SocketAddr,
    pub log_format: LogFormat,
    /// After a stop signal, how long the server keeps serving before it finishes (see
    /// `http::serve`): `APP_DRAIN_SECONDS`, 0 by default.
    pub drain: Duration,
    /// Writes (POST) a client may make a minute: `APP_WRITES_PER_MINUTE`, 60 by default.
    pub writes_per_minute: u32,
    /// Whose `X-Forwarded-For` names the client (the proxy): `APP_TRUSTED_PROXIES`, host
    /// names or addresses separated by spaces or commas, none by default.
    pub trusted_proxies: Vec<String>,
}

/// The least-privileged role of the web service: its name, and the password `migrate`
/// gives it.
#[derive(Clone, PartialEq, Eq)]
pub struct AppRole {
    pub name: String,
    pub password: String,
}

impl fmt::Debug for AppRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppRole({})", self.name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A configuration mistake, worded for the person who has to fix it.
/// It never repeats `DATABASE_URL`'s value or a password file's content.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(
            |name| std::env::var(name).ok(),
            |path| std::fs::read_to_string(path),
        )
    }

    /// Reads the variables through `lookup` and the password files through `read`, so
    /// tests need not touch the process environment or the disk.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        read: impl Fn(&str) -> std::io::Result<String>,
    ) -> Result<Self, ConfigError> {
        let mut database = database_config(lookup("DATABASE_URL"))?;
        if let Some(password) = password_file("DATABASE_PASSWORD_FILE", &lookup, &read)? {
            if database.get_password().is_some() {
                return Err(ConfigError(
                    "DATABASE_URL has a password and DATABASE_PASSWORD_FILE is set: keep only the file".into(),
                ));
            }
            database.password(password);
        }
        let app_role = match lookup("APP_DB_USER").filter(|user| !user.is_empty()) {
            None => None,
            Some(name) => {
                let password = password_file("APP_DB_PASSWORD_FILE", &lookup, &read)?
                    .ok_or_else(|| {
                        ConfigError(format!(
                            "APP_DB_USER is `{name}` but APP_DB_PASSWORD_FILE is not set: set it to the file with that role's password"
                        ))
                    })?;
                if database.get_user() == Some(name.as_str()) {
                    return Err(ConfigError(format!(
                        "APP_DB_USER `{name}` is the user `migrate` connects as: the app's role must be another one"
                    )));
                }
                Some(AppRole { name, password })
            }
        };
        Ok(Self {
            database,
            app_role,
            addr: listen_addr(lookup("APP_ADDR"))?,
            log_format: log_format(lookup("APP_LOG_FORMAT"))?,
            drain: drain(lookup("APP_DRAIN_SECONDS"))?,
            writes_per_minute: writes_per_minute(lookup("APP_WRITES_PER_MINUTE"))?,
            trusted_proxies: lookup("APP_TRUSTED_PROXIES")
                .unwrap_or_default()
                .split([' ', ','])
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

fn database_config(url: Option<String>) -> Result<tokio_postgres::Config, ConfigError> {
    let url = url.filter(|url| !url.is_empty()).ok_or_else(|| {
        ConfigError(
            "DATABASE_URL is not set: set it to the database's URL, \
             e.g. postgres://travial@localhost:5432/travial (the password in DATABASE_PASSWORD_FILE)"
                .into(),
        )
    })?;
    tokio_postgres::Config::from_str(&url).map_err(|err| {
        ConfigError(format!(
            "DATABASE_URL is not a valid PostgreSQL URL ({err}): \
             expected postgres://USER@HOST:PORT/DATABASE"
        ))
    })
}

/// The password in the file the variable `name` names, without its trailing newlines (as
/// the postgres image reads its own `*_FILE` variables).
fn password_file(
    name: &str,
    lookup: &impl Fn(&str) -> Option<String>,
    read: &impl Fn(&str) -> std::io::Result<String>,
) -> Result<Option<String>, ConfigError> {
    let Some(path) = lookup(name).filter(|path| !path.is_empty()) else {
        return Ok(None);
    };
    let text =
        read(&path).map_err(|err| ConfigError(format!("cannot read {name} ({path}): {err}")))?;
    let password = text.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(ConfigError(format!("{name} ({path}) is empty")));
    }
    Ok(Some(password.to_owned()))
}

fn drain(value: Option<String>) -> Result<Duration, ConfigError> {
    let Some(value) = value.filter(|value| !value.is_empty()) else {
        return Ok(Duration::ZERO);
    };
    match value.parse::<u64>() {
        Ok(seconds) if seconds <= 60 => Ok(Duration::from_secs(seconds)),
        _ => Err(ConfigError(format!(
            "APP_DRAIN_SECONDS `{value}` is not a number of seconds from 0 to 60"
        ))),
    }
}

pub const DEFAULT_WRITES_PER_MINUTE: u32 = 60;

fn writes_per_minute(value: Option<String>) -> Result<u32, ConfigError> {
    let Some(value) = value.filter(|value| !value.is_empty()) else {
        return Ok(DEFAULT_WRITES_PER_MINUTE);
    };
    match value.parse::<u32>() {
        Ok(writes) if writes > 0 => Ok(writes),
        _ => Err(ConfigError(format!(
            "APP_WRITES_PER_MINUTE `{value}` is not a whole number of writes above 0"
        ))),
    }
}

/// Only `APP_ADDR`: what `app healthcheck` needs, without requiring `DATABASE_URL`.
pub fn listen_addr_from_env() -> Result<SocketAddr, ConfigError> {
    listen_addr(std::env::var("APP_ADDR").ok())
}

fn listen_addr(addr: Option<String>) -> Result<SocketAddr, ConfigError> {
    let addr = addr.unwrap_or_else(|| DEFAULT_ADDR.into());
    addr.parse().map_err(|_| {
        ConfigError(format!(
            "APP_ADDR `{addr}` is not a listen address: expected IP:PORT, e.g. {DEFAULT_ADDR}"
        ))
    })
}

fn log_format(format: Option<String>) -> Result<LogFormat, ConfigError> {
    match format.as_deref() {
        None | Some("pretty") => Ok(LogFormat::Pretty),
        Some("json") => Ok(LogFormat::Json),
        Some(other) => Err(ConfigError(format!(
            "APP_LOG_FORMAT `{other}` is not supported: use `pretty` or `json`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "p@ss/w:rd %41?#x y'z";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(
            |name| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.to_string())
            },
            |path| match path {
                "/run/secrets/db" => Ok(format!("{SECRET}\n")),
                "/run/secrets/app" => Ok("app-secret".into()),
                "/run/secrets/empty" => Ok("\n".into()),
                _ => Err(std::io::Error::from(std::io::ErrorKind::NotFound)),
            },
        )
    }

    const URL: (&str, &str) = ("DATABASE_URL", "postgres://u:secret@db:5432/travial");
    const URL_WITHOUT_PASSWORD: (&str, &str) =
        ("DATABASE_URL", "postgres://travial@db:5432/travial");

    #[test]
    fn defaults_apply_when_only_the_database_is_given() {
        let config = config(&[URL]).unwrap();
        assert_eq!(config.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(config.log_format, LogFormat::Pretty);
        assert_eq!(config.database.get_dbname(), Some("travial"));
        assert_eq!(config.app_role, None);
    }

    #[test]
    fn any_character_of_a_password_file_reaches_the_connection() {
        let config = config(&[
            URL_WITHOUT_PASSWORD,
            ("DATABASE_PASSWORD_FILE", "/run/secrets/db"),
        ])
        .unwrap();
        assert_eq!(config.database.get_password(), Some(SECRET.as_bytes()));
        assert_eq!(config.database.get_user(), Some("travial"));
    }

    #[test]
    fn the_app_role_needs_its_password_file_and_another_name() {
        let role = config(&[
            URL_WITHOUT_PASSWORD,
            ("APP_DB_USER", "travial_app"),
            ("APP_DB_PASSWORD_FILE", "/run/secrets/app"),
        ])
        .unwrap()
        .app_role
        .unwrap();
        assert_eq!(
            (role.name.as_str(), role.password.as_str()),
            ("travial_app", "app-secret")
        );
        assert_eq!(format!("{role:?}"), "AppRole(travial_app)");
        let err = config(&[URL_WITHOUT_PASSWORD, ("APP_DB_USER", "travial_app")])
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("APP_DB_PASSWORD_FILE is not set"),
            "{err}"
        );
        let err = config(&[
            URL_WITHOUT_PASSWORD,
            ("APP_DB_USER", "travial"),
            ("APP_DB_PASSWORD_FILE", "/run/secrets/app"),
        ])
        .err()
        .unwrap();
        assert!(err.to_string().contains("must be another one"), "{err}");
    }

    #[test]
    fn password_file_mistakes_are_named_without_the_content() {
        for (file, expected) in [
            (
                "/run/secrets/missing",
                "cannot read DATABASE_PASSWORD_FILE (/run/secrets/missing)",
            ),
            (
                "/run/secrets/empty",
                "DATABASE_PASSWORD_FILE (/run/secrets/empty) is empty",
            ),
        ] {
            let err = config(&[URL_WITHOUT_PASSWORD, ("DATABASE_PASSWORD_FILE", file)])
                .err()
                .unwrap()
                .to_string();
            assert!(err.starts_with(expected), "{err}");
        }
        let err = config(&[URL, ("DATABASE_PASSWORD_FILE", "/run/secrets/db")])
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("keep only the file") && !err.contains(SECRET),
            "{err}"
        );
    }

    #[test]
    fn a_missing_database_url_is_named() {
        let err = config(&[]).err().unwrap().to_string();
        assert!(err.starts_with("DATABASE_URL is not set"), "{err}");
    }

    #[test]
    fn a_bad_database_url_does_not_leak_its_password() {
        let err = config(&[("DATABASE_URL", "postgres://u:secret@db:notaport/x")])
            .err()
            .unwrap()
            .to_string();
        assert!(err.starts_with("DATABASE_URL is not a valid"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn bad_address_and_log_format_are_named() {
        let err = config(&[URL, ("APP_ADDR", "localhost")]).err().unwrap();
        assert!(err.to_string().starts_with("APP_ADDR `localhost`"), "{err}");
        let err = config(&[URL, ("APP_DRAIN_SECONDS", "5s")]).err().unwrap();
        assert!(
            err.to_string().starts_with("APP_DRAIN_SECONDS `5s`"),
            "{err}"
        );
        let drained = config(&[URL, ("APP_DRAIN_SECONDS", "3")]).unwrap();
        assert_eq!(drained.drain, std::time::Duration::from_secs(3));
        assert_eq!(config(&[URL]).unwrap().drain, std::time::Duration::ZERO);
        let err = config(&[URL, ("APP_LOG_FORMAT", "xml")]).err().unwrap();
        assert!(err.to_string().starts_with("APP_LOG_FORMAT `xml`"), "{err}");
        let json = config(&[URL, ("APP_LOG_FORMAT", "json")]).unwrap();
        assert_eq!(json.log_format, LogFormat::Json);
    }
}
