//! `cargo xtask psql ENV`: a console on the environment's database as its owner, through
//! the engine (on a swarm, on the node that runs it), over the container's own socket: no
//! password asked, typed or passed. Interactive on a terminal; otherwise the SQL comes on
//! stdin and the first error ends it with a failure, for scripts.
//!
//! `cargo xtask exec ENV SERVICE -- CMD…`: any command in a running container of the
//! service, the same way.

use std::io::IsTerminal;

use anyhow::bail;
use xshell::Shell;

use super::Database;
use crate::{
    cli::{ExecArgs, PsqlArgs},
    docker::{Engine, Needs, run},
    hint::Hint,
    stack::{Stack, Target, open},
};

pub fn psql(sh: &Shell, args: &PsqlArgs) -> anyhow::Result<()> {
    let (stack, model) = open(sh, &args.env, Needs::ENGINE)?;
    let database = Database::find(sh, &stack, &model)?;
    let mut line = vec!["psql".to_owned()];
    if !std::io::stdin().is_terminal() {
        line.extend(["--no-psqlrc", "--set", "ON_ERROR_STOP=1"].map(String::from));
    }
    line.extend([
        "--username".to_owned(),
        database.user.clone(),
        "--dbname".to_owned(),
        database.name.clone(),
    ]);
    line.extend(args.args.iter().cloned());
    talk(sh, &database.engine, &database.container, &line)
}

pub fn exec(sh: &Shell, args: &ExecArgs) -> anyhow::Result<()> {
    let (stack, model) = open(sh, &args.env, Needs::ENGINE)?;
    if !model.services.contains_key(&args.service) {
        let known: Vec<&str> = model.services.keys().map(String::as_str).collect();
        return Err(Hint::new(
            format!("{} has no service {}", stack.name(), args.service),
            format!("its services are {}", crate::output::and_list(&known)),
        )
        .into());
    }
    let (engine, container) = running(sh, &stack, &args.service)?;
    talk(sh, &engine, &container, &args.command)
}

/// The first running container of `service`, and its engine.
fn running(sh: &Shell, stack: &Stack, service: &str) -> anyhow::Result<(Engine, String)> {
    let (engine, container) = match &stack.target {
        Target::Compose { engine } => {
            let ids = run::read(sh, &stack.containers_of(service))?;
            (
                engine.clone(),
                ids.lines().next().unwrap_or_default().to_owned(),
            )
        }
        Target::Swarm { manager } => super::swarm_task(sh, stack, manager, service)?,
    };
    if container.is_empty() {
        return Err(Hint::new(
            format!(
                "no container of {service} runs in {}{}",
                stack.name(),
                stack.target.on()
            ),
            format!("`cargo xtask status {}` shows what runs", stack.name()),
        )
        .into());
    }
    Ok((engine, container))
}

/// `docker exec -i[t] CONTAINER COMMAND…`, a terminal given when this one is; its exit
/// status is the command's.
fn talk(sh: &Shell, engine: &Engine, container: &str, command: &[String]) -> anyhow::Result<()> {
    let mut line = vec!["exec".to_owned(), "--interactive".to_owned()];
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        line.push("--tty".to_owned());
    }
    line.push(container.to_owned());
    line.extend(command.iter().cloned());
    let status = run::interactive(sh, &engine.docker(line))?;
    if !status.success() {
        bail!(
            "`{}` ended with {status}",
            command.first().map(String::as_str).unwrap_or_default()
        );
    }
    Ok(())
}
