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
mod tests {
    use super::*;
    use crate::hint;

    #[test]
    fn daemon_failures_say_what_fixes_them() {
        let denied = "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock";
        let err = daemon_problem(denied);
        assert!(
            hint::of(&err).unwrap().contains("join the docker group"),
            "{err:#}"
        );
        let down = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?";
        let err = daemon_problem(down);
        assert!(
            err.to_string()
                .starts_with("the Docker daemon is not running (Cannot connect"),
            "{err}"
        );
        assert!(hint::of(&err).is_some());
        let err = daemon_problem("");
        assert_eq!(
            err.to_string(),
            "the Docker daemon does not answer: no answer"
        );
        assert_eq!(hint::of(&err), None);
    }

    #[test]
    fn taken_ports_are_found_in_both_wordings() {
        let other_container = "Error response from daemon: driver failed programming external connectivity on \
            endpoint travial-dev-db-1 (0f2c): Bind for 127.0.0.1:5432 failed: port is already allocated";
        assert_eq!(taken_port(other_container), Some(5432));
        let other_program = "Error response from daemon: driver failed programming external connectivity on \
            endpoint travial-dev-web-1 (9a1b): Error starting userland proxy: listen tcp4 127.0.0.1:8000: bind: \
            address already in use";
        assert_eq!(taken_port(other_program), Some(8000));
        assert!(
            known_fix(other_program)
                .unwrap()
                .contains("port 8000: set DB_PORT")
        );
    }

    #[test]
    fn a_missing_variable_is_named() {
        let compose = "error while interpolating services.db.environment.POSTGRES_PASSWORD: required variable \
            POSTGRES_PASSWORD is missing a value: POSTGRES_PASSWORD must be set for prod";
        assert_eq!(missing_variable(compose), Some("POSTGRES_PASSWORD"));
        assert!(
            known_fix(compose)
                .unwrap()
                .starts_with("set POSTGRES_PASSWORD in the environment")
        );
        assert_eq!(known_fix("no such service: cache"), None);
        let denied = "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock";
        assert!(known_fix(denied).unwrap().contains("docker group"));
    }

    /// What ssh and docker print, as they printed it here.
    #[test]
    fn ssh_problems_are_named_with_their_fix() {
        let problem =
            |stderr: &str| ssh_problem(stderr, "root@10.201.1.2", "ssh://root@10.201.1.2").unwrap();
        let changed = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n\
            @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
            Host key for 10.201.1.2 has changed and you have requested strict checking.\n\
            Host key verification failed.\n";
        let (what, fix) = problem(changed);
        assert!(
            what.starts_with("the SSH host key of root@10.201.1.2 has changed"),
            "{what}"
        );
        assert!(fix.contains("ssh-keygen -R"), "{fix}");
        let (what, _) = problem("Host key verification failed.\n");
        assert_eq!(
            what,
            "the SSH host key of root@10.201.1.2 is not known here"
        );
        let (what, fix) = problem("root@10.201.1.2: Permission denied (publickey).\n");
        assert_eq!(what, "root@10.201.1.2 refused the SSH login of root");
        assert!(fix.contains("ssh-copy-id root@10.201.1.2"), "{fix}");
        let (what, _) = problem("ssh: connect to host 10.201.1.2 port 22: Connection refused\n");
        assert_eq!(
            what,
            "cannot reach root@10.201.1.2 over SSH (connect to host 10.201.1.2 port 22: Connection refused)"
        );
        let (what, fix) = problem("bash: line 1: docker: command not found\n");
        assert_eq!(what, "docker is not installed on root@10.201.1.2");
        assert_eq!(
            fix,
            "`cargo xtask install-docker --host ssh://root@10.201.1.2`"
        );
        for denied in [
            "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock",
            // Docker 29.
            "permission denied while trying to connect to the docker API at unix:///var/run/docker.sock",
        ] {
            let (what, _) = problem(denied);
            assert_eq!(
                what,
                "root may not use the Docker daemon on root@10.201.1.2"
            );
        }
        let (what, _) = problem(
            "Error processing tar file(exit status 1): write /x: no space left on device\n",
        );
        assert_eq!(what, "the disk of root@10.201.1.2 is full");
        assert_eq!(ssh_problem("something else", "h", "ssh://h"), None);
        // Inside docker's own words, through `explain`.
        let docker = "error during connect: Get \"http://docker.example.com/v1.41/info\": command [ssh -o ConnectTimeout=30 -T -l root -- 10.201.1.2 docker system dial-stdio] has exited with exit status 255, make sure the URL is valid, and Docker 18.09 or later is installed on the remote host: stderr=Host key verification failed.\r\n";
        let unnamed = Command::docker(["info"]);
        let (reason, fix) = explain(docker, &unnamed).unwrap();
        assert_eq!(reason, "the SSH host key of the host is not known here");
        assert!(fix.is_some());
        // The host the command went to is named, in the problem and in its fix.
        let load = Command::docker(["--host", "ssh://deploy@203.0.113.7:2222", "load"]);
        let full = "Error processing tar file(exit status 1): write /x: no space left on device\n";
        let (reason, fix) = explain(full, &load).unwrap();
        assert_eq!(reason, "the disk of deploy@203.0.113.7:2222 is full");
        assert!(
            fix.unwrap()
                .contains("docker --host ssh://deploy@203.0.113.7:2222 system prune")
        );
    }

    #[test]
    fn registry_refusals_say_what_to_do() {
        let push = Command::docker(["push", "r/a"]);
        let explained = |stderr: &str| explain(stderr, &push).unwrap();
        let (reason, fix) =
            explained("The push refers to repository [r/a]\nno basic auth credentials\n");
        assert_eq!(reason, "unauthorized (no basic auth credentials)");
        assert!(fix.unwrap().starts_with("set DOCKER_USERNAME"));
        let (reason, _) = explained("name unknown: repository name not known to registry");
        assert!(reason.contains("no such repository"), "{reason}");
        let (reason, fix) = explained(
            "Get \"http://127.0.0.1:5999/v2/\": dial tcp 127.0.0.1:5999: connect: connection refused",
        );
        assert!(
            reason.contains("cannot be reached") && fix.is_some(),
            "{reason}"
        );
        assert_eq!(
            explained("something else\n"),
            ("something else".to_owned(), None)
        );
        assert_eq!(explain("\n", &push), None);
    }
}
