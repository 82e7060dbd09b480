//! install-docker's plan: the common steps (`plan::Step`: files written, files removed,
//! commands run), the checks after them, and what is printed around them.

use std::{fmt, time::Duration};

use super::apt_key::Fingerprint;
use crate::{
    docker::Command,
    plan::{Action, Content, Step},
};

/// How long a freshly started daemon may take to answer.
const DAEMON_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// What is installed from where: `Debian GNU/Linux 12 (bookworm): Debian's own packages`.
    pub title: String,
    /// Printed before anything runs.
    pub notes: Vec<Note>,
    /// What changes the machine.
    pub steps: Vec<Step>,
    /// What checks the result: run after the steps, and alone when nothing changes.
    pub checks: Vec<Step>,
    /// The keys some steps write, fetched and checked before any step runs.
    pub keys: Vec<Key>,
    /// Printed once every step succeeded.
    pub afterwards: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Warning(String),
    Info(String),
}

/// A key written to `path` only once the one at `url` has the fingerprint `fingerprint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub path: String,
    pub url: String,
    pub fingerprint: Fingerprint,
}

impl Plan {
    pub fn warn(&mut self, text: impl Into<String>) {
        self.notes.push(Note::Warning(text.into()));
    }

    pub fn info(&mut self, text: impl Into<String>) {
        self.notes.push(Note::Info(text.into()));
    }

    /// True when carrying the plan out would change nothing on the machine.
    pub fn changes_nothing(&self) -> bool {
        self.steps.is_empty()
    }

    pub fn print_notes(&self) {
        for note in &self.notes {
            match note {
                Note::Warning(text) => eprintln!("warning: {text}"),
                Note::Info(text) => crate::output::progress(text),
            }
        }
    }

    pub fn run(&mut self, command: Command) {
        self.steps.push(run(command));
    }

    /// A command that runs only once the user agreed (or `--yes`).
    pub fn run_confirmed(&mut self, command: Command, question: String) {
        self.steps.push(run(command).confirmed_by(question));
    }

    pub fn write(&mut self, path: &str, mode: u32, text: String) {
        let action = Action::Write {
            path: path.to_owned(),
            mode,
            content: Content::Text(text),
        };
        self.steps.push(Step::new("", action, ""));
    }

    pub fn write_key(&mut self, key: Key) {
        let action = Action::Write {
            path: key.path.clone(),
            mode: 0o644,
            content: Content::Pending(format!(
                "the key at {}, once its OpenPGP fingerprint is checked to be {}",
                key.url, key.fingerprint
            )),
        };
        self.steps.push(Step::new("", action, ""));
        self.keys.push(key);
    }

    pub fn remove(&mut self, path: String, reason: String) {
        self.steps
            .push(Step::new("", Action::Remove { path, reason }, ""));
    }

    /// `docker info` until the daemon answers, then `docker version`.
    pub fn check_daemon(&mut self) {
        self.checks.push(Step::new(
            "the Docker daemon answers",
            Action::AwaitEngine {
                probe: Command::docker(["info", "--format", "{{.ServerVersion}}"]),
                timeout: DAEMON_TIMEOUT,
            },
            "see its logs above, then start it with `sudo systemctl start docker` (or `sudo service docker start`)",
        )
        .diagnosed_by(Command::new("journalctl", ["-u", "docker", "--no-pager", "-n", "20"]))
        .diagnosed_by(Command::new("tail", ["-n", "20", "/var/log/docker.log"])));
        self.checks.push(run(Command::docker(["version"])));
    }

    /// `docker --version`: where no daemon is started, only the client can be checked.
    pub fn check_client(&mut self) {
        self.checks.push(Step::run(
            "the docker client runs",
            Command::docker(["--version"]),
            "the docker client does not run after the installation",
        ));
    }
}

/// A command of the plan: its failure names it.
fn run(command: Command) -> Step {
    let done = format!("{command}");
    let on_failure = format!("`{command}` failed");
    Step::run(&done, command, &on_failure)
}

/// `apt-get ARGS…` that never stops to ask (debconf questions take their defaults).
pub fn apt_get<I: IntoIterator<Item = S>, S: Into<String>>(args: I) -> Command {
    Command::new("apt-get", args).env("DEBIAN_FRONTEND", "noninteractive")
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# install-docker: {}", self.title)?;
        if self.changes_nothing() {
            writeln!(f, "# nothing to change")?;
        }
        for step in self.steps.iter().chain(&self.checks) {
            writeln!(f, "{step}")?;
        }
        Ok(())
    }
}
