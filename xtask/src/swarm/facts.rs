//! What a swarm has, read from its manager before anything is planned: its nodes, the
//! secrets and configs it holds, the salt of their versioned names, and how this machine
//! wants its services reached (`SWARM_ENDPOINT_MODE`, `SWARM_PUBLISH_MODE`). The plans are
//! pure functions of these (see `plan`); reading them changes nothing.

use anyhow::{Context, bail};
use base64::Engine as _;
use xshell::Shell;

use super::nodes::{self, Node};
use crate::docker::{Engine, run};

/// The config that holds the salt; cluster-wide, made once, by the first deploy.
pub const SALT: &str = "travial-xtask-salt";
/// Marks what the xtask made for a stack, so that `down` finds it.
pub const STACK_LABEL: &str = "travial.stack";

/// Whether the command only prints its plan: a dry run makes no salt, so it cannot name
/// what a first deploy would create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRun {
    Yes,
    No,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub nodes: Vec<Node>,
    pub secrets: Vec<Object>,
    pub configs: Vec<Object>,
    pub salt: Salt,
    pub modes: Modes,
}

/// A secret or a config of the swarm: its name, and the stack it was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub name: String,
    pub stack: Option<String>,
}

/// What the versioned names are derived with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Salt {
    /// The swarm's own.
    Existing(String),
    /// None yet: this one, drawn here, is made by the plan's first step.
    New(String),
    /// None yet, in a dry run: names that depend on it are not shown.
    Unknown,
}

/// How services are reached on this cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Modes {
    /// `vip` (a real cluster) or `dnsrr` (no IPVS, as in the tests).
    pub endpoint: String,
    /// `ingress` (the routing mesh) or `host` (each node's own port).
    pub publish: String,
    /// The stack's network between nodes encrypted (IPsec ESP), unless the nodes' kernels
    /// cannot (`SWARM_OVERLAY=plain`).
    pub encrypted: bool,
}

impl Facts {
    pub fn read(sh: &Shell, manager: &Engine, dry_run: DryRun) -> anyhow::Result<Facts> {
        let objects = |kind: &str| -> anyhow::Result<Vec<Object>> {
            let format = "{{.Name}}\t{{.Labels}}";
            let listing = run::read(sh, &manager.docker([kind, "ls", "--format", format]))?;
            Ok(parse_objects(&listing))
        };
        let salt = match (read_salt(sh, manager)?, dry_run) {
            (Some(salt), _) => Salt::Existing(salt),
            (None, DryRun::Yes) => Salt::Unknown,
            (None, DryRun::No) => Salt::New(fresh_salt()?),
        };
        Ok(Facts {
            nodes: nodes::list(sh, manager)?,
            secrets: objects("secret")?,
            configs: objects("config")?,
            salt,
            modes: Modes::from_env()?,
        })
    }

    /// The nodes' own engines, those whose address `swarm init` recorded.
    pub fn engines(&self) -> anyhow::Result<Vec<Engine>> {
        let mut engines = Vec::new();
        for node in &self.nodes {
            engines.extend(node.engine()?);
        }
        Ok(engines)
    }
}

impl Modes {
    fn from_env() -> anyhow::Result<Modes> {
        let mode = |name: &str, default: &str, allowed: &[&str]| -> anyhow::Result<String> {
            let value = std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| default.to_owned());
            if !allowed.contains(&value.as_str()) {
                bail!("{name} is `{value}`: use {}", allowed.join(" or "));
            }
            Ok(value)
        };
        Ok(Modes {
            endpoint: mode("SWARM_ENDPOINT_MODE", "vip", &["vip", "dnsrr"])?,
            publish: mode("SWARM_PUBLISH_MODE", "ingress", &["ingress", "host"])?,
            encrypted: mode("SWARM_OVERLAY", "encrypted", &["encrypted", "plain"])? == "encrypted",
        })
    }
}

/// `NAME\tlabel=value,label=value` lines.
fn parse_objects(listing: &str) -> Vec<Object> {
    listing
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (name, labels) = line.split_once('\t').unwrap_or((line, ""));
            let stack = labels
                .split(',')
                .find_map(|label| label.strip_prefix(&format!("{STACK_LABEL}=")))
                .map(str::to_owned);
            Object {
                name: name.trim().to_owned(),
                stack,
            }
        })
        .collect()
}

fn read_salt(sh: &Shell, manager: &Engine) -> anyhow::Result<Option<String>> {
    let inspect = run::probe(
        sh,
        &manager.docker(["config", "inspect", "--format", "{{json .Spec.Data}}", SALT]),
    )?;
    if !inspect.status.success() {
        return Ok(None);
    }
    let encoded: String =
        serde_json::from_slice(&inspect.stdout).context("cannot read the swarm's salt")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .context("cannot read the swarm's salt")?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// 32 random bytes, as hex.
fn fresh_salt() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom")
            .context("cannot open /dev/urandom for the swarm's salt")?,
        &mut bytes,
    )
    .context("cannot read /dev/urandom for the swarm's salt")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn objects_with_the_stack_they_were_made_for() {
        let objects = super::parse_objects(
            "travial-prod_postgres_password_0a1b2c3d4e5f\ttravial.stack=travial-prod\n\
             travial-xtask-salt\t\nother\tcom.example=1,travial.stack=travial-dev\n",
        );
        let stacks: Vec<(&str, Option<&str>)> = objects
            .iter()
            .map(|object| (object.name.as_str(), object.stack.as_deref()))
            .collect();
        assert_eq!(
            stacks,
            [
                (
                    "travial-prod_postgres_password_0a1b2c3d4e5f",
                    Some("travial-prod")
                ),
                ("travial-xtask-salt", None),
                ("other", Some("travial-dev")),
            ]
        );
    }
}
