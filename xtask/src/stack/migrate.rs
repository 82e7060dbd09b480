//! `cargo xtask migrate ENV`: the database started if need be and ready, then the
//! migrations, as a deploy applies them.

use xshell::Shell;

use super::{after_interruption, deploy};
use crate::{
    cli::MigrateArgs,
    docker::{self, Needs},
    interrupt, plan,
};

pub fn run(sh: &Shell, args: &MigrateArgs) -> anyhow::Result<()> {
    let stack = args.env.stack(sh)?;
    docker::preflight(sh, &stack.engine, Needs::acting(args.dry_run, false))?;
    let model = stack.model(sh)?;
    let stack = args.secrets.resolve(sh, stack, &model)?;
    let mut steps = deploy::database_steps(&stack, &model, args.timeout)?;
    steps.push(deploy::migrate_step(&stack, &model));
    if args.dry_run {
        plan::print(&steps);
        return Ok(());
    }
    interrupt::set_hint(after_interruption("migrate", &args.env.env));
    plan::execute(sh, &steps)
}
