//! From the facts and the flags to the plan: pure, so every case is a unit test.

use anyhow::bail;

use super::{
    Options, Source,
    apt_key::{self, DOCKER},
    apt_source::{self, Duplicate, KEYRING, SOURCES},
    facts::{Facts, Init},
    group,
    os_release::{DistroCompose, Release},
    steps::{Key, Plan, apt_get},
};
use crate::docker::Command;

/// Docker's packages, as docs.docker.com installs them.
const OFFICIAL_PACKAGES: &[&str] = &[
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
];
/// What Docker's docs remove first: the distribution's Docker, Compose and runtimes.
const OFFICIAL_CONFLICTS: &[&str] = &[
    "docker.io",
    "docker-doc",
    "docker-compose",
    "docker-compose-v2",
    "podman-docker",
    "containerd",
    "runc",
];
const DISTRO_PACKAGE: &str = "docker.io";
/// Docker's own packages, which docker.io cannot sit beside.
const DISTRO_CONFLICTS: &[&str] = &[
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
    "docker-ce-rootless-extras",
    "podman-docker",
];
/// Every package whose state the plan depends on: what `dpkg-query` is asked about.
pub fn packages_of_interest() -> Vec<&'static str> {
    let mut packages = vec!["ca-certificates", DISTRO_PACKAGE];
    for package in [OFFICIAL_PACKAGES, OFFICIAL_CONFLICTS, DISTRO_CONFLICTS].concat() {
        if !packages.contains(&package) {
            packages.push(package);
        }
    }
    packages
}

pub fn build(facts: &Facts, options: &Options) -> anyhow::Result<Plan> {
    let release = Release::detect(&facts.os).map_err(anyhow::Error::msg)?;
    release.check(options.source).map_err(anyhow::Error::msg)?;
    let mut plan = Plan {
        title: match options.source {
            Source::Official => format!(
                "{}: Docker's packages from {}",
                release.pretty_name, options.mirror
            ),
            Source::Distro => format!("{}: the distribution's own packages", release.pretty_name),
        },
        ..Plan::default()
    };
    if options.fingerprint != DOCKER {
        plan.warn(format!(
            "trusting the key with fingerprint {} instead of Docker's ({DOCKER}), as --key-fingerprint asks: \
             right only for a mirror that re-signs Docker's packages with its own key",
            options.fingerprint
        ));
    }
    if facts.docker_works && !options.force {
        plan.info(
            "Docker is already installed and working (docker, Compose v2 or later and a daemon that answers): \
             nothing to install (--force goes through the installation anyway)",
        );
        group::plan(
            &mut plan,
            &facts.group_target,
            facts.docker_group.as_deref(),
        );
        return Ok(plan);
    }
    match options.source {
        Source::Official => official(&mut plan, facts, options, &release)?,
        Source::Distro => distro(&mut plan, facts, &release),
    }
    group::plan(
        &mut plan,
        &facts.group_target,
        facts.docker_group.as_deref(),
    );
    daemon(&mut plan, facts);
    Ok(plan)
}

/// Docker's repository, as docs.docker.com sets it up: the key checked before it is
/// written, a deb822 entry that names it, then the packages.
fn official(
    plan: &mut Plan,
    facts: &Facts,
    options: &Options,
    release: &Release,
) -> anyhow::Result<()> {
    let repo = format!("{}/linux/{}", options.mirror, release.family.slug());
    remove_conflicts(plan, facts, OFFICIAL_CONFLICTS, "Docker's docker-ce");
    if repo.starts_with("https://") && !facts.installed.contains("ca-certificates") {
        // apt's https needs the system's certificate authorities.
        plan.run(apt_get(["update"]));
        plan.run(apt_get(["install", "-y", "ca-certificates"]));
    }
    let key_in_place = facts
        .files
        .get(KEYRING)
        .and_then(|key| std::str::from_utf8(key).ok())
        .is_some_and(|key| apt_key::verify(key, options.fingerprint).is_ok());
    if !key_in_place {
        plan.write_key(Key {
            path: KEYRING.to_owned(),
            url: format!("{repo}/gpg"),
            fingerprint: options.fingerprint,
        });
    }
    let entry = apt_source::entry(&repo, &release.codename, &facts.arch);
    if facts.files.get(SOURCES).map(Vec::as_slice) != Some(entry.as_bytes()) {
        plan.write(SOURCES, 0o644, entry);
    }
    for duplicate in apt_source::duplicates(&facts.apt_sources, &repo) {
        match duplicate {
            Duplicate::Remove(path) => plan.remove(
                path.display().to_string(),
                format!("an older entry for {repo}, which {SOURCES} replaces"),
            ),
            Duplicate::Edit(path) => bail!(
                "{} also has an entry for {repo}, which would clash with {SOURCES}: delete that entry, then run again",
                path.display()
            ),
        }
    }
    install(plan, facts, OFFICIAL_PACKAGES);
    Ok(())
}

/// The distribution's docker.io, with its Compose v2 or later where it packages one.
fn distro(plan: &mut Plan, facts: &Facts, release: &Release) {
    remove_conflicts(
        plan,
        facts,
        DISTRO_CONFLICTS,
        "the distribution's docker.io",
    );
    let mut packages = vec![DISTRO_PACKAGE];
    match release.distro_compose() {
        DistroCompose::V2(package) => packages.push(package),
        DistroCompose::OnlyV1 => plan.warn(format!(
            "{} packages only Compose v1 (docker-compose, end of life), so no Compose is installed: \
             `--source official` brings Compose v2 or later",
            release.pretty_name
        )),
        DistroCompose::Unknown => plan.warn(format!(
            "install-docker does not know whether {} ({}) packages Compose v2 or later: if it does \
             (docker-compose-v2 or docker-compose), install it yourself",
            release.pretty_name, release.codename
        )),
    }
    install(plan, facts, &packages);
}

fn remove_conflicts(plan: &mut Plan, facts: &Facts, conflicts: &[&str], against: &str) {
    let present: Vec<&str> = conflicts
        .iter()
        .copied()
        .filter(|package| facts.installed.contains(*package))
        .collect();
    if present.is_empty() {
        return;
    }
    let list = present.join(", ");
    plan.warn(format!(
        "installed packages conflict with {against}: {list}"
    ));
    let question = format!("remove {list} (their configuration and /var/lib/docker stay)");
    plan.run_confirmed(
        apt_get(["remove", "-y"].into_iter().chain(present)),
        question,
    );
}

/// `apt-get update` and `install` for the packages not installed yet, if any.
fn install(plan: &mut Plan, facts: &Facts, packages: &[&str]) {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|package| !facts.installed.contains(*package))
        .collect();
    if !missing.is_empty() {
        plan.run(apt_get(["update"]));
        plan.run(apt_get(["install", "-y"].into_iter().chain(missing)));
    }
}

/// Started and enabled by the init system there is; then checked.
fn daemon(plan: &mut Plan, facts: &Facts) {
    match facts.init {
        Init::Systemd => {
            if !(facts.daemon_answers && facts.daemon_enabled) {
                plan.run(Command::new("systemctl", ["enable", "--now", "docker"]));
            }
            plan.check_daemon();
        }
        Init::Service => {
            if !facts.daemon_answers {
                plan.run(Command::new("service", ["docker", "start"]));
            }
            plan.check_daemon();
        }
        Init::Container if !facts.daemon_answers => {
            plan.info(
                "inside a container without systemd: the daemon is not started here (it needs a \
                 privileged container): start `dockerd` where it can run, or point DOCKER_HOST at another daemon",
            );
            plan.check_client();
        }
        Init::Unknown if !facts.daemon_answers => {
            plan.info(
                "neither systemd nor `service` here to start the daemon: start it yourself, \
                 e.g. `sudo dockerd > /var/log/dockerd.log 2>&1 &`",
            );
            plan.check_client();
        }
        Init::Container | Init::Unknown => plan.check_daemon(),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
