//! What the machine is like, read before anything is planned. Reading only: this works as
//! an ordinary user, and `--dry-run` relies on it.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use super::{
    apt_source::{KEYRING, SOURCES, SOURCES_DIR, SOURCES_LIST},
    group::{self, GroupTarget},
    os_release::OsRelease,
    plan,
};
use crate::docker::{self, Engine, run};

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

pub fn gather(sh: &Shell, asked: &Asked) -> anyhow::Result<Facts> {
    let os = read_os_release()?;
    let root = is_root(sh);
    let me = cmd!(sh, "id -un").quiet().read().unwrap_or_default();
    let sudo_user = std::env::var("SUDO_USER").ok();
    let group_target = group::target(asked.user, asked.no_group, sudo_user.as_deref(), root, &me);
    if let GroupTarget::User(user) = &group_target {
        if !succeeds(cmd!(sh, "id -u {user}")) {
            bail!(
                "there is no user `{user}` here: create it first (`sudo useradd -m {user}`) or pass another --user"
            );
        }
    }
    let group_name = group::GROUP;
    let docker_group = cmd!(sh, "getent group {group_name}")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
        .map(|line| group::members(&line));
    let init = detect_init();
    let daemon_answers = daemon_answers(sh);
    let daemon_enabled = init == Init::Systemd
        && cmd!(sh, "systemctl is-enabled docker")
            .quiet()
            .ignore_status()
            .ignore_stderr()
            .read()
            .is_ok_and(|state| state.trim() == "enabled");
    Ok(Facts {
        os,
        arch: architecture(sh),
        installed: installed(sh, &plan::packages_of_interest()),
        files: [KEYRING, SOURCES]
            .into_iter()
            .filter_map(|path| Some((path.to_owned(), std::fs::read(path).ok()?)))
            .collect(),
        apt_sources: apt_sources(),
        docker_group,
        group_target,
        init,
        daemon_answers,
        daemon_enabled,
        docker_works: daemon_answers
            && docker::preflight(sh, &Engine::Local, docker::Needs::ENGINE).is_ok(),
    })
}

/// A daemon that refuses this user (not in the docker group yet) still runs.
fn daemon_answers(sh: &Shell) -> bool {
    let info = Engine::Local.docker(["info", "--format", "{{.ServerVersion}}"]);
    let answer = run::probe_within(sh, &info, docker::preflight::DAEMON_ANSWER_TIMEOUT);
    matches!(answer, Ok(Some(info)) if info.status.success()
        || String::from_utf8_lossy(&info.stderr).contains("permission denied"))
}

fn succeeds(command: xshell::Cmd<'_>) -> bool {
    command
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

fn read_os_release() -> anyhow::Result<OsRelease> {
    ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| OsRelease::parse(&text))
        .context("cannot read /etc/os-release: install-docker knows only Linux distributions that have one (Ubuntu, Debian)")
}

/// The effective user id, from /proc/self/status (`Uid: real effective saved fs`).
pub fn is_root(sh: &Shell) -> bool {
    let from_proc = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("Uid:"))?;
            line.split_whitespace().nth(2).map(|uid| uid == "0")
        });
    from_proc.unwrap_or_else(|| {
        cmd!(sh, "id -u")
            .quiet()
            .read()
            .is_ok_and(|uid| uid.trim() == "0")
    })
}

fn architecture(sh: &Shell) -> String {
    cmd!(sh, "dpkg --print-architecture")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
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
fn installed(sh: &Shell, packages: &[&str]) -> BTreeSet<String> {
    let format = "${Package} ${db:Status-Abbrev}\n";
    let listing = cmd!(sh, "dpkg-query -W -f {format} {packages...}")
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
    installed_from(&listing)
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

fn detect_init() -> Init {
    let in_container = Path::new("/.dockerenv").exists()
        || Path::new("/run/.containerenv").exists()
        || std::env::var_os("container").is_some_and(|value| !value.is_empty());
    if Path::new("/run/systemd/system").is_dir() {
        Init::Systemd
    } else if in_container {
        Init::Container
    } else if which::which("service").is_ok() {
        Init::Service
    } else {
        Init::Unknown
    }
}

/// /etc/apt/sources.list and every *.list and *.sources file beside it, sorted.
fn apt_sources() -> Vec<(PathBuf, String)> {
    let mut paths = vec![PathBuf::from(SOURCES_LIST)];
    if let Ok(entries) = std::fs::read_dir(SOURCES_DIR) {
        let mut listed: Vec<PathBuf> = entries
            .filter_map(|entry| Some(entry.ok()?.path()))
            .filter(|path| {
                path.extension()
                    .is_some_and(|ext| ext == "list" || ext == "sources")
            })
            .collect();
        listed.sort();
        paths.extend(listed);
    }
    paths
        .into_iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            Some((path, text))
        })
        .collect()
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
