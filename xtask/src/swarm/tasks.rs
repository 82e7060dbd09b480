//! The steps of a swarm deploy that decide what to run only when they run: the app's image
//! by its ID on the nodes, the stack file made with it, the migration job, and the check
//! that web converged (or why not).

use std::{
    fmt, thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use serde_json::Value;
use xshell::Shell;

use super::stackfile::{self, Options};
use crate::{
    docker::{Command, Engine, run},
    plan::Task,
    stack::Settings,
};

/// How often a job or a service is asked where it stands.
const POLL: Duration = Duration::from_millis(500);
/// The label of web that names the release it runs (its image may be named by ID).
pub const RELEASE_LABEL: &str = "travial.release";

/// What the nodes run for the app. From a registry: its reference, which the manager
/// resolves to a digest. Sent over SSH: the image's ID, the same on every node. Never a
/// tag alone: Swarm then tries to pull it from Docker Hub at every task start, which
/// stalls a cluster without the internet, and with it may run another image of that name.
#[derive(Debug, Clone)]
pub struct AppImage {
    pub manager: Engine,
    pub reference: String,
    pub by_id: bool,
}

impl AppImage {
    pub fn resolve(&self, sh: &Shell) -> anyhow::Result<String> {
        if !self.by_id {
            return Ok(self.reference.clone());
        }
        let inspect =
            self.manager
                .docker(["image", "inspect", "--format", "{{.Id}}", &self.reference]);
        let id = run::read(sh, &inspect)
            .with_context(|| format!("{} has no image {}", self.manager, self.reference))?;
        Ok(id.trim().to_owned())
    }
}

impl fmt::Display for AppImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.by_id {
            true => write!(f, "<the ID of {}>", self.reference),
            false => f.write_str(&self.reference),
        }
    }
}

/// `docker stack deploy` of a stack file made when it runs, with the app's image resolved.
#[derive(Debug)]
pub struct StackDeploy {
    /// The command, without its stdin.
    pub command: Command,
    pub model: Value,
    pub settings: Settings,
    pub options: Options,
    pub app: AppImage,
    pub done: String,
    /// The stack's name, for its tasks' states when it does not converge.
    pub stack: String,
    /// How long its services may take to converge.
    pub timeout: Duration,
}

impl Task for StackDeploy {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        let options = Options {
            web_image: self.app.resolve(sh)?,
            ..self.options.clone()
        };
        let file = stackfile::stack_file(&self.model, &self.settings, &options)?;
        let command = self
            .command
            .clone()
            .stdin_content("the stack file", serde_json::to_vec_pretty(&file)?);
        if run::act_within(sh, &command, self.timeout)? {
            return Ok(self.done.clone());
        }
        let stack = &self.stack;
        let tasks = run::read(
            sh,
            &self.app.manager.docker([
                "stack",
                "ps",
                "--no-trunc",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Name}}: {{.CurrentState}} {{.Error}}",
                stack,
            ]),
        )
        .unwrap_or_default();
        eprintln!("--- the stack's tasks:\n{tasks}---");
        bail!(
            "the services of {stack} did not converge within {} s (the tasks above say where they stand)",
            self.timeout.as_secs()
        )
    }
}

impl fmt::Display for StackDeploy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  # the stack file on stdin, web's image {}",
            self.command, self.app
        )
    }
}

/// A job run once, waited for (bounded), its logs shown if it fails, removed either way.
#[derive(Debug)]
pub struct Job {
    pub manager: Engine,
    pub name: String,
    /// `service create` up to the image, then what follows it.
    pub create: Vec<String>,
    pub app: AppImage,
    pub command: Vec<String>,
    pub timeout: Duration,
}

impl Job {
    fn create(&self, image: &str) -> Command {
        let mut args = self.create.clone();
        args.push(image.to_owned());
        args.extend(self.command.iter().cloned());
        self.manager.docker(args)
    }
}

impl Task for Job {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        // A job left by a deploy that was stopped midway.
        let _ = run::probe(sh, &self.manager.docker(["service", "rm", &self.name]));
        run::act(sh, &self.create(&self.app.resolve(sh)?))?;
        let started = Instant::now();
        let state = loop {
            let state = run::read(
                sh,
                &self.manager.docker([
                    "service",
                    "ps",
                    "--no-trunc",
                    "--format",
                    "{{.CurrentState}}|{{.Error}}",
                    &self.name,
                ]),
            )?;
            let state = state.lines().next().unwrap_or_default().to_owned();
            if ["Complete", "Failed", "Rejected"]
                .iter()
                .any(|end| state.starts_with(end))
            {
                break state;
            }
            if started.elapsed() > self.timeout {
                break format!("not done within {} s ({state})", self.timeout.as_secs());
            }
            thread::sleep(POLL);
        };
        let outcome = if state.starts_with("Complete") {
            Ok(format!(
                "migrations applied by {}{}",
                self.name,
                self.manager.on()
            ))
        } else {
            eprintln!("--- what went wrong, as the job's logs tell it:");
            let _ = run::print(
                sh,
                &self
                    .manager
                    .docker(["service", "logs", "--raw", &self.name]),
            );
            eprintln!("---");
            Err(anyhow::anyhow!(
                "the job {}: {}",
                self.name,
                state.replace('|', " ")
            ))
        };
        run::act(sh, &self.manager.docker(["service", "rm", &self.name]))?;
        // Swarm leaves a finished job's container behind once its service is gone.
        let filter = format!("label=com.docker.swarm.service.name={}", self.name);
        let leftovers = run::read(
            sh,
            &self
                .manager
                .docker(["ps", "--all", "--quiet", "--filter", &filter]),
        )?;
        for id in leftovers.split_whitespace() {
            let _ = run::probe(sh, &self.manager.docker(["rm", "--volumes", id]));
        }
        outcome
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{}    # until Complete or Failed\n{}",
            self.create(&self.app.to_string()),
            self.manager.docker(["service", "ps", &self.name]),
            self.manager.docker(["service", "rm", &self.name])
        )
    }
}

/// A service that converged on `release`, or why not: Swarm's update state (it rolls back
/// a failed update by itself) and the errors of its tasks.
#[derive(Debug)]
pub struct Converged {
    pub manager: Engine,
    pub service: String,
    pub release: String,
}

impl Task for Converged {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        // A service just created has no update status.
        let format = format!(
            "{{{{if .UpdateStatus}}}}{{{{.UpdateStatus.State}}}}|{{{{.UpdateStatus.Message}}}}{{{{else}}}}|{{{{end}}}}|{{{{index .Spec.Labels \"{RELEASE_LABEL}\"}}}}"
        );
        let inspect = run::read(
            sh,
            &self
                .manager
                .docker(["service", "inspect", "--format", &format, &self.service]),
        )?;
        let mut fields = inspect.trim().splitn(3, '|');
        let (state, message, release) = (
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default(),
        );
        if state.starts_with("rollback") || state == "paused" || release != self.release {
            let tasks = run::read(
                sh,
                &self.manager.docker([
                    "service",
                    "ps",
                    "--no-trunc",
                    "--filter",
                    "desired-state=shutdown",
                    "--format",
                    "{{.Name}}: {{.CurrentState}} {{.Error}}",
                    &self.service,
                ]),
            )
            .unwrap_or_default();
            eprintln!("--- the tasks that did not make it:\n{tasks}---");
            bail!(
                "{} was rolled back to {release}{}",
                self.service,
                match message.is_empty() {
                    true => String::new(),
                    false => format!(" ({message})"),
                }
            );
        }
        let replicas = run::read(
            sh,
            &self.manager.docker([
                "service",
                "ls",
                "--filter",
                &format!("name={}", self.service),
                "--format",
                "{{.Replicas}}",
            ]),
        )?;
        Ok(format!(
            "{} runs {} ({})",
            self.service,
            self.release,
            replicas.trim()
        ))
    }
}

impl fmt::Display for Converged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}    # updated, not rolled back, on {}",
            self.manager.docker(["service", "inspect", &self.service]),
            self.release
        )
    }
}
