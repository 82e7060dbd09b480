//! `cargo xtask install-docker` end to end, as a new user would run it: the built xtask,
//! mounted read-only into fresh containers of the Debian 12 stand-in that `.ci/docker`
//! builds, or run here against such a container over SSH (`--host`). Never on this
//! machine itself. Without Docker or the image the tests fail, saying
//! what to run; they do not skip.

use crate::e2e;

use std::process::{Command, Output, Stdio};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
const IMAGE: &str = "travial-ci/debian:bookworm";
/// A container outliving a killed test run stops by itself.
const CONTAINER_LIFETIME: &str = "900";

const DOCKERS_FINGERPRINT: &str = "9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88";

/// One fresh container with the xtask at /usr/local/bin/xtask, removed when dropped.
struct Container {
    name: String,
}

impl Container {
    fn start(test: &str) -> Container {
        let image = docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]);
        assert!(
            image.status.success(),
            "the stand-in image {IMAGE} is missing ({}): run `bash .ci/docker` (or .ci/run) first",
            text(&image).trim()
        );
        let name = format!("travial-install-docker-{test}-{}", std::process::id());
        let _ = docker(&["rm", "-f", &name]);
        let mount = format!("{XTASK}:/usr/local/bin/xtask:ro");
        let started = docker(&[
            "run",
            "-d",
            "--rm",
            "--name",
            &name,
            "-v",
            &mount,
            IMAGE,
            "sleep",
            CONTAINER_LIFETIME,
        ]);
        assert!(
            started.status.success(),
            "docker run failed:\n{}",
            text(&started)
        );
        Container { name }
    }

    /// `bash -c SCRIPT` inside, with `set -euo pipefail`.
    fn exec(&self, script: &str) -> Output {
        let script = format!("set -euo pipefail\n{script}");
        docker(&["exec", &self.name, "bash", "-c", &script])
    }

    /// Runs the script, which must succeed; its stdout and stderr.
    fn ok(&self, script: &str) -> String {
        let output = self.exec(script);
        assert!(
            output.status.success(),
            "failed inside {}: {script}\n{}",
            self.name,
            text(&output)
        );
        text(&output)
    }

    /// Runs the script, which must fail; its stdout and stderr.
    fn fails(&self, script: &str) -> String {
        let output = self.exec(script);
        assert!(
            !output.status.success(),
            "succeeded, but should not have: {script}\n{}",
            text(&output)
        );
        text(&output)
    }

    /// Runs `script` and fails the test if it changed anything in the system's files.
    fn changes_nothing(&self, script: &str, succeeds: bool) -> String {
        self.ok("touch /tmp/before && sleep 1");
        let output = if succeeds {
            self.ok(script)
        } else {
            self.fails(script)
        };
        let changed =
            self.ok("find /etc /usr /var/lib/dpkg /var/lib/apt -newer /tmp/before -print");
        assert!(
            changed.trim().is_empty(),
            "`{script}` changed files:\n{changed}\nits output:\n{output}"
        );
        output
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run docker ({err}): run `bash .ci/docker` (or .ci/run) first")
        })
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(haystack.contains(needle), "no `{needle}` in:\n{haystack}");
}

#[test]
fn distro_source_on_a_fresh_debian_installs_joins_the_group_and_then_changes_nothing() {
    let container = Container::start("distro");
    container.ok("useradd -m someuser");
    let command = "xtask install-docker --source distro --user someuser --yes";

    // An ordinary user: the dry run works, the installation says it needs root (no sudo here).
    let as_user = container.changes_nothing(
        "su someuser -c 'xtask install-docker --source distro --dry-run'",
        true,
    );
    assert_contains(&as_user, "usermod -aG docker someuser\n");
    let refused = container.changes_nothing(
        "su someuser -c 'xtask install-docker --source distro'",
        false,
    );
    assert_contains(
        &refused,
        "error: install-docker needs root to install packages: run it as root",
    );

    let dry_run = container.changes_nothing(&format!("{command} --dry-run"), true);
    for line in [
        "DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io\n",
        "usermod -aG docker someuser\n",
        "packages only Compose v1",
    ] {
        assert_contains(&dry_run, line);
    }

    let first = container.ok(command);
    assert_contains(&first, "someuser is now in the docker group");
    assert_contains(&first, "as powerful as root");
    assert_contains(&first, "newgrp docker");
    assert_contains(&container.ok("dockerd --version"), "Docker version");
    assert_contains(&container.ok("id -nG someuser"), "docker");

    let second = container.changes_nothing(command, true);
    assert_contains(&second, "nothing to change");
    assert_contains(&second, "someuser is already in the docker group");
    let quiet = container.changes_nothing(&format!("{command} --quiet"), true);
    assert_contains(&quiet, "nothing to change");
    assert!(
        !quiet.contains("someuser is already"),
        "--quiet printed progress:\n{quiet}"
    );
    assert!(
        !second.contains("$ apt-get"),
        "the second run ran apt-get:\n{second}"
    );

    // Another user with sudo: the privileged part runs again through sudo, and the user who
    // ran it joins the group.
    container.ok(
        "DEBIAN_FRONTEND=noninteractive apt-get -qq install -y sudo >/dev/null\n\
         useradd -m other\n\
         echo 'other ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/other",
    );
    let through_sudo = container.ok("su other -c 'xtask install-docker --source distro'");
    assert_contains(&through_sudo, "running it again through sudo");
    assert_contains(&through_sudo, "other is now in the docker group");
    assert_contains(&container.ok("id -nG other"), "docker");
}

/// A small apt repository at /repo/linux/debian, laid out as download.docker.com, signed
/// by a key made here; fake docker-ce etc. (docker-ce-cli's `docker` answers `--version`,
/// docker-ce's `dockerd` too). Prints the key's fingerprint.
const MAKE_MIRROR: &str = r#"
export DEBIAN_FRONTEND=noninteractive GNUPGHOME=/root/mirror-gnupg
apt-get -qq update
apt-get -qq install -y --no-install-recommends gnupg apt-utils >/dev/null
mkdir -m 700 -p "$GNUPGHOME"
gpg --batch --quiet --passphrase '' --quick-gen-key 'Test Mirror <mirror@test.invalid>' ed25519 sign never 2>/dev/null
repo=/repo/linux/debian
mkdir -p "$repo/pool" "$repo/dists/bookworm/stable/binary-amd64"
for pkg in docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin; do
    dir=/tmp/build/$pkg
    # A file of its own: dpkg drops a package whose every file another package also has.
    mkdir -p "$dir/DEBIAN" "$dir/usr/bin" "$dir/usr/share/doc/$pkg"
    echo "a stand-in for the test mirror" >"$dir/usr/share/doc/$pkg/README"
    printf 'Package: %s\nVersion: 99.0.0-test\nArchitecture: all\nMaintainer: Test <test@test.invalid>\nDescription: stand-in for %s\n' \
        "$pkg" "$pkg" >"$dir/DEBIAN/control"
    case $pkg in
        docker-ce) program=dockerd ;;
        docker-ce-cli) program=docker ;;
        *) program= ;;
    esac
    if [ -n "$program" ]; then
        printf '#!/bin/sh\n[ "$1" = --version ] && echo "Docker version 99.0.0-test, build stand-in" && exit 0\necho "stand-in: no daemon" >&2\nexit 1\n' \
            >"$dir/usr/bin/$program"
        chmod 755 "$dir/usr/bin/$program"
    fi
    dpkg-deb --root-owner-group --build "$dir" "$repo/pool/${pkg}_99.0.0-test_all.deb" >/dev/null
done
cd "$repo"
apt-ftparchive packages pool >dists/bookworm/stable/binary-amd64/Packages
apt-ftparchive -o APT::FTPArchive::Release::Suite=bookworm -o APT::FTPArchive::Release::Codename=bookworm \
    -o APT::FTPArchive::Release::Components=stable -o APT::FTPArchive::Release::Architectures=amd64 \
    release dists/bookworm >/tmp/Release
mv /tmp/Release dists/bookworm/Release
gpg --batch --yes --clearsign -o dists/bookworm/InRelease dists/bookworm/Release
gpg --armor --export mirror@test.invalid >gpg
gpg --with-colons --fingerprint mirror@test.invalid | awk -F: '/^fpr/ { print $10; exit }'
"#;

#[test]
fn a_mirror_signed_with_another_key_is_refused_unless_its_fingerprint_is_given() {
    let container = Container::start("mirror");
    let made = container.exec(MAKE_MIRROR);
    assert!(
        made.status.success(),
        "making the test mirror failed:\n{}",
        text(&made)
    );
    let fingerprint = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    assert_eq!(
        fingerprint.len(),
        40,
        "no fingerprint from gpg:\n{}",
        text(&made)
    );
    let spaced: Vec<&str> = (0..10).map(|i| &fingerprint[4 * i..4 * i + 4]).collect();
    let spaced = spaced.join(" ");

    // The security property: the mirror's key is not Docker's, so nothing happens at all.
    let refused =
        container.changes_nothing("xtask install-docker --mirror file:///repo --yes", false);
    assert_contains(
        &refused,
        &format!(
            "error: refusing the key at file:///repo/linux/debian/gpg: its fingerprint is {spaced}, not {DOCKERS_FINGERPRINT}"
        ),
    );
    assert_contains(&refused, "nothing was changed");
    container.ok("test ! -e /etc/apt/keyrings/docker.asc && test ! -e /etc/apt/sources.list.d/docker.sources");

    // With that key's fingerprint given, explicitly, it goes through.
    let command =
        format!("xtask install-docker --mirror file:///repo --key-fingerprint {fingerprint} --yes");
    let accepted = container.ok(&command);
    assert_contains(
        &accepted,
        &format!("warning: trusting the key with fingerprint {spaced} instead of Docker's"),
    );
    // dpkg-query lists them sorted by name.
    let installed = container.ok("dpkg-query -W -f '${Package} ${Status} ${Version}\\n' \
         docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin");
    assert_eq!(
        installed,
        "containerd.io install ok installed 99.0.0-test\n\
         docker-buildx-plugin install ok installed 99.0.0-test\n\
         docker-ce install ok installed 99.0.0-test\n\
         docker-ce-cli install ok installed 99.0.0-test\n\
         docker-compose-plugin install ok installed 99.0.0-test\n"
    );
    container.ok("cmp /etc/apt/keyrings/docker.asc /repo/linux/debian/gpg");
    assert_eq!(
        container.ok("stat -c %a /etc/apt/keyrings/docker.asc"),
        "644\n"
    );
    assert_eq!(
        container.ok("cat /etc/apt/sources.list.d/docker.sources"),
        "Types: deb\nURIs: file:///repo/linux/debian\nSuites: bookworm\nComponents: stable\n\
         Architectures: amd64\nSigned-By: /etc/apt/keyrings/docker.asc\n"
    );

    let second = container.changes_nothing(&command, true);
    assert_contains(&second, "nothing to change");
}

/// A fresh Debian server reached over SSH: sshd in a container of the stand-in, a user
/// `deploy` with sudo that asks no password, a host key made here (so that the test's
/// known_hosts knows it), the test's client key let in for root and deploy.
struct Server {
    name: String,
    port: u16,
    _keys: tempdir::Dir,
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

const SERVER_IMAGE: &str = "travial-e2e/debian-sshd:test";

impl Server {
    fn start(client: &e2e::hosts::SshClient) -> Server {
        let dockerfile = format!(
            "FROM {IMAGE}\n\
             RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server sudo \\\n\
              && rm -rf /var/lib/apt/lists/* && mkdir -p /run/sshd \\\n\
              && useradd -m -s /bin/bash deploy && echo 'deploy ALL=(ALL) NOPASSWD: ALL' >/etc/sudoers.d/deploy\n"
        );
        let mut build = Command::new("docker")
            .args(["build", "--quiet", "--tag", SERVER_IMAGE, "-"])
            .env("DOCKER_BUILDKIT", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut build.stdin.take().unwrap(), dockerfile.as_bytes()).unwrap();
        let built = build.wait_with_output().unwrap();
        assert!(
            built.status.success(),
            "building the sshd image failed: {}",
            text(&built)
        );

        let keys = tempdir::Dir(
            std::env::temp_dir().join(format!("travial-install-remote-{}", std::process::id())),
        );
        std::fs::create_dir_all(&keys.0).unwrap();
        let host_key = keys.0.join("ssh_host_ed25519_key");
        e2e::hosts::keygen(&host_key);
        std::fs::copy(client.public_key(), keys.0.join("authorized_keys")).unwrap();
        let port = e2e::free_port();
        let name = format!("travial-install-remote-{}", std::process::id());
        let _ = docker(&["rm", "-f", &name]);
        let script = "install -m 700 -d /root/.ssh /home/deploy/.ssh \
            && install -m 600 /keys/authorized_keys /root/.ssh/authorized_keys \
            && install -m 600 -o deploy /keys/authorized_keys /home/deploy/.ssh/authorized_keys \
            && chown deploy /home/deploy/.ssh \
            && install -m 600 /keys/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key \
            && exec timeout 900 /usr/sbin/sshd -D -e -h /etc/ssh/ssh_host_ed25519_key";
        let started = docker(&[
            "run",
            "-d",
            "--rm",
            "--name",
            &name,
            "-p",
            &format!("127.0.0.1:{port}:22"),
            "-v",
            &format!("{}:/keys:ro", keys.0.display()),
            SERVER_IMAGE,
            "sh",
            "-c",
            script,
        ]);
        assert!(
            started.status.success(),
            "the server did not start: {}",
            text(&started)
        );
        client.trust(
            &format!("[127.0.0.1]:{port}"),
            &host_key.with_extension("pub"),
        );
        let server = Server {
            name,
            port,
            _keys: keys,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !server.exec("true").status.success()
            || std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        {
            assert!(std::time::Instant::now() < deadline, "sshd did not start");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        server
    }

    fn exec(&self, script: &str) -> Output {
        docker(&["exec", &self.name, "bash", "-c", script])
    }

    fn url(&self, user: &str) -> String {
        format!("ssh://{user}@127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.name]);
    }
}

#[test]
fn over_ssh_a_fresh_server_is_prepared_through_sudo_and_then_changes_nothing() {
    let client = e2e::hosts::SshClient::new(&format!("install-remote-{}", std::process::id()));
    let server = Server::start(&client);
    let xtask = |args: &[&str]| {
        Command::new(XTASK)
            .args(["install-docker", "--source", "distro", "--host"])
            .args(args)
            .env("PATH", client.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };

    let dry_run = xtask(&[&server.url("root"), "--dry-run"]);
    let plan = text(&dry_run);
    assert!(dry_run.status.success(), "{plan}");
    assert_contains(
        &plan,
        &format!(
            "# install-docker: root@127.0.0.1:{}: Debian GNU/Linux 12",
            server.port
        ),
    );
    assert_contains(
        &plan,
        "DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io\n",
    );
    assert_contains(
        &plan,
        "running as root without sudo: no user is added to the docker group",
    );
    assert!(
        !text(&server.exec("dpkg-query -W docker.io")).contains("docker.io\t2"),
        "the dry run installed something"
    );

    // As a user with sudo: the steps run through sudo there, and that user joins the group.
    let first = xtask(&[&server.url("deploy"), "--yes"]);
    let log = text(&first);
    assert!(first.status.success(), "{log}");
    assert_contains(
        &log,
        "'sudo --non-interactive -- env DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io'",
    );
    assert_contains(
        &log,
        &format!(
            "✓ the docker client runs on deploy@127.0.0.1:{}",
            server.port
        ),
    );
    assert_contains(&log, "deploy is now in the docker group");
    assert_contains(
        &text(&server.exec("dpkg-query -W -f '${Status}' docker.io")),
        "install ok installed",
    );
    assert_contains(&text(&server.exec("id -nG deploy")), "docker");

    let second = xtask(&[&server.url("deploy"), "--yes"]);
    let log = text(&second);
    assert!(second.status.success(), "{log}");
    assert_contains(&log, "nothing to change");
    assert!(!log.contains("$ ssh"), "the second run ran a step:\n{log}");

    // A login that is refused is named, with its fix.
    let refused = xtask(&[
        &format!("ssh://nobody@127.0.0.1:{}", server.port),
        "--dry-run",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert_contains(
        &text(&refused),
        &format!(
            "error: nobody@127.0.0.1:{} refused the SSH login of nobody",
            server.port
        ),
    );
}
