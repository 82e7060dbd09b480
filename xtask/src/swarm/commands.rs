//! `status`, `logs` and `down` of an environment deployed as a swarm stack, through its
//! manager.

use std::{
    fmt,
    sync::Arc,
    thread,
    time::{Duration, Instant},
};

use anyhow::bail;
use serde::{Deserialize, Serialize};
use xshell::Shell;

use super::{nodes, objects::STACK_LABEL};
use crate::{
    docker::{Command, Engine, run},
    plan::{Action, Step, Task},
    stack::{Model, Stack},
};

/// How long the stack's containers may take to go once `stack rm` returns.
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);

/// `docker stack services`, or with `json`, `[{service, mode, replicas, image, ports}]`.
pub fn status(sh: &Shell, stack: &Stack, json: bool) -> anyhow::Result<()> {
    let manager = &stack.engine;
    if !json {
        run::print(sh, &manager.docker(["stack", "services", &stack.project]))?;
        return run::print(
            sh,
            &manager.docker([
                "stack",
                "ps",
                "--filter",
                "desired-state=running",
                &stack.project,
            ]),
        );
    }
    let listing = run::read(
        sh,
        &manager.docker([
            "stack",
            "services",
            "--format",
            "{{json .}}",
            &stack.project,
        ]),
    )?;
    let services = parse_services(&listing, &stack.project)?;
    println!("{}", serde_json::to_string_pretty(&services)?);
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed {
    name: String,
    mode: String,
    replicas: String,
    image: String,
    #[serde(default)]
    ports: String,
}

/// A service of the stack, for scripts.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Service {
    pub service: String,
    pub mode: String,
    /// `2/2`: running, and wanted.
    pub replicas: String,
    pub image: String,
    pub ports: String,
}

fn parse_services(listing: &str, project: &str) -> anyhow::Result<Vec<Service>> {
    let mut services: Vec<Service> = listing
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let listed: Listed = serde_json::from_str(line)?;
            Ok(Service {
                service: listed
                    .name
                    .trim_start_matches(&format!("{project}_"))
                    .to_owned(),
                mode: listed.mode,
                replicas: listed.replicas,
                image: listed.image,
                ports: listed.ports,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    services.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(services)
}

/// `docker service logs` of one service, or of each in turn.
pub fn logs(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    service: Option<&str>,
    follow: bool,
) -> anyhow::Result<()> {
    let settings = &model.xtask;
    let all = [
        &settings.db_service,
        &settings.proxy_service,
        &settings.web_service,
    ];
    let services: Vec<&str> = match service {
        Some(service) => vec![service],
        None if follow => {
            bail!("name the service to follow: in a swarm, logs are followed one service at a time")
        }
        None => all.iter().map(|name| name.as_str()).collect(),
    };
    for service in services {
        let mut args = vec![
            "service".to_owned(),
            "logs".to_owned(),
            "--timestamps".to_owned(),
        ];
        if follow {
            args.push("--follow".to_owned());
        }
        args.push(format!("{}_{service}", stack.project));
        run::print(sh, &stack.engine.docker(args))?;
    }
    Ok(())
}

/// `docker stack rm`, waited for; then, with `volumes`, each node's volumes of the stack,
/// and the stack's secrets and configs.
pub fn down_steps(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    volumes: bool,
) -> anyhow::Result<Vec<Step>> {
    let manager = &stack.engine;
    let mut steps = vec![Step::run(
        if volumes {
            "stack removed"
        } else {
            "stack removed, data kept"
        },
        manager.docker(["stack", "rm", &stack.project]),
        "the stack was not removed",
    )];
    let mut engines = Vec::new();
    for node in nodes::list(sh, manager)? {
        engines.extend(node.engine()?);
    }
    steps.push(Step::new(
        "its containers gone",
        Action::Task(Arc::new(Gone {
            project: stack.project.clone(),
            engines: engines.clone(),
        })),
        "the stack's containers did not go",
    ));
    if volumes {
        let names: Vec<String> = model_volumes(model, &stack.project);
        for engine in engines {
            let mut args = vec!["volume".to_owned(), "rm".to_owned(), "--force".to_owned()];
            args.extend(names.iter().cloned());
            steps.push(Step::run(
                &format!("volumes removed on {engine}"),
                engine.docker(args),
                "the volumes were not removed",
            ));
        }
        for kind in ["secret", "config"] {
            steps.push(Step::new(
                &format!("{kind}s removed"),
                Action::Task(Arc::new(Objects {
                    manager: manager.clone(),
                    kind,
                    project: stack.project.clone(),
                })),
                &format!("the {kind}s were not removed"),
            ));
        }
    }
    Ok(steps)
}

fn model_volumes(model: &Model, project: &str) -> Vec<String> {
    let mut names: Vec<String> = model
        .volumes
        .keys()
        .map(|key| format!("{project}_{key}"))
        .collect();
    names.sort();
    names
}

/// Until no node has a container of the stack (a volume in use cannot be removed): Swarm
/// removes its tasks' containers, but for the stopped ones it may leave, removed here.
#[derive(Debug)]
struct Gone {
    project: String,
    engines: Vec<Engine>,
}

impl Gone {
    fn listing(&self, engine: &Engine) -> Command {
        engine.docker([
            "ps",
            "--all",
            "--format",
            "{{.ID}} {{.State}}",
            "--filter",
            &format!("label=com.docker.stack.namespace={}", self.project),
        ])
    }
}

impl Task for Gone {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        let started = Instant::now();
        for engine in &self.engines {
            loop {
                let listing = run::read(sh, &self.listing(engine))?;
                if listing.trim().is_empty() {
                    break;
                }
                for (id, state) in listing.lines().filter_map(|line| line.split_once(' ')) {
                    if state == "exited" || state == "created" || state == "dead" {
                        let _ = run::probe(sh, &engine.docker(["rm", "--volumes", id]));
                    }
                }
                if started.elapsed() > REMOVAL_TIMEOUT {
                    bail!(
                        "containers of {} are still on {engine} after {} s",
                        self.project,
                        REMOVAL_TIMEOUT.as_secs()
                    );
                }
                thread::sleep(POLL);
            }
        }
        Ok(format!("no container of {} is left", self.project))
    }
}

impl fmt::Display for Gone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self
            .engines
            .iter()
            .map(|engine| {
                format!(
                    "{}    # until empty, the stopped ones removed",
                    self.listing(engine)
                )
            })
            .collect();
        f.write_str(&lines.join("\n"))
    }
}

/// The stack's versioned secrets or configs, found by their label.
#[derive(Debug)]
struct Objects {
    manager: Engine,
    kind: &'static str,
    project: String,
}

impl Objects {
    fn listing(&self) -> Command {
        self.manager.docker([
            self.kind,
            "ls",
            "--quiet",
            "--filter",
            &format!("label={STACK_LABEL}={}", self.project),
        ])
    }
}

impl Task for Objects {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        let ids = run::read(sh, &self.listing())?;
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec![self.kind, "rm"];
            args.extend(&ids);
            run::act(sh, &self.manager.docker(args))?;
        }
        Ok(format!(
            "{} {}s of {} removed",
            ids.len(),
            self.kind,
            self.project
        ))
    }
}

impl fmt::Display for Objects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{}",
            self.listing(),
            self.manager.docker([self.kind, "rm", "<each of them>"])
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stack_services_as_scripts_read_them() {
        let listing = r#"{"ID":"h4u4","Image":"postgres:17","Mode":"replicated","Name":"travial-prod_db","Ports":"","Replicas":"1/1"}
{"ID":"ht9m","Image":"travial/app:0a1b2c3","Mode":"replicated","Name":"travial-prod_web","Ports":"","Replicas":"2/2"}
"#;
        let services = super::parse_services(listing, "travial-prod").unwrap();
        assert_eq!(services[1].service, "web");
        assert_eq!(services[1].replicas, "2/2");
        assert_eq!(
            serde_json::to_string(&services[0]).unwrap(),
            r#"{"service":"db","mode":"replicated","replicas":"1/1","image":"postgres:17","ports":""}"#
        );
    }
}
