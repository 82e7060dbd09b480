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
    release::{self, Release},
    state::{self, Lock, Record},
    switch::Switch,
};
use crate::{
    cli::RollbackArgs,
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
    let records = state::history(sh, &stack)?;
    let (image, current) = target(&records, args.to.as_deref(), env)?;
    let image = Reference::parse(&image)?;
    // Asking the target image and the database runs containers: not in a dry run.
    if !args.dry_run {
        check_migrations(sh, &stack, &model, &image, args.force)?;
    }
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
        plan::print(&steps);
        println!("{}", super::deploy::LOCKED);
        return Ok(());
    };
    interrupt::set_hint(format!(
        "run `cargo xtask rollback {env}` again to finish, or `cargo xtask history {env}` to see where it stands"
    ));
    let record = state::begin(sh, &stack, &lock, "rollback", &image.to_string())?;
    let outcome = plan::execute(sh, &steps);
    let result = super::deploy::serving_or_reason(sh, &stack, &model, &outcome);
    state::finish(sh, &stack, &lock, &record, result);
    outcome?;
    println!("{env} is back on {image}{}", stack.target.on());
    Ok(())
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
    let switch = Switch::new(stack, model, args.timeout);
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
/// forced: the schema stays as it is, and that image's code may not work with it.
fn check_migrations(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    target: &Reference,
    force: bool,
) -> anyhow::Result<()> {
    let engine = stack.engine();
    let image = target.to_string();
    let knows = run::read(
        sh,
        &engine.docker(["run", "--rm", "--entrypoint", "app", &image, "migrations"]),
    )
    .ok()
    .and_then(|text| text.trim().parse::<i64>().ok());
    let db = &model.xtask.db_service;
    let environment = &model.service(db)?.environment;
    let setting = |name: &str, default: &str| {
        environment
            .get(name)
            .cloned()
            .flatten()
            .unwrap_or_else(|| default.to_owned())
    };
    let (user, database) = (
        setting("POSTGRES_USER", "postgres"),
        setting("POSTGRES_DB", "postgres"),
    );
    let query = "SELECT COALESCE(MAX(version), 0) FROM refinery_schema_history";
    let psql = ["psql", "-U", &user, "-d", &database, "-tAc", query];
    let exec = match &stack.target {
        // The database's task runs on the manager (the node labelled for it).
        Target::Swarm { .. } => {
            let filter = format!(
                "label=com.docker.swarm.service.name={}",
                swarm::service_name(stack, db)
            );
            let id = run::read(sh, &engine.docker(["ps", "--quiet", "--filter", &filter]))?;
            let mut args = vec![
                "exec".to_owned(),
                id.lines().next().unwrap_or_default().to_owned(),
            ];
            args.extend(psql.map(str::to_owned));
            engine.docker(args)
        }
        Target::Compose { .. } => {
            let mut args = vec!["exec", "-T", db.as_str()];
            args.extend(psql);
            stack.compose(&args)
        }
    };
    let applied = run::read(sh, &exec)
        .ok()
        .and_then(|text| text.trim().parse::<i64>().ok());
    let unsure = |what: String| -> anyhow::Result<()> {
        match force {
            true => Ok(()),
            false => Err(Hint::new(what, "roll back anyway with --force").into()),
        }
    };
    match (knows, applied) {
        (Some(knows), Some(applied)) if knows < applied && !force => Err(Hint::new(
            format!(
                "{target} knows the migrations up to V{knows}, and the database has V{applied} applied: \
                 migrations are never reverted, so its code may not work with this schema"
            ),
            "roll back anyway with --force, or deploy a fix instead",
        )
        .into()),
        (Some(_), Some(_)) => Ok(()),
        (None, _) => unsure(format!(
            "cannot tell which migrations {target} knows (`app migrations` failed in it: an image older than that command?)"
        )),
        (_, None) => unsure(format!(
            "cannot read which migrations the database has applied (is {db} running?)"
        )),
    }
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
