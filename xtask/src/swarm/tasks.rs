//! The steps of a swarm's plans that find something out when they run: the app's image
//! by its ID on the nodes (known once it is there), the migration job's end, whether web
//! converged (or why not), the stack's containers gone. Each prints as the commands it
//! runs, with what it finds in `<…>`.

use std::{fmt, time::Duration};

use anyhow::{Context, bail};
use serde_json::Value;
use xshell::Shell;

use super::converge;
use crate::{
    docker::{Command, Engine, images, run},
    plan::Task,
    poll::{Answer, Poll},
};

/// How often a job, a service or a node is asked where it stands.
const POLL: Duration = Duration::from_millis(500);
/// How long the stack's containers may take to go once `stack rm` returns.
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(60);
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
        images::id(sh, &self.manager, &self.reference)?
            .with_context(|| format!("{} has no image {}", self.manager, self.reference))
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

/// `docker stack deploy` of a stack file, with the app's image resolved when it runs.
#[derive(Debug)]
pub struct StackDeploy {
    /// The command, without its stdin.
    pub command: Command,
    /// The stack file, but for web's image.
    pub file: Value,
    pub web_service: String,
    pub app: AppImage,
    pub done: String,
    /// The stack's name, for its tasks' states when it does not converge.
    pub stack: String,
    /// How long its services may take to converge.
    pub timeout: Duration,
    /// Whether the deploy removes the services the file no longer has (`--prune`).
    pub prune: bool,
}

impl Task for StackDeploy {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        let mut file = self.file.clone();
        if let Some(web) = file["services"].get_mut(&self.web_service) {
            web["image"] = Value::String(self.app.resolve(sh)?);
        }
        let hashes = converge::spec_hashes(&file);
        let file = converge::labelled(file, &hashes);
        let manager = &self.app.manager;
        let deployed = converge::deployed(sh, manager, &self.stack)?;
        let changed = converge::changed(&hashes, &deployed, self.prune);
        if changed.is_empty() {
            let names: Vec<&str> = hashes.keys().map(String::as_str).collect();
            return Ok(format!(
                "{} unchanged{}",
                crate::output::and_list(&names),
                manager.on()
            ));
        }
        let command = self
            .command
            .clone()
            .stdin_content("the stack file", serde_json::to_vec_pretty(&file)?);
        run::act(sh, &command)?;
        let gave_up = converge::await_services(sh, manager, &self.stack, &changed, self.timeout)
            .inspect_err(|_| self.show_tasks(sh))?;
        // web's own failure is explained by the step that checks it converged.
        let others: Vec<String> = gave_up
            .iter()
            .filter(|(name, _)| !name.ends_with(&format!("_{}", self.web_service)))
            .map(|(name, why)| format!("{name} ({why})"))
            .collect();
        if !others.is_empty() {
            self.show_tasks(sh);
            bail!("Swarm gave up updating {}", others.join(", "));
        }
        Ok(self.done.clone())
    }
}

impl StackDeploy {
    fn show_tasks(&self, sh: &Shell) {
        run::show(
            sh,
            "the stack's tasks",
            &self.app.manager.docker([
                "stack",
                "ps",
                "--no-trunc",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Name}}: {{.CurrentState}} {{.Error}}",
                &self.stack,
            ]),
        );
    }
}

impl fmt::Display for StackDeploy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}  # the stack file on stdin, web's image {}; unless no service changes, then until those that do converge",
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
    /// A deploy's job: not run when it would change nothing.
    pub unless: Option<crate::stack::migrate::Current>,
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
        if let Some(current) = self.unless.as_ref().and_then(|current| current.check(sh)) {
            return Ok(current);
        }
        // A job left by a deploy that was stopped midway.
        let _ = run::probe(sh, &self.manager.docker(["service", "rm", &self.name]));
        run::act(sh, &self.create(&self.app.resolve(sh)?))?;
        let state = self.manager.docker([
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.CurrentState}}|{{.Error}}",
            &self.name,
        ]);
        let poll = Poll::new(
            format!("the job {}", self.name),
            format!("the job {}: not done", self.name),
        )
        .timeout(self.timeout)
        .every(POLL);
        let ended = poll.until(|| {
            let state = run::read(sh, &state)?;
            let state = state.lines().next().unwrap_or_default().to_owned();
            let ended = ["Complete", "Failed", "Rejected"]
                .iter()
                .any(|end| state.starts_with(end));
            Ok(match ended {
                true => Answer::Ready(state),
                false => Answer::NotYet(state),
            })
        });
        let outcome = match ended {
            Ok(state) if state.starts_with("Complete") => Ok(format!(
                "migrations applied by {}{}",
                self.name,
                self.manager.on()
            )),
            ended => {
                run::show(
                    sh,
                    "what went wrong, as the job's logs tell it",
                    &self
                        .manager
                        .docker(["service", "logs", "--raw", &self.name]),
                );
                Err(match ended {
                    Ok(state) => {
                        anyhow::anyhow!("the job {}: {}", self.name, state.replace('|', " "))
                    }
                    Err(err) => err,
                })
            }
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
        if self.unless.is_some() {
            writeln!(f, "# {}:", crate::stack::migrate::UNLESS_CURRENT)?;
        }
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
            run::show(
                sh,
                "the tasks that did not make it",
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
            );
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

/// Until no node has a container of the stack (a volume in use cannot be removed): Swarm
/// removes its tasks' containers, but for the stopped ones it may leave, removed here.
#[derive(Debug)]
pub struct Gone {
    pub project: String,
    pub engines: Vec<Engine>,
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
        for engine in &self.engines {
            let poll = Poll::new(
                format!("the containers of {} to leave {engine}", self.project),
                format!("containers of {} are still on {engine}", self.project),
            )
            .timeout(REMOVAL_TIMEOUT)
            .every(POLL);
            poll.until(|| {
                let listing = run::read(sh, &self.listing(engine))?;
                if listing.trim().is_empty() {
                    return Ok(Answer::Ready(()));
                }
                for (id, state) in listing.lines().filter_map(|line| line.split_once(' ')) {
                    if state == "exited" || state == "created" || state == "dead" {
                        let _ = run::probe(sh, &engine.docker(["rm", "--volumes", id]));
                    }
                }
                Ok(Answer::NotYet(format!("{} left", listing.lines().count())))
            })?;
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

/// After a deploy or a rollback: of each secret and config of the stack, the version in use
/// and the one before it (what a rollback returns to) are kept, older ones removed. Swarm
/// refuses to remove one a service still uses: that one stays, said as a warning.
#[derive(Debug)]
pub struct PruneVersions {
    pub manager: Engine,
    pub project: String,
    /// The versioned names the stack uses now.
    pub current: Vec<String>,
}

impl PruneVersions {
    fn listing(&self, kind: &str) -> Command {
        self.manager.docker([
            kind,
            "ls",
            "--filter",
            &format!("label={}={}", super::facts::STACK_LABEL, self.project),
            "--format",
            "{{.Name}}\t{{.CreatedAt}}",
        ])
    }
}

impl Task for PruneVersions {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        let mut removed = 0;
        for kind in ["secret", "config"] {
            let listing = run::read(sh, &self.listing(kind))?;
            let listed: Vec<(String, String)> = listing
                .lines()
                .filter_map(|line| {
                    let (name, created) = line.split_once('\t')?;
                    Some((name.to_owned(), created.to_owned()))
                })
                .collect();
            for name in surplus(&listed, &self.current) {
                match run::probe(sh, &self.manager.docker([kind, "rm", &name])) {
                    Ok(output) if output.status.success() => removed += 1,
                    _ => crate::output::warning(&anyhow::anyhow!(
                        "the old {kind} {name} was not removed (a service uses it still?)"
                    )),
                }
            }
        }
        Ok(format!(
            "{removed} old secret and config version(s) removed, the current and the previous kept"
        ))
    }
}

impl fmt::Display for PruneVersions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n{}\n{}    # each but the current and the previous version",
            self.listing("secret"),
            self.listing("config"),
            self.manager.docker(["secret", "rm", "<older versions>"])
        )
    }
}

/// Of `listed` (versioned name, creation time), those neither `current` nor the newest
/// other version of the same key: `STACK_KEY_VERSION` names, the version last.
pub fn surplus(listed: &[(String, String)], current: &[String]) -> Vec<String> {
    let key = |name: &str| {
        name.rsplit_once('_')
            .map_or(name, |(key, _)| key)
            .to_owned()
    };
    let mut by_key: std::collections::BTreeMap<String, Vec<&(String, String)>> =
        std::collections::BTreeMap::new();
    for entry in listed {
        by_key.entry(key(&entry.0)).or_default().push(entry);
    }
    let mut surplus = Vec::new();
    for (_, mut versions) in by_key {
        versions.retain(|(name, _)| !current.contains(name));
        // Newest first: the first is the previous version, kept for a rollback.
        versions.sort_by(|a, b| b.1.cmp(&a.1));
        surplus.extend(versions.into_iter().skip(1).map(|(name, _)| name.clone()));
    }
    surplus.sort();
    surplus
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_current_and_the_previous_version_of_each_key_stay() {
        let entry = |name: &str, created: &str| (name.to_owned(), created.to_owned());
        let listed = [
            entry("p_db_password_aaa", "2026-12-01 10:00:00 +0000 UTC"),
            entry("p_db_password_bbb", "2026-12-02 10:00:00 +0000 UTC"),
            entry("p_db_password_ccc", "2026-12-03 10:00:00 +0000 UTC"),
            entry("p_db_password_ddd", "2026-12-04 10:00:00 +0000 UTC"),
            entry("p_caddyfile_eee", "2026-12-01 10:00:00 +0000 UTC"),
        ];
        let current = ["p_db_password_ddd".to_owned(), "p_caddyfile_eee".to_owned()];
        assert_eq!(
            super::surplus(&listed, &current),
            ["p_db_password_aaa", "p_db_password_bbb"]
        );
        // A rollback to the previous: the newest is now the previous.
        let current = ["p_db_password_ccc".to_owned(), "p_caddyfile_eee".to_owned()];
        assert_eq!(
            super::surplus(&listed, &current),
            ["p_db_password_aaa", "p_db_password_bbb"]
        );
    }
}
