//! What the machine is like, read before anything is planned. Reading only: this works as
//! an ordinary user, and `--dry-run` relies on it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::bail;
use xshell::Shell;

use super::{
    apt_source::{KEYRING, SOURCES, SOURCES_DIR, SOURCES_LIST},
    group::{self, GroupTarget},
    machine::{Machine, Privilege},
    os_release::OsRelease,
    plan,
};
use crate::docker::{self, Command, Engine, run};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub os: OsRelease,
    /// dpkg's name for it: amd64, arm64, armhf…
    pub arch: String,
    /// Which of the packages install-docker cares about are installed.
    pub installed: BTreeSet<String>,
    /// The current content of the files install-docker writes, where they exist.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Every apt sources file: (path, content).
    pub apt_sources: Vec<(PathBuf, String)>,
    /// The docker group's members; `None` when there is no docker group.
    pub docker_group: Option<Vec<String>>,
    pub group_target: GroupTarget,
    pub init: Init,
    pub daemon_answers: bool,
    /// systemd only: `systemctl is-enabled docker` says `enabled`.
    pub daemon_enabled: bool,
    /// docker, Compose v2 or later and a daemon that answers: what the other xtask commands need.
    pub docker_works: bool,
}

/// How services are started here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    Systemd,
    /// `service`: SysV init scripts, WSL without systemd.
    Service,
    /// A container without systemd: a daemon rarely can run there.
    Container,
    Unknown,
}

/// What the user asked for that the facts depend on.
pub struct Asked<'a> {
    pub user: Option<&'a str>,
    pub no_group: bool,
}

pub fn gather(sh: &Shell, machine: &Machine, asked: &Asked) -> anyhow::Result<Facts> {
    let os = read_os_release(sh, machine)?;
    let root = is_root(sh, machine)?;
    let me = machine
        .read_command(sh, &Command::new("id", ["-un"]), Privilege::User)
        .unwrap_or_default()
        .trim()
        .to_owned();
    let sudo_user = machine.env("SUDO_USER");
    let group_target = group::target(asked.user, asked.no_group, sudo_user.as_deref(), root, &me);
    if let GroupTarget::User(user) = &group_target {
        if !machine.succeeds(sh, &Command::new("id", ["-u", user]))? {
            bail!(
                "there is no user `{user}` on {machine}: create it first (`sudo useradd -m {user}`) or pass another --user"
            );
        }
    }
    let docker_group = machine.output(
        sh,
        &Command::new("getent", ["group", group::GROUP]),
        Privilege::User,
    )?;
    let docker_group = docker_group
        .status
        .success()
        .then(|| group::members(&String::from_utf8_lossy(&docker_group.stdout)));
    let init = detect_init(sh, machine)?;
    let daemon_answers = daemon_answers(sh, machine)?;
    let daemon_enabled = init == Init::Systemd
        && machine
            .output(
                sh,
                &Command::new("systemctl", ["is-enabled", "docker"]),
                Privilege::User,
            )
            .is_ok_and(|state| String::from_utf8_lossy(&state.stdout).trim() == "enabled");
    let mut files = BTreeMap::new();
    for path in [KEYRING, SOURCES] {
        if let Some(content) = machine.read_file(sh, path)? {
            files.insert(path.to_owned(), content);
        }
    }
    Ok(Facts {
        os,
        arch: architecture(sh, machine),
        installed: installed(sh, machine, &plan::packages_of_interest())?,
        files,
        apt_sources: apt_sources(sh, machine)?,
        docker_group,
        group_target,
        init,
        daemon_answers,
        daemon_enabled,
        docker_works: daemon_answers && docker_works(sh, machine)?,
    })
}

/// A daemon that refuses this user (not in the docker group yet) still runs.
fn daemon_answers(sh: &Shell, machine: &Machine) -> anyhow::Result<bool> {
    let info = machine.command(
        &Command::docker(["info", "--format", "{{.ServerVersion}}"]),
        Privilege::User,
    );
    // No docker at all (it cannot even start) is no daemon either.
    let answer = run::probe_within(sh, &info, docker::preflight::DAEMON_ANSWER_TIMEOUT);
    Ok(matches!(answer, Ok(Some(info)) if info.status.success()
        || String::from_utf8_lossy(&info.stderr).contains("permission denied")))
}

/// What the other xtask commands need: docker, Compose v2 or later and a daemon that
/// answers (here, the xtask's own preflight).
fn docker_works(sh: &Shell, machine: &Machine) -> anyhow::Result<bool> {
    if machine.is_here() {
        return Ok(docker::preflight(sh, &Engine::Local, docker::Needs::ENGINE).is_ok());
    }
    let compose = machine.output(
        sh,
        &Command::docker(["compose", "version", "--short"]),
        Privilege::Root,
    )?;
    let info = machine.output(sh, &Command::docker(["info"]), Privilege::Root)?;
    let compose_version =
        docker::preflight::Version::parse(&String::from_utf8_lossy(&compose.stdout));
    Ok(compose.status.success()
        && info.status.success()
        && compose_version
            .is_none_or(|version| version >= docker::preflight::Version::new(2, 0, 0)))
}

fn read_os_release(sh: &Shell, machine: &Machine) -> anyhow::Result<OsRelease> {
    for path in ["/etc/os-release", "/usr/lib/os-release"] {
        if let Some(text) = machine.read_file(sh, path)? {
            return Ok(OsRelease::parse(&String::from_utf8_lossy(&text)));
        }
    }
    bail!(
        "cannot read /etc/os-release on {machine}: install-docker knows only Linux distributions that have one (Ubuntu, Debian)"
    )
}

/// Whether the xtask (here) or the login (over SSH) is root.
pub fn is_root(sh: &Shell, machine: &Machine) -> anyhow::Result<bool> {
    if let Machine::Ssh { root, .. } = machine {
        return Ok(*root);
    }
    // The effective user id, from /proc/self/status (`Uid: real effective saved fs`).
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|uid| uid == "0")
        });
    match from_proc {
        Some(root) => Ok(root),
        None => Ok(machine
            .read_command(sh, &Command::new("id", ["-u"]), Privilege::User)?
            .trim()
            == "0"),
    }
}

fn architecture(sh: &Shell, machine: &Machine) -> String {
    machine
        .read_command(
            sh,
            &Command::new("dpkg", ["--print-architecture"]),
            Privilege::User,
        )
        .ok()
        .map(|arch| arch.trim().to_owned())
        .filter(|arch| !arch.is_empty())
        .unwrap_or_else(|| {
            match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                "arm" => "armhf",
                "powerpc64" => "ppc64el",
                other => other,
            }
            .to_owned()
        })
}

/// `dpkg-query` on the packages of interest; a machine without dpkg has none of them.
fn installed(sh: &Shell, machine: &Machine, packages: &[&str]) -> anyhow::Result<BTreeSet<String>> {
    let mut args = vec!["-W", "-f", "${Package} ${db:Status-Abbrev}\n"];
    args.extend(packages);
    let listing = machine.output(sh, &Command::new("dpkg-query", args), Privilege::User)?;
    Ok(installed_from(&String::from_utf8_lossy(&listing.stdout)))
}

/// `docker.io ii ` lines: the second status letter `i` means installed.
pub fn installed_from(listing: &str) -> BTreeSet<String> {
    listing
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, status)| status.chars().nth(1) == Some('i'))
        .map(|(package, _)| package.to_owned())
        .collect()
}

fn detect_init(sh: &Shell, machine: &Machine) -> anyhow::Result<Init> {
    let container_variable = match machine {
        Machine::Here => std::env::var_os("container").is_some_and(|value| !value.is_empty()),
        // PID 1's environment says whether it is a container's.
        Machine::Ssh { .. } => machine
            .read_file(sh, "/proc/1/environ")?
            .is_some_and(|environ| {
                environ
                    .split(|b| *b == 0)
                    .any(|var| var.starts_with(b"container="))
            }),
    };
    let in_container = machine.exists(sh, "/.dockerenv")?
        || machine.exists(sh, "/run/.containerenv")?
        || container_variable;
    Ok(if machine.is_dir(sh, "/run/systemd/system")? {
        Init::Systemd
    } else if in_container {
        Init::Container
    } else if machine.exists(sh, "/usr/sbin/service")? || machine.exists(sh, "/sbin/service")? {
        Init::Service
    } else {
        Init::Unknown
    })
}

/// /etc/apt/sources.list and every *.list and *.sources file beside it, sorted.
fn apt_sources(sh: &Shell, machine: &Machine) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut paths = vec![PathBuf::from(SOURCES_LIST)];
    let mut listed: Vec<PathBuf> = machine
        .list_dir(sh, SOURCES_DIR)?
        .into_iter()
        .map(|name| Path::new(SOURCES_DIR).join(name))
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "list" || ext == "sources")
        })
        .collect();
    listed.sort();
    paths.extend(listed);
    let mut sources = Vec::new();
    for path in paths {
        if let Some(text) = machine.read_file(sh, &path.display().to_string())? {
            sources.push((path, String::from_utf8_lossy(&text).into_owned()));
        }
    }
    Ok(sources)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dpkg_query_listings() {
        let listing = "docker.io ii \nrunc rc \ncontainerd.io ii \npodman-docker un \n";
        let installed = super::installed_from(listing);
        assert_eq!(
            installed.into_iter().collect::<Vec<_>>(),
            ["containerd.io", "docker.io"]
        );
    }
}
