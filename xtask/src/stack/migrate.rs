//! `cargo xtask migrate ENV`: the database started if need be and ready, the image brought
//! to the engine (each node of a swarm) if it lacks it, then the migrations, as a deploy
//! applies them: a one-off container on one engine, a job on a swarm.

use xshell::Shell;

use super::{
    Target, after_interruption, deploy, open,
    release::{Build, Release, Wanted},
};
use crate::{cli::MigrateArgs, docker::Needs, interrupt, plan, swarm};

pub fn run(sh: &Shell, args: &MigrateArgs) -> anyhow::Result<()> {
    let (stack, model) = open(sh, &args.env, Needs::to_act(args.dry_run))?;
    let stack = stack.with_resolved_secrets(sh, &model, args.secrets.file.as_deref())?;
    let wanted = Wanted {
        build: Build::Skip,
        registry: None,
        allow_dirty: true,
    };
    let release = Release::choose(sh, &stack, &model, &wanted)?;
    let stack = release.applied_to(stack);
    let dry_run = match args.dry_run {
        true => swarm::DryRun::Yes,
        false => swarm::DryRun::No,
    };
    let steps = match &stack.target {
        Target::Compose { engine } => {
            let mut steps = release.steps(engine, Build::Skip)?;
            steps.extend(deploy::database_steps(&stack, &model, args.timeout)?);
            steps.push(deploy::migrate_step(&stack, &model));
            steps
        }
        Target::Swarm { manager } => {
            let facts = swarm::Facts::read(sh, manager, dry_run)?;
            swarm::Plan::new(&stack, manager, &model, &facts, args.timeout).migrate(&release)?
        }
    };
    if args.dry_run {
        plan::print(&steps);
        return Ok(());
    }
    interrupt::set_hint(after_interruption("migrate", &args.env.env));
    plan::execute(sh, &steps)
}
