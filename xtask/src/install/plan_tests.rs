//! The planned steps for each source and situation, as the lines `--dry-run` prints.

use std::path::PathBuf;

use super::*;
use crate::install::{
    apt_key::Fingerprint, apt_source::SOURCES_LIST, group::GroupTarget, os_release::OsRelease,
    steps::Note,
};

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/install/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// A fresh machine: nothing of Docker's, ann ran sudo, systemd runs.
fn fresh(os_release: &str) -> Facts {
    Facts {
        os: OsRelease::parse(&data(&format!("os-release/{os_release}"))),
        arch: "amd64".into(),
        installed: ["ca-certificates".to_owned()].into(),
        files: Default::default(),
        apt_sources: vec![(
            PathBuf::from(SOURCES_LIST),
            "deb http://deb.debian.org/debian bookworm main\n".into(),
        )],
        docker_group: None,
        group_target: GroupTarget::User("ann".into()),
        init: Init::Systemd,
        daemon_answers: false,
        daemon_enabled: false,
        docker_works: false,
    }
}

fn options(source: Source) -> Options {
    Options {
        source,
        mirror: "https://download.docker.com".into(),
        fingerprint: DOCKER,
        force: false,
    }
}

fn steps(plan: &Plan) -> String {
    plan.steps
        .iter()
        .chain(&plan.checks)
        .map(|step| format!("{step}\n"))
        .collect()
}

fn warnings(plan: &Plan) -> Vec<&str> {
    plan.notes
        .iter()
        .filter_map(|note| match note {
            Note::Warning(text) => Some(text.as_str()),
            Note::Info(_) => None,
        })
        .collect()
}

const OFFICIAL_UBUNTU_FILES: &str = "\
write /etc/apt/keyrings/docker.asc (mode 0644):
    the key at https://download.docker.com/linux/ubuntu/gpg, once its OpenPGP fingerprint is checked to be 9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88
write /etc/apt/sources.list.d/docker.sources (mode 0644):
    Types: deb
    URIs: https://download.docker.com/linux/ubuntu
    Suites: noble
    Components: stable
    Architectures: amd64
    Signed-By: /etc/apt/keyrings/docker.asc
";

#[test]
fn official_on_a_fresh_ubuntu() {
    let mut facts = fresh("ubuntu-24.04");
    facts.installed.clear();
    let plan = build(&facts, &options(Source::Official)).unwrap();
    assert_eq!(
        plan.title,
        "Ubuntu 24.04.3 LTS: Docker's packages from https://download.docker.com"
    );
    assert_eq!(
        steps(&plan),
        format!(
            "DEBIAN_FRONTEND=noninteractive apt-get update\n\
             DEBIAN_FRONTEND=noninteractive apt-get install -y ca-certificates\n\
             {OFFICIAL_UBUNTU_FILES}\
             DEBIAN_FRONTEND=noninteractive apt-get update\n\
             DEBIAN_FRONTEND=noninteractive apt-get install -y docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin\n\
             groupadd -f --system docker\n\
             usermod -aG docker ann\n\
             systemctl enable --now docker\n\
             docker info    # until the daemon answers\n\
             docker version\n"
        )
    );
    assert!(warnings(&plan).is_empty());
    assert!(
        plan.afterwards[0].contains("as powerful as root"),
        "{:?}",
        plan.afterwards
    );
    assert!(plan.afterwards[0].contains("newgrp docker"));
}

#[test]
fn official_from_a_re_signing_mirror_over_conflicting_packages() {
    let mut facts = fresh("debian-12");
    facts
        .installed
        .extend(["docker.io".to_owned(), "runc".to_owned()]);
    facts.init = Init::Service;
    let other: Fingerprint = "7C90E34CEECC831E5F0542E0A76FEDC88BDEF0E0".parse().unwrap();
    let options = Options {
        mirror: "file:///repo".into(),
        fingerprint: other,
        ..options(Source::Official)
    };
    let plan = build(&facts, &options).unwrap();
    assert_eq!(
        steps(&plan),
        "DEBIAN_FRONTEND=noninteractive apt-get remove -y docker.io runc    \
         # after asking: remove docker.io, runc (their configuration and /var/lib/docker stay)? (--yes answers yes)\n\
         write /etc/apt/keyrings/docker.asc (mode 0644):\n\
         \x20   the key at file:///repo/linux/debian/gpg, once its OpenPGP fingerprint is checked to be 7C90 E34C EECC 831E 5F05 42E0 A76F EDC8 8BDE F0E0\n\
         write /etc/apt/sources.list.d/docker.sources (mode 0644):\n\
         \x20   Types: deb\n\
         \x20   URIs: file:///repo/linux/debian\n\
         \x20   Suites: bookworm\n\
         \x20   Components: stable\n\
         \x20   Architectures: amd64\n\
         \x20   Signed-By: /etc/apt/keyrings/docker.asc\n\
         DEBIAN_FRONTEND=noninteractive apt-get update\n\
         DEBIAN_FRONTEND=noninteractive apt-get install -y docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin\n\
         groupadd -f --system docker\n\
         usermod -aG docker ann\n\
         service docker start\n\
         docker info    # until the daemon answers\n\
         docker version\n"
    );
    let warnings = warnings(&plan);
    assert!(
        warnings[0].starts_with("trusting the key with fingerprint 7C90 E34C"),
        "{warnings:?}"
    );
    assert_eq!(
        warnings[1],
        "installed packages conflict with Docker's docker-ce: docker.io, runc"
    );
}

#[test]
fn distro_on_debian_12_warns_that_only_compose_v1_exists() {
    let mut facts = fresh("debian-12");
    facts.init = Init::Container;
    let plan = build(&facts, &options(Source::Distro)).unwrap();
    assert_eq!(
        plan.title,
        "Debian GNU/Linux 12 (bookworm): the distribution's own packages"
    );
    assert_eq!(
        steps(&plan),
        "DEBIAN_FRONTEND=noninteractive apt-get update\n\
         DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io\n\
         groupadd -f --system docker\n\
         usermod -aG docker ann\n\
         docker --version\n"
    );
    assert_eq!(
        warnings(&plan),
        [
            "Debian GNU/Linux 12 (bookworm) packages only Compose v1 (docker-compose, end of life), \
          so no Compose is installed: `--source official` brings Compose v2 or later"
        ]
    );
    assert!(
        plan.notes
            .iter()
            .any(|note| matches!(note, Note::Info(text) if text.contains("inside a container")))
    );
}

#[test]
fn distro_brings_compose_v2_where_the_release_has_it() {
    let mut ubuntu = fresh("linuxmint-22");
    ubuntu.installed.insert("docker-ce".into());
    let plan = build(&ubuntu, &options(Source::Distro)).unwrap();
    assert!(steps(&plan).starts_with(
        "DEBIAN_FRONTEND=noninteractive apt-get remove -y docker-ce    # after asking: remove docker-ce"
    ));
    assert!(steps(&plan).contains("apt-get install -y docker.io docker-compose-v2\n"));
    let trixie = build(&fresh("debian-13"), &options(Source::Distro)).unwrap();
    assert!(steps(&trixie).contains("apt-get install -y docker.io docker-compose\n"));
    assert!(warnings(&trixie).is_empty());
    // Distro packages exist for releases Docker does not publish for.
    let focal = build(&fresh("ubuntu-20.04"), &options(Source::Distro)).unwrap();
    assert!(steps(&focal).contains("apt-get install -y docker.io\n"));
}

/// After a first run: the key and the entry in place, the packages installed, ann in the
/// group, the daemon running and enabled.
fn set_up(os_release: &str, source: Source) -> Facts {
    let mut facts = fresh(os_release);
    let packages: &[&str] = match source {
        Source::Official => OFFICIAL_PACKAGES,
        Source::Distro => &["docker.io", "docker-compose-v2"],
    };
    facts
        .installed
        .extend(packages.iter().map(|package| package.to_string()));
    facts
        .files
        .insert(KEYRING.into(), data("docker.asc").into_bytes());
    let entry = apt_source::entry("https://download.docker.com/linux/ubuntu", "noble", "amd64");
    facts
        .files
        .insert(SOURCES.into(), entry.clone().into_bytes());
    facts.apt_sources.push((SOURCES.into(), entry));
    facts.docker_group = Some(vec!["ann".into()]);
    facts.daemon_answers = true;
    facts.daemon_enabled = true;
    facts
}

#[test]
fn a_second_run_changes_nothing() {
    for source in [Source::Official, Source::Distro] {
        let facts = set_up("ubuntu-24.04", source);
        let plan = build(&facts, &options(source)).unwrap();
        assert!(plan.changes_nothing(), "{source:?}: {}", steps(&plan));
        assert!(
            plan.notes
                .contains(&Note::Info("ann is already in the docker group".into()))
        );

        let working = Facts {
            docker_works: true,
            ..facts.clone()
        };
        let plan = build(&working, &options(source)).unwrap();
        assert!(plan.changes_nothing(), "{source:?}: {}", steps(&plan));
        assert!(
            matches!(&plan.notes[0], Note::Info(text) if text.starts_with("Docker is already installed and working"))
        );
    }
}

#[test]
fn working_docker_is_left_alone_but_for_the_group_unless_forced() {
    let mut facts = set_up("ubuntu-24.04", Source::Official);
    facts.docker_works = true;
    facts.docker_group = Some(vec![]);
    let plan = build(&facts, &options(Source::Official)).unwrap();
    assert_eq!(steps(&plan), "usermod -aG docker ann\n");

    // Docker from elsewhere (a static binary): --force installs the packages.
    facts.installed.clear();
    facts.files.clear();
    let forced = build(
        &facts,
        &Options {
            force: true,
            ..options(Source::Official)
        },
    )
    .unwrap();
    assert!(
        steps(&forced).contains("apt-get install -y docker-ce "),
        "{}",
        steps(&forced)
    );
    assert!(steps(&forced).contains(OFFICIAL_UBUNTU_FILES));
}

#[test]
fn an_entry_or_key_from_elsewhere_is_replaced() {
    let mut facts = set_up("ubuntu-24.04", Source::Official);
    facts
        .files
        .insert(KEYRING.into(), data("other-key.asc").into_bytes());
    facts.apt_sources.push((
        "/etc/apt/sources.list.d/docker.list".into(),
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/ubuntu noble stable\n"
            .into(),
    ));
    let plan = build(&facts, &options(Source::Official)).unwrap();
    assert_eq!(
        steps(&plan),
        "write /etc/apt/keyrings/docker.asc (mode 0644):\n\
         \x20   the key at https://download.docker.com/linux/ubuntu/gpg, once its OpenPGP fingerprint is checked to be 9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88\n\
         remove /etc/apt/sources.list.d/docker.list (an older entry for https://download.docker.com/linux/ubuntu, \
         which /etc/apt/sources.list.d/docker.sources replaces)\n\
         docker info    # until the daemon answers\n\
         docker version\n"
    );

    facts.apt_sources.push((
        SOURCES_LIST.into(),
        "deb http://archive.ubuntu.com/ubuntu noble main\ndeb https://download.docker.com/linux/ubuntu noble stable\n".into(),
    ));
    let refusal = build(&facts, &options(Source::Official))
        .unwrap_err()
        .to_string();
    assert_eq!(
        refusal,
        "/etc/apt/sources.list also has an entry for https://download.docker.com/linux/ubuntu, which would clash \
         with /etc/apt/sources.list.d/docker.sources: delete that entry, then run again"
    );
}

#[test]
fn unsupported_systems_are_refused_before_any_step() {
    let focal = build(&fresh("ubuntu-20.04"), &options(Source::Official))
        .unwrap_err()
        .to_string();
    assert!(focal.contains("`--source distro`"), "{focal}");
    for os in ["fedora-41", "alpine-3.20"] {
        for source in [Source::Official, Source::Distro] {
            let refusal = build(&fresh(os), &options(source)).unwrap_err().to_string();
            assert!(refusal.contains("is not supported"), "{os}: {refusal}");
        }
    }
}

#[test]
fn plain_root_adds_nobody_and_says_so() {
    let mut facts = fresh("debian-13");
    facts.group_target = GroupTarget::Nobody("running as root without sudo: …".into());
    let plan = build(&facts, &options(Source::Official)).unwrap();
    assert!(!steps(&plan).contains("usermod"));
    assert!(
        plan.notes
            .contains(&Note::Info("running as root without sudo: …".into()))
    );
}
