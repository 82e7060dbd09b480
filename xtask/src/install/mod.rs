//! `cargo xtask install-docker`: Docker Engine and Compose (v2 or later) on Ubuntu or Debian, from
//! Docker's repository (its key checked by fingerprint) or the distribution's packages.
//!
//! Facts first (reading only), then the plan as data (`plan::build`, pure), then either
//! `--dry-run` prints it or `apply` carries it out, as root, through sudo if need be.

mod apply;
mod apt_key;
mod apt_source;
mod facts;
mod group;
mod machine;
mod os_release;
mod plan;
mod steps;

use anyhow::bail;
use machine::Machine;
use xshell::{Shell, cmd};

use crate::{cli::InstallDockerArgs, docker::SshHost};
pub use apt_key::Fingerprint;

/// Where the packages come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Source {
    /// Docker's apt repository: docker-ce, Compose (v5 today), buildx
    Official,
    /// The distribution's own docker.io (and Compose v2 or later where it packages one)
    Distro,
}

/// Docker's repositories live below it: `…/linux/ubuntu`, `…/linux/debian`.
const DOCKER_DOWNLOAD: &str = "https://download.docker.com";
/// The regional mirrors get.docker.com knows by name (`--mirror Aliyun`).
const NAMED_MIRRORS: &[(&str, &str)] = &[
    ("Aliyun", "https://mirrors.aliyun.com/docker-ce"),
    ("AzureChinaCloud", "https://mirror.azure.cn/docker-ce"),
];

/// What the plan depends on among the flags.
#[derive(Debug, Clone)]
pub struct Options {
    pub source: Source,
    /// Without a trailing slash: `https://download.docker.com` or a mirror of it.
    pub mirror: String,
    pub fingerprint: Fingerprint,
    pub force: bool,
}

impl InstallDockerArgs {
    fn options(&self) -> anyhow::Result<Options> {
        if self.source == Source::Distro {
            if self.mirror.is_some() {
                bail!("--mirror is for Docker's repository: drop it, or drop `--source distro`");
            }
            if self.key_fingerprint.is_some() {
                bail!(
                    "--key-fingerprint is for Docker's repository: drop it, or drop `--source distro`"
                );
            }
        }
        let mirror = match self.mirror.as_deref() {
            None => DOCKER_DOWNLOAD.to_owned(),
            Some(given) => mirror_url(given)?,
        };
        Ok(Options {
            source: self.source,
            mirror,
            fingerprint: self.key_fingerprint.unwrap_or(apt_key::DOCKER),
            force: self.force,
        })
    }
}

/// `--mirror`: a name get.docker.com knows, or an absolute URL laid out as
/// download.docker.com. It is written into docker.sources, where a newline would start a
/// field of its own (`Signed-By: …`): whitespace and control characters are refused.
fn mirror_url(given: &str) -> anyhow::Result<String> {
    if let Some((_, url)) = NAMED_MIRRORS.iter().find(|(name, _)| *name == given) {
        return Ok((*url).to_owned());
    }
    let shown = given.escape_debug();
    if given.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("--mirror {shown}: a URL has no spaces, newlines or control characters");
    }
    let host = ["https://", "http://"]
        .iter()
        .find_map(|scheme| given.strip_prefix(scheme))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or_default());
    let absolute = match (host, given.strip_prefix("file://")) {
        (Some(host), _) => !host.is_empty() && !host.contains('@'),
        (None, Some(path)) => path.starts_with('/') && path.len() > 1,
        (None, None) => false,
    };
    if !absolute || given.contains(['?', '#']) {
        bail!(
            "--mirror {shown}: give the URL above linux/ubuntu and linux/debian, as {DOCKER_DOWNLOAD} \
             is for Docker's own (https://HOST/…, http://HOST/… or file:///PATH), or Aliyun or AzureChinaCloud"
        );
    }
    Ok(given.trim_end_matches('/').to_owned())
}

pub fn run(sh: &Shell, args: &InstallDockerArgs) -> anyhow::Result<()> {
    // Nothing here is about the project, and the built xtask may run where its checkout is
    // not (a fresh machine, a container): the commands run from `/`.
    sh.change_dir("/");
    let options = args.options()?;
    let asked = facts::Asked {
        user: args.user.as_deref(),
        no_group: args.no_group,
    };
    let machine = match &args.host {
        Some(host) => Machine::connect(sh, SshHost::parse(host)?)?,
        None => Machine::Here,
    };
    let facts = facts::gather(sh, &machine, &asked)?;
    let mut plan = plan::build(&facts, &options)?;
    if !machine.is_here() {
        plan.title = format!("{machine}: {}", plan.title);
    }
    if args.dry_run {
        plan.print_notes();
        print!("{plan}");
        return Ok(());
    }
    if plan.changes_nothing() {
        plan.print_notes();
        eprintln!("nothing to change: {}", plan.title);
        return Ok(());
    }
    if machine.is_here() && !facts::is_root(sh, &machine)? {
        return rerun_as_root(sh);
    }
    plan.print_notes();
    crate::output::progress(&format!("install-docker: {}", plan.title));
    apply::execute(sh, &machine, &plan, args.yes)
}

/// The same command through sudo, which sets SUDO_USER: the user who joins the group.
fn rerun_as_root(sh: &Shell) -> anyhow::Result<()> {
    if which::which("sudo").is_err() {
        bail!(
            "install-docker needs root to install packages: run it as root (sudo is not installed here)"
        );
    }
    let exe = std::env::current_exe()?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    crate::output::progress("install-docker needs root: running it again through sudo");
    cmd!(sh, "sudo -- {exe} {args...}")
        .run()
        .map_err(|_| anyhow::anyhow!("install-docker through sudo failed: see its output above"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn options(line: &str) -> anyhow::Result<Options> {
        let cli = Cli::try_parse_from(format!("xtask install-docker {line}").split_whitespace())?;
        let Command::InstallDocker(args) = cli.command else {
            unreachable!()
        };
        args.options()
    }

    #[test]
    fn flags_to_options() {
        let default = options("").unwrap();
        assert_eq!(
            (default.source, default.mirror.as_str()),
            (Source::Official, DOCKER_DOWNLOAD)
        );
        assert_eq!(default.fingerprint, apt_key::DOCKER);
        assert_eq!(
            options("--mirror Aliyun").unwrap().mirror,
            "https://mirrors.aliyun.com/docker-ce"
        );
        assert_eq!(
            options("--mirror file:///repo/").unwrap().mirror,
            "file:///repo"
        );
        let fingerprint = options("--key-fingerprint 7C90E34CEECC831E5F0542E0A76FEDC88BDEF0E0")
            .unwrap()
            .fingerprint;
        assert_eq!(
            fingerprint.to_string(),
            "7C90 E34C EECC 831E 5F05 42E0 A76F EDC8 8BDE F0E0"
        );
        assert_eq!(options("--source distro").unwrap().source, Source::Distro);
    }

    #[test]
    fn a_mirror_cannot_smuggle_fields_into_docker_sources() {
        for given in [
            "https://mirror.example\nSigned-By: /etc/apt/keyrings/evil.asc",
            "https://mirror.example\rx",
            "https://mirror.example/a b",
            "https://mirror.example\t",
            "file:///repo\u{0}",
        ] {
            let err = mirror_url(given).unwrap_err().to_string();
            assert!(
                err.contains("no spaces, newlines or control characters"),
                "{err}"
            );
            assert!(!err.contains('\n'), "the refusal is one line: {err:?}");
        }
        assert_eq!(
            mirror_url("https://mirror.example/docker-ce/").unwrap(),
            "https://mirror.example/docker-ce"
        );
        assert_eq!(
            mirror_url("http://10.0.0.1:8080").unwrap(),
            "http://10.0.0.1:8080"
        );
        assert_eq!(
            mirror_url("file:///srv/mirror").unwrap(),
            "file:///srv/mirror"
        );
    }

    #[test]
    fn flags_that_do_not_fit_are_refused() {
        for line in [
            "--mirror https://",
            "--mirror https://user@mirror.example",
            "--mirror file://relative/path",
            "--mirror https://mirror.example/?q",
            "--source distro --mirror https://mirror.example",
            "--source distro --key-fingerprint 9DC858229FC7DD38854AE2D88D81803C0EBFCD88",
            "--mirror mirror.example",
            "--key-fingerprint 0EBFCD88",
            "--user ann --no-group",
            "--source snap",
        ] {
            assert!(options(line).is_err(), "{line}");
        }
    }
}
