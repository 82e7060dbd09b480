//! `cargo xtask migrate ENV`: the database started if need be and ready, the image brought
//! to the engine if it lacks it, then the migrations, as a deploy applies them.

use xshell::Shell;

use super::{
    after_interruption, deploy,
    release::{Release, Wanted},
};
use crate::{cli::MigrateArgs, docker::Needs, interrupt, plan};

pub fn run(sh: &Shell, args: &MigrateArgs) -> anyhow::Result<()> {
    let (stack, model) = args.env.stack(sh, Needs::acting(args.dry_run, false))?;
    let stack = args.secrets.resolve(sh, stack, &model)?;
    let wanted = Wanted {
        build: false,
        registry: None,
        allow_dirty: true,
    };
    let release = Release::choose(sh, &stack, &model, &wanted)?;
    let stack = release.applied_to(stack);
    let mut steps = release.steps(&stack.engine, false)?;
    steps.extend(deploy::database_steps(&stack, &model, args.timeout)?);
    steps.push(deploy::migrate_step(&stack, &model));
    if args.dry_run {
        plan::print(&steps);
        return Ok(());
    }
    interrupt::set_hint(after_interruption("migrate", &args.env.env));
    plan::execute(sh, &steps)
}
