//! Compose v5, the Compose that Docker's apt repository installs today, through a `docker`
//! first on PATH that reports v5 (and, when asked, a buildx; in `docker info` too) and hands everything else to
//! the real client: v5 itself cannot be installed here. v5 builds only through buildx bake,
//! so a build without buildx 0.17 or later is refused before anything starts.

use crate::e2e;

use std::{os::unix::fs::PermissionsExt, path::PathBuf, process::Command};

use crate::e2e::{Sandbox, assert_success, exclusive, http, stderr};

/// A folder with the `docker` wrapper, removed when dropped.
struct DockerV5(PathBuf);

impl DockerV5 {
    fn new() -> DockerV5 {
        let real = String::from_utf8(Command::new("which").arg("docker").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_owned();
        assert!(!real.is_empty(), "no docker on PATH: run .ci/run first");
        let dir =
            std::env::temp_dir().join(format!("travial-e2e-docker-v5-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!(
            r#"#!/bin/sh
# Compose v5 as `docker compose version` reports it; buildx only if FAKE_BUILDX says which.
if [ "$1" = compose ] && [ "$2" = version ]; then
    case " $* " in *" --short "*) echo 5.0.1 ;; *) echo "Docker Compose version v5.0.1" ;; esac
    exit 0
fi
# `docker info` lists the client's plugins: the same versions there.
if [ "$1" = info ]; then
    out=$({real} "$@") || exit $?
    buildx=""
    [ -n "$FAKE_BUILDX" ] && buildx=" buildx=$FAKE_BUILDX"
    printf '%s\n' "$out" | sed -e 's/compose=v[0-9.]*/compose=v5.0.1/' -e "/|/s/\$/$buildx/"
    exit 0
fi
if [ "$1" = buildx ] && [ "$2" = version ] && [ -n "$FAKE_BUILDX" ]; then
    echo "github.com/docker/buildx $FAKE_BUILDX 1fc5647dc281"
    exit 0
fi
exec {real} "$@"
"#
        );
        let wrapper = dir.join("docker");
        std::fs::write(&wrapper, script).unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        DockerV5(dir)
    }

    /// The xtask with the wrapper first on PATH, and `buildx` as the wrapper's buildx.
    fn xtask(
        &self,
        sandbox: &Sandbox,
        args: &[&str],
        buildx: Option<&str>,
    ) -> std::process::Output {
        let path = format!(
            "{}:{}",
            self.0.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new(e2e::XTASK);
        command
            .args(args)
            .current_dir(e2e::root())
            .envs(sandbox.vars.iter().cloned())
            .env("PATH", path)
            .env_remove("FAKE_BUILDX");
        if let Some(version) = buildx {
            command.env("FAKE_BUILDX", version);
        }
        command.output().unwrap()
    }
}

impl Drop for DockerV5 {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn compose_v5_deploys_and_a_build_without_buildx_is_refused_before_anything_starts() {
    let _one_at_a_time = exclusive();
    let sandbox = Sandbox::new("composev5");
    let docker = DockerV5::new();

    let no_buildx = docker.xtask(&sandbox, &["deploy", "dev"], None);
    let log = stderr(&no_buildx);
    assert_eq!(no_buildx.status.code(), Some(1), "{log}");
    assert!(
        log.starts_with(
            "error: Docker Compose 5.0.1 builds through buildx, which is not installed\n"
        ),
        "{log}"
    );
    assert!(
        log.contains("hint: install Docker's buildx plugin 0.17 or later"),
        "{log}"
    );
    assert_eq!(
        sandbox.resources("dev"),
        Vec::<String>::new(),
        "something started"
    );

    let old_buildx = docker.xtask(&sandbox, &["build", "--dry-run"], Some("v0.13.1"));
    let log = stderr(&old_buildx);
    assert_eq!(old_buildx.status.code(), Some(1), "{log}");
    assert!(
        log.contains("builds through buildx 0.17 or later, and this buildx is 0.13.1"),
        "{log}"
    );

    // Without a build, v5 needs no buildx; with a recent one, it builds (the real Compose
    // behind the wrapper does the work).
    let deploy = docker.xtask(&sandbox, &["deploy", "dev", "--no-build"], None);
    assert_success(&deploy, "deploy dev --no-build under Compose v5");
    let deploy = docker.xtask(&sandbox, &["deploy", "dev"], Some("v0.19.2"));
    assert_success(&deploy, "deploy dev under Compose v5 with buildx 0.19.2");
    assert_eq!(
        http("GET", &sandbox.web_url("/readyz"), None).unwrap().0,
        200
    );
}
