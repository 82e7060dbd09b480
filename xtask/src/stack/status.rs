//! `cargo xtask status ENV`: the environment's containers as `docker compose ps` shows
//! them, or with `--json` as a stable array for scripts, one object per container:
//!
//! ```json
//! [{"service": "db", "state": "running", "health": "healthy",
//!   "ports": [{"host": "127.0.0.1", "published": 5432, "target": 5432, "protocol": "tcp"}]}]
//! ```
//!
//! `health` is null for a service without a healthcheck; `ports` lists the published ones.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use xshell::Shell;

use super::{Stack, Target, open};
use crate::{
    cli::StatusArgs,
    docker::{Needs, run},
};

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Container {
    pub service: String,
    pub state: String,
    pub health: Option<String>,
    pub ports: Vec<Port>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Port {
    pub host: String,
    pub published: u16,
    pub target: u16,
    pub protocol: String,
}

pub fn run(sh: &Shell, args: &StatusArgs) -> anyhow::Result<()> {
    let (stack, _) = open(sh, &args.env, Needs::ENGINE)?;
    match &stack.target {
        Target::Compose { .. } => compose_status(sh, &stack, args.json),
        Target::Swarm { manager } => crate::swarm::commands::status(sh, &stack, manager, args.json),
    }
}

/// `docker compose ps`, or its JSON made stable.
fn compose_status(sh: &Shell, stack: &Stack, json: bool) -> anyhow::Result<()> {
    if !json {
        return run::print(sh, &stack.compose(&["ps", "--all"]));
    }
    let listing = run::read(sh, &stack.compose(&["ps", "--all", "--format", "json"]))?;
    let containers = parse(&listing)?;
    println!("{}", serde_json::to_string_pretty(&containers)?);
    Ok(())
}

/// What `docker compose ps --format json` prints: one object per line since Compose
/// 2.21, an array before.
pub fn parse(text: &str) -> anyhow::Result<Vec<Container>> {
    let text = text.trim();
    let entries: Vec<PsEntry> = if text.starts_with('[') {
        serde_json::from_str(text).context("cannot read `docker compose ps --format json`")?
    } else {
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .context("cannot read `docker compose ps --format json`")?
    };
    let mut containers: Vec<Container> = entries.into_iter().map(PsEntry::normalise).collect();
    containers.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(containers)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PsEntry {
    service: String,
    state: String,
    #[serde(default)]
    health: String,
    #[serde(default)]
    publishers: Option<Vec<Publisher>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Publisher {
    #[serde(rename = "URL", default)]
    url: String,
    target_port: u16,
    published_port: u16,
    protocol: String,
}

impl PsEntry {
    fn normalise(self) -> Container {
        let ports = self
            .publishers
            .unwrap_or_default()
            .into_iter()
            // A port the image exposes but the stack does not publish.
            .filter(|publisher| publisher.published_port != 0)
            .map(|publisher| Port {
                host: publisher.url,
                published: publisher.published_port,
                target: publisher.target_port,
                protocol: publisher.protocol,
            })
            .collect();
        Container {
            service: self.service,
            state: self.state,
            health: Some(self.health).filter(|health| !health.is_empty()),
            ports,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINES: &str = r#"{"Command":"\"app serve\"","ExitCode":0,"Health":"starting","ID":"b2","Name":"travial-dev-web-1","Project":"travial-dev","Publishers":[{"URL":"127.0.0.1","TargetPort":8000,"PublishedPort":8000,"Protocol":"tcp"}],"Service":"web","State":"running","Status":"Up 1 second (health: starting)"}
{"Command":"\"docker-entrypoint.s…\"","ExitCode":0,"Health":"","ID":"a1","Name":"travial-dev-db-1","Project":"travial-dev","Publishers":[{"URL":"127.0.0.1","TargetPort":5432,"PublishedPort":5433,"Protocol":"tcp"},{"URL":"","TargetPort":9999,"PublishedPort":0,"Protocol":"tcp"}],"Service":"db","State":"exited","Status":"Exited (0)"}
"#;

    #[test]
    fn compose_lines_become_a_stable_array() {
        let containers = parse(LINES).unwrap();
        let json = serde_json::to_string(&containers).unwrap();
        assert_eq!(
            json,
            r#"[{"service":"db","state":"exited","health":null,"ports":[{"host":"127.0.0.1","published":5433,"target":5432,"protocol":"tcp"}]},{"service":"web","state":"running","health":"starting","ports":[{"host":"127.0.0.1","published":8000,"target":8000,"protocol":"tcp"}]}]"#
        );
    }

    #[test]
    fn the_array_of_older_composes_and_no_containers_read_the_same() {
        let array = format!("[{}]", LINES.trim().replace('\n', ","));
        assert_eq!(parse(&array).unwrap(), parse(LINES).unwrap());
        assert_eq!(parse("").unwrap(), []);
        assert_eq!(parse("[]\n").unwrap(), []);
        let null_publishers = r#"{"Service":"db","State":"created","Publishers":null}"#;
        assert_eq!(parse(null_publishers).unwrap()[0].ports, []);
    }
}
