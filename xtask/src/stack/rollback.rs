//! `cargo xtask rollback ENV [--to TAG]`: back to the image deployed before the current
//! one (or the one `--to` names, of the same repository), with the same switch as a
//! deploy, under the same lock, recorded in the same history. Migrations are never
//! reverted: an image that knows fewer than the database has applied needs `--force`.

use std::sync::Arc;

use anyhow::{Context, bail};
use xshell::Shell;

use super::{
    Model, Stack, Target,
    deploy::IMAGES_KEPT,
    open,
    proxy::ProxyConfig,
    release::{self, Release},
    state::{self, Lock, Record},
    switch::Switch,
};
use crate::{
    cli::RollbackArgs,
    database::{
        self, Database, Manifest, Store,
        backup::{self, migrations_known},
        restore,
    },
    docker::{Engine, Needs, images, run},
    hint::Hint,
    image::Reference,
    interrupt,
    plan::{self, Action, Step},
    swarm,
};

pub fn run(sh: &Shell, args: &RollbackArgs) -> anyhow::Result<()> {
    let (stack, model) = open(sh, &args.env, Needs::ENGINE)?;
    let stack = stack.with_resolved_secrets(sh, &model, args.secrets.file.as_deref())?;
    let env = &args.env.env;
    let lock = match args.dry_run {
        true => None,
        false => Some(Lock::take(sh, &stack, "rollback", args.break_lock)?),
    };
    if !args.dry_run {
        // A swarm's rollback deploys the whole stack again, db with the image the settings
        // name now: never another PostgreSQL major on the data.
        database::version::check(sh, &stack, &model)?;
    }
    let records = state::history(sh, &stack)?;
    let (image, current) = target(&records, args.to.as_deref(), env)?;
    let image = Reference::parse(&image)?;
    let store = backup::store(sh, &stack, &model, args.dir.dir.as_deref());
    let undo_with = backup_before(&records, &image, &store)?;
    // Asking the target image and the database runs containers: not in a dry run.
    let restoring = match args.dry_run {
        true => None,
        false => check_migrations(sh, &stack, &model, &image, args, undo_with.as_ref())?,
    };
    let stack = stack.running(&image);
    let release = Release::deployed(image.clone(), &model.xtask.web_service);
    let steps = match &stack.target {
        Target::Compose { engine } => compose_steps(sh, &stack, engine, &model, &release, args)?,
        Target::Swarm { manager } => {
            let dry_run = match args.dry_run {
                true => swarm::DryRun::Yes,
                false => swarm::DryRun::No,
            };
            let facts = swarm::Facts::read(sh, manager, dry_run)?;
            swarm::Plan::new(&stack, manager, &model, &facts, args.timeout).rollback(&release)?
        }
    };
    let Some(lock) = lock else {
        println!("# from {} back to {image}", current.unwrap_or_default());
        println!(
            "# first: the migrations {image} knows, checked against the database's (--force skips the refusal)"
        );
        if let (true, Some(backup)) = (args.restore, &undo_with) {
            println!(
                "# then, the maintenance page on, backup {} restored (as `cargo xtask restore {env} {}` does), migrated by {image}",
                backup.id, backup.id
            );
        }
        plan::print(&steps);
        println!("{}", super::deploy::LOCKED);
        return Ok(());
    };
    interrupt::set_hint(format!(
        "run `cargo xtask rollback {env}` again to finish, or `cargo xtask history {env}` to see where it stands"
    ));
    let record = state::begin(sh, &stack, &lock, "rollback", &image.to_string())?;
    let mut undo = None;
    let outcome = match &restoring {
        None => plan::execute(sh, &steps),
        Some(backup) => restore::under_maintenance(sh, &stack, &model, || {
            restore::restore(
                sh,
                &stack,
                &model,
                (&store, backup),
                &store,
                &image,
                &mut undo,
            )?;
            plan::execute(sh, &steps)
        }),
    };
    let result = super::deploy::serving_or_reason(sh, &stack, &model, &outcome);
    let record = Record {
        backup: undo,
        ..record
    };
    state::finish(sh, &stack, &lock, &record, result);
    outcome?;
    println!("{env} is back on {image}{}", stack.target.on());
    if let Some(backup) = restoring {
        println!(
            "with the data of backup {}; the data it replaced is kept as backup {}",
            backup.id,
            record.backup.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// The backup taken before the first deploy after `image` last served that took one:
/// the data as it was before the migrations `image` does not know. Only if this machine
/// has it.
fn backup_before(
    records: &[Record],
    image: &Reference,
    store: &Store,
) -> anyhow::Result<Option<Manifest>> {
    let image = image.to_string();
    let since = records
        .iter()
        .rposition(|record| record.succeeded() && record.image == image)
        .map_or(0, |last| last + 1);
    let Some(id) = records[since..].iter().find_map(|record| {
        record
            .backup
            .as_deref()
            .filter(|_| record.command == "deploy")
    }) else {
        return Ok(None);
    };
    Ok(store.find(Some(id)).ok())
}

/// Which image to go back to, and the current one: `--to TAG` of the current image's
/// repository, else the newest image that succeeded before the current one.
pub fn target(
    records: &[Record],
    to: Option<&str>,
    env: &str,
) -> anyhow::Result<(String, Option<String>)> {
    let succeeded: Vec<&Record> = records.iter().filter(|record| record.succeeded()).collect();
    let current = succeeded.last().map(|record| record.image.clone());
    let Some(now) = &current else {
        bail!(
            "{env} was never deployed here, so there is nothing to roll back to: `cargo xtask deploy {env}`"
        );
    };
    let target = match to {
        Some(tag) => Reference::new(Reference::parse(now)?.repository, tag).to_string(),
        None => succeeded
            .iter()
            .rev()
            .map(|record| &record.image)
            .find(|image| *image != now)
            .cloned()
            .with_context(|| {
                format!("{env} has no earlier image to go back to: the history holds only {now} (`cargo xtask history {env}`)")
            })?,
    };
    if target == *now {
        bail!("{env} runs {target} already");
    }
    Ok((target, current))
}

/// On one engine: the image there (pulled from its registry, or sent from here, if need
/// be), then the switch.
fn compose_steps(
    sh: &Shell,
    stack: &Stack,
    engine: &Engine,
    model: &Model,
    release: &Release,
    args: &RollbackArgs,
) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    let image = &release.runs;
    let shown = image.to_string();
    if images::has(sh, engine, &shown)? {
        // Nothing to bring.
    } else if release.registry.is_some() {
        steps.push(release::pull(engine, image));
    } else if engine.is_local() || !images::has(sh, &Engine::Local, &shown)? {
        bail!(
            "{image} is no longer on {engine} (the last {IMAGES_KEPT} deployed images are kept): deploy that revision instead"
        );
    } else {
        steps.push(Step::ship(image, vec![engine.clone()]));
    }
    steps.extend(ProxyConfig::of(stack, model)?.map(|config| config.check_step()));
    let switch = Switch::new(stack, model, args.timeout)?;
    steps.push(
        Step::new(
            &format!(
                "{} back on {image}{}",
                model.xtask.web_service,
                stack.target.on()
            ),
            Action::Task(Arc::new(switch)),
            &format!("the rollback to {image} did not happen"),
        )
        .starts(&model.xtask.web_service),
    );
    Ok(steps)
}

/// Refuses an image that knows fewer migrations than the database has applied, unless
/// forced (the schema stays as it is, and that image's code may not work with it) or told
/// to restore the backup taken before them: then that backup, to restore.
fn check_migrations(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    target: &Reference,
    args: &RollbackArgs,
    backup: Option<&Manifest>,
) -> anyhow::Result<Option<Manifest>> {
    let knows = knows(sh, stack.engine(), target)?;
    let applied = Database::find(sh, stack, model)
        .and_then(|database| database.applied_migration(sh))
        .ok()
        .flatten();
    let env = stack.name();
    let unsure = |what: String| -> anyhow::Result<Option<Manifest>> {
        match args.force {
            true => Ok(None),
            false => Err(Hint::new(what, "roll back anyway with --force").into()),
        }
    };
    let (knows, applied) = match (knows, applied) {
        (Some(knows), Some(applied)) => (knows, applied),
        (None, _) => {
            return unsure(format!(
                "cannot tell which migrations {target} knows (`app migrations` failed in it: an image older than that command?)"
            ));
        }
        (_, None) => {
            return unsure(format!(
                "cannot read which migrations the database has applied (is {} running?)",
                model.xtask.db_service
            ));
        }
    };
    if knows >= applied || args.force {
        return Ok(None);
    }
    let problem = format!(
        "{target} knows the migrations up to V{knows}, and the database has V{applied} applied: \
         migrations are never reverted, so its code may not work with this schema"
    );
    match (backup, args.restore) {
        (Some(backup), true) if backup.newest_migration() <= knows => {
            plan::confirm_by_name(
                env,
                &format!(
                    "rolling back to {target} with --restore replaces the data of {env} with backup {} (taken {}, before the migrations after V{knows}): what was written since is lost (a backup of it is taken first)",
                    backup.id, backup.taken_at
                ),
                args.yes,
            )?;
            Ok(Some(backup.clone()))
        }
        (Some(backup), _) => Err(Hint::new(
            problem,
            format!(
                "`cargo xtask rollback {env} --restore` also restores backup {} (taken {} before them), or deploy a fix instead, or roll back anyway with --force",
                backup.id, backup.taken_at
            ),
        )
        .into()),
        (None, _) => Err(Hint::new(
            problem,
            "no backup here was taken before them: deploy a fix instead, or roll back anyway with --force",
        )
        .into()),
    }
}

/// The newest migration `image` knows, asked where it is: on the engine, else here (it is
/// sent from here), else pulled from the registry its name gives.
fn knows(sh: &Shell, engine: &Engine, image: &Reference) -> anyhow::Result<Option<i64>> {
    let shown = image.to_string();
    if images::has(sh, engine, &shown)? {
        return migrations_known(sh, engine, &shown);
    }
    if images::has(sh, &Engine::Local, &shown)? {
        return migrations_known(sh, &Engine::Local, &shown);
    }
    if image.registry().is_some() {
        run::act(sh, &engine.docker(["pull", "--quiet", &shown]))?;
        return migrations_known(sh, engine, &shown);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(image: &str, result: &str) -> Record {
        Record {
            at: String::new(),
            by: String::new(),
            command: "deploy".into(),
            image: image.into(),
            result: result.into(),
            container: None,
            backup: None,
        }
    }

    #[test]
    fn back_to_the_image_that_served_before_the_current_one() {
        let records = [
            record("app:1", "succeeded"),
            record("app:2", "succeeded"),
            record("app:2", "succeeded"),
            record("app:3", "failed: never ready"),
        ];
        let (target, current) = target(&records, None, "prod").unwrap();
        assert_eq!(
            (target.as_str(), current.as_deref()),
            ("app:1", Some("app:2"))
        );
        assert_eq!(target_of(&records, Some("0a1b2c3")), "app:0a1b2c3");
        let only = [record("app:1", "succeeded")];
        let err = super::target(&only, None, "prod").unwrap_err().to_string();
        assert!(
            err.starts_with("prod has no earlier image to go back to"),
            "{err}"
        );
        let none = super::target(&[], None, "prod").unwrap_err().to_string();
        assert!(none.starts_with("prod was never deployed here"), "{none}");
        assert!(
            super::target(&records, Some("2"), "prod").is_err(),
            "the current one"
        );
    }

    fn target_of(records: &[Record], to: Option<&str>) -> String {
        super::target(records, to, "prod").unwrap().0
    }
}
