//! The environment's deploy lock: a container run under a fixed name (the engine refuses a
//! second one, atomically), whose labels say who holds it and since when. It runs (see
//! `image`), so no prune removes it while it is held.

use anyhow::bail;
use xshell::Shell;

use super::image;
use crate::{
    docker::{Command, Engine, run},
    hint::Hint,
    interrupt, output,
    stack::{Stack, clock},
};

/// The environment's deploy lock, held until released or dropped (and released by the
/// interruption handler if the command is stopped).
pub struct Lock {
    dir: std::path::PathBuf,
    release: Command,
    name: String,
}

impl Lock {
    /// Takes the lock for `command` (`deploy`, `rollback`, `down`), or says who holds it.
    /// With `break_lock`, a lock left behind is removed first.
    pub fn take(
        sh: &Shell,
        stack: &Stack,
        command: &str,
        break_lock: bool,
    ) -> anyhow::Result<Lock> {
        let engine = stack.engine();
        image::ensure(sh, engine)?;
        let name = format!("{}-xtask-lock", stack.project);
        if break_lock {
            if let Some(holder) = holder(sh, engine, &name)? {
                run::act(sh, &engine.docker(["rm", "--force", &name]))?;
                output::progress(&format!("broke the lock of {holder}"));
            }
        }
        let since = clock::now();
        let by = clock::who(sh);
        // A deploy stopped by a restart of the engine still holds it.
        let create = image::run_waiting(
            engine,
            &name,
            &[
                format!("travial.lock.by={by}"),
                format!("travial.lock.since={since}"),
                format!("travial.lock.command={command}"),
            ],
        );
        let created = run::probe(sh, &create)?;
        if !created.status.success() {
            let stderr = String::from_utf8_lossy(&created.stderr);
            if stderr.contains("already in use") || stderr.contains("Conflict") {
                let holder =
                    holder(sh, engine, &name)?.unwrap_or_else(|| "another command".to_owned());
                let env = stack.name();
                return Err(Hint::new(
                    format!("{env} is locked{}: {holder}", engine.on()),
                    format!(
                        "wait for it to end; if it was stopped without releasing the lock, \
                         `cargo xtask {command} {env} --break-lock`"
                    ),
                )
                .into());
            }
            bail!(
                "cannot take the deploy lock{}: {}",
                engine.on(),
                run::last_line(&stderr).unwrap_or_default()
            );
        }
        // By the container's ID, not its name: if this lock was broken (`--break-lock`) while
        // the command still ran, the name is another command's lock now, not ours to remove.
        let id = String::from_utf8_lossy(&created.stdout).trim().to_owned();
        let release = engine.docker(["rm", "--force", &id]);
        let dir = sh.current_dir();
        let (cleanup_release, cleanup_dir) = (release.clone(), dir.clone());
        interrupt::on_interruption(
            &name,
            Box::new(move || {
                run::while_stopping(&cleanup_dir, &cleanup_release);
            }),
        );
        Ok(Lock { dir, release, name })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Released before the interruption handler forgets it: a Ctrl-C that stops this
        // release then still has the handler release it.
        run::while_stopping(&self.dir, &self.release);
        interrupt::forget_cleanup(&self.name);
    }
}

/// `a deploy by ann@laptop since 2026-11-25T10:04:05Z`, from the lock's labels.
fn holder(sh: &Shell, engine: &Engine, name: &str) -> anyhow::Result<Option<String>> {
    let format = "{{index .Config.Labels \"travial.lock.command\"}} {{index .Config.Labels \"travial.lock.by\"}} {{index .Config.Labels \"travial.lock.since\"}}";
    let inspect = run::probe(
        sh,
        &engine.docker(["container", "inspect", "--format", format, name]),
    )?;
    if !inspect.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&inspect.stdout);
    let mut words = text.split_whitespace();
    Ok(match (words.next(), words.next(), words.next()) {
        (Some(command), Some(by), Some(since)) => {
            Some(format!("a {command} by {by} since {since}"))
        }
        _ => Some("a command of an older xtask".to_owned()),
    })
}
