//! Carrying a plan out: confirmations first, then every key fetched and checked, and only
//! then the steps in order. A refused key or a declined question changes nothing.

use std::{
    collections::BTreeMap,
    fs::{self, DirBuilder, OpenOptions, Permissions},
    io::{BufRead, IsTerminal, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use super::{
    apt_key,
    steps::{Content, Plan, Step},
};
use crate::{output, plan::seconds, process};

const DAEMON_TIMEOUT: Duration = Duration::from_secs(30);
const DAEMON_POLL: Duration = Duration::from_millis(500);

pub fn execute(sh: &Shell, plan: &Plan, yes: bool) -> anyhow::Result<()> {
    confirm(plan, yes)?;
    let keys = fetch_keys(plan)?;
    for step in &plan.steps {
        match step {
            Step::Write {
                path,
                mode,
                content,
            } => {
                let bytes = match content {
                    Content::Text(text) => text.as_bytes(),
                    Content::Key { .. } => keys[path.as_str()].as_bytes(),
                };
                match write_file(Path::new("/"), path, *mode, bytes)? {
                    Written::Created => output::progress(&format!("✓ wrote {path}")),
                    Written::Updated => output::progress(&format!("✓ updated {path}")),
                    Written::Unchanged => output::progress(&format!("= {path} unchanged")),
                }
            }
            Step::Remove { path, reason } => {
                fs::remove_file(path).with_context(|| format!("remove {path}"))?;
                output::progress(&format!("✓ removed {path} ({reason})"));
            }
            Step::Run(command) => {
                let (program, args) = command.argv.split_first().expect("a command has a program");
                let run = command
                    .env
                    .iter()
                    .fold(cmd!(sh, "{program} {args...}"), |run, (name, value)| {
                        run.env(name, value)
                    });
                run_echoed(run).with_context(|| format!("`{command}` failed"))?;
            }
            Step::Verify => verify_daemon(sh)?,
            Step::VerifyClient => run_echoed(cmd!(sh, "docker --version"))
                .context("the docker client does not run after the installation")?,
        }
    }
    for line in &plan.afterwards {
        eprintln!("{line}");
    }
    Ok(())
}

/// Every question the plan asks, before anything happens; `--yes` answers them all.
fn confirm(plan: &Plan, yes: bool) -> anyhow::Result<()> {
    let questions = plan.steps.iter().filter_map(|step| match step {
        Step::Run(command) => command.confirm.as_deref(),
        _ => None,
    });
    for question in questions {
        if yes {
            continue;
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "nothing was changed: install-docker needs to {question}: run it again with --yes to allow that"
            );
        }
        eprint!("{question}? [y/N] ");
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("read the answer")?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("nothing was changed: the installation needs to {question}");
        }
    }
    Ok(())
}

/// Each key the plan writes, fetched and checked; the first mismatch stops everything.
fn fetch_keys(plan: &Plan) -> anyhow::Result<BTreeMap<&str, String>> {
    let mut keys = BTreeMap::new();
    for step in &plan.steps {
        if let Step::Write {
            path,
            content: Content::Key { url, fingerprint },
            ..
        } = step
        {
            let key = apt_key::fetch(url).context("nothing was changed")?;
            if let Err(refusal) = apt_key::verify(&key, *fingerprint) {
                bail!(
                    "refusing the key at {url}: {refusal:#}; nothing was changed (a mirror that re-signs \
                     Docker's packages with its own key needs `--key-fingerprint`, if you trust that key)"
                );
            }
            output::progress(&format!(
                "✓ the key at {url} has the fingerprint {fingerprint}"
            ));
            keys.insert(path.as_str(), key);
        }
    }
    Ok(keys)
}

/// Runs a command as it is shown to the user: echoed with its output, or with `--quiet`
/// silently, its output shown only when it fails.
fn run_echoed(command: xshell::Cmd<'_>) -> anyhow::Result<()> {
    if !output::quiet() {
        return Ok(command.run()?);
    }
    let result = command.quiet().ignore_status().output()?;
    if !result.status.success() {
        eprint!(
            "{}",
            process::last_lines(&String::from_utf8_lossy(&result.stdout), TAIL_LINES)
        );
        eprint!(
            "{}",
            process::last_lines(&String::from_utf8_lossy(&result.stderr), TAIL_LINES)
        );
        anyhow::bail!("it ended with {}", result.status);
    }
    Ok(())
}

/// How much of a failed command's output `--quiet` still shows.
const TAIL_LINES: usize = 20;

#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    Unchanged,
}

/// Writes `path` below `root` unless it already has this content and mode: through a
/// temporary file renamed over it, so a reader never sees half a file. Missing directories
/// are made with mode 0755.
pub fn write_file(root: &Path, path: &str, mode: u32, content: &[u8]) -> anyhow::Result<Written> {
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
    let temporary = dir.join(format!(".{name}.install-docker"));
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

/// `docker info` until the daemon answers, then `docker version` and a line of `docker info`;
/// after the timeout, the daemon's last logs before the error.
fn verify_daemon(sh: &Shell) -> anyhow::Result<()> {
    let started = Instant::now();
    let format = "{{.ServerVersion}}";
    let mut said = false;
    loop {
        let info = cmd!(sh, "docker info --format {format}")
            .quiet()
            .ignore_status()
            .output()?;
        if info.status.success() {
            break;
        }
        if started.elapsed() > DAEMON_TIMEOUT {
            eprintln!("--- the daemon's last logs:");
            let _ = cmd!(sh, "journalctl -u docker --no-pager -n 20")
                .ignore_status()
                .run();
            let _ = cmd!(sh, "tail -n 20 /var/log/docker.log")
                .ignore_status()
                .run();
            let stderr = String::from_utf8_lossy(&info.stderr);
            bail!(
                "the Docker daemon does not answer after {} (`docker info`: {}): see its logs above, \
                 then start it with `sudo systemctl start docker` (or `sudo service docker start`)",
                seconds(DAEMON_TIMEOUT),
                stderr.lines().next().unwrap_or("no answer").trim()
            );
        }
        if !said {
            eprintln!(
                "waiting for the Docker daemon to answer (up to {})",
                seconds(DAEMON_TIMEOUT)
            );
            said = true;
        }
        std::thread::sleep(DAEMON_POLL);
    }
    run_echoed(cmd!(sh, "docker version")).context("`docker version` failed")?;
    let summary =
        "server {{.ServerVersion}}, storage driver {{.Driver}}, cgroup driver {{.CgroupDriver}}";
    run_echoed(cmd!(sh, "docker info --format {summary}")).context("`docker info` failed")?;
    output::done("the Docker daemon answers", started.elapsed());
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{os::unix::fs::MetadataExt, path::PathBuf};

    use super::*;
    use crate::install::apt_source::{self, KEYRING, SOURCES};

    /// A fresh directory standing in for `/`, removed when dropped.
    struct TempRoot(PathBuf);

    impl TempRoot {
        fn new(name: &str) -> TempRoot {
            let dir =
                std::env::temp_dir().join(format!("xtask-install-{name}-{}", std::process::id()));
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
        let entry = apt_source::entry(
            "https://download.docker.com/linux/debian",
            "bookworm",
            "amd64",
        );
        let files = [(KEYRING, key.as_slice()), (SOURCES, entry.as_bytes())];

        for (path, content) in files {
            assert_eq!(
                write_file(&root.0, path, 0o644, content).unwrap(),
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
                write_file(&root.0, path, 0o644, content).unwrap(),
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
            write_file(&root.0, "/etc/x", 0o644, b"one\n").unwrap(),
            Written::Created
        );
        assert_eq!(
            write_file(&root.0, "/etc/x", 0o644, b"two\n").unwrap(),
            Written::Updated
        );
        assert_eq!(fs::read(root.0.join("etc/x")).unwrap(), b"two\n");
        assert_eq!(
            write_file(&root.0, "/etc/x", 0o600, b"two\n").unwrap(),
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

    #[test]
    fn a_refused_key_stops_the_plan_before_any_step() {
        use crate::install::{apt_key::DOCKER, steps::Command};
        let root = TempRoot::new("refused");
        let other = format!(
            "file://{}/tests/data/install/other-key.asc",
            env!("CARGO_MANIFEST_DIR")
        );
        let marker = root.0.join("ran");
        let plan = Plan {
            steps: vec![
                Step::Run(Command::new(["touch", marker.to_str().unwrap()])),
                Step::Write {
                    path: root.0.join("docker.asc").display().to_string(),
                    mode: 0o644,
                    content: Content::Key {
                        url: other.clone(),
                        fingerprint: DOCKER,
                    },
                },
            ],
            ..Plan::default()
        };
        let sh = Shell::new().unwrap();
        let err = format!("{:#}", execute(&sh, &plan, true).unwrap_err());
        assert!(
            err.starts_with(&format!(
                "refusing the key at {other}: its fingerprint is 7C90 E34C"
            )),
            "{err}"
        );
        assert!(err.contains("nothing was changed"), "{err}");
        assert!(!marker.exists(), "a step ran before the key was checked");
        assert!(!root.0.join("docker.asc").exists());
    }
}
