//! The Compose side of a deployment: which environments exist, which files make one, the
//! project name that keeps environments apart, and the merged model Compose computes.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use serde::Deserialize;

pub const COMPOSE_DIR: &str = "compose";
const BASE_FILE: &str = "compose.yaml";
const DEFAULT_PROJECT_PREFIX: &str = "travial";
/// Overrides the prefix of the Compose project names: two checkouts (or the end-to-end
/// tests) on one machine then never touch each other's stacks.
pub const PROJECT_PREFIX_VARIABLE: &str = "TRAVIAL_PROJECT";

fn project_prefix() -> String {
    std::env::var(PROJECT_PREFIX_VARIABLE)
        .ok()
        .filter(|prefix| !prefix.is_empty())
        .unwrap_or_else(|| DEFAULT_PROJECT_PREFIX.to_owned())
}

/// One environment's Compose stack: the base file then its override, merged by Compose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub env: String,
    /// Relative to the project root, base first.
    pub files: Vec<PathBuf>,
}

impl Stack {
    /// Checks that `env` exists and that every file parses, before anything runs.
    pub fn load(root: &Path, env: &str) -> anyhow::Result<Stack> {
        let known = environments(&root.join(COMPOSE_DIR))?;
        if !known.iter().any(|name| name == env) {
            bail!(
                "unknown environment `{env}`: the environments are {} (one per {COMPOSE_DIR}/compose.ENV.yaml)",
                known.join(", ")
            );
        }
        let stack = Stack::new(env);
        for file in &stack.files {
            check_yaml(root, file)?;
        }
        Ok(stack)
    }

    pub fn new(env: &str) -> Stack {
        let dir = Path::new(COMPOSE_DIR);
        Stack {
            env: env.to_owned(),
            files: vec![dir.join(BASE_FILE), dir.join(format!("compose.{env}.yaml"))],
        }
    }

    /// Each environment is its own Compose project, so dev, staging and prod on one
    /// machine never share containers, networks or volumes.
    pub fn project(&self) -> String {
        format!("{}-{}", project_prefix(), self.env)
    }

    /// `compose -p PROJECT -f BASE -f OVERRIDE`, the start of every command on this stack.
    pub fn compose_args(&self) -> Vec<String> {
        let mut args = vec!["compose".to_owned(), "-p".to_owned(), self.project()];
        for file in &self.files {
            args.push("-f".to_owned());
            args.push(file.display().to_string());
        }
        args
    }
}

/// `compose -p travial -f compose.yaml`: the base alone, which defines the app image and
/// its build for every environment.
pub fn base_args() -> Vec<String> {
    let base = Path::new(COMPOSE_DIR).join(BASE_FILE);
    vec![
        "compose".to_owned(),
        "-p".to_owned(),
        project_prefix(),
        "-f".to_owned(),
        base.display().to_string(),
    ]
}

/// The environments, from the names of `compose.ENV.yaml` files in `dir`, sorted.
pub fn environments(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read {}: run from a checkout of the project",
            dir.display()
        )
    })?;
    let names = entries.filter_map(|entry| entry.ok()?.file_name().into_string().ok());
    Ok(environments_from_file_names(names))
}

pub fn environments_from_file_names(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut envs: Vec<String> = names
        .into_iter()
        .filter_map(|name| {
            let env = name.strip_prefix("compose.")?.strip_suffix(".yaml")?;
            let valid = !env.is_empty()
                && env
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            valid.then(|| env.to_owned())
        })
        .collect();
    envs.sort();
    envs
}

/// Compose's own YAML errors do not always say which file; ours do, with the line.
fn check_yaml(root: &Path, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(root.join(file))
        .with_context(|| format!("cannot read {}", file.display()))?;
    parse_yaml(&text).with_context(|| format!("{} is not valid YAML", file.display()))
}

fn parse_yaml(text: &str) -> anyhow::Result<()> {
    serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|err| match err.location() {
        Some(at) => anyhow::anyhow!("line {}, column {}: {err}", at.line(), at.column()),
        None => anyhow::anyhow!("{err}"),
    })?;
    Ok(())
}

/// What the xtask reads of `docker compose config`: the merged, interpolated model.
#[derive(Debug, Deserialize)]
pub struct Merged {
    pub services: BTreeMap<String, Service>,
    #[serde(rename = "x-xtask")]
    pub xtask: Settings,
}

/// The names the xtask needs, kept in compose.yaml's `x-xtask` beside what they name.
#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
pub struct Settings {
    pub db_service: String,
    pub web_service: String,
    /// Arguments to the web image's entrypoint that apply the migrations.
    pub migrate_command: Vec<String>,
    pub health_path: String,
}

#[derive(Debug, Deserialize, Default)]
pub struct Service {
    pub image: Option<String>,
    #[serde(default)]
    pub ports: Vec<Port>,
}

#[derive(Debug, Deserialize)]
pub struct Port {
    pub published: Option<String>,
    pub host_ip: Option<String>,
}

impl Merged {
    pub fn parse(config_yaml: &str) -> anyhow::Result<Merged> {
        serde_yaml::from_str(config_yaml).context(
            "cannot read the merged compose configuration (is compose.yaml's x-xtask complete?)",
        )
    }

    pub fn service(&self, name: &str) -> anyhow::Result<&Service> {
        self.services
            .get(name)
            .with_context(|| format!("compose.yaml has no service `{name}` (named in x-xtask)"))
    }

    /// Where the host reaches a service's first published port, if it publishes one.
    pub fn published_address(&self, service: &str) -> anyhow::Result<Option<String>> {
        let Some(port) = self.service(service)?.ports.first() else {
            return Ok(None);
        };
        let Some(published) = port.published.as_deref() else {
            return Ok(None);
        };
        // A port bound to every address is reached through loopback.
        let host = match port.host_ip.as_deref() {
            None | Some("" | "0.0.0.0" | "::") => "127.0.0.1",
            Some(ip) => ip,
        };
        Ok(Some(format!("{host}:{published}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environments_come_from_override_file_names() {
        let names = [
            "compose.yaml",
            "compose.prod.yaml",
            "compose.dev.yaml",
            "README.md",
        ]
        .into_iter()
        .chain([
            "compose.staging.yaml",
            "compose..yaml",
            "compose.Bad_Name.yaml",
        ])
        .map(String::from);
        assert_eq!(
            environments_from_file_names(names),
            ["dev", "prod", "staging"]
        );
    }

    #[test]
    fn the_environments_of_this_repository() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(COMPOSE_DIR);
        assert_eq!(environments(&dir).unwrap(), ["dev", "prod", "staging"]);
    }

    #[test]
    fn the_base_comes_before_the_override_and_projects_are_per_environment() {
        let stack = Stack::new("staging");
        assert_eq!(
            stack.compose_args().join(" "),
            "compose -p travial-staging -f compose/compose.yaml -f compose/compose.staging.yaml"
        );
        assert_ne!(Stack::new("dev").project(), Stack::new("prod").project());
    }

    #[test]
    fn unknown_environments_list_the_valid_ones() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let err = Stack::load(&root, "qa").unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown environment `qa`: the environments are dev, prod, staging (one per compose/compose.ENV.yaml)"
        );
    }

    #[test]
    fn a_yaml_error_names_the_line() {
        let err = parse_yaml("services:\n  db:\n    image: [postgres\n").unwrap_err();
        assert!(err.to_string().starts_with("line 4, column 1:"), "{err}");
    }

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
x-xtask:
  db_service: db
  web_service: web
  migrate_command: [migrate]
  health_path: /healthz
"#;

    #[test]
    fn published_addresses_come_from_the_merged_model() {
        let merged = Merged::parse(MERGED).unwrap();
        assert_eq!(
            merged.published_address("db").unwrap().as_deref(),
            Some("127.0.0.1:55432")
        );
        assert_eq!(
            merged.published_address("web").unwrap().as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(merged.published_address("worker").unwrap(), None);
        assert!(merged.published_address("cache").is_err());
        assert_eq!(merged.xtask.migrate_command, ["migrate"]);
    }
}
