//! Configuration, read from the environment only.

use std::{fmt, net::SocketAddr, str::FromStr};

pub const DEFAULT_ADDR: &str = "0.0.0.0:8000";

#[derive(Clone)]
pub struct Config {
    pub database: tokio_postgres::Config,
    pub addr: SocketAddr,
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// A configuration mistake, worded for the person who has to fix it.
/// It never repeats `DATABASE_URL`'s value: that value holds the password.
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
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Ok(Self {
            database: database_config(lookup("DATABASE_URL"))?,
            addr: listen_addr(lookup("APP_ADDR"))?,
            log_format: log_format(lookup("APP_LOG_FORMAT"))?,
        })
    }
}

fn database_config(url: Option<String>) -> Result<tokio_postgres::Config, ConfigError> {
    let url = url.filter(|url| !url.is_empty()).ok_or_else(|| {
        ConfigError(
            "DATABASE_URL is not set: set it to the database's URL, \
             e.g. postgres://travial:PASSWORD@localhost:5432/travial"
                .into(),
        )
    })?;
    tokio_postgres::Config::from_str(&url).map_err(|err| {
        ConfigError(format!(
            "DATABASE_URL is not a valid PostgreSQL URL ({err}): \
             expected postgres://USER:PASSWORD@HOST:PORT/DATABASE"
        ))
    })
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

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    const URL: (&str, &str) = ("DATABASE_URL", "postgres://u:secret@db:5432/travial");

    #[test]
    fn defaults_apply_when_only_the_database_is_given() {
        let config = config(&[URL]).unwrap();
        assert_eq!(config.addr.to_string(), DEFAULT_ADDR);
        assert_eq!(config.log_format, LogFormat::Pretty);
        assert_eq!(config.database.get_dbname(), Some("travial"));
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
        let err = config(&[URL, ("APP_LOG_FORMAT", "xml")]).err().unwrap();
        assert!(err.to_string().starts_with("APP_LOG_FORMAT `xml`"), "{err}");
        let json = config(&[URL, ("APP_LOG_FORMAT", "json")]).unwrap();
        assert_eq!(json.log_format, LogFormat::Json);
    }
}
