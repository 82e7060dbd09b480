//! A command line as data: what `--dry-run` prints, what the executor runs and what the
//! unit tests compare as text. Building one never runs anything.

use std::fmt;

use super::{SshHost, quote::shell_words};

/// A program with its arguments and environment. Usually docker, with the engine's flags
/// already in `args` (see `Engine`); install-docker also runs apt-get and usermod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    /// Printed before the command: never secrets.
    pub env: Vec<(String, String)>,
    /// Set in the command's environment but never printed: the values Compose copies into
    /// its `secrets:`.
    pub secret_env: Vec<Secret>,
    /// Written to the command's standard input, never printed.
    pub stdin: Option<Stdin>,
    /// The SSH host it goes to (`docker --host ssh://…`, `ssh …`): it runs over the one
    /// connection to that host (see `tunnel`).
    pub ssh: Option<SshHost>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stdin {
    /// `docker login --password-stdin`.
    Secret(Secret),
    /// A file's content, where the command writes it (`install /dev/stdin PATH` over SSH).
    Content { what: String, bytes: Vec<u8> },
}

impl Stdin {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Stdin::Secret(secret) => secret.expose().as_bytes(),
            Stdin::Content { bytes, .. } => bytes,
        }
    }
}

/// A value that must never be printed: its `Debug` and the command line show its name only.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// Where it comes from, as the user knows it: `DOCKER_PASSWORD`, `POSTGRES_PASSWORD`.
    pub name: String,
    value: String,
}

impl Secret {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Secret {
        Secret {
            name: name.into(),
            value: value.into(),
        }
    }

    pub fn expose(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.name)
    }
}

impl Command {
    pub fn new<S: Into<String>>(program: &str, args: impl IntoIterator<Item = S>) -> Command {
        Command {
            program: program.to_owned(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            secret_env: Vec::new(),
            stdin: None,
            ssh: None,
        }
    }

    /// `docker ARGS…` on the engine of this machine's environment (DOCKER_HOST, contexts).
    pub fn docker<S: Into<String>>(args: impl IntoIterator<Item = S>) -> Command {
        Command::new("docker", args)
    }

    pub fn args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Command {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// A variable for the command, printed with it.
    pub fn env(mut self, name: &str, value: &str) -> Command {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Variables the command needs but its printed line must not show.
    pub fn secret_envs(mut self, secrets: &[Secret]) -> Command {
        self.secret_env.extend(secrets.iter().cloned());
        self
    }

    pub fn stdin(mut self, secret: Secret) -> Command {
        self.stdin = Some(Stdin::Secret(secret));
        self
    }

    /// `bytes` on the command's stdin, named `what` in its printed line.
    pub fn stdin_content(mut self, what: &str, bytes: Vec<u8>) -> Command {
        self.stdin = Some(Stdin::Content {
            what: what.to_owned(),
            bytes,
        });
        self
    }
}

/// As a shell would take it: `APP_TAG=x docker compose … build`, then a comment naming the
/// secrets it is given, without their values.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in &self.env {
            write!(f, "{name}={} ", shell_words(std::slice::from_ref(value)))?;
        }
        f.write_str(&self.program)?;
        if !self.args.is_empty() {
            write!(f, " {}", shell_words(&self.args))?;
        }
        match &self.stdin {
            Some(Stdin::Secret(secret)) => write!(f, "  # password from ${}", secret.name)?,
            Some(Stdin::Content { what, .. }) => write!(f, "  # {what} on stdin")?,
            None => {}
        }
        if !self.secret_env.is_empty() {
            let names: Vec<&str> = self.secret_env.iter().map(|s| s.name.as_str()).collect();
            write!(f, "  # with the secrets {}", names.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_print_before_the_command_and_secrets_never() {
        let command = Command::docker(["compose", "build"]).env("APP_TAG", "0a1b2c3-dirty");
        assert_eq!(
            command.to_string(),
            "APP_TAG=0a1b2c3-dirty docker compose build"
        );
        let login = Command::docker(["login", "--password-stdin"])
            .stdin(Secret::new("DOCKER_PASSWORD", "hunter2"));
        assert_eq!(
            login.to_string(),
            "docker login --password-stdin  # password from $DOCKER_PASSWORD"
        );
        let up = Command::docker(["compose", "up"])
            .secret_envs(&[Secret::new("POSTGRES_PASSWORD", "p@ss")]);
        assert_eq!(
            up.to_string(),
            "docker compose up  # with the secrets POSTGRES_PASSWORD"
        );
        assert!(!format!("{up:?}{login:?}").contains("p@ss"));
        assert!(!format!("{login:?}").contains("hunter2"));
    }
}
