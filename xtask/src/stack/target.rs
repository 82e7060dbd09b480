//! Where an environment runs, decided once for every command that acts on it: a Compose
//! project on one engine, or a swarm stack through one of its managers. `--swarm` and
//! `--host` win, then the environment's `x-xtask: orchestrator` and `host`, then Docker's
//! own settings (DOCKER_HOST, the docker context) for the engine.
//!
//! Each command `match`es on the target, so a command that forgets the swarm does not
//! compile; what differs lives in `swarm/`, the rest is the Compose case.

use std::fmt;

use anyhow::{Context, bail};
use xshell::Shell;

use super::{Model, Settings, Stack};
use crate::{
    cli::EnvArgs,
    docker::{self, Engine, Needs},
    hint::Hint,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A Compose project on one engine: this machine's, or another's over SSH.
    Compose { engine: Engine },
    /// A swarm stack, through a manager: its lock and history live there too.
    Swarm { manager: Engine },
}

impl Target {
    /// From the command line's flags and the environment's settings.
    pub fn choose(sh: &Shell, args: &EnvArgs, settings: &Settings) -> anyhow::Result<Target> {
        let engine = Engine::choose(sh, args.host.as_deref(), settings.host.as_deref())?;
        match (args.swarm, settings.orchestrator.as_deref()) {
            (true, _) | (false, Some("swarm")) => Ok(Target::Swarm { manager: engine }),
            (false, None | Some("compose" | "")) => Ok(Target::Compose { engine }),
            (false, Some(other)) => {
                bail!(
                    "x-xtask orchestrator `{other}` of {}: write compose or swarm",
                    args.env
                )
            }
        }
    }

    /// The engine every command of the environment goes to first: the one that runs the
    /// project, or the swarm's manager. The lock and the history live there.
    pub fn engine(&self) -> &Engine {
        match self {
            Target::Compose { engine } => engine,
            Target::Swarm { manager } => manager,
        }
    }

    /// What a step line adds: ` on deploy@10.201.1.2`, nothing here.
    pub fn on(&self) -> String {
        self.engine().on()
    }
}

/// How messages name it: `this machine`, `root@10.201.1.2`, `the swarm of root@10.201.1.2`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Compose { engine } => write!(f, "{engine}"),
            Target::Swarm { manager } => write!(f, "the swarm of {manager}"),
        }
    }
}

/// The environment's stack where it runs, and its merged model; checked in the order that
/// names the first thing missing: the files, docker and Compose, the model (every variable
/// set), then what `needs` asks of the engine. A swarm's manager is asked even for a dry
/// run: what the swarm has shapes the plan.
pub fn open(sh: &Shell, args: &EnvArgs, needs: Needs) -> anyhow::Result<(Stack, Model)> {
    let mut stack = Stack::load(&sh.current_dir(), &args.env)?;
    docker::preflight::docker_installed()?;
    let model = stack.model(sh)?;
    model.check().context("nothing was changed")?;
    stack.target = Target::choose(sh, args, &model.xtask)?;
    match &stack.target {
        Target::Compose { engine } => {
            docker::preflight(sh, engine, needs)?;
        }
        Target::Swarm { manager } => {
            let needs = Needs {
                engine: true,
                ..needs
            };
            let info = docker::preflight(sh, manager, needs)?;
            check_manager(manager, info.as_ref())?;
        }
    }
    Ok((stack, model))
}

/// Where a manager answers: a swarm's manager, else a hint to make one.
fn check_manager(manager: &Engine, info: Option<&docker::preflight::Info>) -> anyhow::Result<()> {
    if !info.is_some_and(|info| info.swarm_manager) {
        return Err(Hint::new(
            format!("{manager} is not a swarm manager"),
            "make the swarm first: `cargo xtask swarm init ssh://MANAGER [ssh://WORKER…]`, then deploy with --host MANAGER",
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(host: Option<&str>, orchestrator: Option<&str>) -> Settings {
        let mut settings: Settings =
            serde_yaml::from_str(&crate::stack::model::TEST_SETTINGS.replace("x-xtask:\n", ""))
                .unwrap();
        settings.host = host.map(str::to_owned);
        settings.orchestrator = orchestrator.map(str::to_owned);
        settings
    }

    fn args(host: Option<&str>, swarm: bool) -> EnvArgs {
        EnvArgs {
            env: "prod".into(),
            host: host.map(str::to_owned),
            swarm,
        }
    }

    #[test]
    fn the_flags_win_then_the_environments_settings() {
        let sh = Shell::new().unwrap();
        let choose = |args: EnvArgs, settings: Settings| Target::choose(&sh, &args, &settings);
        let manager = Engine::over_ssh(&docker::SshHost::parse("ssh://root@m").unwrap());
        assert_eq!(
            choose(args(Some("ssh://root@m"), true), settings(None, None)).unwrap(),
            Target::Swarm {
                manager: manager.clone()
            }
        );
        assert_eq!(
            choose(
                args(None, false),
                settings(Some("ssh://root@m"), Some("swarm"))
            )
            .unwrap(),
            Target::Swarm {
                manager: manager.clone()
            }
        );
        let compose = choose(args(None, false), settings(Some("ssh://root@m"), Some(""))).unwrap();
        assert_eq!(compose, Target::Compose { engine: manager });
        assert_eq!(compose.to_string(), "root@m");
        let err = choose(args(None, false), settings(None, Some("nomad"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "x-xtask orchestrator `nomad` of prod: write compose or swarm"
        );
    }
}
