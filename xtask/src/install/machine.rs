//! Where install-docker acts: this machine, or a server over SSH. The facts are read and
//! the plan's steps carried out through it, so that the plan is the same either way; over
//! SSH, a step becomes the command that does it there (a file's content on the stdin of
//! `install`), through `sudo --non-interactive` unless the login is root.

use std::{path::Path, process::Output, time::Duration};

use anyhow::bail;
use xshell::Shell;

use crate::{
    docker::{Command, SshHost, diagnosis, quote::shell_words, run},
    hint::Hint,
    plan::{Action, Content, Step},
};

const SSH_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a command runs as the login user or as root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Privilege {
    User,
    Root,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Machine {
    Here,
    Ssh { host: SshHost, root: bool },
}

impl Machine {
    /// A server over SSH, its login checked: root, or a user with sudo that asks no password.
    pub fn connect(sh: &Shell, host: SshHost) -> anyhow::Result<Machine> {
        let probe = Machine::Ssh {
            host: host.clone(),
            root: true,
        };
        let uid = probe.read_command(sh, &Command::new("id", ["-u"]), Privilege::User)?;
        let root = uid.trim() == "0";
        let machine = Machine::Ssh { host, root };
        if !root {
            let sudo = machine.output(
                sh,
                &Command::new("sudo", ["--non-interactive", "true"]),
                Privilege::User,
            )?;
            if !sudo.status.success() {
                bail!(
                    "{} may not use sudo without a password on {}: install-docker needs root there: \
                     connect as root, or allow that user passwordless sudo",
                    machine.user(),
                    machine
                );
            }
        }
        Ok(machine)
    }

    pub fn is_here(&self) -> bool {
        *self == Machine::Here
    }

    /// The login over SSH (`None` here).
    fn user(&self) -> String {
        match self {
            Machine::Ssh { host, .. } => {
                host.user.clone().unwrap_or_else(|| "your user".to_owned())
            }
            Machine::Here => String::new(),
        }
    }

    /// The command as it runs on the machine, as root with `Privilege::Root` (through sudo
    /// over SSH unless the login is root; here the xtask itself runs as root for the steps).
    pub fn command(&self, command: &Command, privilege: Privilege) -> Command {
        let Machine::Ssh { host, root } = self else {
            return command.clone();
        };
        let mut remote: Vec<String> = Vec::new();
        if privilege == Privilege::Root && !root {
            remote.extend(["sudo", "--non-interactive", "--"].map(String::from));
        }
        if !command.env.is_empty() {
            remote.push("env".to_owned());
            remote.extend(
                command
                    .env
                    .iter()
                    .map(|(name, value)| format!("{name}={value}")),
            );
        }
        remote.push(command.program.clone());
        remote.extend(command.args.iter().cloned());
        // ssh hands the remote shell one line: each word quoted, so none is re-split.
        let mut over_ssh = host.command(shell_words(&remote));
        over_ssh.stdin = command.stdin.clone();
        over_ssh
    }

    /// What a command printed and its status, unchecked; over SSH, a failure to connect or
    /// to log in is an error of its own, with its fix.
    pub fn output(
        &self,
        sh: &Shell,
        command: &Command,
        privilege: Privilege,
    ) -> anyhow::Result<Output> {
        let command = self.command(command, privilege);
        if self.is_here() {
            return run::probe(sh, &command);
        }
        let Some(output) = run::probe_within(sh, &command, SSH_ANSWER_TIMEOUT)? else {
            bail!(
                "{self} did not answer over SSH within {} s",
                SSH_ANSWER_TIMEOUT.as_secs()
            );
        };
        // ssh's own failures end with 255; the command's never do here.
        if output.status.code() == Some(255) {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if let Machine::Ssh { host, .. } = self {
                if let Some((problem, fix)) =
                    diagnosis::ssh_problem(&stderr, &host.to_string(), &host.url())
                {
                    return Err(Hint::new(problem, fix).into());
                }
            }
            bail!(
                "ssh to {self} failed: {}",
                run::last_line(&stderr).unwrap_or_default()
            );
        }
        Ok(output)
    }

    /// What a command printed, when it succeeds.
    pub fn read_command(
        &self,
        sh: &Shell,
        command: &Command,
        privilege: Privilege,
    ) -> anyhow::Result<String> {
        let output = self.output(sh, command, privilege)?;
        if !output.status.success() {
            bail!(
                "`{command}` failed on {self}: {}",
                run::last_line(&String::from_utf8_lossy(&output.stderr))
                    .unwrap_or_else(|| output.status.to_string())
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Whether a command succeeds there (as the login).
    pub fn succeeds(&self, sh: &Shell, command: &Command) -> anyhow::Result<bool> {
        Ok(self.output(sh, command, Privilege::User)?.status.success())
    }

    /// A file's content, `None` when it is not there (or not readable).
    pub fn read_file(&self, sh: &Shell, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        if self.is_here() {
            return Ok(std::fs::read(path).ok());
        }
        let output = self.output(sh, &Command::new("cat", ["--", path]), Privilege::User)?;
        Ok(output.status.success().then_some(output.stdout))
    }

    /// The names in a directory (none when it is not there).
    pub fn list_dir(&self, sh: &Shell, dir: &str) -> anyhow::Result<Vec<String>> {
        if self.is_here() {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return Ok(Vec::new());
            };
            return Ok(entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .collect());
        }
        let listing = self.output(sh, &Command::new("ls", ["-1A", "--", dir]), Privilege::User)?;
        Ok(String::from_utf8_lossy(&listing.stdout)
            .lines()
            .map(str::to_owned)
            .collect())
    }

    /// Whether `path` exists (a directory, if `directory`).
    pub fn exists(&self, sh: &Shell, path: &str) -> anyhow::Result<bool> {
        if self.is_here() {
            return Ok(Path::new(path).exists());
        }
        self.succeeds(sh, &Command::new("test", ["-e", path]))
    }

    pub fn is_dir(&self, sh: &Shell, path: &str) -> anyhow::Result<bool> {
        if self.is_here() {
            return Ok(Path::new(path).is_dir());
        }
        self.succeeds(sh, &Command::new("test", ["-d", path]))
    }

    /// A variable of the xtask's own environment: meaningful here only (SUDO_USER).
    pub fn env(&self, name: &str) -> Option<String> {
        self.is_here().then(|| std::env::var(name).ok()).flatten()
    }

    /// The step as it is carried out on the machine: over SSH, each becomes a command.
    pub fn step(&self, step: &Step) -> Step {
        if self.is_here() {
            return step.clone();
        }
        let on = format!(" on {self}");
        let mut remote = step.clone();
        remote.action = match &step.action {
            Action::Run(command) => Action::Run(self.command(command, Privilege::Root)),
            Action::AwaitEngine { probe, timeout } => Action::AwaitEngine {
                probe: self.command(probe, Privilege::Root),
                timeout: *timeout,
            },
            Action::Write {
                path,
                mode,
                content,
            } => {
                let bytes = match content {
                    Content::Text(text) => text.as_bytes().to_vec(),
                    Content::Bytes(bytes) => bytes.clone(),
                    Content::Pending(_) => return step.clone(),
                };
                let install = Command::new(
                    "install",
                    ["-D", "-m", &format!("{mode:04o}"), "/dev/stdin", path],
                )
                .stdin_content(path, bytes);
                remote.done = format!("wrote {path}");
                Action::Run(self.command(&install, Privilege::Root))
            }
            Action::Remove { path, reason } => {
                remote.done = format!("removed {path} ({reason})");
                Action::Run(self.command(&Command::new("rm", ["-f", "--", path]), Privilege::Root))
            }
            other => other.clone(),
        };
        remote.done.push_str(&on);
        remote
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Machine::Here => f.write_str("this machine"),
            Machine::Ssh { host, .. } => write!(f, "{host}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(root: bool) -> Machine {
        Machine::Ssh {
            host: SshHost::parse("ssh://deploy@203.0.113.7:2222").unwrap(),
            root,
        }
    }

    #[test]
    fn over_ssh_a_step_is_the_command_that_does_it_there() {
        let apt = Command::new("apt-get", ["install", "-y", "docker.io"])
            .env("DEBIAN_FRONTEND", "noninteractive");
        let step = server(false).step(&Step::run("installed", apt, ""));
        assert_eq!(
            step.to_string(),
            "ssh -o BatchMode=yes -o ConnectTimeout=10 -p 2222 -- deploy@203.0.113.7 \
             'sudo --non-interactive -- env DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io'"
        );
        assert_eq!(step.done, "installed on deploy@203.0.113.7:2222");

        let write = Step::new(
            "",
            Action::Write {
                path: "/etc/apt/sources.list.d/docker.sources".into(),
                mode: 0o644,
                content: Content::Text("Types: deb\n".into()),
            },
            "",
        );
        let as_root = server(true).step(&write);
        assert_eq!(
            as_root.to_string(),
            "ssh -o BatchMode=yes -o ConnectTimeout=10 -p 2222 -- deploy@203.0.113.7 \
             'install -D -m 0644 /dev/stdin /etc/apt/sources.list.d/docker.sources'  \
             # /etc/apt/sources.list.d/docker.sources on stdin"
        );
        let Action::Run(command) = &as_root.action else {
            panic!()
        };
        assert_eq!(command.stdin.as_ref().unwrap().bytes(), b"Types: deb\n");
        // Here, the same step.
        assert_eq!(Machine::Here.step(&write), write);
    }
}
