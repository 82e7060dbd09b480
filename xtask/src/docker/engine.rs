//! Which Docker engine a command talks to, decided in one place (`Engine::choose`): every
//! docker command line is built here, so a plan never needs to know where it will run.
//!
//! `--host` wins, then the environment's `x-xtask: host`, then Docker's own choice
//! (DOCKER_HOST, DOCKER_CONTEXT, the current context), as Docker defines it.

use std::fmt;

use anyhow::bail;
use xshell::Shell;

use super::{Command, run};
use crate::address::HostPort;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// This machine's engine: what it publishes on 127.0.0.1 is reachable here.
    Local,
    /// Another machine's engine.
    Remote {
        /// Given to every docker command as `--host` when the xtask chose the engine;
        /// `None` when Docker's own settings name it.
        flag: Option<SshHost>,
        /// How the host is named: `deploy@10.201.1.2`.
        name: String,
        /// Where its published ports are reached: `10.201.1.2`.
        address: String,
    },
}

/// `ssh://[USER@]HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SshHost {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshHost {
    pub fn parse(text: &str) -> anyhow::Result<SshHost> {
        let usage = "write ssh://[USER@]HOST[:PORT], e.g. ssh://deploy@203.0.113.7";
        let Some(rest) = text.strip_prefix("ssh://") else {
            bail!("`{text}` is not an SSH address: {usage}");
        };
        if rest.contains(['/', '?', '#'])
            || rest.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            bail!("`{text}` has more than a user, a host and a port: {usage}");
        }
        let (user, host_port) = match rest.rsplit_once('@') {
            Some((user, host_port)) => (Some(user), host_port),
            None => (None, rest),
        };
        if user.is_some_and(|user| user.is_empty() || user.contains(':')) {
            bail!("`{text}`: a user without a password (keys only): {usage}");
        }
        // The user is also an argument of commands run there (`id`, `usermod`): a name as
        // login names go, never an option.
        let login_name = |user: &str| {
            !user.starts_with('-')
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        };
        if user.is_some_and(|user| !login_name(user)) {
            bail!("`{text}` names no valid user: {usage}");
        }
        let HostPort { host, port } = HostPort::parse(host_port)
            .map_err(|why| anyhow::anyhow!("`{text}`: {why}: {usage}"))?;
        Ok(SshHost {
            user: user.map(str::to_owned),
            host,
            port,
        })
    }

    pub fn url(&self) -> String {
        let user = self
            .user
            .as_deref()
            .map(|user| format!("{user}@"))
            .unwrap_or_default();
        let address = HostPort {
            host: self.host.clone(),
            port: self.port,
        };
        format!("ssh://{user}{address}")
    }

    /// `user@host` as ssh takes it, and its options for the port.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(port) = self.port {
            args.extend(["-p".to_owned(), port.to_string()]);
        }
        let destination = match &self.user {
            Some(user) => format!("{user}@{}", self.host),
            None => self.host.clone(),
        };
        args.extend(["--".to_owned(), destination]);
        args
    }

    /// `ssh` running `remote` (one line for the remote shell) there: never asking anything
    /// (no password or passphrase prompt, no unknown host key accepted), and giving up on a
    /// host that does not answer.
    pub fn command(&self, remote: String) -> Command {
        let mut args = vec![
            "-o".to_owned(),
            "BatchMode=yes".to_owned(),
            "-o".to_owned(),
            format!("ConnectTimeout={SSH_CONNECT_TIMEOUT_SECONDS}"),
        ];
        args.extend(self.ssh_args());
        args.push(remote);
        Command {
            ssh: Some(self.clone()),
            ..Command::new("ssh", args)
        }
    }
}

/// How long ssh may take to connect before it gives up.
const SSH_CONNECT_TIMEOUT_SECONDS: u32 = 10;

impl fmt::Display for SshHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.url().trim_start_matches("ssh://"))
    }
}

impl Engine {
    /// `--host` if given, else the environment's `x-xtask: host`, else the engine Docker's
    /// own settings name (asked of the client, which needs no daemon for it).
    pub fn choose(sh: &Shell, flag: Option<&str>, setting: Option<&str>) -> anyhow::Result<Engine> {
        if let Some(given) = flag.or(setting).filter(|given| !given.is_empty()) {
            return Ok(Engine::over_ssh(&SshHost::parse(given)?));
        }
        let endpoint = match std::env::var("DOCKER_HOST")
            .ok()
            .filter(|host| !host.is_empty())
        {
            Some(host) => host,
            None => current_context_endpoint(sh).unwrap_or_default(),
        };
        Ok(Engine::from_endpoint(&endpoint))
    }

    /// A docker endpoint (`unix:///var/run/docker.sock`, `ssh://me@h`, `tcp://h:2376`).
    fn from_endpoint(endpoint: &str) -> Engine {
        let Some((scheme, rest)) = endpoint.split_once("://") else {
            return Engine::Local;
        };
        if matches!(scheme, "unix" | "npipe" | "fd") {
            return Engine::Local;
        }
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        let host_port = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let address = HostPort::parse(host_port)
            .map(|address| address.host)
            .unwrap_or_else(|_| host_port.to_owned());
        if matches!(address.as_str(), "localhost" | "127.0.0.1" | "::1") && scheme == "tcp" {
            return Engine::Local;
        }
        // Named by Docker's settings, but reached as `--host` would be: over one connection.
        if let Ok(host) = SshHost::parse(endpoint) {
            return Engine::over_ssh(&host);
        }
        Engine::Remote {
            flag: None,
            name: authority.to_owned(),
            address,
        }
    }

    /// The engine of an SSH host: `docker --host ssh://…`.
    pub fn over_ssh(host: &SshHost) -> Engine {
        Engine::Remote {
            name: host.to_string(),
            address: host.host.clone(),
            flag: Some(host.clone()),
        }
    }

    /// `docker ARGS…` on this engine.
    pub fn docker<S: Into<String>>(&self, args: impl IntoIterator<Item = S>) -> Command {
        match self {
            Engine::Remote {
                flag: Some(host), ..
            } => Command {
                ssh: Some(host.clone()),
                ..Command::docker(["--host".to_owned(), host.url()])
                    .args(args.into_iter().map(Into::into))
            },
            _ => Command::docker(args),
        }
    }

    /// A throwaway container of `image` running `entrypoint ARGS…`: never pulled, with no
    /// network, `volume` (`NAME:/PATH:ro`) mounted if given, removed when it ends.
    pub fn run_once(
        &self,
        image: &str,
        volume: Option<&str>,
        entrypoint: &str,
        args: &[&str],
    ) -> Command {
        let mut line = vec!["run", "--rm", "--pull", "never", "--network", "none"];
        if let Some(volume) = volume {
            line.extend(["--volume", volume]);
        }
        line.extend(["--entrypoint", entrypoint, image]);
        line.extend(args);
        self.docker(line)
    }

    pub fn is_local(&self) -> bool {
        *self == Engine::Local
    }

    /// The SSH host the xtask reaches it through, if it chose one.
    pub fn ssh(&self) -> Option<&SshHost> {
        match self {
            Engine::Remote { flag, .. } => flag.as_ref(),
            Engine::Local => None,
        }
    }

    /// What a step line adds: ` on deploy@10.201.1.2`, nothing here.
    pub fn on(&self) -> String {
        match self {
            Engine::Local => String::new(),
            Engine::Remote { name, .. } => format!(" on {name}"),
        }
    }

    /// Where a port published on `host_ip` is reached from here: `None` when only the
    /// engine's machine can reach it (bound to its loopback).
    pub fn reach(&self, host_ip: Option<&str>, port: &str) -> Option<String> {
        let bound = match host_ip {
            None | Some("" | "0.0.0.0" | "::") => None,
            Some(ip) => Some(ip),
        };
        match (self, bound) {
            (Engine::Local, None) => Some(format!("127.0.0.1:{port}")),
            (Engine::Local, Some(ip)) => Some(format!("{ip}:{port}")),
            (Engine::Remote { address, .. }, None) => Some(format!("{address}:{port}")),
            (Engine::Remote { .. }, Some(ip)) if ip.starts_with("127.") || ip == "::1" => None,
            (Engine::Remote { .. }, Some(ip)) => Some(format!("{ip}:{port}")),
        }
    }
}

/// The Docker endpoint of the current context, unless it is the default one.
fn current_context_endpoint(sh: &Shell) -> Option<String> {
    if std::env::var_os("DOCKER_CONTEXT").is_none() {
        let show = run::probe(sh, &Command::docker(["context", "show"])).ok()?;
        let name = String::from_utf8_lossy(&show.stdout).trim().to_owned();
        if name.is_empty() || name == "default" {
            return None;
        }
    }
    let inspect = Command::docker([
        "context",
        "inspect",
        "--format",
        "{{.Endpoints.docker.Host}}",
    ]);
    let output = run::probe(sh, &inspect).ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// How step lines and errors name it.
impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Engine::Local => f.write_str("this machine"),
            Engine::Remote { name, .. } => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_addresses_as_people_write_them() {
        let host = SshHost::parse("ssh://deploy@10.201.1.2:2222").unwrap();
        assert_eq!(
            (host.user.as_deref(), host.host.as_str(), host.port),
            (Some("deploy"), "10.201.1.2", Some(2222))
        );
        assert_eq!(host.url(), "ssh://deploy@10.201.1.2:2222");
        assert_eq!(host.to_string(), "deploy@10.201.1.2:2222");
        assert_eq!(host.ssh_args(), ["-p", "2222", "--", "deploy@10.201.1.2"]);
        let plain = SshHost::parse("ssh://prod.example").unwrap();
        assert_eq!((plain.user, plain.port), (None, None));
        assert_eq!(
            SshHost::parse("ssh://[::1]:22").unwrap().url(),
            "ssh://[::1]:22"
        );
        for bad in [
            "prod.example",
            "tcp://h:2376",
            "ssh://",
            "ssh://me:secret@h",
            "ssh://h:port",
            "ssh://h/var/run/docker.sock",
            "ssh://-oProxyCommand=x",
            "ssh://-G@h",
            "ssh://a b@h",
            "ssh://x$(id)@h",
            "ssh://h\nx",
            // Host names and addresses only: nothing a shell, ssh or docker reads otherwise.
            "ssh://h;id",
            "ssh://$(id)",
            "ssh://h|x",
            "ssh://h&x",
            "ssh://h'x",
            "ssh://h\"x",
            "ssh://<h>",
            "ssh://h`id`",
            "ssh://root@[::1;x]",
        ] {
            assert!(SshHost::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_flag_wins_then_the_setting() {
        let sh = Shell::new().unwrap();
        let flag = Engine::choose(&sh, Some("ssh://a@h1"), Some("ssh://b@h2")).unwrap();
        assert_eq!(flag.to_string(), "a@h1");
        let setting = Engine::choose(&sh, None, Some("ssh://b@h2")).unwrap();
        assert_eq!(
            setting.docker(["ps"]).to_string(),
            "docker --host ssh://b@h2 ps"
        );
        assert_eq!(setting.on(), " on b@h2");
    }

    #[test]
    fn dockers_own_endpoints_say_whether_ports_are_here() {
        assert!(Engine::from_endpoint("unix:///var/run/docker.sock").is_local());
        assert!(Engine::from_endpoint("").is_local());
        assert!(Engine::from_endpoint("tcp://127.0.0.1:2375").is_local());
        let ssh = Engine::from_endpoint("ssh://me@203.0.113.7:2222");
        assert_eq!(ssh.to_string(), "me@203.0.113.7:2222");
        // Named as --host would: carried by the command's one connection to it.
        assert_eq!(
            ssh.docker(["ps"]).to_string(),
            "docker --host ssh://me@203.0.113.7:2222 ps"
        );
        let tcp = Engine::from_endpoint("tcp://203.0.113.7:2376");
        assert_eq!(tcp.docker(["ps"]).to_string(), "docker ps");
        assert_eq!(ssh.reach(None, "8080").as_deref(), Some("203.0.113.7:8080"));
        assert_eq!(ssh.reach(Some("127.0.0.1"), "8000"), None);
        assert_eq!(
            Engine::Local.reach(None, "8080").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            Engine::Local.reach(Some("127.0.0.1"), "8000").as_deref(),
            Some("127.0.0.1:8000")
        );
    }
}
