//! What docker's complaints mean and how to fix them: the `hint:` line of any failure.
//! Pure functions of its stderr, tested with the words docker really prints.

use super::{Command, SshHost, run::last_line};
use crate::hint::Hint;

pub const INSTALL: &str = "run `cargo xtask install-docker`";

/// Turns `docker info`'s complaint into what to do about it.
pub fn daemon_problem(stderr: &str) -> anyhow::Error {
    let first_line = stderr
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("no answer")
        .trim();
    if stderr.contains("permission denied") {
        Hint::new(
            "permission denied on the Docker daemon's socket",
            join_the_group(),
        )
        .into()
    } else if is_daemon_down(stderr) {
        Hint::new(
            format!("the Docker daemon is not running ({first_line})"),
            start_the_daemon(),
        )
        .into()
    } else {
        anyhow::anyhow!("the Docker daemon does not answer: {first_line}")
    }
}

/// The fix of a mistake docker reported on stderr, when it is a common one.
pub fn known_fix(stderr: &str) -> Option<String> {
    if let Some(port) = taken_port(stderr) {
        return Some(port_fix(port));
    }
    if let Some(variable) = missing_variable(stderr) {
        return Some(format!(
            "set {variable} in the environment, e.g. `export {variable}=…` (keep it out of git), then run the command again"
        ));
    }
    if stderr.contains("pull access denied") || stderr.contains("manifest unknown") {
        return Some("the image is neither here nor in a registry: build it with `cargo xtask build`, or deploy without --no-build".to_owned());
    }
    if denied_the_daemon(stderr) {
        return Some(join_the_group());
    }
    if is_daemon_down(stderr) {
        return Some(start_the_daemon());
    }
    None
}

/// What went wrong reaching a host over SSH, or with Docker there, from the words of ssh,
/// of the shell there or of docker: the problem and its fix. `host` is `user@host` (the
/// user may be missing), `url` what `--host` takes.
pub fn ssh_problem(stderr: &str, host: &str, url: &str) -> Option<(String, String)> {
    let user = host.split_once('@').map_or("your user", |(user, _)| user);
    let found = |words: &[&str]| words.iter().any(|word| stderr.contains(word));
    let problem = if host_key_changed(stderr) {
        (
            format!(
                "the SSH host key of {host} has changed since it was accepted: someone may be intercepting the connection"
            ),
            format!(
                "if {host} was reinstalled, check its new key's fingerprint on the server itself, then `ssh-keygen -R HOST` \
                 and connect once with `ssh {host}`; otherwise do not deploy to it"
            ),
        )
    } else if found(&["Host key verification failed", "host key is not known"]) {
        (
            format!("the SSH host key of {host} is not known here"),
            format!(
                "connect once with `ssh {host}`, compare the fingerprint it shows with the server's own \
                 (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` there), and accept it"
            ),
        )
    } else if found(&[
        "Permission denied (publickey",
        "Permission denied (password",
        "Too many authentication failures",
    ]) {
        (
            format!("{host} refused the SSH login of {user}"),
            format!(
                "give {user} your public key there (`ssh-copy-id {host}`), or load your key into ssh-agent (`ssh-add`)"
            ),
        )
    } else if found(&[
        "Connection refused",
        "No route to host",
        "Connection timed out",
        "timed out during banner exchange",
        "Could not resolve hostname",
        "Network is unreachable",
        "Name or service not known",
    ]) {
        let reason = stderr
            .lines()
            .rev()
            .find(|line| line.starts_with("ssh: ") || line.contains("timed out"))
            .map_or_else(
                || "no connection".to_owned(),
                |line| line.trim_start_matches("ssh: ").trim().to_owned(),
            );
        (
            format!("cannot reach {host} over SSH ({reason})"),
            "check the address and the port (ssh://USER@HOST:PORT), and that sshd runs there"
                .to_owned(),
        )
    } else if found(&["docker: command not found", "docker: not found"]) {
        (
            format!("docker is not installed on {host}"),
            format!("`cargo xtask install-docker --host {url}`"),
        )
    } else if denied_the_daemon(stderr) {
        (
            format!("{user} may not use the Docker daemon on {host}"),
            format!(
                "add {user} to the docker group there (`cargo xtask install-docker --host {url}` does it), then deploy again"
            ),
        )
    } else if is_daemon_down(stderr) {
        (
            format!("the Docker daemon on {host} is not running"),
            format!("start it there: `ssh {host} sudo systemctl start docker`"),
        )
    } else if found(&["no space left on device"]) {
        (
            format!("the disk of {host} is full"),
            format!(
                "free space there (`docker --host {url} system prune` removes what no container uses), then deploy again"
            ),
        )
    } else {
        return None;
    };
    Some(problem)
}

/// The reason `command` failed, from its stderr: its last line, named when it is a
/// registry's refusal or an SSH host's (the one the command went to), and the fix when the
/// mistake is a known one.
pub fn explain(stderr: &str, command: &Command) -> Option<(String, Option<String>)> {
    let last = last_line(stderr)?;
    if stderr.contains("ssh") || stderr.contains("no space left on device") {
        let (host, url) = match ssh_host_of(command) {
            Some(host) => (host.to_string(), host.url()),
            None => ("the host".to_owned(), "ssh://USER@HOST".to_owned()),
        };
        if let Some((problem, fix)) = ssh_problem(stderr, &host, &url) {
            return Some((problem, Some(fix)));
        }
    }
    let lower = stderr.to_lowercase();
    let registry = if [
        "no basic auth credentials",
        "unauthorized: ",
        "authentication required",
        "requested access to the resource is denied",
    ]
    .iter()
    .any(|words| lower.contains(words))
    {
        Some((
            "unauthorized",
            "set DOCKER_USERNAME and DOCKER_PASSWORD (or DOCKER_TOKEN), or run `docker login`",
        ))
    } else if lower.contains("name unknown") || lower.contains("repository does not exist") {
        Some((
            "the registry has no such repository",
            "create it there, or check --repo",
        ))
    } else if !is_daemon_down(stderr)
        && lower.contains("dial tcp")
        && ["connection refused", "no such host", "i/o timeout"]
            .iter()
            .any(|words| lower.contains(words))
    {
        Some((
            "the registry cannot be reached",
            "check the registry's address (--registry) and the network",
        ))
    } else {
        None
    };
    Some(match registry {
        Some((what, fix)) => (format!("{what} ({last})"), Some(fix.to_owned())),
        None => (last, known_fix(stderr)),
    })
}

/// The variable that moves the port: the one set to it, if any, else both.
fn port_fix(port: u16) -> String {
    let set_to_it = ["DB_PORT", "WEB_PORT"]
        .into_iter()
        .find(|name| std::env::var(name).is_ok_and(|value| value.trim() == port.to_string()));
    match set_to_it {
        Some(name) => format!("another program uses port {port}: set {name} to a free one"),
        None => format!(
            "another program uses port {port}: set DB_PORT (the database's port) or WEB_PORT (web's) \
             to a free one, e.g. `WEB_PORT=8001 cargo xtask deploy dev`"
        ),
    }
}

/// ssh's warning, printed whether or not it then connects.
pub fn host_key_changed(stderr: &str) -> bool {
    stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
}

/// Docker up to 28 says "… to connect to the Docker daemon socket", 29 "… to connect to the
/// docker API".
fn denied_the_daemon(stderr: &str) -> bool {
    stderr
        .to_lowercase()
        .contains("permission denied while trying to connect to the docker")
}

/// The SSH host a docker command goes to: its `--host ssh://…`, else DOCKER_HOST's.
fn ssh_host_of(command: &Command) -> Option<SshHost> {
    let flag = command
        .args
        .windows(2)
        .find(|pair| pair[0] == "--host" || pair[0] == "-H")
        .map(|pair| pair[1].clone());
    let from_env = || {
        command
            .env
            .iter()
            .find(|(name, _)| name == "DOCKER_HOST")
            .map(|(_, value)| value.clone())
            .or_else(|| std::env::var("DOCKER_HOST").ok())
    };
    SshHost::parse(&flag.or_else(from_env)?).ok()
}

fn is_daemon_down(stderr: &str) -> bool {
    stderr.contains("Is the docker daemon running")
        || stderr.contains("Cannot connect to the Docker daemon")
}

pub fn join_the_group() -> String {
    "join the docker group (`cargo xtask install-docker` does it), then log in again or run `newgrp docker`".to_owned()
}

pub fn start_the_daemon() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() => {
            format!(
                "start the daemon DOCKER_HOST names ({host}), or unset DOCKER_HOST to use the local one"
            )
        }
        _ => "start it: `sudo systemctl start docker`".to_owned(),
    }
}

/// `Bind for 127.0.0.1:5432 failed: port is already allocated` (another container), or
/// `listen tcp4 127.0.0.1:5432: bind: address already in use` (another program).
fn taken_port(stderr: &str) -> Option<u16> {
    let line = stderr.lines().find(|line| {
        line.contains("port is already allocated") || line.contains("address already in use")
    })?;
    let address = match line.find("Bind for ") {
        Some(start) => line[start + "Bind for ".len()..]
            .split_whitespace()
            .next()?,
        None => line[..line.find(": bind:")?].rsplit(' ').next()?,
    };
    address.rsplit(':').next()?.parse().ok()
}

/// Compose's `required variable POSTGRES_PASSWORD is missing a value: …`.
fn missing_variable(stderr: &str) -> Option<&str> {
    let (_, after) = stderr.split_once("required variable ")?;
    let name = after.split_whitespace().next()?;
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

#[cfg(test)]
#[path = "diagnosis_tests.rs"]
mod tests;
