//! Plan as data, then act: every command computes its steps with plain functions (tested
//! without Docker); `--dry-run` prints them; `execute` carries them out, one kind of step
//! for deploy, push and install-docker alike.

mod execute;
pub mod files;

use std::{fmt, sync::Arc, time::Duration};

pub use execute::{confirm, confirm_by_name, execute};

use crate::{
    docker::{Command, Engine, quote::shell_words},
    image::Reference,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What the step achieves, printed with its elapsed time when it ends: `db ready`.
    pub done: String,
    pub action: Action,
    /// On failure, these commands print what explains it (a service's last logs).
    pub diagnose: Vec<Command>,
    /// On failure, what the user should know or do: the error's outermost context.
    pub on_failure: String,
    /// The service this step starts, for the state an interruption leaves.
    pub starts: Option<String>,
    /// Asked before any step runs, unless `--yes`: `remove docker.io`.
    pub confirm: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A command, echoed as it runs (see `docker::run::act`).
    Run(Command),
    /// The same wait as `cargo xtask wait TARGET --timeout …`.
    Await {
        target: String,
        timeout: Duration,
    },
    /// `probe` (a `docker info`) until it succeeds: the engine answers; for at most `timeout`.
    AwaitEngine {
        probe: Command,
        timeout: Duration,
    },
    /// Written only if the content or the mode differ; missing directories are made 0755.
    Write {
        path: String,
        mode: u32,
        content: Content,
    },
    Remove {
        path: String,
        reason: String,
    },
    /// An image sent from this machine's engine to each engine of `to` that lacks it.
    Ship {
        image: Reference,
        to: Vec<Engine>,
    },
    /// Work whose commands depend on what it finds when it runs (the containers of a
    /// service): printed as those commands, with what is found named in `<…>`.
    Task(Arc<dyn Task>),
}

/// See `Action::Task`.
pub trait Task: fmt::Display + fmt::Debug + Send + Sync {
    /// Carries the work out; what it achieved, for the step's line.
    fn run(&self, sh: &xshell::Shell) -> anyhow::Result<String>;
}

impl PartialEq for dyn Task {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for dyn Task {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Text(String),
    /// Known only once fetched and checked: the plan shows what it will be, and the
    /// command resolves it (`resolve`) before any step runs.
    Pending(String),
    Bytes(Vec<u8>),
}

impl Step {
    pub fn new(done: &str, action: Action, on_failure: &str) -> Step {
        Step {
            done: done.to_owned(),
            action,
            diagnose: Vec::new(),
            on_failure: on_failure.to_owned(),
            starts: None,
            confirm: None,
        }
    }

    pub fn run(done: &str, command: Command, on_failure: &str) -> Step {
        Step::new(done, Action::Run(command), on_failure)
    }

    pub fn await_ready(done: &str, target: String, timeout: Duration, on_failure: &str) -> Step {
        Step::new(done, Action::Await { target, timeout }, on_failure)
    }

    /// `image` brought to each of `engines` that lacks it, from this machine's engine.
    pub fn ship(image: &Reference, engines: Vec<Engine>) -> Step {
        let names: Vec<String> = engines.iter().map(ToString::to_string).collect();
        Step::new(
            &format!("{image} on {}", names.join(", ")),
            Action::Ship {
                image: image.clone(),
                to: engines,
            },
            &format!("the image did not reach {}", names.join(", ")),
        )
    }

    pub fn diagnosed_by(mut self, command: Command) -> Step {
        self.diagnose.push(command);
        self
    }

    /// Marks the step as the one that starts `service`.
    pub fn starts(mut self, service: &str) -> Step {
        self.starts = Some(service.to_owned());
        self
    }

    pub fn confirmed_by(mut self, question: String) -> Step {
        self.confirm = Some(question);
        self
    }
}

/// What `--dry-run` prints: commands as lines to paste, files with their content.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Run(command) => {
                write!(f, "{command}")?;
                if let Some(question) = &self.confirm {
                    write!(f, "    # after asking: {question}? (--yes answers yes)")?;
                }
                Ok(())
            }
            Action::Await { target, timeout } => write!(
                f,
                "cargo xtask wait {} --timeout {}s",
                shell_words(std::slice::from_ref(target)),
                timeout.as_secs()
            ),
            Action::AwaitEngine { .. } => write!(f, "docker info    # until the daemon answers"),
            Action::Write {
                path,
                mode,
                content,
            } => {
                write!(f, "write {path} (mode {mode:04o}):")?;
                match content {
                    Content::Text(text) => {
                        for line in text.lines() {
                            write!(f, "\n    {line}")?;
                        }
                        Ok(())
                    }
                    Content::Pending(what) => write!(f, "\n    {what}"),
                    Content::Bytes(bytes) => write!(f, "\n    ({} bytes)", bytes.len()),
                }
            }
            Action::Remove { path, reason } => write!(f, "remove {path} ({reason})"),
            Action::Task(task) => write!(f, "{task}"),
            Action::Ship { image, to } => {
                let lines: Vec<String> = to
                    .iter()
                    .map(|engine| {
                        format!(
                            "{} | {}    # unless {engine} has that image already",
                            Engine::Local.docker(["save", &image.to_string()]),
                            engine.docker(["load", "--quiet"])
                        )
                    })
                    .collect();
                f.write_str(&lines.join("\n"))
            }
        }
    }
}

pub fn print(steps: &[Step]) {
    for step in steps {
        println!("{step}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_prints_as_the_equivalent_command() {
        let step = Step::await_ready(
            "db ready",
            "postgres://127.0.0.1:5432".into(),
            Duration::from_secs(60),
            "",
        );
        assert_eq!(
            step.to_string(),
            "cargo xtask wait postgres://127.0.0.1:5432 --timeout 60s"
        );
    }

    #[test]
    fn steps_print_as_files_and_commands() {
        let apt_get = |args: &[&str]| {
            Command::new("apt-get", args.iter().copied()).env("DEBIAN_FRONTEND", "noninteractive")
        };
        let steps = [
            Step::new(
                "",
                Action::Write {
                    path: "/etc/x".into(),
                    mode: 0o600,
                    content: Content::Text("a: b\nc\n".into()),
                },
                "",
            ),
            Step::new(
                "",
                Action::Write {
                    path: "/etc/k".into(),
                    mode: 0o644,
                    content: Content::Pending("the key at https://k".into()),
                },
                "",
            ),
            Step::new(
                "",
                Action::Remove {
                    path: "/etc/y".into(),
                    reason: "why".into(),
                },
                "",
            ),
            Step::run("", apt_get(&["remove", "-y", "docker.io"]), "")
                .confirmed_by("remove docker.io".into()),
            Step::run(
                "",
                Command::new("usermod", ["-aG", "docker", "ann marie"]),
                "",
            ),
        ];
        let printed: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert_eq!(
            printed.join("\n"),
            "write /etc/x (mode 0600):\n\
             \x20   a: b\n\
             \x20   c\n\
             write /etc/k (mode 0644):\n\
             \x20   the key at https://k\n\
             remove /etc/y (why)\n\
             DEBIAN_FRONTEND=noninteractive apt-get remove -y docker.io    # after asking: remove docker.io? (--yes answers yes)\n\
             usermod -aG docker 'ann marie'"
        );
    }
}
