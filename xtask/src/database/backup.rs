//! `cargo xtask backup ENV`: a consistent dump of the environment's database, by its own
//! container's `pg_dump` (the server's version), streamed through the engine (over SSH for
//! a host, from the database's node on a swarm) into the backup directory here, with its
//! manifest. `backup list ENV` shows them, with those the stack's scheduled service keeps
//! on the host; `backup pull ENV` copies those here. A deploy or `migrate` takes one by
//! itself before applying migrations the database lacks (`BeforeMigrations`).

use std::{
    fmt,
    sync::{Arc, Mutex},
};

use anyhow::Context;
use xshell::Shell;

use super::{
    Database, Stdin,
    manifest::{Kind, Manifest, Store},
    snapshot::Snapshot,
    transfer,
};
use crate::{
    cli::{BackupArgs, BackupCommand, EnvArgs},
    docker::{Engine, Needs, images, run},
    image::Reference,
    output,
    plan::{Action, Step, Task},
    stack::{Model, Stack, clock, open, state},
};

/// What the stack's database is, from its model: enough to find it and dump it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub service: String,
    pub user: String,
    pub name: String,
    /// Its image: what `verify` restores with.
    pub image: String,
}

impl Service {
    pub fn of(model: &Model) -> anyhow::Result<Service> {
        let (user, name) = super::owner_and_database(model)?;
        let service = model.xtask.db_service.clone();
        let image = model
            .service(&service)?
            .image
            .clone()
            .with_context(|| format!("{service} has no image"))?;
        Ok(Service {
            service,
            user,
            name,
            image,
        })
    }
}

pub fn run(sh: &Shell, args: &BackupArgs) -> anyhow::Result<()> {
    match &args.action {
        Some(BackupCommand::List(list)) => self::list(sh, &list.env, list.dir.dir.as_deref()),
        Some(BackupCommand::Verify(verify)) => super::verify::run(sh, verify),
        Some(BackupCommand::Pull(pull)) => super::verify::pull(sh, pull),
        None => take_command(sh, args),
    }
}

fn take_command(sh: &Shell, args: &BackupArgs) -> anyhow::Result<()> {
    let env = args.env_args();
    let (stack, model) = open(sh, &env, Needs::ENGINE)?;
    let store = store(sh, &stack, &model, args.dir.dir.as_deref());
    let database = Database::find(sh, &stack, &model)?;
    let manifest = take(
        sh,
        &stack,
        &model,
        &database,
        &store,
        Kind::Manual,
        "taken by hand",
    )?;
    let pruned = match args.keep {
        Some(keep) => store.prune(keep)?,
        None => Vec::new(),
    };
    println!("{}", summary(&manifest, &store));
    if !pruned.is_empty() {
        println!("removed the oldest: {}", pruned.join(", "));
    }
    Ok(())
}

/// The environment's backup directory: `--dir`, else `x-xtask: backups` (`BACKUP_DIR`),
/// else `backups/ENV`.
pub fn store(sh: &Shell, stack: &Stack, model: &Model, dir: Option<&std::path::Path>) -> Store {
    Store::new(
        &sh.current_dir(),
        stack.name(),
        dir,
        model.xtask.backups.as_deref(),
    )
}

/// `backup 20261205T101112Z: 2 tables, 1204 rows, migrations up to V2, 0.1 MB, in backups/prod`.
fn summary(manifest: &Manifest, store: &Store) -> String {
    format!(
        "backup {}: {} tables, {} rows, migrations up to V{}, {}, in {}",
        manifest.id,
        manifest.tables.len(),
        manifest.rows(),
        manifest.newest_migration(),
        output::megabytes(manifest.size),
        store.shown
    )
}

/// A consistent dump of the database into `store`, with its manifest: the rows counted and
/// the dump written from one snapshot, so that they agree whatever clients write meanwhile.
pub fn take(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    database: &Database,
    store: &Store,
    kind: Kind,
    reason: &str,
) -> anyhow::Result<Manifest> {
    let service = Service::of(model)?;
    store.create()?;
    let taken_at = clock::now();
    let id = store.new_id(&taken_at);
    let mut snapshot = Snapshot::open(sh, database)?;
    let dumped = snapshot.contents().and_then(|contents| {
        let dump = database.exec(
            Stdin::Closed,
            [
                "pg_dump",
                "--username",
                &database.user,
                "--dbname",
                &database.name,
                "--format",
                "custom",
                "--snapshot",
                &snapshot.id,
            ],
        );
        let label = format!("backup {id}{}", stack.target.on());
        let received = transfer::receive(sh, &dump, &store.dump(&id), &label)?;
        Ok((contents, received))
    });
    let closed = snapshot.close();
    let (contents, received) = dumped?;
    closed?;
    let (image, revision) = serving(sh, stack);
    let manifest = Manifest {
        id,
        env: stack.name().to_owned(),
        kind,
        reason: reason.to_owned(),
        taken_at,
        by: clock::who(sh),
        image,
        revision,
        migrations: contents.migrations,
        tables: contents.tables,
        postgres_image: service.image,
        server_version: contents.server_version,
        size: received.size,
        sha256: received.sha256,
    };
    store.write(&manifest).inspect_err(|_| {
        let _ = std::fs::remove_file(store.dump(&manifest.id));
    })?;
    output::done(
        &format!(
            "backup {} ({}, {})",
            manifest.id,
            output::megabytes(received.size),
            output::rate(received.size, received.elapsed)
        ),
        received.elapsed,
    );
    Ok(manifest)
}

/// The image that serves, as the history records it, and its revision: best effort, for
/// the manifest.
fn serving(sh: &Shell, stack: &Stack) -> (Option<String>, Option<String>) {
    let Ok(records) = state::history(sh, stack) else {
        return (None, None);
    };
    let Some(image) = state::recent_images(&records, 1).into_iter().next() else {
        return (None, None);
    };
    let label = "{{index .Config.Labels \"org.opencontainers.image.revision\"}}";
    let revision = run::read(
        sh,
        &stack
            .engine()
            .docker(["image", "inspect", "--format", label, &image]),
    )
    .ok()
    .map(|revision| revision.trim().to_owned())
    .filter(|revision| !revision.is_empty());
    (Some(image), revision)
}

fn list(sh: &Shell, env: &EnvArgs, dir: Option<&std::path::Path>) -> anyhow::Result<()> {
    let (stack, model) = open(sh, env, Needs::ENGINE)?;
    let store = store(sh, &stack, &model, dir);
    let manifests = store.list()?;
    if manifests.is_empty() {
        println!("no backup of {} in {}", stack.name(), store.shown);
    } else {
        println!("in {}:", store.shown);
        let rows: Vec<[String; 5]> = manifests
            .iter()
            .rev()
            .map(|manifest| {
                [
                    manifest.id.clone(),
                    format!("{:?}", manifest.kind).to_lowercase(),
                    format!("V{}", manifest.newest_migration()),
                    format!("{} rows", manifest.rows()),
                    output::megabytes(manifest.size),
                ]
            })
            .collect();
        print!(
            "{}",
            output::table(&["ID", "KIND", "SCHEMA", "ROWS", "SIZE"], &rows)
        );
    }
    super::verify::list_scheduled(sh, &stack, &model)
}

/// What comes before the migrations of a deploy or `migrate`.
#[derive(Debug, Clone)]
pub enum Before {
    /// A backup into this store, if the image brings migrations the database lacks; its
    /// ID then in `Taken`, for the history.
    Backup { store: Store, taken: Taken },
    /// Nothing (`--no-backup`, or a restore, which took its own).
    Nothing,
}

/// Which backup preceded the migrations, once one did.
#[derive(Debug, Clone, Default)]
pub struct Taken(Arc<Mutex<Option<String>>>);

impl Taken {
    pub fn get(&self) -> Option<String> {
        self.0.lock().ok()?.clone()
    }

    fn set(&self, id: String) {
        if let Ok(mut taken) = self.0.lock() {
            *taken = Some(id);
        }
    }
}

impl Before {
    /// The backup taken before the migrations, if one was.
    pub fn taken(&self) -> Option<String> {
        match self {
            Before::Backup { taken, .. } => taken.get(),
            Before::Nothing => None,
        }
    }

    /// The step, placed after the database is up and before the migrations: `image` is the
    /// one about to migrate, on `engine` by then.
    pub fn step(
        &self,
        stack: &Stack,
        model: &Model,
        image: &Reference,
        engine: &Engine,
    ) -> Option<Step> {
        let Before::Backup { store, taken } = self else {
            return None;
        };
        let task = BeforeMigrations {
            stack: stack.clone(),
            model: Arc::new(model.clone()),
            store: store.clone(),
            image: image.clone(),
            engine: engine.clone(),
            taken: taken.clone(),
        };
        Some(Step::new(
            "backup before the migrations",
            Action::Task(Arc::new(task)),
            "no backup before the migrations, so nothing was migrated (`--no-backup` skips it)",
        ))
    }
}

/// Before the migrations of a deploy or `migrate`: a backup, if the image brings
/// migrations the database has not applied. A database without any (a first deploy) has
/// nothing to lose.
#[derive(Debug)]
struct BeforeMigrations {
    stack: Stack,
    model: Arc<Model>,
    store: Store,
    image: Reference,
    engine: Engine,
    taken: Taken,
}

impl Task for BeforeMigrations {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        let database = Database::find(sh, &self.stack, &self.model)?;
        let applied = database.applied_migration(sh)?;
        let image = self.image.to_string();
        // Pulled by the engine that will run it anyway: a swarm's job, from the registry.
        if self.image.registry().is_some() && !images::has(sh, &self.engine, &image)? {
            run::act(sh, &self.engine.docker(["pull", "--quiet", &image]))?;
        }
        let knows = migrations_known(sh, &self.engine, &image)?;
        let pending = match (applied, knows) {
            (None, _) => return Ok("no backup: the database has no migration yet".to_owned()),
            (Some(applied), Some(knows)) => knows > applied,
            // Whether it brings any cannot be told: better a backup too many.
            (Some(_), None) => true,
        };
        if !pending {
            return Ok(format!(
                "no backup needed: the database has every migration {image} knows"
            ));
        }
        let reason = format!("before the migrations of {image}");
        let manifest = take(
            sh,
            &self.stack,
            &self.model,
            &database,
            &self.store,
            Kind::Migrations,
            &reason,
        )
        .context("the backup before the migrations failed, so nothing was changed")?;
        self.taken.set(manifest.id.clone());
        Ok(format!(
            "backup {} before the migrations, in {}",
            manifest.id, self.store.shown
        ))
    }
}

impl fmt::Display for BeforeMigrations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let db = &self.model.xtask.db_service;
        write!(
            f,
            "# if {} brings migrations {db}'s database lacks: a backup into {}/<ID>.dump, as `cargo xtask backup {}` takes it",
            self.image,
            self.store.shown,
            self.stack.name()
        )
    }
}

/// The newest migration `image` knows, on `engine`: its `travial.migrations` label (`cargo
/// xtask build` writes it), else its own `app migrations`, run there without pulling
/// anything; `None` if neither answers.
pub fn migrations_known(sh: &Shell, engine: &Engine, image: &str) -> anyhow::Result<Option<i64>> {
    let label = "{{index .Config.Labels \"travial.migrations\"}}";
    let Some(labelled) = images::label(sh, engine, image, label)? else {
        anyhow::bail!(
            "{engine} has no image {image}: build it (`cargo xtask build`) or send it with a deploy"
        );
    };
    if let Ok(version) = labelled.trim().parse::<i64>() {
        return Ok(Some(version));
    }
    let asked = run::read(sh, &engine.run_once(image, None, "app", &["migrations"]));
    Ok(asked.ok().and_then(|text| text.trim().parse().ok()))
}
