//! What the xtask reads of `docker compose config`: the merged, interpolated model, with
//! the names it needs from compose.yaml's `x-xtask`.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Deserialize;

use crate::docker::Engine;

/// The merged, interpolated model as `docker compose --profile '*' config` prints it: every
/// service, the one-off tasks too. Typed where the xtask reads it; what a swarm stack file
/// passes on as it is (a healthcheck, logging options) stays as Compose wrote it.
#[derive(Debug, Clone, Deserialize)]
pub struct Model {
    pub services: BTreeMap<String, Service>,
    /// The top-level `volumes`, by key.
    #[serde(default)]
    pub volumes: BTreeMap<String, serde_yaml::Value>,
    /// The top-level `secrets`: where each one's value comes from.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretSource>,
    /// The top-level `configs`: their inline content.
    #[serde(default)]
    pub configs: BTreeMap<String, ConfigSource>,
    #[serde(rename = "x-xtask")]
    pub xtask: Settings,
}

/// The names the xtask needs, kept in compose.yaml's `x-xtask` beside what they name.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
pub struct Settings {
    pub db_service: String,
    pub web_service: String,
    /// The one-off service that applies the migrations (`docker compose run --rm`).
    pub migrate_service: String,
    pub health_path: String,
    /// The reverse proxy in front of web, which a deploy switches to the new web.
    pub proxy_service: String,
    /// What a new web container runs in itself until it succeeds: it is ready.
    pub ready_command: Vec<String>,
    /// A swarm's healthcheck of web: it has reached its database once since it started
    /// (an update never routes to a task that cannot), and is alive since (an outage of
    /// the database restarts no task).
    pub started_command: Vec<String>,
    /// The port web listens on, where the proxy sends requests.
    pub web_port: u16,
    /// Values for secrets an environment does not give: dev's override only.
    #[serde(default)]
    pub secret_defaults: BTreeMap<String, String>,
    /// The engine the environment goes to unless `--host` says otherwise:
    /// `ssh://[USER@]HOST[:PORT]`.
    #[serde(default)]
    pub host: Option<String>,
    /// A registry the image goes through (pushed here, pulled there) instead of being sent
    /// over SSH, unless `--registry` says otherwise.
    #[serde(default)]
    pub registry: Option<String>,
    /// The name the proxy serves over HTTPS (`DOMAIN`), if any.
    #[serde(default)]
    pub domain: Option<String>,
    /// `compose` (one engine, the default) or `swarm` (a cluster, through its manager).
    #[serde(default)]
    pub orchestrator: Option<String>,
    /// How many web tasks a swarm runs.
    #[serde(default = "two")]
    pub web_replicas: u32,
    /// Where the backups are kept on this machine (`--dir` wins), relative to the project
    /// root: default `backups/ENV`.
    #[serde(default)]
    pub backups: Option<String>,
    /// The service that takes scheduled backups on the host, if the environment runs it.
    #[serde(default)]
    pub backup_service: Option<String>,
    /// Its data may go without a question (dev's): `down --volumes` does not ask.
    #[serde(default)]
    pub disposable: bool,
}

fn two() -> u32 {
    2
}

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
pub struct SecretSource {
    /// The variable Compose copies the value from; `None` for a file or an external secret.
    pub environment: Option<String>,
}

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
pub struct ConfigSource {
    /// As Compose prints it: `$$` for a `$` the file's reader sees.
    pub content: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
pub struct Service {
    pub image: Option<String>,
    #[serde(default)]
    pub ports: Vec<Port>,
    /// As Compose prints it merged: a map (a variable without a value is null).
    #[serde(default)]
    pub environment: BTreeMap<String, Option<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub command: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub secrets: Vec<FileMount>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub configs: Vec<FileMount>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub volumes: Vec<VolumeMount>,
    /// A service in a profile is run on purpose (`migrate`), never by `up`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub profiles: Vec<String>,
    /// Every other key, as Compose printed it.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

/// A secret or config in a service: its key in the model, and where the file goes.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
pub struct FileMount {
    pub source: String,
    pub target: Option<String>,
}

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    pub source: Option<String>,
    pub target: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Port {
    #[serde(default)]
    pub target: u16,
    pub published: Option<String>,
    pub host_ip: Option<String>,
    pub protocol: Option<String>,
}

/// A PostgreSQL role or database name that needs no quoting anywhere, a URL included.
fn check_identifier(variable: &str, value: &str) -> anyhow::Result<()> {
    let mut chars = value.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && value.len() <= 63;
    anyhow::ensure!(
        valid,
        "{variable} is `{value}`: a name of letters, digits and `_`, not starting with a digit, at most 63 (it goes into DATABASE_URL)"
    );
    Ok(())
}

/// Each `import NAME` of a Caddyfile has its `(NAME)` snippet: `TLS_ISSUER` picks one.
fn check_imports(key: &str, caddyfile: &str) -> anyhow::Result<()> {
    let snippets: Vec<&str> = caddyfile
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix('(')?
                .split_once(')')
                .map(|(name, _)| name)
        })
        .collect();
    for line in caddyfile.lines() {
        let Some(name) = line.trim().strip_prefix("import ") else {
            continue;
        };
        let name = name.trim();
        if !snippets.contains(&name) {
            let issuers: Vec<&str> = snippets
                .iter()
                .filter_map(|snippet| snippet.strip_prefix("tls-"))
                .collect();
            match name.strip_prefix("tls-") {
                Some(issuer) => anyhow::bail!(
                    "TLS_ISSUER is `{issuer}`: write {}",
                    crate::output::and_list(&issuers).replace(" and ", " or ")
                ),
                None => {
                    anyhow::bail!("the config {key} imports `{name}`, which it does not define")
                }
            }
        }
    }
    Ok(())
}

/// `null` read as the type's default: Compose prints `command: null` for a service
/// without one.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

impl Model {
    pub fn parse(config_yaml: &str) -> anyhow::Result<Model> {
        serde_yaml::from_str(config_yaml).context(
            "cannot read the merged compose configuration (is compose.yaml's x-xtask complete?)",
        )
    }

    /// The variables the secrets take their values from, sorted, each once.
    pub fn secret_variables(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .secrets
            .values()
            .filter_map(|source| source.environment.clone())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The secret files `service` is given: where each is in its container, and the
    /// variable its value comes from (`None`: not from a variable).
    pub fn secret_files(&self, service: &str) -> anyhow::Result<Vec<(String, Option<&str>)>> {
        Ok(self
            .service(service)?
            .secrets
            .iter()
            .map(|mount| {
                let path = match mount.target.as_deref() {
                    Some(target) if target.starts_with('/') => target.to_owned(),
                    Some(target) => format!("/run/secrets/{target}"),
                    None => format!("/run/secrets/{}", mount.source),
                };
                let variable = self
                    .secrets
                    .get(&mount.source)
                    .and_then(|source| source.environment.as_deref());
                (path, variable)
            })
            .collect())
    }

    /// A config's content as its reader sees it: Compose's `$$` is a `$`.
    pub fn config_content(&self, key: &str) -> anyhow::Result<String> {
        let content = self
            .configs
            .get(key)
            .and_then(|config| config.content.as_deref())
            .with_context(|| format!("the config `{key}` has no inline content"))?;
        Ok(content.replace("$$", "$"))
    }

    /// The services `up` runs beside the three the xtask drives (db, web, the proxy):
    /// a scheduled backup, say; sorted.
    pub fn others(&self) -> Vec<&str> {
        let settings = &self.xtask;
        let driven = [
            &settings.db_service,
            &settings.web_service,
            &settings.proxy_service,
        ];
        self.services
            .iter()
            .filter(|(name, service)| service.profiles.is_empty() && !driven.contains(name))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    pub fn service(&self, name: &str) -> anyhow::Result<&Service> {
        self.services
            .get(name)
            .with_context(|| format!("compose.yaml has no service `{name}` (named in x-xtask)"))
    }

    /// A service's first published port, if it publishes one: the address it is bound to
    /// on the engine's machine (none: every address) and the port.
    pub fn published(&self, service: &str) -> anyhow::Result<Option<(Option<&str>, &str)>> {
        let Some(port) = self.service(service)?.ports.first() else {
            return Ok(None);
        };
        Ok(port
            .published
            .as_deref()
            .map(|published| (port.host_ip.as_deref(), published)))
    }

    /// The domain the proxy serves, when the environment names one (`DOMAIN`).
    pub fn domain(&self) -> Option<&str> {
        self.xtask
            .domain
            .as_deref()
            .filter(|domain| !domain.is_empty())
    }

    /// What would break the stack, said before anything changes: the names that go into
    /// `DATABASE_URL` (a `@`, `/`, `?` or `:` there would break or redirect the
    /// connection), the domain, and the snippets the Caddyfile imports (`TLS_ISSUER`).
    pub fn check(&self) -> anyhow::Result<()> {
        let settings = &self.xtask;
        let named = [
            (&settings.db_service, "POSTGRES_USER"),
            (&settings.db_service, "POSTGRES_DB"),
            (&settings.migrate_service, "APP_DB_USER"),
        ];
        for (service, variable) in named {
            let value = self
                .services
                .get(service)
                .and_then(|service| service.environment.get(variable).cloned().flatten());
            if let Some(value) = value {
                check_identifier(variable, &value)?;
            }
        }
        if let Some(domain) = self.domain() {
            let valid = crate::address::HostPort::parse(domain)
                .is_ok_and(|address| address.port.is_none() && !address.host.contains(':'));
            if !valid {
                anyhow::bail!(
                    "DOMAIN is `{domain}`: write the host name the proxy serves (e.g. travial.example.org), nothing else"
                );
            }
        }
        for key in self.configs.keys() {
            check_imports(key, &self.config_content(key)?)?;
        }
        Ok(())
    }

    /// The port a service publishes for `target` (the proxy's 443), if it does.
    pub fn published_for(&self, service: &str, target: u16) -> Option<&str> {
        self.services
            .get(service)?
            .ports
            .iter()
            .find(|port| port.target == target)?
            .published
            .as_deref()
    }

    /// Where this machine reaches a service's first published port on `engine`, if it
    /// publishes one and it can be reached from here.
    pub fn published_address(
        &self,
        service: &str,
        engine: &Engine,
    ) -> anyhow::Result<Option<String>> {
        Ok(self
            .published(service)?
            .and_then(|(host_ip, port)| engine.reach(host_ip, port)))
    }
}

/// What compose.yaml's `x-xtask` holds, for the tests of the model's users.
#[cfg(test)]
pub const TEST_SETTINGS: &str = "x-xtask:
  db_service: db
  web_service: web
  migrate_service: migrate
  proxy_service: proxy
  ready_command: [app, healthcheck, --ready]
  started_command: [app, healthcheck, --started]
  web_port: 8000
  health_path: /healthz
";

#[cfg(test)]
mod tests {
    use super::*;

    const MERGED: &str = r#"
name: travial-dev
services:
  db:
    image: postgres:17
    ports:
      - mode: ingress
        host_ip: 127.0.0.1
        target: 5432
        published: "55432"
        protocol: tcp
  web:
    image: travial/app:latest
    ports:
      - target: 8000
        published: "8080"
  worker:
    image: travial/app:latest
"#;

    fn with(services: &str, tail: &str) -> anyhow::Result<()> {
        Model::parse(&format!("services:\n{services}{TEST_SETTINGS}{tail}"))?.check()
    }

    #[test]
    fn names_that_go_into_a_url_and_the_proxys_settings_are_checked() {
        let db = |user: &str| {
            format!("  db:\n    environment: {{ POSTGRES_USER: '{user}', POSTGRES_DB: travial }}\n")
        };
        assert!(with(&db("travial"), "").is_ok());
        for bad in ["a@b", "a/b", "x?y", "u:p", "1st", "", "a b"] {
            let err = with(&db(bad), "").unwrap_err();
            assert!(
                err.to_string().starts_with("POSTGRES_USER is "),
                "{bad}: {err}"
            );
        }
        let migrate = "  migrate:\n    environment: { APP_DB_USER: 'app@evil.example' }\n";
        assert!(with(migrate, "").is_err());
        let domain = |domain: &str| with("  db: {}\n", &format!("  domain: '{domain}'\n"));
        assert!(domain("travial.example.org").is_ok());
        assert!(domain("").is_ok());
        for bad in ["example.com {", "a b", "h:443", "x;y"] {
            let err = domain(bad).unwrap_err();
            assert!(err.to_string().starts_with("DOMAIN is "), "{bad}: {err}");
        }
        let caddyfile = |issuer: &str| {
            format!(
                "configs:\n  caddyfile:\n    content: \"(tls-acme) {{\\n}}\\n(tls-internal) {{\\n}}\\n:80 {{\\n\\timport tls-{issuer}\\n}}\\n\"\n"
            )
        };
        let issuer = |issuer: &str| {
            Model::parse(&format!(
                "services: {{}}\n{}{TEST_SETTINGS}",
                caddyfile(issuer)
            ))
            .unwrap()
            .check()
        };
        assert!(issuer("internal").is_ok());
        assert_eq!(
            issuer("letsencrypt").unwrap_err().to_string(),
            "TLS_ISSUER is `letsencrypt`: write acme or internal"
        );
    }

    #[test]
    fn published_addresses_come_from_the_merged_model() {
        let merged = Model::parse(&format!("{MERGED}{TEST_SETTINGS}")).unwrap();
        assert_eq!(
            merged
                .published_address("db", &Engine::Local)
                .unwrap()
                .as_deref(),
            Some("127.0.0.1:55432")
        );
        assert_eq!(
            merged
                .published_address("web", &Engine::Local)
                .unwrap()
                .as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            merged.published_address("worker", &Engine::Local).unwrap(),
            None
        );
        assert!(merged.published_address("cache", &Engine::Local).is_err());
        assert_eq!(merged.xtask.migrate_service, "migrate");
    }
}
