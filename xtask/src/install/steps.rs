//! install-docker's plan, as data: the files it writes (path, mode, content), the files it
//! removes and the commands it runs. `--dry-run` prints it; `apply` carries it out.

use std::fmt;

use super::apt_key::Fingerprint;
use crate::plan::shell_words;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// What is installed from where: `Debian GNU/Linux 12 (bookworm): Debian's own packages`.
    pub title: String,
    /// Printed before anything runs.
    pub notes: Vec<Note>,
    pub steps: Vec<Step>,
    /// Printed once every step succeeded.
    pub afterwards: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    Warning(String),
    Info(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
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
    Run(Command),
    /// `docker info` until the daemon answers (bounded), then `docker version`.
    Verify,
    /// `docker --version`: where no daemon is started, only the client can be checked.
    VerifyClient,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    Text(String),
    /// The key at `url`, written only once its fingerprint is checked to be `fingerprint`.
    Key {
        url: String,
        fingerprint: Fingerprint,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Never secrets: they are printed.
    pub env: Vec<(String, String)>,
    pub argv: Vec<String>,
    /// Asked before anything runs, unless `--yes`.
    pub confirm: Option<String>,
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
        self.steps
            .iter()
            .all(|step| matches!(step, Step::Verify | Step::VerifyClient))
    }

    pub fn print_notes(&self) {
        for note in &self.notes {
            match note {
                Note::Warning(text) => eprintln!("warning: {text}"),
                Note::Info(text) => crate::output::progress(text),
            }
        }
    }
}

impl Command {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(argv: I) -> Command {
        Command {
            env: Vec::new(),
            argv: argv.into_iter().map(Into::into).collect(),
            confirm: None,
        }
    }

    /// `apt-get ARGS…` that never stops to ask (debconf questions take their defaults).
    pub fn apt_get<I: IntoIterator<Item = S>, S: Into<String>>(args: I) -> Command {
        let mut command = Command::new(
            std::iter::once("apt-get".to_owned()).chain(args.into_iter().map(Into::into)),
        );
        command
            .env
            .push(("DEBIAN_FRONTEND".to_owned(), "noninteractive".to_owned()));
        command
    }

    pub fn confirmed_by(mut self, question: String) -> Command {
        self.confirm = Some(question);
        self
    }
}

/// As a shell would take it: `DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io`.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.env {
            write!(f, "{name}={} ", shell_words(std::slice::from_ref(value)))?;
        }
        f.write_str(&shell_words(&self.argv))
    }
}

/// What `--dry-run` prints for the step: commands as lines to paste, files with their content.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Write {
                path,
                mode,
                content,
            } => {
                writeln!(f, "write {path} (mode {mode:04o}):")?;
                match content {
                    Content::Text(text) => {
                        for line in text.lines() {
                            writeln!(f, "    {line}")?;
                        }
                        Ok(())
                    }
                    Content::Key { url, fingerprint } => writeln!(
                        f,
                        "    the key at {url}, once its OpenPGP fingerprint is checked to be {fingerprint}"
                    ),
                }
            }
            Step::Remove { path, reason } => writeln!(f, "remove {path} ({reason})"),
            Step::Run(command) => match &command.confirm {
                Some(question) => writeln!(
                    f,
                    "{command}    # after asking: {question}? (--yes answers yes)"
                ),
                None => writeln!(f, "{command}"),
            },
            Step::Verify => writeln!(
                f,
                "docker info    # until the daemon answers\ndocker version"
            ),
            Step::VerifyClient => writeln!(f, "docker --version"),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# install-docker: {}", self.title)?;
        if self.changes_nothing() {
            writeln!(f, "# nothing to change")?;
        }
        for step in &self.steps {
            write!(f, "{step}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::apt_key::DOCKER;

    #[test]
    fn steps_print_as_files_and_commands() {
        let steps = [
            Step::Write {
                path: "/etc/apt/keyrings/docker.asc".into(),
                mode: 0o644,
                content: Content::Key {
                    url: "https://download.docker.com/linux/debian/gpg".into(),
                    fingerprint: DOCKER,
                },
            },
            Step::Write {
                path: "/etc/x".into(),
                mode: 0o600,
                content: Content::Text("a: b\nc\n".into()),
            },
            Step::Remove {
                path: "/etc/apt/sources.list.d/docker.list".into(),
                reason: "why".into(),
            },
            Step::Run(
                Command::apt_get(["remove", "-y", "docker.io"])
                    .confirmed_by("remove docker.io".into()),
            ),
            Step::Run(Command::new(["usermod", "-aG", "docker", "ann marie"])),
        ];
        let printed: String = steps.iter().map(ToString::to_string).collect();
        assert_eq!(
            printed,
            "write /etc/apt/keyrings/docker.asc (mode 0644):\n\
             \x20   the key at https://download.docker.com/linux/debian/gpg, once its OpenPGP fingerprint is checked to be 9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88\n\
             write /etc/x (mode 0600):\n\
             \x20   a: b\n\
             \x20   c\n\
             remove /etc/apt/sources.list.d/docker.list (why)\n\
             DEBIAN_FRONTEND=noninteractive apt-get remove -y docker.io    # after asking: remove docker.io? (--yes answers yes)\n\
             usermod -aG docker 'ann marie'\n"
        );
    }
}
