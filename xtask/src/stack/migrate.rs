//! `cargo xtask migrate ENV`: the database started if need be and ready, the image brought
//! to the engine (each node of a swarm) if it lacks it, a backup if the image brings
//! migrations the database lacks, then the migrations, as a deploy applies them: a one-off
//! container on one engine, a job on a swarm.

use std::time::Duration;

use xshell::Shell;

use super::{
    Model, Stack, Target, after_interruption, deploy, open,
    release::{Build, Release, Wanted},
    state::Lock,
};
use crate::{
    cli::MigrateArgs,
    database::{
        self,
        backup::{self, Before, Taken},
    },
    docker::Needs,
    interrupt,
    plan::{self, Step},
    swarm,
};

/// How long the database may take to be ready when nothing says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(60);

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
    let before = match args.no_backup {
        true => Before::Nothing,
        false => Before::Backup {
            store: backup::store(sh, &stack, &model, None),
            taken: Taken::default(),
        },
    };
    let dry_run = match args.dry_run {
        true => swarm::DryRun::Yes,
        false => swarm::DryRun::No,
    };
    let steps = plan_for(sh, &stack, &model, &release, &before, args.timeout, dry_run)?;
    if args.dry_run {
        plan::print(&steps);
        return Ok(());
    }
    interrupt::set_hint(after_interruption("migrate", &args.env.env));
    release.check_present(sh, stack.engine(), Build::Skip)?;
    // Never beside a deploy, a rollback or a restore.
    let _lock = Lock::take(sh, &stack, "migrate", args.break_lock)?;
    database::version::check(sh, &stack, &model)?;
    plan::execute(sh, &steps)
}

/// The migrations of `release` applied to the stack's database (started if need be).
pub fn plan(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    release: &Release,
    before: Before,
    timeout: Duration,
) -> anyhow::Result<Vec<Step>> {
    plan_for(
        sh,
        stack,
        model,
        release,
        &before,
        timeout,
        swarm::DryRun::No,
    )
}

fn plan_for(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    release: &Release,
    before: &Before,
    timeout: Duration,
    dry_run: swarm::DryRun,
) -> anyhow::Result<Vec<Step>> {
    match &stack.target {
        Target::Compose { engine } => {
            let mut steps = release.steps(engine, Build::Skip)?;
            steps.extend(deploy::database_steps(stack, model, timeout)?);
            steps.extend(before.step(stack, model, &release.runs, engine));
            steps.push(deploy::migrate_step(stack, model));
            Ok(steps)
        }
        Target::Swarm { manager } => {
            let facts = swarm::Facts::read(sh, manager, dry_run)?;
            swarm::Plan::new(stack, manager, model, &facts, timeout).migrate(release, before)
        }
    }
}
