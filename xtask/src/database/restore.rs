//! `cargo xtask restore ENV [ID|FILE]`: the environment's data replaced by a backup's, under
//! the deploy lock, after typing the environment's name (`--yes` for scripts).
//!
//! 1. the dump checked against its manifest (size, SHA-256), its migrations against the
//!    image that serves (a dump ahead of it needs `--force`);
//! 2. a backup of the data it replaces, so that a restore can be undone;
//! 3. the maintenance page on: the proxy answers 503 with it, health checks aside;
//! 4. the dump restored into a new database beside the live one: a failure there leaves
//!    the live one as it was;
//! 5. the swap: the live database closed to new connections, its sessions ended, then both
//!    renamed in one transaction; the old one dropped once the new one serves;
//! 6. the migrations of the image that will serve, which also grant web's role;
//! 7. the maintenance page off. web's pool reconnects by itself: no redeploy.

use std::path::PathBuf;

use anyhow::{Context, bail};
use xshell::Shell;

use super::{
    Database, Stdin,
    backup::{self, migrations_known},
    maintenance::{self, Mode},
    manifest::{Kind, Manifest, Store},
    transfer,
};
use crate::{
    cli::RestoreArgs,
    docker::{Needs, run},
    hint::Hint,
    image::Reference,
    interrupt, plan,
    stack::{
        Model, Stack, migrate, open,
        state::{self, Lock},
    },
};

pub fn run(sh: &Shell, args: &RestoreArgs) -> anyhow::Result<()> {
    let (stack, model) = open(sh, &args.env, Needs::ENGINE)?;
    let stack = stack.with_resolved_secrets(sh, &model, args.secrets.file.as_deref())?;
    let env = stack.name().to_owned();
    let (store, manifest) = chosen(sh, &stack, &model, args)?;
    store
        .check(&manifest)
        .with_context(|| format!("backup {} cannot be restored", manifest.id))?;
    plan::confirm_by_name(
        &env,
        &format!(
            "restoring replaces the data of {env}{} with backup {} (taken {}, {} rows, migrations up to V{})",
            stack.target.on(),
            manifest.id,
            manifest.taken_at,
            manifest.rows(),
            manifest.newest_migration()
        ),
        args.yes,
    )?;
    let lock = Lock::take(sh, &stack, "restore", args.break_lock)?;
    let serving = serving_image(sh, &stack)?;
    check_migrations(sh, &stack, &manifest, &serving, args.force)?;
    interrupt::set_hint(format!(
        "the data of {env} is as it was unless the swap had begun: `cargo xtask history {env}`, then `cargo xtask maintenance {env} off` if the page stays"
    ));
    let record = state::begin(sh, &stack, &lock, "restore", &serving.to_string())?;
    let undo_store = backup::store(sh, &stack, &model, args.dir.dir.as_deref());
    let mut undo = None;
    let outcome = under_maintenance(sh, &stack, &model, || {
        restore(
            sh,
            &stack,
            &model,
            (&store, &manifest),
            &undo_store,
            &serving,
            &mut undo,
        )
    });
    let result = match &outcome {
        Ok(()) => Ok(format!("backup {}", manifest.id)),
        Err(err) => Err(crate::output::error_line(err)),
    };
    let record = state::Record {
        backup: undo.clone(),
        ..record
    };
    state::finish(sh, &stack, &lock, &record, result);
    outcome?;
    println!(
        "{env} serves backup {}{}; the data it replaced is backup {} (`cargo xtask restore {env} {}` brings it back)",
        manifest.id,
        stack.target.on(),
        undo.as_deref().unwrap_or("-"),
        undo.as_deref().unwrap_or("-"),
    );
    Ok(())
}

/// The backup to restore, and the store it is in: an ID of the environment's store, a
/// dump file given by its path (its manifest beside it), or the newest backup.
fn chosen(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    args: &RestoreArgs,
) -> anyhow::Result<(Store, Manifest)> {
    let store = backup::store(sh, stack, model, args.dir.dir.as_deref());
    let Some(given) = args
        .backup
        .as_deref()
        .filter(|given| given.ends_with(".dump"))
    else {
        let manifest = store.find(args.backup.as_deref())?;
        return Ok((store, manifest));
    };
    let path = sh.current_dir().join(given);
    let id = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .context("a dump file is named ID.dump")?
        .to_owned();
    let dir: PathBuf = path.parent().map(PathBuf::from).unwrap_or_default();
    let beside = Store {
        shown: dir.display().to_string(),
        dir,
    };
    let manifest = beside.find(Some(&id)).with_context(|| {
        format!("{given} has no manifest beside it ({id}.json): restore a backup this tool took")
    })?;
    Ok((beside, manifest))
}

/// The image that serves now, as the history records it.
pub fn serving_image(sh: &Shell, stack: &Stack) -> anyhow::Result<Reference> {
    let records = state::history(sh, stack)?;
    let image = state::recent_images(&records, 1)
        .into_iter()
        .next()
        .with_context(|| {
            format!(
                "{} was never deployed{}: deploy it first (`cargo xtask deploy {}`), then restore",
                stack.name(),
                stack.target.on(),
                stack.name()
            )
        })?;
    Reference::parse(&image)
}

/// A dump whose schema is ahead of the image that will serve is refused unless forced:
/// that image's code may not work with it.
fn check_migrations(
    sh: &Shell,
    stack: &Stack,
    manifest: &Manifest,
    image: &Reference,
    force: bool,
) -> anyhow::Result<()> {
    let knows = migrations_known(sh, stack.engine(), &image.to_string())?;
    match knows {
        Some(knows) if manifest.newest_migration() > knows && !force => Err(Hint::new(
            format!(
                "backup {} has migrations up to V{}, and {image}, which serves, knows them up to V{knows}",
                manifest.id,
                manifest.newest_migration()
            ),
            "deploy an image that knows them first, or restore anyway with --force",
        )
        .into()),
        _ => Ok(()),
    }
}

/// `work` with the maintenance page on, taken off afterwards whatever happened.
pub fn under_maintenance(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    work: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    maintenance::set(sh, stack, model, Mode::On)?;
    let done = work();
    let page_off = maintenance::set(sh, stack, model, Mode::Off);
    done?;
    page_off
}

/// Steps 2 and 4 to 6 (see the module's comment): `backup` restored, the data it replaces
/// backed up into `undo_store` first (its ID in `undo`), then migrated by `migrate_with`.
pub fn restore(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    (store, manifest): (&Store, &Manifest),
    undo_store: &Store,
    migrate_with: &Reference,
    undo: &mut Option<String>,
) -> anyhow::Result<()> {
    let database = Database::find(sh, stack, model)?;
    let before = backup::take(
        sh,
        stack,
        model,
        &database,
        undo_store,
        Kind::Restore,
        &format!("before restoring {}", manifest.id),
    )
    .context("the backup of the current data failed, so nothing was changed")?;
    *undo = Some(before.id);
    replace(sh, stack, model, store, manifest, &database, migrate_with)
}

fn replace(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    store: &Store,
    manifest: &Manifest,
    database: &Database,
    migrate_with: &Reference,
) -> anyhow::Result<()> {
    let live = database.name.clone();
    let restoring = format!("{live}_restoring");
    let replaced = format!("{live}_replaced");
    let on_postgres = |sql: &str, what: &str| -> anyhow::Result<()> {
        let variables = [
            ("live", live.as_str()),
            ("restoring", restoring.as_str()),
            ("replaced", replaced.as_str()),
            ("owner", database.user.as_str()),
        ];
        let command = database
            .psql(Some("postgres"), &variables)
            .stdin_content(what, sql.as_bytes().to_vec());
        run::act(sh, &command)
    };
    // What an earlier restore left goes first: a database it failed to fill before its
    // swap, or the data it replaced when it failed after the swap (that data is in the
    // backup that restore took first); else this swap could not take the name.
    on_postgres(
        "SET client_min_messages TO warning;\n\
         DROP DATABASE IF EXISTS :\"restoring\" WITH (FORCE);\n\
         DROP DATABASE IF EXISTS :\"replaced\" WITH (FORCE);\n\
         CREATE DATABASE :\"restoring\" OWNER :\"owner\";\n",
        "a database beside the live one",
    )?;
    let pg_restore = database.exec(
        Stdin::Read,
        [
            "pg_restore",
            "--username",
            &database.user,
            "--dbname",
            &restoring,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
        ],
    );
    let restored = transfer::send(
        sh,
        &store.dump(&manifest.id),
        &pg_restore,
        &format!("restoring {}{}", manifest.id, stack.target.on()),
    );
    if let Err(err) = restored {
        let _ = on_postgres(
            "SET client_min_messages TO warning;\n\
             DROP DATABASE IF EXISTS :\"restoring\" WITH (FORCE);\n",
            "the half-restored database",
        );
        return Err(err.context(format!(
            "backup {} did not restore, so the live data is as it was",
            manifest.id
        )));
    }
    // New sessions refused, those open ended (web's pool makes new ones), then the swap in
    // one transaction: either both names changed, or neither.
    let swapped = on_postgres(
        "ALTER DATABASE :\"live\" ALLOW_CONNECTIONS false;\n\
         SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = :'live' AND pid <> pg_backend_pid() \\gset\n\
         BEGIN;\n\
         ALTER DATABASE :\"live\" RENAME TO :\"replaced\";\n\
         ALTER DATABASE :\"restoring\" RENAME TO :\"live\";\n\
         COMMIT;\n",
        "the swap",
    );
    if let Err(err) = swapped {
        let _ = on_postgres(
            "SET client_min_messages TO warning;\n\
             ALTER DATABASE :\"live\" ALLOW_CONNECTIONS true;\n\
             DROP DATABASE IF EXISTS :\"restoring\" WITH (FORCE);\n",
            "the live database open again",
        );
        return Err(err.context("the swap failed, so the live data is as it was"));
    }
    crate::output::done(
        &format!("{live} holds backup {}{}", manifest.id, stack.target.on()),
        std::time::Duration::ZERO,
    );
    let release =
        crate::stack::release::Release::deployed(migrate_with.clone(), &model.xtask.web_service);
    let steps = migrate::plan(
        sh,
        &release.applied_to(stack.clone()),
        model,
        &release,
        backup::Before::Nothing,
        migrate::TIMEOUT,
    )?;
    plan::execute(sh, &steps).context("the restored data is live, but its migrations failed")?;
    if let Err(err) = on_postgres(
        "SET client_min_messages TO warning;\n\
         DROP DATABASE IF EXISTS :\"replaced\" WITH (FORCE);\n",
        "the replaced database dropped",
    ) {
        bail!("{err:#}: the data it held is in the backup taken before the restore");
    }
    Ok(())
}
