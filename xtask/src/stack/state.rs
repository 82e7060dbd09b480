//! What the xtask keeps on an environment's engine, so that every machine deploying to it
//! sees the same: the deploy lock, a container created under a fixed name (the engine
//! refuses a second one, atomically) whose labels say who holds it and since when; and
//! the history of deploys and rollbacks, a file in a container that never runs. Both come
//! from a tiny image the xtask makes on the engine itself (`docker import`, no registry),
//! so they need nothing of the stack's.

use anyhow::bail;
use serde::{Deserialize, Serialize};
use xshell::Shell;

use super::{Stack, clock};
use crate::{
    docker::{Command, Engine, run, tar},
    hint::Hint,
    interrupt, output,
};

/// The image of the lock and state containers: an empty filesystem but for /xtask.
const STATE_IMAGE: &str = "travial-xtask/state:1";
const HISTORY_DIR: &str = "xtask";
const HISTORY_FILE: &str = "history.jsonl";
/// The records kept: enough to see what happened, and which images were deployed.
const KEPT: usize = 50;

/// A deploy or a rollback, as the history keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub at: String,
    pub by: String,
    /// `deploy` or `rollback`.
    pub command: String,
    pub image: String,
    /// `succeeded`, `failed: …` or `interrupted`.
    pub result: String,
    /// The web container that serves, when it succeeded.
    #[serde(default)]
    pub container: Option<String>,
    /// The backup taken before it changed the data, if one was (see `database::backup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
}

impl Record {
    pub fn succeeded(&self) -> bool {
        self.result == "succeeded"
    }
}

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
        ensure_image(sh, engine)?;
        let name = format!("{}-xtask-lock", stack.project);
        if break_lock {
            if let Some(holder) = holder(sh, engine, &name)? {
                run::act(sh, &engine.docker(["rm", "--force", &name]))?;
                output::progress(&format!("broke the lock of {holder}"));
            }
        }
        let since = clock::now();
        let by = clock::who(sh);
        let create = engine.docker([
            "create",
            "--name",
            &name,
            "--label",
            &format!("travial.lock.by={by}"),
            "--label",
            &format!("travial.lock.since={since}"),
            "--label",
            &format!("travial.lock.command={command}"),
            STATE_IMAGE,
            "none",
        ]);
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

/// The state image, made on the engine if it lacks it: an empty filesystem but for a
/// directory, imported from a tar archive written here.
fn ensure_image(sh: &Shell, engine: &Engine) -> anyhow::Result<()> {
    let inspect = engine.docker(["image", "inspect", "--format", "{{.Id}}", STATE_IMAGE]);
    if run::probe(sh, &inspect)?.status.success() {
        return Ok(());
    }
    let archive = tar::archive(&[tar::Entry {
        path: &format!("{HISTORY_DIR}/"),
        mode: 0o755,
        content: None,
    }]);
    let import = engine
        .docker([
            "import",
            "--message",
            "cargo xtask: the deploy lock and history",
            "-",
            STATE_IMAGE,
        ])
        .stdin_content("an empty filesystem", archive);
    run::read(sh, &import)?;
    Ok(())
}

pub fn state_container(stack: &Stack) -> String {
    format!("{}-xtask-state", stack.project)
}

/// The recorded deploys and rollbacks, oldest first; none before the first.
pub fn history(sh: &Shell, stack: &Stack) -> anyhow::Result<Vec<Record>> {
    let source = format!("{}:/{HISTORY_DIR}/{HISTORY_FILE}", state_container(stack));
    let copy = run::probe(sh, &stack.engine().docker(["cp", &source, "-"]))?;
    if !copy.status.success() {
        let stderr = String::from_utf8_lossy(&copy.stderr);
        if stderr.contains("No such container")
            || stderr.contains("Could not find the file")
            || stderr.contains("No such file")
        {
            return Ok(Vec::new());
        }
        bail!(
            "cannot read the history{}: {}",
            stack.target.on(),
            run::last_line(&stderr).unwrap_or_default()
        );
    }
    let text = tar::first_file(&copy.stdout)
        .map_err(|err| anyhow::anyhow!("cannot read the history: {err}"))?;
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// What a command under the lock writes: that it began (a record `in progress`, which a
/// later command calls `interrupted` if it was never finished), then how it ended.
pub fn begin(
    sh: &Shell,
    stack: &Stack,
    lock: &Lock,
    command: &str,
    image: &str,
) -> anyhow::Result<Record> {
    let mut records = history(sh, stack)?;
    for record in &mut records {
        if record.result == IN_PROGRESS {
            record.result = "interrupted".to_owned();
        }
    }
    let record = Record {
        at: clock::now(),
        by: clock::who(sh),
        command: command.to_owned(),
        image: image.to_owned(),
        result: IN_PROGRESS.to_owned(),
        container: None,
        backup: None,
    };
    records.push(record.clone());
    write(sh, stack, lock, &records)?;
    Ok(record)
}

/// How `record`'s command ended: `succeeded` (with the container that serves), or why not.
/// A history that cannot be written is a warning: the command's own result stands.
pub fn finish(
    sh: &Shell,
    stack: &Stack,
    lock: &Lock,
    record: &Record,
    result: Result<String, String>,
) {
    if let Err(err) = write_result(sh, stack, lock, record, result) {
        output::warning(&err.context("the history was not updated"));
    }
}

fn write_result(
    sh: &Shell,
    stack: &Stack,
    lock: &Lock,
    record: &Record,
    result: Result<String, String>,
) -> anyhow::Result<()> {
    let mut records = history(sh, stack)?;
    let finished = match result {
        Ok(container) => Record {
            result: "succeeded".to_owned(),
            container: Some(container),
            ..record.clone()
        },
        Err(reason) => Record {
            result: format!("failed: {reason}"),
            ..record.clone()
        },
    };
    match records
        .iter_mut()
        .rev()
        .find(|known| known.at == record.at && known.by == record.by)
    {
        Some(known) => *known = finished,
        None => records.push(finished),
    }
    write(sh, stack, lock, &records)
}

const IN_PROGRESS: &str = "in progress";

/// The last `KEPT` records, as the history file; under the lock, so nobody writes at once.
fn write(sh: &Shell, stack: &Stack, _lock: &Lock, records: &[Record]) -> anyhow::Result<()> {
    let engine = stack.engine();
    let container = state_container(stack);
    let exists = run::probe(
        sh,
        &engine.docker(["container", "inspect", "--format", "{{.Id}}", &container]),
    )?;
    if !exists.status.success() {
        run::read(
            sh,
            &engine.docker([
                "create",
                "--name",
                &container,
                "--label",
                "travial.xtask=state",
                STATE_IMAGE,
                "none",
            ]),
        )?;
    }
    let start = records.len().saturating_sub(KEPT);
    let mut text = String::new();
    for record in &records[start..] {
        text.push_str(&serde_json::to_string(record)?);
        text.push('\n');
    }
    let path = format!("{HISTORY_DIR}/{HISTORY_FILE}");
    let archive = tar::archive(&[
        tar::Entry {
            path: &format!("{HISTORY_DIR}/"),
            mode: 0o755,
            content: None,
        },
        tar::Entry {
            path: &path,
            mode: 0o644,
            content: Some(text.as_bytes()),
        },
    ]);
    let copy = engine
        .docker(["cp", "-", &format!("{container}:/")])
        .stdin_content("the history", archive);
    run::read(sh, &copy)?;
    Ok(())
}

/// The images of the last `count` successful deploys and rollbacks, newest first, each once.
pub fn recent_images(records: &[Record], count: usize) -> Vec<String> {
    let mut images: Vec<String> = Vec::new();
    for record in records.iter().rev().filter(|record| record.succeeded()) {
        if !images.contains(&record.image) {
            images.push(record.image.clone());
        }
        if images.len() == count {
            break;
        }
    }
    images
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(image: &str, result: &str, container: Option<&str>) -> Record {
        Record {
            at: "2026-11-25T10:00:00Z".into(),
            by: "ann@laptop".into(),
            command: "deploy".into(),
            image: image.into(),
            result: result.into(),
            container: container.map(str::to_owned),
            backup: None,
        }
    }

    #[test]
    fn the_images_kept_come_from_what_succeeded() {
        let records = [
            record("app:1", "succeeded", Some("web-1")),
            record("app:2", "succeeded", Some("web-2")),
            record("app:3", "failed: never ready", None),
            record("app:2", "succeeded", Some("web-3")),
            record("app:4", "interrupted", None),
        ];
        assert_eq!(recent_images(&records, 2), ["app:2", "app:1"]);
        assert_eq!(recent_images(&[], 3), Vec::<String>::new());
        let line = serde_json::to_string(&records[0]).unwrap();
        assert_eq!(
            line,
            r#"{"at":"2026-11-25T10:00:00Z","by":"ann@laptop","command":"deploy","image":"app:1","result":"succeeded","container":"web-1"}"#
        );
    }
}
