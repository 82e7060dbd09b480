//! `cargo xtask down ENV [--volumes]`: the stack stopped and removed; its data kept unless
//! `--volumes`.

use xshell::Shell;

use super::{Stack, state::Lock};
use crate::{
    cli::DownArgs,
    docker::Needs,
    plan::{self, Step},
};

pub fn run(sh: &Shell, args: &DownArgs) -> anyhow::Result<()> {
    let (stack, _) = args.env.stack(sh, Needs::acting(args.dry_run, false))?;
    let steps = [step(&stack, args.volumes)];
    if args.dry_run {
        plan::print(&steps);
        println!("# under the deploy lock");
        return Ok(());
    }
    // Never while a deploy or a rollback runs.
    let _lock = Lock::take(sh, &stack, "down", args.break_lock)?;
    plan::execute(sh, &steps)
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
