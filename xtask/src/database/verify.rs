//! `cargo xtask backup verify ENV [ID]`: a backup restored into a throwaway PostgreSQL
//! container of the database's image, with no network, and each table's rows compared with
//! its manifest; a dump cut short or altered fails before, by its size and SHA-256.
//!
//! Also the backups the stack's scheduled service keeps on the host: listed by `backup
//! list`, copied here by `backup pull` (each restored the same way on the way in: its
//! manifest's counts are those of a restore that worked).

use std::{fmt::Write as _, path::Path, time::Duration};

use anyhow::{Context, bail};
use xshell::Shell;

use super::{
    Database, Stdin,
    backup::{self, Service},
    manifest::{Kind, Manifest, Store},
    snapshot::{Contents, Snapshot},
    transfer,
};
use crate::{
    cli::{PullArgs, VerifyArgs},
    docker::{Engine, Needs, images, run},
    interrupt, output,
    poll::{Answer, Poll},
    stack::{Model, Stack, Target, clock, open},
};

/// How long a throwaway server may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(sh: &Shell, args: &VerifyArgs) -> anyhow::Result<()> {
    let (stack, model) = open(sh, &args.env, Needs::ENGINE)?;
    let store = backup::store(sh, &stack, &model, args.dir.dir.as_deref());
    let manifest = store.find(args.id.as_deref())?;
    let restored = verify(sh, &stack, &model, &store, &manifest)?;
    println!(
        "backup {} restores: {} tables, {} rows, migrations up to V{}, as its manifest says",
        manifest.id,
        restored.tables.len(),
        restored.tables.values().sum::<u64>(),
        manifest.newest_migration()
    );
    Ok(())
}

/// The dump checked against its manifest, restored, and what it holds compared.
pub fn verify(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    store: &Store,
    manifest: &Manifest,
) -> anyhow::Result<Contents> {
    let dump = store
        .check(manifest)
        .with_context(|| format!("backup {} cannot be used", manifest.id))?;
    let engine = restore_engine(sh, stack, model);
    let service = Service {
        image: manifest.postgres_image.clone(),
        ..Service::of(model)?
    };
    let restored = restore_throwaway(sh, &engine, &service, &dump)
        .with_context(|| format!("backup {} does not restore", manifest.id))?;
    compare(manifest, &restored).with_context(|| {
        format!(
            "backup {} restored, but not as its manifest says",
            manifest.id
        )
    })?;
    Ok(restored)
}

/// Where a throwaway server runs: the engine of the stack's database (it has the image).
fn restore_engine(sh: &Shell, stack: &Stack, model: &Model) -> Engine {
    match Database::find(sh, stack, model) {
        Ok(database) => database.engine,
        Err(_) => stack.engine().clone(),
    }
}

/// Every difference between what the manifest says and what the restore holds.
fn compare(manifest: &Manifest, restored: &Contents) -> anyhow::Result<()> {
    let mut differences = String::new();
    for (table, rows) in &manifest.tables {
        match restored.tables.get(table) {
            Some(found) if found == rows => {}
            Some(found) => {
                let _ = write!(
                    differences,
                    "; {table}: {rows} rows in the manifest, {found} restored"
                );
            }
            None => {
                let _ = write!(differences, "; {table} is missing");
            }
        }
    }
    for table in restored.tables.keys() {
        if !manifest.tables.contains_key(table) {
            let _ = write!(differences, "; {table} is not in the manifest");
        }
    }
    if manifest.migrations != restored.migrations {
        let _ = write!(
            differences,
            "; migrations {:?} in the manifest, {:?} restored",
            manifest.migrations, restored.migrations
        );
    }
    match differences.strip_prefix("; ") {
        Some(differences) => bail!("{differences}"),
        None => Ok(()),
    }
}

/// `dump` restored into a new container of `service.image` on `engine`, with no network
/// and no password (nothing can reach it), removed afterwards whatever happens; what it
/// then holds.
pub fn restore_throwaway(
    sh: &Shell,
    engine: &Engine,
    service: &Service,
    dump: &Path,
) -> anyhow::Result<Contents> {
    if !images::has(sh, engine, &service.image)? {
        bail!(
            "{engine} has no image {}, which the backup restores with: deploy the environment first",
            service.image
        );
    }
    let name = format!("travial-xtask-verify-{}", std::process::id());
    let start = engine.docker([
        "run",
        "--detach",
        "--rm",
        "--name",
        &name,
        "--network",
        "none",
        "--pull",
        "never",
        "--env",
        &format!("POSTGRES_USER={}", service.user),
        "--env",
        &format!("POSTGRES_DB={}", service.name),
        "--env",
        "POSTGRES_HOST_AUTH_METHOD=trust",
        &service.image,
    ]);
    run::read(sh, &start)?;
    let remove = engine.docker(["rm", "--force", "--volumes", &name]);
    let dir = sh.current_dir();
    let cleanup = remove.clone();
    interrupt::on_interruption(
        &name,
        Box::new(move || {
            run::while_stopping(&dir, &cleanup);
        }),
    );
    let database = Database {
        engine: engine.clone(),
        container: name.clone(),
        user: service.user.clone(),
        name: service.name.clone(),
    };
    let restored = restore_into(sh, &database, dump);
    let _ = run::probe(sh, &remove);
    interrupt::forget_cleanup(&name);
    restored
}

fn restore_into(sh: &Shell, database: &Database, dump: &Path) -> anyhow::Result<Contents> {
    let ready = database.exec(
        Stdin::Closed,
        [
            "pg_isready",
            "--host",
            "127.0.0.1",
            "--username",
            &database.user,
            "--dbname",
            &database.name,
        ],
    );
    Poll::new(
        "the throwaway server to accept connections",
        "the throwaway server did not accept connections",
    )
    .timeout(START_TIMEOUT)
    .until(|| {
        let answer = run::probe(sh, &ready)?;
        Ok(match answer.status.success() {
            true => Answer::Ready(()),
            false => Answer::NotYet(
                run::last_line(&String::from_utf8_lossy(&answer.stdout)).unwrap_or_default(),
            ),
        })
    })?;
    let restore = database.exec(
        Stdin::Read,
        [
            "pg_restore",
            "--username",
            &database.user,
            "--dbname",
            &database.name,
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
        ],
    );
    transfer::send(sh, dump, &restore, "restoring into a throwaway server")?;
    let mut snapshot = Snapshot::open(sh, database)?;
    let contents = snapshot.contents();
    snapshot.close()?;
    contents
}

/// The scheduled service's container, if the environment has one and it runs.
fn scheduled(sh: &Shell, stack: &Stack, model: &Model) -> anyhow::Result<Option<Database>> {
    let Some(service) = model.xtask.backup_service.as_deref() else {
        return Ok(None);
    };
    if !model.services.contains_key(service) {
        return Ok(None);
    }
    let (user, name) = super::owner_and_database(model)?;
    let found = match &stack.target {
        Target::Compose { engine } => {
            let ids = run::read(sh, &stack.containers_of(service))?;
            ids.lines().next().map(|id| (engine.clone(), id.to_owned()))
        }
        Target::Swarm { manager } => super::swarm_task(sh, stack, manager, service)
            .ok()
            .filter(|(_, container)| !container.is_empty()),
    };
    Ok(found.map(|(engine, container)| Database {
        engine,
        container,
        user,
        name,
    }))
}

/// The dumps the scheduled service keeps, `(name, size)`, oldest first.
fn scheduled_dumps(sh: &Shell, service: &Database) -> anyhow::Result<Vec<(String, u64)>> {
    let listing = run::read(
        sh,
        &service.exec(
            Stdin::Closed,
            [
                "find",
                SCHEDULED_DIR,
                "-maxdepth",
                "1",
                "-name",
                "*.dump",
                "-exec",
                "stat",
                "-c",
                "%n %s",
                "{}",
                "+",
            ],
        ),
    )?;
    let mut dumps: Vec<(String, u64)> = listing
        .lines()
        .filter_map(|line| {
            let (path, size) = line.rsplit_once(' ')?;
            let name = path.rsplit('/').next()?.strip_suffix(".dump")?;
            Some((name.to_owned(), size.parse().ok()?))
        })
        .collect();
    dumps.sort();
    Ok(dumps)
}

/// Where the scheduled service writes its dumps, in its own volume.
const SCHEDULED_DIR: &str = "/backups";

/// `backup list`'s second part: what the scheduled service keeps on the host.
pub fn list_scheduled(sh: &Shell, stack: &Stack, model: &Model) -> anyhow::Result<()> {
    let Some(service) = scheduled(sh, stack, model)? else {
        return Ok(());
    };
    let dumps = scheduled_dumps(sh, &service)?;
    println!(
        "on {} (the scheduled backups; `cargo xtask backup pull {}` copies them here):",
        service.engine,
        stack.name()
    );
    let rows: Vec<[String; 2]> = dumps
        .iter()
        .rev()
        .map(|(name, size)| [name.clone(), output::megabytes(*size)])
        .collect();
    print!("{}", output::table(&["ID", "SIZE"], &rows));
    Ok(())
}

/// `cargo xtask backup pull ENV [ID]`: the scheduled backups this machine lacks (or `ID`),
/// copied here, each restored into a throwaway server on the way in for its manifest.
pub fn pull(sh: &Shell, args: &PullArgs) -> anyhow::Result<()> {
    let (stack, model) = open(sh, &args.env, Needs::ENGINE)?;
    let store = backup::store(sh, &stack, &model, args.dir.dir.as_deref());
    let service = scheduled(sh, &stack, &model)?.with_context(|| {
        format!(
            "{} runs no scheduled backup service (x-xtask: backup_service, enabled in compose.prod.yaml)",
            stack.name()
        )
    })?;
    let here: Vec<String> = store
        .list()?
        .into_iter()
        .map(|manifest| manifest.id)
        .collect();
    let wanted: Vec<(String, u64)> = scheduled_dumps(sh, &service)?
        .into_iter()
        .filter(|(name, _)| match &args.id {
            Some(id) => name == id,
            None => !here.contains(name),
        })
        .collect();
    if wanted.is_empty() {
        println!(
            "nothing to pull: every scheduled backup is in {}",
            store.shown
        );
        return Ok(());
    }
    store.create()?;
    let db = Service::of(&model)?;
    for (name, _) in wanted {
        let path = store.dump(&name);
        let copy = service.exec(
            Stdin::Closed,
            ["cat", &format!("{SCHEDULED_DIR}/{name}.dump")],
        );
        let received = transfer::receive(sh, &copy, &path, &format!("pulling {name}"))?;
        let restored = restore_throwaway(sh, &service.engine, &db, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&path);
        });
        let restored =
            restored.with_context(|| format!("the scheduled backup {name} does not restore"))?;
        let manifest = Manifest {
            id: name.clone(),
            env: stack.name().to_owned(),
            kind: Kind::Scheduled,
            reason: format!(
                "scheduled on {}, pulled by {}",
                service.engine,
                clock::who(sh)
            ),
            taken_at: taken_at(&name),
            by: "the scheduled backup service".to_owned(),
            image: None,
            revision: None,
            migrations: restored.migrations.clone(),
            tables: restored.tables.clone(),
            postgres_image: db.image.clone(),
            server_version: restored.server_version.clone(),
            size: received.size,
            sha256: received.sha256,
        };
        store.write(&manifest)?;
        output::done(
            &format!(
                "pulled {name} ({}, restores: {} rows)",
                output::megabytes(received.size),
                manifest.rows()
            ),
            received.elapsed,
        );
    }
    Ok(())
}

/// `20261205T030000Z` → `2026-12-05T03:00:00Z`.
fn taken_at(id: &str) -> String {
    let digits: Vec<char> = id.chars().collect();
    if digits.len() < 16 {
        return id.to_owned();
    }
    let part = |from: usize, to: usize| digits[from..to].iter().collect::<String>();
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        part(0, 4),
        part(4, 6),
        part(6, 8),
        part(9, 11),
        part(11, 13),
        part(13, 15)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            id: "20261205T101112Z".into(),
            env: "prod".into(),
            kind: Kind::Manual,
            reason: String::new(),
            taken_at: String::new(),
            by: String::new(),
            image: None,
            revision: None,
            migrations: vec![1, 2],
            tables: [
                ("public.players".to_owned(), 3),
                ("public.scores".to_owned(), 10),
            ]
            .into(),
            postgres_image: "postgres:17".into(),
            server_version: "17".into(),
            size: 0,
            sha256: String::new(),
        }
    }

    #[test]
    fn a_restore_differs_from_its_manifest_table_by_table() {
        let same = Contents {
            tables: manifest().tables,
            migrations: vec![1, 2],
            server_version: "17".into(),
        };
        assert!(compare(&manifest(), &same).is_ok());
        let other = Contents {
            tables: [
                ("public.players".to_owned(), 2),
                ("public.extra".to_owned(), 1),
            ]
            .into(),
            migrations: vec![1],
            server_version: "17".into(),
        };
        assert_eq!(
            compare(&manifest(), &other).unwrap_err().to_string(),
            "public.players: 3 rows in the manifest, 2 restored; public.scores is missing; \
             public.extra is not in the manifest; migrations [1, 2] in the manifest, [1] restored"
        );
        assert_eq!(taken_at("20261205T030000Z"), "2026-12-05T03:00:00Z");
    }
}
