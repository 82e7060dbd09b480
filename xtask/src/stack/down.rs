//! `cargo xtask down ENV [--volumes]`: the stack stopped and removed; its data and its
//! history kept unless `--volumes`, which leaves nothing of the environment behind.

use xshell::Shell;

use super::{
    Stack,
    state::{self, Lock},
};
use crate::{
    cli::DownArgs,
    docker::{Needs, run},
    plan::{self, Step},
};

pub fn run(sh: &Shell, args: &DownArgs) -> anyhow::Result<()> {
    let (stack, model) = args.env.stack(sh, Needs::acting(args.dry_run, false))?;
    let mut steps = match stack.swarm {
        true => crate::swarm::commands::down_steps(sh, &stack, &model, args.volumes)?,
        false => vec![step(&stack, args.volumes)],
    };
    if args.volumes {
        steps.extend(history_step(sh, &stack)?);
    }
    if args.dry_run {
        plan::print(&steps);
        println!("# under the deploy lock");
        return Ok(());
    }
    // Never while a deploy or a rollback runs.
    let _lock = Lock::take(sh, &stack, "down", args.break_lock)?;
    plan::execute(sh, &steps)
}

/// The history's container removed, if there is one.
fn history_step(sh: &Shell, stack: &Stack) -> anyhow::Result<Option<Step>> {
    let container = state::state_container(stack);
    let inspect = stack
        .engine
        .docker(["container", "inspect", "--format", "{{.Id}}", &container]);
    if !run::probe(sh, &inspect)?.status.success() {
        return Ok(None);
    }
    Ok(Some(Step::run(
        "history removed",
        stack.engine.docker(["rm", "--volumes", &container]),
        "the history was not removed",
    )))
}

pub fn step(stack: &Stack, volumes: bool) -> Step {
    let mut args = vec!["down", "--remove-orphans"];
    if volumes {
        args.push("--volumes");
    }
    Step::run(
        if volumes {
            "stopped, data removed"
        } else {
            "stopped, data kept"
        },
        stack.compose(&args),
        "the stack did not stop cleanly",
    )
}
