//! Files written the way install-docker needs: only when the content or the mode differ,
//! through a temporary file renamed over the old one, directories made as needed.

use std::{
    fs::{self, DirBuilder, OpenOptions, Permissions},
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::Path,
};

use anyhow::Context;

#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    Unchanged,
}

/// Writes `path` below `root` unless it already has this content and mode: through a
/// temporary file renamed over it, so a reader never sees half a file. Missing directories
/// are made with mode 0755.
pub fn write(root: &Path, path: &str, mode: u32, content: &[u8]) -> anyhow::Result<Written> {
    let target = root.join(path.trim_start_matches('/'));
    let existing = match fs::read(&target) {
        Ok(bytes) => Some(bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(err).with_context(|| format!("read {path}")),
    };
    if existing.as_deref() == Some(content) {
        let current = fs::metadata(&target)
            .with_context(|| format!("inspect {path}"))?
            .permissions();
        if current.mode() & 0o7777 == mode {
            return Ok(Written::Unchanged);
        }
        fs::set_permissions(&target, Permissions::from_mode(mode))
            .with_context(|| format!("chmod {path}"))?;
        return Ok(Written::Updated);
    }
    let dir = target.parent().context("a file to write has a directory")?;
    DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))?;
    let name = target
        .file_name()
        .context("a file to write has a name")?
        .to_string_lossy();
    let temporary = dir.join(format!(".{name}.xtask"));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&temporary)?;
        file.write_all(content)?;
        file.sync_all()?;
        // The umask may have taken bits away.
        fs::set_permissions(&temporary, Permissions::from_mode(mode))?;
        fs::rename(&temporary, &target)
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&temporary);
        return Err(err).with_context(|| format!("write {path}"));
    }
    Ok(if existing.is_some() {
        Written::Updated
    } else {
        Written::Created
    })
}

#[cfg(test)]
mod tests {
    use std::{os::unix::fs::MetadataExt, path::PathBuf};

    use super::*;

    /// A fresh directory standing in for `/`, removed when dropped.
    struct TempRoot(PathBuf);

    impl TempRoot {
        fn new(name: &str) -> TempRoot {
            let dir =
                std::env::temp_dir().join(format!("xtask-files-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempRoot(dir)
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn writes_twice_byte_identical_and_the_second_time_not_at_all() {
        let root = TempRoot::new("twice");
        let key = std::fs::read(format!(
            "{}/tests/data/install/docker.asc",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let entry = "Types: deb\nURIs: https://download.docker.com/linux/debian\n";
        let files = [
            ("/etc/apt/keyrings/docker.asc", key.as_slice()),
            ("/etc/apt/sources.list.d/docker.sources", entry.as_bytes()),
        ];

        for (path, content) in files {
            assert_eq!(
                write(&root.0, path, 0o644, content).unwrap(),
                Written::Created
            );
        }
        let first: Vec<_> = files
            .iter()
            .map(|(path, _)| {
                let target = root.0.join(&path[1..]);
                (fs::read(&target).unwrap(), fs::metadata(&target).unwrap())
            })
            .collect();
        let keyrings = fs::metadata(root.0.join("etc/apt/keyrings")).unwrap();
        assert_eq!(keyrings.permissions().mode() & 0o777, 0o755);

        for (path, content) in files {
            assert_eq!(
                write(&root.0, path, 0o644, content).unwrap(),
                Written::Unchanged
            );
        }
        for ((path, content), (bytes, before)) in files.iter().zip(&first) {
            let target = root.0.join(&path[1..]);
            let after = fs::metadata(&target).unwrap();
            assert_eq!(&fs::read(&target).unwrap(), bytes, "{path}");
            assert_eq!(bytes.as_slice(), *content, "{path}");
            assert_eq!(after.permissions().mode() & 0o7777, 0o644, "{path}");
            // Not rewritten: the same inode, untouched.
            assert_eq!(
                (after.ino(), after.mtime(), after.mtime_nsec()),
                (before.ino(), before.mtime(), before.mtime_nsec())
            );
        }
        let leftovers: Vec<_> = fs::read_dir(root.0.join("etc/apt/sources.list.d"))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "a temporary file was left behind");
    }

    #[test]
    fn a_different_content_or_mode_is_rewritten() {
        let root = TempRoot::new("rewrite");
        assert_eq!(
            write(&root.0, "/etc/x", 0o644, b"one\n").unwrap(),
            Written::Created
        );
        assert_eq!(
            write(&root.0, "/etc/x", 0o644, b"two\n").unwrap(),
            Written::Updated
        );
        assert_eq!(fs::read(root.0.join("etc/x")).unwrap(), b"two\n");
        assert_eq!(
            write(&root.0, "/etc/x", 0o600, b"two\n").unwrap(),
            Written::Updated
        );
        assert_eq!(
            fs::metadata(root.0.join("etc/x"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o600
        );
    }
}
