//! The database's safety net: backups tied to migrations (`backup`), restores known to work
//! (`verify`, `restore`), the maintenance page while the data is replaced, and a console
//! (`psql`, `exec`). Everything goes through the database's own container, with its own
//! tools (so `pg_dump` is the server's version), connecting over its Unix socket as the
//! owner: no password is ever needed, printed or passed.

pub mod backup;
pub mod console;
pub mod maintenance;
mod manifest;
pub mod restore;
pub mod role;
mod snapshot;
mod transfer;
pub mod verify;
pub mod version;

use anyhow::{Context, bail};
use xshell::Shell;

use crate::{
    docker::{Command, Engine, run},
    hint::Hint,
    stack::{Model, Stack, Target},
    swarm,
};

pub use manifest::{Manifest, Store};

/// The database's running container, where its tools run: on the engine of a Compose
/// project, or on the node of a swarm that runs its task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Database {
    pub engine: Engine,
    pub container: String,
    /// The owner, `POSTGRES_USER`.
    pub user: String,
    /// `POSTGRES_DB`.
    pub name: String,
}

impl Database {
    /// The running container of the stack's database, or why there is none.
    pub fn find(sh: &Shell, stack: &Stack, model: &Model) -> anyhow::Result<Database> {
        let db = &model.xtask.db_service;
        let (engine, container) = match &stack.target {
            Target::Compose { engine } => {
                let ids = run::read(sh, &stack.containers_of(db))?;
                (
                    engine.clone(),
                    ids.lines().next().unwrap_or_default().to_owned(),
                )
            }
            Target::Swarm { manager } => swarm_task(sh, stack, manager, db)?,
        };
        if container.is_empty() {
            return Err(Hint::new(
                format!(
                    "{db} of {} is not running{}",
                    stack.name(),
                    stack.target.on()
                ),
                format!(
                    "`cargo xtask deploy {}` (or `migrate`) starts it",
                    stack.name()
                ),
            )
            .into());
        }
        let (user, name) = owner_and_database(model)?;
        Ok(Database {
            engine,
            container,
            user,
            name,
        })
    }

    /// `docker exec [-i] CONTAINER ARGS…`: `-i` when the command reads its stdin.
    pub fn exec<S: Into<String>>(
        &self,
        stdin: Stdin,
        args: impl IntoIterator<Item = S>,
    ) -> Command {
        let mut line = vec!["exec".to_owned()];
        if stdin == Stdin::Read {
            line.push("--interactive".to_owned());
        }
        line.push(self.container.clone());
        line.extend(args.into_iter().map(Into::into));
        self.engine.docker(line)
    }

    /// `psql` as the owner, quiet and strict, on `database` (the stack's own unless given),
    /// reading SQL from its stdin: values go in as psql variables (`:'name'`, `:"name"`),
    /// quoted by psql itself.
    pub fn psql(&self, database: Option<&str>, variables: &[(&str, &str)]) -> Command {
        let mut args = vec![
            "psql".to_owned(),
            "--no-psqlrc".to_owned(),
            "--quiet".to_owned(),
            "--no-align".to_owned(),
            "--tuples-only".to_owned(),
            "--set".to_owned(),
            "ON_ERROR_STOP=1".to_owned(),
            "--username".to_owned(),
            self.user.clone(),
            "--dbname".to_owned(),
            database.unwrap_or(&self.name).to_owned(),
        ];
        for (name, value) in variables {
            args.extend(["--set".to_owned(), format!("{name}={value}")]);
        }
        self.exec(Stdin::Read, args)
    }

    /// What a psql command printed, or psql's own `ERROR:` line when it fails.
    fn run(&self, sh: &Shell, command: &Command) -> anyhow::Result<String> {
        let output = run::probe(sh, command)?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let reason = stderr
                .lines()
                .find(|line| line.contains("ERROR:") || line.contains("FATAL:"))
                .map(|line| line.trim().to_owned())
                .or_else(|| run::last_line(&stderr))
                .unwrap_or_else(|| output.status.to_string());
            bail!("psql on {} failed: {reason}", self.name);
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `Some(v)`: the newest migration applied; `None` before the first (no history table).
    pub fn applied_migration(&self, sh: &Shell) -> anyhow::Result<Option<i64>> {
        Ok(self.migrated(sh, &self.user)?.applied)
    }
}

/// Whether a command run in the container reads its stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    Read,
    Closed,
}

/// `POSTGRES_USER` and `POSTGRES_DB` as the database service has them (the image's defaults
/// otherwise, as the official image has them).
pub fn owner_and_database(model: &Model) -> anyhow::Result<(String, String)> {
    let environment = &model.service(&model.xtask.db_service)?.environment;
    let setting = |name: &str| environment.get(name).cloned().flatten();
    let user = setting("POSTGRES_USER").unwrap_or_else(|| "postgres".to_owned());
    let database = setting("POSTGRES_DB").unwrap_or_else(|| user.clone());
    Ok((user, database))
}

/// The node and container of the database's running task.
fn swarm_task(
    sh: &Shell,
    stack: &Stack,
    manager: &Engine,
    db: &str,
) -> anyhow::Result<(Engine, String)> {
    let service = swarm::service_name(stack, db);
    let tasks = run::read(
        sh,
        &manager.docker([
            "service",
            "ps",
            "--quiet",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            &service,
        ]),
    )?;
    let Some(task) = tasks.split_whitespace().next() else {
        return Ok((manager.clone(), String::new()));
    };
    let format = "{{.NodeID}} {{.Status.State}} {{.Status.ContainerStatus.ContainerID}}";
    let found = run::read(
        sh,
        &manager.docker(["inspect", "--type", "task", "--format", format, task]),
    )?;
    let mut words = found.split_whitespace();
    let (node_id, state, container) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    if state != "running" {
        return Ok((manager.clone(), String::new()));
    }
    let nodes = swarm::nodes::list(sh, manager)?;
    let node = nodes
        .iter()
        .find(|node| node.id == node_id)
        .with_context(|| format!("the swarm has no node {node_id}, which runs {service}"))?;
    let Some(engine) = node.engine()? else {
        bail!(
            "node {node_id}, which runs {service}, has no `{}` label: run `cargo xtask swarm init` with it",
            swarm::nodes::SSH_LABEL
        );
    };
    Ok((engine, container.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_takes_its_values_as_variables_never_in_the_sql() {
        let db = Database {
            engine: Engine::Local,
            container: "travial-prod-db-1".into(),
            user: "travial".into(),
            name: "travial".into(),
        };
        assert_eq!(
            db.psql(Some("postgres"), &[("new", "travial_restore")])
                .to_string(),
            "docker exec --interactive travial-prod-db-1 psql --no-psqlrc --quiet --no-align \
             --tuples-only --set ON_ERROR_STOP=1 --username travial --dbname postgres \
             --set new=travial_restore"
        );
    }
}
