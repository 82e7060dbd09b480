//! The nodes of a swarm as the manager knows them, with what `swarm init` recorded on each:
//! its SSH address (`travial.ssh`), through which the xtask reaches its engine to send it
//! an image or remove a volume.

use anyhow::Context;
use xshell::Shell;

use super::stackfile::DB_NODE_LABEL;
use crate::docker::{Engine, SshHost, run};

/// The label with a node's SSH address.
pub const SSH_LABEL: &str = "travial.ssh";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    /// `ready` or `down`.
    pub status: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    pub ssh: Option<String>,
    /// Labelled as the database's node (see `swarm init`).
    pub db: bool,
}

impl Node {
    /// The node's own engine, over SSH, if `swarm init` recorded its address.
    pub fn engine(&self) -> anyhow::Result<Option<Engine>> {
        let Some(url) = &self.ssh else {
            return Ok(None);
        };
        Ok(Some(Engine::over_ssh(&SshHost::parse(url)?)))
    }
}

/// Every node, from the manager.
pub fn list(sh: &Shell, manager: &Engine) -> anyhow::Result<Vec<Node>> {
    let ids = run::read(sh, &manager.docker(["node", "ls", "--quiet"]))?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let format = format!(
        "{{{{.ID}}}}|{{{{.Status.State}}}}|{{{{.Spec.Availability}}}}|{{{{index .Spec.Labels \"{SSH_LABEL}\"}}}}|{{{{index .Spec.Labels \"{DB_NODE_LABEL}\"}}}}"
    );
    let mut args = vec!["node", "inspect", "--format", &format];
    args.extend(ids);
    let listing = run::read(sh, &manager.docker(args))?;
    listing
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            parse(line).with_context(|| format!("unexpected `docker node inspect` line: {line}"))
        })
        .collect()
}

/// `ID|STATE|AVAILABILITY|SSH|DB`, a missing label printed `<no value>`.
fn parse(line: &str) -> Option<Node> {
    let mut fields = line.trim().split('|');
    let label = |value: Option<&str>| {
        value
            .map(str::trim)
            .filter(|value| !value.is_empty() && *value != "<no value>")
            .map(str::to_owned)
    };
    Some(Node {
        id: fields.next()?.to_owned(),
        status: fields.next()?.to_owned(),
        availability: fields.next()?.to_owned(),
        ssh: label(fields.next()),
        db: label(fields.next()).as_deref() == Some("true"),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn node_lines() {
        let node = super::parse("ufsomci17buw|ready|active|ssh://root@10.201.21.2|true").unwrap();
        assert_eq!(node.ssh.as_deref(), Some("ssh://root@10.201.21.2"));
        assert_eq!(
            (node.status.as_str(), node.availability.as_str(), node.db),
            ("ready", "active", true)
        );
        let unlabelled = super::parse("wu5vor7x|ready|drain|<no value>|<no value>\n").unwrap();
        assert_eq!((unlabelled.ssh, unlabelled.db), (None, false));
        assert_eq!(super::parse("x"), None);
        // A label is checked as any SSH address before the xtask connects to it.
        let hostile = super::parse("n|ready|active|ssh://root@10.201.21.2;reboot|").unwrap();
        assert!(hostile.engine().is_err());
    }
}
