//! `cargo xtask swarm init MANAGER [WORKER…]`: a swarm of these hosts, each reached over
//! SSH: `swarm init` on the manager, the others joined to it (the token through the engine
//! API, never on a command line), and on each node what the xtask needs later recorded as
//! node labels: its SSH address, and on the manager, that the database lives there. Run
//! again, it changes nothing.

use std::{fmt, sync::Arc};

use anyhow::bail;
use xshell::Shell;

use super::{
    join,
    nodes::{self, SSH_LABEL},
    stackfile::DB_NODE_LABEL,
};
use crate::{
    cli::SwarmInitArgs,
    docker::{Command, Engine, SshHost, preflight, run},
    plan::{self, Action, Step, Task},
};

/// What `docker info` says of a node's part in a swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SwarmState {
    active: bool,
    manager: bool,
    node_id: String,
}

pub fn run(sh: &Shell, args: &SwarmInitArgs) -> anyhow::Result<()> {
    let manager = SshHost::parse(&args.manager)?;
    let workers: Vec<SshHost> = args
        .workers
        .iter()
        .map(|url| SshHost::parse(url))
        .collect::<anyhow::Result<_>>()?;
    let manager_engine = Engine::over_ssh(&manager);
    for engine in std::iter::once(&manager_engine).chain(
        workers
            .iter()
            .map(Engine::over_ssh)
            .collect::<Vec<_>>()
            .iter(),
    ) {
        preflight::engine_answers(sh, engine)?;
    }
    let manager_address = address(sh, &manager)?;
    let manager_state = state(sh, &manager_engine)?;
    if manager_state.active && !manager_state.manager {
        bail!(
            "{manager} is a worker of a swarm already: run `swarm init` with one of its managers, or `docker swarm leave` there"
        );
    }
    let mut steps = Vec::new();
    if !manager_state.active {
        steps.push(Step::run(
            &format!("a swarm on {manager}"),
            manager_engine.docker(["swarm", "init", "--advertise-addr", &manager_address]),
            &format!("{manager} did not start a swarm"),
        ));
    }
    // One node holds the database's volume: a swarm that has it elsewhere keeps it there
    // (moving it is a step of its own, with the data: see the README).
    let db_elsewhere = match manager_state.active {
        true => nodes::list(sh, &manager_engine)?
            .into_iter()
            .find(|node| node.db && node.id != manager_state.node_id),
        false => None,
    };
    let mut labels = vec![(SSH_LABEL, manager.url())];
    match &db_elsewhere {
        Some(node) => crate::output::progress(&format!(
            "the database stays on node {} (labelled {DB_NODE_LABEL}=true{}), not on {manager}",
            node.id,
            node.ssh
                .as_deref()
                .map(|url| format!(", {url}"))
                .unwrap_or_default()
        )),
        None => labels.push((DB_NODE_LABEL, "true".to_owned())),
    }
    push_label_step(
        sh,
        &mut steps,
        &manager_engine,
        &manager_engine,
        &manager_state,
        &labels,
    )?;
    let members = match manager_state.active {
        true => run::read(sh, &manager_engine.docker(["node", "ls", "--quiet"]))?,
        false => String::new(),
    };
    for worker in &workers {
        let engine = Engine::over_ssh(worker);
        let worker_state = state(sh, &engine)?;
        if worker_state.active
            && !members
                .split_whitespace()
                .any(|id| worker_state.node_id.starts_with(id))
        {
            bail!(
                "{worker} is in another swarm: `docker swarm leave` there first, if that is what you want"
            );
        }
        if !worker_state.active {
            steps.push(Step::new(
                &format!("{worker} joined"),
                Action::Task(Arc::new(Join {
                    manager: manager_engine.clone(),
                    manager_address: manager_address.clone(),
                    node: engine.clone(),
                    advertise: address(sh, worker)?,
                })),
                &format!("{worker} did not join the swarm of {manager}"),
            ));
        }
        labels = vec![(SSH_LABEL, worker.url())];
        push_label_step(
            sh,
            &mut steps,
            &manager_engine,
            &engine,
            &worker_state,
            &labels,
        )?;
    }
    if args.dry_run {
        plan::print(&steps);
        return Ok(());
    }
    if steps.is_empty() {
        eprintln!(
            "nothing to change: {manager} manages a swarm with {} node(s), each labelled",
            members.split_whitespace().count()
        );
    }
    plan::execute(sh, &steps)?;
    run::print(sh, &manager_engine.docker(["node", "ls"]))
}

/// Labels the node of `engine` through the manager, unless it has them already.
fn push_label_step(
    sh: &Shell,
    steps: &mut Vec<Step>,
    manager: &Engine,
    engine: &Engine,
    state: &SwarmState,
    labels: &[(&str, String)],
) -> anyhow::Result<()> {
    if state.active && state.manager_known() {
        let format = labels
            .iter()
            .map(|(key, _)| format!("{{{{index .Spec.Labels \"{key}\"}}}}"))
            .collect::<Vec<_>>()
            .join("\t");
        let current = run::read(
            sh,
            &manager.docker(["node", "inspect", "--format", &format, &state.node_id]),
        )?;
        let wanted: Vec<&str> = labels.iter().map(|(_, value)| value.as_str()).collect();
        if current.trim_end().split('\t').collect::<Vec<_>>() == wanted {
            return Ok(());
        }
    }
    steps.push(Step::new(
        &format!("{engine} labelled"),
        Action::Task(Arc::new(Label {
            manager: manager.clone(),
            node: engine.clone(),
            labels: labels
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
        })),
        &format!("{engine} could not be labelled"),
    ));
    Ok(())
}

impl SwarmState {
    fn manager_known(&self) -> bool {
        !self.node_id.is_empty()
    }
}

fn state(sh: &Shell, engine: &Engine) -> anyhow::Result<SwarmState> {
    let format = "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeID}}";
    let info = run::read(sh, &engine.docker(["info", "--format", format]))?;
    let mut words = info.split_whitespace();
    Ok(SwarmState {
        active: words.next() == Some("active"),
        manager: words.next() == Some("true"),
        node_id: words.next().unwrap_or_default().to_owned(),
    })
}

/// The host's address as its SSH server sees it (`SSH_CONNECTION`'s third field): the one
/// this machine reaches it at, which the other nodes reach it at too.
fn address(sh: &Shell, host: &SshHost) -> anyhow::Result<String> {
    let connection = run::read(sh, &host.command("printenv SSH_CONNECTION".to_owned()))?;
    match connection.split_whitespace().nth(2) {
        Some(address) => Ok(address.to_owned()),
        None => bail!(
            "{host} did not say its address (SSH_CONNECTION is `{}`)",
            connection.trim()
        ),
    }
}

/// A node joining the manager's swarm, the token fetched when it runs.
#[derive(Debug)]
struct Join {
    manager: Engine,
    manager_address: String,
    node: Engine,
    advertise: String,
}

impl Task for Join {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        let token = run::read(
            sh,
            &self
                .manager
                .docker(["swarm", "join-token", "--quiet", "worker"]),
        )?;
        join::join(
            sh,
            &self.node,
            &self.advertise,
            &self.manager_address,
            token.trim(),
        )?;
        Ok(format!(
            "{} joined the swarm of {}",
            self.node, self.manager
        ))
    }
}

impl fmt::Display for Join {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}    # the token, read here, never printed\n{}    # POST /swarm/join {{\"AdvertiseAddr\": \"{}\", \"RemoteAddrs\": [\"{}:2377\"], \"JoinToken\": …}}",
            self.manager
                .docker(["swarm", "join-token", "--quiet", "worker"]),
            self.node.docker(["system", "dial-stdio"]),
            self.advertise,
            self.manager_address
        )
    }
}

/// Labels on a node, through the manager, the node's ID read when it runs (a node that
/// has just joined has no ID before).
#[derive(Debug)]
struct Label {
    manager: Engine,
    node: Engine,
    labels: Vec<String>,
}

impl Label {
    fn update(&self, node_id: &str) -> Command {
        let mut args = vec!["node".to_owned(), "update".to_owned()];
        for label in &self.labels {
            args.extend(["--label-add".to_owned(), label.clone()]);
        }
        args.push(node_id.to_owned());
        self.manager.docker(args)
    }
}

impl Task for Label {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        let id = state(sh, &self.node)?.node_id;
        run::act(sh, &self.update(&id))?;
        Ok(format!("{} labelled {}", self.node, self.labels.join(", ")))
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            self.update(&format!("<the node ID of {}>", self.node))
        )
    }
}
