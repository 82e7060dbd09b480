//! Preflight: docker, Compose v2 or later (with buildx where Compose builds through it) and
//! an engine that answers, checked before any work starts, each failure saying what to run.

use std::time::Duration;

use xshell::Shell;

use super::{Command, Engine, SshHost, diagnosis, quote::shell_words, run};
use crate::hint::Hint;

/// How long `docker info` may take: a daemon that accepts the connection and never answers
/// would otherwise hang every command.
pub const DAEMON_ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the SSH check of a host may take: `docker version` there.
const SSH_ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
/// Compose builds through buildx bake from v5 on, and refuses an older buildx from 2.40.1.
const BUILDX_MINIMUM: Version = Version::new(0, 17, 0);
const BAKE_ONLY_FROM: Version = Version::new(5, 0, 0);
const BUILDX_CHECKED_FROM: Version = Version::new(2, 40, 1);
const GET_BUILDX: &str = "install Docker's buildx plugin 0.17 or later: `sudo apt-get install docker-buildx-plugin` \
     from Docker's repository (`cargo xtask install-docker` sets it up), or put a release binary at \
     ~/.docker/cli-plugins/docker-buildx";

/// What a command needs of docker besides the client and Compose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// An engine that answers (not for `--dry-run` and `config`).
    pub engine: bool,
    /// What `docker compose build` needs.
    pub build: bool,
}

impl Needs {
    pub const CLIENT: Needs = Needs {
        engine: false,
        build: false,
    };
    pub const ENGINE: Needs = Needs {
        engine: true,
        build: false,
    };

    /// What a command that changes something needs: an engine, unless it only prints its
    /// plan (`--dry-run`).
    pub fn to_act(dry_run: bool) -> Needs {
        Needs {
            engine: !dry_run,
            build: false,
        }
    }

    /// And what `docker compose build` needs.
    pub fn and_build(self) -> Needs {
        Needs {
            build: true,
            ..self
        }
    }
}

/// Checks the client and Compose, then what `needs` asks for: with an engine, all of it
/// from one `docker info` (the engine's answer, and the client's plugins).
pub fn preflight(sh: &Shell, engine: &Engine, needs: Needs) -> anyhow::Result<Option<Info>> {
    docker_installed()?;
    if !needs.engine {
        let compose = compose_version(sh)?;
        if needs.build {
            let buildx = run::probe(sh, &Command::docker(["buildx", "version"]))?;
            let buildx = buildx
                .status
                .success()
                .then(|| buildx_version(&String::from_utf8_lossy(&buildx.stdout)))
                .flatten();
            check_build(compose, buildx)?;
        }
        return Ok(None);
    }
    let info = engine_answers(sh, engine)?;
    let compose = match info.compose {
        Some(compose) => accepted_compose(&compose.to_string())?,
        // Not a plugin: v1's docker-compose, or nothing.
        None => compose_version(sh)?,
    };
    if needs.build {
        check_build(compose, info.buildx)?;
    }
    Ok(Some(info))
}

pub fn docker_installed() -> anyhow::Result<()> {
    if which::which("docker").is_err() {
        return Err(Hint::new(
            "docker is not installed (not found in PATH)",
            diagnosis::INSTALL,
        )
        .into());
    }
    Ok(())
}

fn check_build(compose: Version, buildx: Option<Version>) -> anyhow::Result<()> {
    build_requirement(compose, buildx).map_err(|problem| Hint::new(problem, GET_BUILDX).into())
}

/// What one `docker info` says of the engine and of this machine's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub server_version: String,
    /// A manager of an active swarm.
    pub swarm_manager: bool,
    compose: Option<Version>,
    buildx: Option<Version>,
}

const INFO_FORMAT: &str = "{{.ServerVersion}}|{{.Swarm.LocalNodeState}}|{{.Swarm.ControlAvailable}}|{{range .ClientInfo.Plugins}}{{.Name}}={{.Version}} {{end}}";

impl Info {
    /// `20.10.24|active|true|compose=v2.40.3 buildx=v0.19.2 `.
    fn parse(text: &str) -> Option<Info> {
        let mut fields = text.trim().splitn(4, '|');
        let server_version = fields.next()?.to_owned();
        let (state, control) = (fields.next()?, fields.next()?);
        let swarm_manager = state == "active" && control == "true";
        let plugins: Vec<(&str, Option<Version>)> = fields
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|plugin| plugin.split_once('='))
            .map(|(name, version)| (name, Version::parse(version)))
            .collect();
        let plugin = |wanted: &str| {
            plugins
                .iter()
                .find(|(name, _)| *name == wanted)
                .map(|(_, version)| version.unwrap_or(Version::new(u32::MAX, 0, 0)))
        };
        Some(Info {
            server_version,
            swarm_manager,
            compose: plugin("compose"),
            buildx: plugin("buildx"),
        })
    }
}

/// The engine's answer, within `DAEMON_ANSWER_TIMEOUT`; over SSH, what fails is named:
/// the host, the login, the host key, docker there or its daemon.
pub fn engine_answers(sh: &Shell, engine: &Engine) -> anyhow::Result<Info> {
    let info = engine.docker(["info", "--format", INFO_FORMAT]);
    let Some(output) = run::probe_within(sh, &info, DAEMON_ANSWER_TIMEOUT)? else {
        return Err(Hint::new(
            format!(
                "the Docker daemon of {engine} did not answer within {} s: it takes connections but never replies",
                DAEMON_ANSWER_TIMEOUT.as_secs()
            ),
            "restart it (`sudo systemctl restart docker`), or check which daemon DOCKER_HOST, --host or the docker context names",
        )
        .into());
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() {
        if let Some(info) = Info::parse(&stdout) {
            return Ok(info);
        }
    }
    if let Some(host) = engine.ssh() {
        // What docker says of a forwarded socket names neither the host nor the fix: asked
        // there, through ssh, the problem has its name.
        return Err(ssh_engine_problem(sh, host));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Engine::Remote { name, .. } = engine {
        if let Some((problem, fix)) =
            diagnosis::ssh_problem(&stderr, name, &format!("ssh://{name}"))
        {
            return Err(Hint::new(problem, fix).into());
        }
    }
    Err(diagnosis::daemon_problem(&stderr))
}

/// Why the engine of an SSH host does not answer: `docker version` run there, over the
/// host's connection.
fn ssh_engine_problem(sh: &Shell, host: &SshHost) -> anyhow::Error {
    let remote =
        shell_words(&["docker", "version", "--format", "{{.Server.Version}}"].map(String::from));
    let check = host.command(remote);
    let output = match run::probe_within(sh, &check, SSH_ANSWER_TIMEOUT) {
        Ok(Some(output)) => output,
        Ok(None) => {
            return Hint::new(
                format!(
                    "{host} did not answer over SSH within {} s",
                    SSH_ANSWER_TIMEOUT.as_secs()
                ),
                "check the address, and that the host is up and sshd runs there",
            )
            .into();
        }
        Err(err) => return err,
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    if let Some((problem, fix)) = diagnosis::ssh_problem(&stderr, &host.to_string(), &host.url()) {
        return Hint::new(problem, fix).into();
    }
    if output.status.success() {
        return Hint::new(
            format!("docker on {host} answers over ssh, but not through the forwarded socket"),
            "let sshd there forward Unix sockets (`AllowStreamLocalForwarding yes`, no `DisableForwarding`)",
        )
        .into();
    }
    anyhow::anyhow!(
        "`{check}` failed: {}",
        run::last_line(&stderr).unwrap_or_else(|| output.status.to_string())
    )
}

/// Compose v2 or later, as `docker compose version --short` reports it.
pub fn compose_version(sh: &Shell) -> anyhow::Result<Version> {
    let output = run::probe(sh, &Command::docker(["compose", "version", "--short"]))?;
    if output.status.success() {
        return accepted_compose(&String::from_utf8_lossy(&output.stdout));
    }
    let v1 = run::probe(sh, &Command::new("docker-compose", ["version", "--short"]));
    if let Ok(v1) = v1 {
        if v1.status.success() {
            return Err(compose_v1(&String::from_utf8_lossy(&v1.stdout)));
        }
    }
    Err(Hint::new(
        "Docker Compose v2 or later is missing (`docker compose version` failed)",
        diagnosis::INSTALL,
    )
    .into())
}

/// Compose v2 or later, from the version it printed; v1 refused.
fn accepted_compose(text: &str) -> anyhow::Result<Version> {
    match Version::parse(text) {
        Some(version) if version.major < 2 => Err(compose_v1(text)),
        Some(version) => Ok(version),
        // A build from source says `dev`: as new as it gets.
        None => Ok(Version::new(u32::MAX, 0, 0)),
    }
}

fn compose_v1(version: &str) -> anyhow::Error {
    Hint::new(
        format!(
            "only Docker Compose v1 ({}) is installed: Compose v2 or later is needed (v1 is end of life)",
            version.trim()
        ),
        format!("{}: it installs Docker's Compose plugin", diagnosis::INSTALL),
    )
    .into()
}

/// Whether Compose can build with the buildx it has: from v5 it builds only through buildx
/// bake (without buildx it falls back to the classic builder, which cannot build the app's
/// Dockerfile), and from 2.40.1 it refuses a buildx older than 0.17.
pub fn build_requirement(compose: Version, buildx: Option<Version>) -> Result<(), String> {
    match buildx {
        None if compose >= BAKE_ONLY_FROM => Err(format!(
            "Docker Compose {compose} builds through buildx, which is not installed"
        )),
        Some(buildx) if compose >= BUILDX_CHECKED_FROM && buildx < BUILDX_MINIMUM => Err(format!(
            "Docker Compose {compose} builds through buildx 0.17 or later, and this buildx is {buildx}"
        )),
        _ => Ok(()),
    }
}

/// `github.com/docker/buildx v0.19.2 1fc5647…`, or Ubuntu's `github.com/docker/buildx 0.30.1 0.30.1-0ubuntu1`.
fn buildx_version(text: &str) -> Option<Version> {
    Version::parse(text.split_whitespace().nth(1)?)
}

/// `2.40.3`, `v2.24.6-desktop.1`, `5.0.1`: the numbers, without what follows `-` or `+`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    major: u32,
    minor: u32,
    patch: u32,
}

impl Version {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Version {
        Version {
            major,
            minor,
            patch,
        }
    }

    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let numbers = text.split(['-', '+']).next()?;
        let mut parts = numbers.split('.').map(|part| part.parse::<u32>().ok());
        let major = parts.next()??;
        let minor = parts.next().unwrap_or(Some(0))?;
        let patch = parts.next().unwrap_or(Some(0))?;
        if parts.next().is_some() {
            return None;
        }
        Some(Version::new(major, minor, patch))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_versions_as_they_are_printed() {
        for (text, expected) in [
            ("2.40.3", (2, 40, 3)),
            ("v2.24.6-desktop.1", (2, 24, 6)),
            ("5.0.1\n", (5, 0, 1)),
            ("v5.4.0", (5, 4, 0)),
            ("1.29.2", (1, 29, 2)),
            ("2.27.0+ds1-0ubuntu1", (2, 27, 0)),
        ] {
            let (major, minor, patch) = expected;
            assert_eq!(
                Version::parse(text),
                Some(Version::new(major, minor, patch)),
                "{text}"
            );
        }
        for text in ["", "dev", "v", "2.x.1", "1.2.3.4"] {
            assert_eq!(Version::parse(text), None, "{text}");
        }
        assert!(Version::parse("v5.0.1").unwrap() > Version::parse("2.40.3").unwrap());
    }

    #[test]
    fn compose_v2_and_later_are_taken_and_v1_refused() {
        for text in ["2.40.3\n", "v2.24.6-desktop.1", "5.0.1", "v5.4.0", "dev"] {
            assert!(accepted_compose(text).is_ok(), "{text}");
        }
        let v1 = accepted_compose("1.29.2\n").unwrap_err();
        assert!(
            v1.to_string()
                .starts_with("only Docker Compose v1 (1.29.2) is installed: Compose v2 or later"),
            "{v1}"
        );
        assert!(crate::hint::of(&v1).unwrap().contains("install-docker"));
    }

    #[test]
    fn buildx_versions_as_they_are_printed() {
        assert_eq!(
            buildx_version("github.com/docker/buildx v0.19.2 1fc5647dc281\n"),
            Some(Version::new(0, 19, 2))
        );
        assert_eq!(
            buildx_version("github.com/docker/buildx 0.30.1 0.30.1-0ubuntu1~24.04.1"),
            Some(Version::new(0, 30, 1))
        );
        assert_eq!(
            buildx_version("docker: 'buildx' is not a docker command."),
            None
        );
    }

    #[test]
    fn one_docker_info_says_the_engine_the_swarm_and_the_plugins() {
        let info =
            Info::parse("20.10.24+dfsg1|active|true|compose=v2.40.3 buildx=v0.19.2 \n").unwrap();
        assert_eq!(info.server_version, "20.10.24+dfsg1");
        assert!(info.swarm_manager);
        assert_eq!(info.compose, Version::parse("2.40.3"));
        assert_eq!(info.buildx, Version::parse("0.19.2"));
        let worker = Info::parse("28.2.2|active|false|").unwrap();
        assert!(!worker.swarm_manager);
        assert_eq!((worker.compose, worker.buildx), (None, None));
        assert!(
            !Info::parse("28.2.2|inactive|false|compose=dev")
                .unwrap()
                .swarm_manager
        );
        assert_eq!(
            Info::parse("28.2.2|inactive|false|compose=dev")
                .unwrap()
                .compose,
            Some(Version::new(u32::MAX, 0, 0))
        );
    }

    #[test]
    fn compose_v5_needs_buildx_0_17_and_v2_does_not() {
        let v = |text: &str| Version::parse(text).unwrap();
        assert_eq!(build_requirement(v("2.40.3"), None), Ok(()));
        assert_eq!(build_requirement(v("2.24.6"), Some(v("0.12.0"))), Ok(()));
        assert!(build_requirement(v("2.40.3"), Some(v("0.13.1"))).is_err());
        let missing = build_requirement(v("5.0.1"), None).unwrap_err();
        assert_eq!(
            missing,
            "Docker Compose 5.0.1 builds through buildx, which is not installed"
        );
        let old = build_requirement(v("v5.4.0"), Some(v("0.13.1"))).unwrap_err();
        assert!(old.ends_with("this buildx is 0.13.1"), "{old}");
        assert_eq!(build_requirement(v("5.0.1"), Some(v("0.17.0"))), Ok(()));
    }
}
