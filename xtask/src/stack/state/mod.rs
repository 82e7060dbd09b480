//! What the xtask keeps on an environment's engine, so that every machine deploying to it
//! sees the same: the deploy lock (`lock`), and the history of deploys, rollbacks and
//! restores, a file in a container of its own. Both containers run a program that only
//! waits, from a tiny image the xtask makes on the engine itself (`image`): they need
//! nothing of the stack's, and no prune removes them.

mod image;
mod lock;

use anyhow::bail;
use serde::{Deserialize, Serialize};
use xshell::Shell;

pub use lock::Lock;

use super::{Stack, clock};
use crate::{
    docker::{run, tar},
    output,
};
use image::{HISTORY_DIR, STATE_IMAGE};

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
    let container = state_container(stack);
    ensure_running(sh, stack, &container)?;
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
    let copy = stack
        .engine()
        .docker(["cp", "-", &format!("{container}:/")])
        .stdin_content("the history", archive);
    run::read(sh, &copy)?;
    Ok(())
}

/// The history's container, running: made if missing; started if stopped; made again,
/// with nothing in it yet, if it is one of an older xtask's that never ran (its history
/// has been read, and is written next).
fn ensure_running(sh: &Shell, stack: &Stack, container: &str) -> anyhow::Result<()> {
    let engine = stack.engine();
    let state = run::probe(
        sh,
        &engine.docker([
            "container",
            "inspect",
            "--format",
            "{{.State.Running}} {{.Config.Image}}",
            container,
        ]),
    )?;
    let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
    match state.split_once(' ') {
        Some(("true", _)) => return Ok(()),
        Some((_, image)) if image == STATE_IMAGE => {
            return run::read(sh, &engine.docker(["start", container])).map(drop);
        }
        Some(_) => {
            run::read(sh, &engine.docker(["rm", "--force", container]))?;
        }
        None => {}
    }
    image::ensure(sh, engine)?;
    let labels = ["travial.xtask=state".to_owned()];
    run::read(sh, &image::run_waiting(engine, container, &labels))?;
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
