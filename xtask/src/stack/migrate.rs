//! `cargo xtask migrate ENV`: the database started if need be and ready, the image brought
//! to the engine (each node of a swarm) if it lacks it, a backup if the image brings
//! migrations the database lacks, then the migrations, as a deploy applies them: a one-off
//! container on one engine, a job on a swarm.

use std::{fmt, sync::Arc, time::Duration};

use xshell::Shell;

use super::{
    Model, Stack, Target, after_interruption, deploy, open,
    release::{Build, Release, Wanted},
    state::Lock,
};
use crate::{
    cli::MigrateArgs,
    database::{
        self, Database,
        backup::{self, Before, Taken},
    },
    docker::{Command, Needs, run},
    interrupt,
    plan::{self, Action, Step, Task},
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
    if args.dry_run {
        let steps = plan_for(sh, &stack, &model, &release, &before, args.timeout, dry_run)?;
        plan::print(&steps);
        return Ok(());
    }
    interrupt::set_hint(after_interruption("migrate", &args.env.env));
    release.check_present(sh, stack.engine(), Build::Skip)?;
    // Never beside a deploy, a rollback or a restore; and what a swarm has (its salt, its
    // secrets) is read under the lock, as a deploy reads it: another may change it.
    let _lock = Lock::take(sh, &stack, "migrate", args.break_lock)?;
    let steps = plan_for(sh, &stack, &model, &release, &before, args.timeout, dry_run)?;
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

/// What tells whether a deploy's migrations would change anything: the database already
/// has every migration the image knows, and web's role logs in with the password the
/// migrations would set (see `database::role`).
#[derive(Debug, Clone)]
pub struct Current {
    pub stack: Stack,
    pub model: Model,
    pub image: String,
}

impl Current {
    /// Why there is nothing to run, if there is not. A check that cannot tell is no reason
    /// to fail: the migrations then run, and say what is wrong themselves.
    pub fn check(&self, sh: &Shell) -> Option<String> {
        self.nothing_to_run(sh).ok().flatten()
    }

    fn nothing_to_run(&self, sh: &Shell) -> anyhow::Result<Option<String>> {
        let service = &self.model.xtask.migrate_service;
        let environment = &self.model.service(service)?.environment;
        let setting = |name: &str| environment.get(name).cloned().flatten();
        let (Some(role), Some(password_file)) =
            (setting("APP_DB_USER"), setting("APP_DB_PASSWORD_FILE"))
        else {
            return Ok(None);
        };
        let files = self.model.secret_files(service)?;
        let password = files
            .iter()
            .find(|(path, _)| *path == password_file)
            .and_then(|(_, variable)| *variable)
            .and_then(|variable| {
                self.stack
                    .secrets
                    .iter()
                    .find(|secret| secret.name == variable)
            });
        let Some(password) = password else {
            return Ok(None);
        };
        let database = Database::find(sh, &self.stack, &self.model)?;
        let migrated = database.migrated(sh, &role)?;
        let known = backup::migrations_known(sh, self.stack.engine(), &self.image)?;
        Ok(match (migrated.applied, known) {
            (Some(applied), Some(known))
                if applied == known && migrated.role_has(password.expose()) =>
            {
                Some(format!(
                    "no migration to apply: the database has all {known} of {} and web's role is as set{}",
                    self.image,
                    self.stack.target.on()
                ))
            }
            _ => None,
        })
    }
}

/// What `--dry-run` says of a step that may not run.
pub const UNLESS_CURRENT: &str =
    "unless the database has every migration of the image and web's role is as set";

/// A deploy's migrations on one engine: the migration container, unless it would change
/// nothing (`Current`).
#[derive(Debug)]
pub struct UnlessCurrent {
    current: Current,
    migrate: Command,
}

impl UnlessCurrent {
    pub fn step(stack: &Stack, model: &Model, image: &str) -> Step {
        let step = deploy::migrate_step(stack, model);
        let Action::Run(migrate) = step.action else {
            return step;
        };
        let current = Current {
            stack: stack.clone(),
            model: model.clone(),
            image: image.to_owned(),
        };
        Step::new(
            &step.done,
            Action::Task(Arc::new(UnlessCurrent { current, migrate })),
            &step.on_failure,
        )
    }
}

impl Task for UnlessCurrent {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        if let Some(current) = self.current.check(sh) {
            return Ok(current);
        }
        run::act(sh, &self.migrate)?;
        Ok(format!(
            "migrations applied{}",
            self.current.stack.target.on()
        ))
    }
}

impl fmt::Display for UnlessCurrent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}    # {UNLESS_CURRENT}", self.migrate)
    }
}
