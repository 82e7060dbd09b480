//! Where backups are kept on this machine (`backups/ENV/` by default, `--dir`, or
//! `ENV/` in the directory `x-xtask: backups` names), each as a dump (`ID.dump`, `pg_dump -Fc`) beside its
//! manifest (`ID.json`): when, why, which image and revision, the migrations applied, each
//! table's rows, the size and SHA-256 of the dump. The directory is 0700, the files 0600;
//! IDs are the time taken (`20261205T101112Z`), so they sort as they were taken.

use std::{
    collections::BTreeMap,
    fs::OpenOptions,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::hint::Hint;

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// `cargo xtask backup ENV`.
    Manual,
    /// Before a deploy or `migrate` applied migrations.
    Migrations,
    /// Of the data a restore replaced: what undoes it.
    Restore,
    /// Taken on the host by the stack's own backup service, then pulled here.
    Scheduled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub env: String,
    pub kind: Kind,
    /// In words: `before the migrations of travial/app:0a1b2c3`.
    pub reason: String,
    pub taken_at: String,
    pub by: String,
    /// The app image that served then, and its revision, when known.
    pub image: Option<String>,
    pub revision: Option<String>,
    /// The migrations applied, by version.
    pub migrations: Vec<i64>,
    /// Each table's rows, `schema.table`, as the dump holds them.
    pub tables: BTreeMap<String, u64>,
    /// The database's image (what `verify` restores with) and its server's version.
    pub postgres_image: String,
    pub server_version: String,
    pub size: u64,
    pub sha256: String,
}

impl Manifest {
    /// The newest migration applied, 0 for none.
    pub fn newest_migration(&self) -> i64 {
        self.migrations.iter().copied().max().unwrap_or(0)
    }

    pub fn rows(&self) -> u64 {
        self.tables.values().sum()
    }
}

/// The backups of one environment on this machine.
#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
    /// How messages name it: relative to the project root where it is inside.
    pub shown: String,
}

impl Store {
    /// `--dir` itself, else `ENV` in the directory `x-xtask: backups` names, else
    /// `backups/ENV`; relative to the project root.
    pub fn new(root: &Path, env: &str, given: Option<&Path>, setting: Option<&str>) -> Store {
        let dir = match (given, setting.filter(|dir| !dir.is_empty())) {
            (Some(dir), _) => root.join(dir),
            (None, Some(dir)) => root.join(dir).join(env),
            (None, None) => root.join("backups").join(env),
        };
        let shown = dir.strip_prefix(root).unwrap_or(&dir).display().to_string();
        Store { dir, shown }
    }

    /// The directory, made 0700 if missing (its parents too); an existing one others may
    /// read is refused: dumps hold every password hash and player of the database.
    pub fn create(&self) -> anyhow::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("cannot make the backup directory {}", self.shown))?;
        let mode = std::fs::metadata(&self.dir)
            .with_context(|| format!("cannot read {}", self.shown))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(Hint::new(
                format!(
                    "the backup directory {} may be read by others (mode {mode:04o})",
                    self.shown
                ),
                format!("`chmod 700 {}`", self.shown),
            )
            .into());
        }
        Ok(())
    }

    /// A new ID for a backup taken at `now` (`2026-12-05T10:11:12Z`), unique here.
    pub fn new_id(&self, now: &str) -> String {
        let base: String = now.chars().filter(|c| *c != '-' && *c != ':').collect();
        let mut id = base.clone();
        let mut n = 2;
        while self.dump(&id).exists() || self.manifest(&id).exists() {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }

    pub fn dump(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.dump"))
    }

    pub fn manifest(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Written once, 0600, never over another.
    pub fn write(&self, manifest: &Manifest) -> anyhow::Result<()> {
        let path = self.manifest(&manifest.id);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut text = serde_json::to_string_pretty(manifest)?;
        text.push('\n');
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))
    }

    /// Every backup with a manifest, oldest first; none when the directory does not exist.
    pub fn list(&self) -> anyhow::Result<Vec<Manifest>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read {}", self.shown));
            }
        };
        let mut manifests = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().is_none_or(|extension| extension != "json") {
                continue;
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let manifest: Manifest = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a backup manifest", path.display()))?;
            manifests.push(manifest);
        }
        manifests.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(manifests)
    }

    /// The backup `id`, or without one the newest that a restore did not take of the data
    /// it replaced.
    pub fn find(&self, id: Option<&str>) -> anyhow::Result<Manifest> {
        let manifests = self.list()?;
        let found = match id {
            Some(id) => manifests.into_iter().find(|manifest| manifest.id == id),
            None => manifests
                .into_iter()
                .rev()
                .find(|manifest| manifest.kind != Kind::Restore),
        };
        found.with_context(|| match id {
            Some(id) => format!(
                "no backup {id} in {}: `cargo xtask backup list ENV` lists them",
                self.shown
            ),
            None => format!(
                "no backup in {}: `cargo xtask backup ENV` takes one",
                self.shown
            ),
        })
    }

    /// The oldest backups removed, so that `keep` remain; the IDs removed.
    pub fn prune(&self, keep: usize) -> anyhow::Result<Vec<String>> {
        let manifests = self.list()?;
        let surplus = manifests.len().saturating_sub(keep);
        let mut removed = Vec::new();
        for manifest in &manifests[..surplus] {
            for path in [self.dump(&manifest.id), self.manifest(&manifest.id)] {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(err) => {
                        return Err(err)
                            .with_context(|| format!("cannot remove {}", path.display()));
                    }
                }
            }
            removed.push(manifest.id.clone());
        }
        Ok(removed)
    }

    /// The dump's size and digest against its manifest: a file cut short or changed says so.
    pub fn check(&self, manifest: &Manifest) -> anyhow::Result<PathBuf> {
        let path = self.dump(&manifest.id);
        let (size, sha256) = super::transfer::digest(&path)?;
        if size != manifest.size {
            bail!(
                "{} is {size} bytes where its manifest says {}: {}",
                path.display(),
                manifest.size,
                match size < manifest.size {
                    true => "truncated",
                    false => "something was added to it",
                }
            );
        }
        if sha256 != manifest.sha256 {
            bail!(
                "{}'s SHA-256 is not its manifest's: the file was altered",
                path.display()
            );
        }
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(id: &str, kind: Kind) -> Manifest {
        Manifest {
            id: id.into(),
            env: "prod".into(),
            kind,
            reason: "manual".into(),
            taken_at: "2026-12-05T10:11:12Z".into(),
            by: "ann@laptop".into(),
            image: None,
            revision: None,
            migrations: vec![1, 2],
            tables: [("public.players".to_owned(), 3)].into(),
            postgres_image: "postgres:17".into(),
            server_version: "17.2".into(),
            size: 3,
            sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
        }
    }

    #[test]
    fn a_store_keeps_private_files_newest_last_and_prunes_the_oldest() {
        let root = std::env::temp_dir().join(format!("xtask-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let store = Store::new(&root, "prod", None, None);
        assert_eq!(store.shown, "backups/prod");
        store.create().unwrap();
        let mode = std::fs::metadata(&store.dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(store.new_id("2026-12-05T10:11:12Z"), "20261205T101112Z");
        for (id, kind) in [
            ("20261205T101112Z", Kind::Manual),
            ("20261205T101113Z", Kind::Migrations),
            ("20261205T101114Z", Kind::Restore),
        ] {
            std::fs::write(store.dump(id), "abc").unwrap();
            store.write(&manifest(id, kind)).unwrap();
        }
        assert_eq!(store.new_id("2026-12-05T10:11:12Z"), "20261205T101112Z-2");
        assert!(
            store
                .write(&manifest("20261205T101112Z", Kind::Manual))
                .is_err()
        );
        assert_eq!(store.find(None).unwrap().id, "20261205T101113Z");
        assert_eq!(
            store.find(Some("20261205T101114Z")).unwrap().kind,
            Kind::Restore
        );
        assert!(store.find(Some("nope")).is_err());
        assert!(
            store
                .check(&manifest("20261205T101112Z", Kind::Manual))
                .is_ok()
        );
        std::fs::write(store.dump("20261205T101112Z"), "ab").unwrap();
        let cut = store
            .check(&manifest("20261205T101112Z", Kind::Manual))
            .unwrap_err();
        assert!(cut.to_string().ends_with("truncated"), "{cut}");
        std::fs::write(store.dump("20261205T101112Z"), "abd").unwrap();
        let altered = store
            .check(&manifest("20261205T101112Z", Kind::Manual))
            .unwrap_err();
        assert!(
            altered.to_string().ends_with("the file was altered"),
            "{altered}"
        );
        assert_eq!(
            store.prune(1).unwrap(),
            ["20261205T101112Z", "20261205T101113Z"]
        );
        assert_eq!(store.list().unwrap().len(), 1);
        assert!(!store.dump("20261205T101112Z").exists());
        let given = Store::new(&root, "prod", Some(Path::new("/srv/b")), Some("elsewhere"));
        assert_eq!(given.dir, Path::new("/srv/b"));
        assert_eq!(
            Store::new(&root, "prod", None, Some("keep")).shown,
            "keep/prod"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
