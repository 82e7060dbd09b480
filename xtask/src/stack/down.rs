//! `cargo xtask down ENV [--volumes]`: the stack stopped and removed; its data and its
//! history kept unless `--volumes`, which leaves nothing of the environment behind.

use xshell::Shell;

use super::{
    Stack, Target, open,
    state::{self, Lock},
};
use crate::{
    cli::DownArgs,
    docker::{Needs, run},
    plan::{self, Step},
    swarm::{self, Volumes},
};

pub fn run(sh: &Shell, args: &DownArgs) -> anyhow::Result<()> {
    let (stack, model) = open(sh, &args.env, Needs::to_act(args.dry_run))?;
    let volumes = match args.volumes {
        true => Volumes::Remove,
        false => Volumes::Keep,
    };
    let mut steps = match &stack.target {
        Target::Compose { .. } => vec![step(&stack, volumes)],
        Target::Swarm { manager } => {
            let facts = swarm::Facts::read(sh, manager, swarm::DryRun::Yes)?;
            swarm::down(&stack, manager, &model, &facts, volumes)?
        }
    };
    if volumes == Volumes::Remove {
        steps.extend(history_step(sh, &stack)?);
    }
    let asks = volumes == Volumes::Remove && !model.xtask.disposable;
    if args.dry_run {
        if asks {
            println!("# after typing the environment's name (--yes answers for scripts)");
        }
        plan::print(&steps);
        println!("# under the deploy lock");
        return Ok(());
    }
    if asks {
        let env = stack.name();
        let everywhere = match stack.target {
            Target::Compose { .. } => "",
            Target::Swarm { .. } => ", on every node of the swarm",
        };
        plan::confirm_by_name(
            env,
            &format!(
                "down --volumes deletes the data of {env}{} for good{everywhere}: its database, its backups kept there, its history (`cargo xtask backup {env}` first keeps a copy here)",
                stack.target.on()
            ),
            args.yes,
        )?;
    }
    // Never while a deploy or a rollback runs.
    let _lock = Lock::take(sh, &stack, "down", args.break_lock)?;
    plan::execute(sh, &steps)
}

/// The history's container removed, if there is one.
fn history_step(sh: &Shell, stack: &Stack) -> anyhow::Result<Option<Step>> {
    let container = state::state_container(stack);
    let inspect =
        stack
            .engine()
            .docker(["container", "inspect", "--format", "{{.Id}}", &container]);
    if !run::probe(sh, &inspect)?.status.success() {
        return Ok(None);
    }
    Ok(Some(Step::run(
        "history removed",
        stack
            .engine()
            .docker(["rm", "--force", "--volumes", &container]),
        "the history was not removed",
    )))
}

/// `docker compose down`, with the volumes or not.
pub fn step(stack: &Stack, volumes: Volumes) -> Step {
    let mut args = vec!["down", "--remove-orphans"];
    if volumes == Volumes::Remove {
        args.push("--volumes");
    }
    Step::run(
        match volumes {
            Volumes::Remove => "stopped, data removed",
            Volumes::Keep => "stopped, data kept",
        },
        stack.compose(&args),
        "the stack did not stop cleanly",
    )
}
