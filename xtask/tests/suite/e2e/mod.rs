//! What the end-to-end tests share: the real Docker engine, Compose and the local stand-in
//! images that `.ci/docker` prepares (its settings are read from /etc/travial-ci.env, so the
//! tests also run by hand after it). Nothing here skips: without Docker the tests fail,
//! saying what to run.

#![allow(dead_code)]

pub mod hosts;
pub mod load;

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    sync::{Mutex, MutexGuard, OnceLock},
    thread,
    time::{Duration, Instant},
};

pub const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
/// Written by `.ci/docker`: the stand-in images and the test registry.
const CI_SETTINGS: &str = "/etc/travial-ci.env";
/// The app image the tests build once and deploy.
pub const APP_IMAGE: &str = "travial-e2e/app";
pub const APP_TAG: &str = "test";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The settings of `.ci/docker`, unless the environment already gives them.
pub fn ci_settings() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(CI_SETTINGS).unwrap_or_else(|err| {
        panic!("cannot read {CI_SETTINGS} ({err}): run `bash .ci/docker` (or .ci/run) first")
    });
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = std::env::var(key).unwrap_or_else(|_| value.trim().to_owned());
            (key.trim().to_owned(), value)
        })
        .collect()
}

pub fn setting(name: &str) -> String {
    ci_settings()
        .into_iter()
        .find(|(key, _)| key == name)
        .unwrap_or_else(|| panic!("{CI_SETTINGS} has no {name}: run `bash .ci/docker` again"))
        .1
}

/// Deploys share one engine and two cores: one end-to-end test at a time.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One isolated set of stacks: its own project prefix and ports, removed with its volumes
/// when dropped.
pub struct Sandbox {
    pub prefix: String,
    pub vars: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new(name: &str) -> Sandbox {
        let prefix = format!("travial-e2e-{name}-{}", std::process::id());
        let backups = std::env::temp_dir().join(format!("{prefix}-backups"));
        let mut vars = ci_settings();
        vars.extend(
            [
                ("TRAVIAL_PROJECT", prefix.clone()),
                ("APP_IMAGE", APP_IMAGE.to_owned()),
                ("APP_TAG", APP_TAG.to_owned()),
                ("WEB_PORT", free_port().to_string()),
                ("DB_PORT", free_port().to_string()),
                ("HTTPS_PORT", free_port().to_string()),
                ("BACKUP_DIR", backups.display().to_string()),
                // The load tests' client writes ~50 times a second from one address.
                ("APP_WRITES_PER_MINUTE", "1000000".to_owned()),
            ]
            .map(|(key, value)| (key.to_owned(), value)),
        );
        let sandbox = Sandbox { prefix, vars };
        ensure_app_image(&sandbox);
        sandbox
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.vars.retain(|(key, _)| key != name);
        self.vars.push((name.to_owned(), value.to_owned()));
    }

    pub fn var(&self, name: &str) -> &str {
        &self.vars.iter().find(|(key, _)| key == name).unwrap().1
    }

    pub fn project(&self, env: &str) -> String {
        format!("{}-{env}", self.prefix)
    }

    pub fn xtask(&self, args: &[&str]) -> Output {
        let mut command = Command::new(XTASK);
        command
            .args(args)
            .current_dir(root())
            .envs(self.vars.iter().cloned());
        command.output().unwrap()
    }

    /// The xtask with `vars` on top of the sandbox's.
    pub fn xtask_with(&self, vars: &[(&str, &str)], args: &[&str]) -> Output {
        Command::new(XTASK)
            .args(args)
            .current_dir(root())
            .envs(self.vars.iter().cloned())
            .envs(vars.iter().copied())
            .output()
            .unwrap()
    }

    /// The xtask with `input` on its stdin (a pipe, never a terminal).
    pub fn xtask_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = Command::new(XTASK)
            .args(args)
            .current_dir(root())
            .envs(self.vars.iter().cloned())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Where this sandbox's backups go (BACKUP_DIR).
    pub fn backups(&self) -> PathBuf {
        PathBuf::from(self.var("BACKUP_DIR"))
    }

    /// `docker compose` on one environment's stack, as the xtask names it.
    pub fn compose(&self, env: &str, args: &[&str]) -> Output {
        let mut command = Command::new("docker");
        command
            .args([
                "compose",
                "-p",
                &self.project(env),
                "-f",
                "compose/compose.yaml",
            ])
            .args(["-f", &format!("compose/compose.{env}.yaml")])
            .args(args)
            .current_dir(root())
            .envs(self.vars.iter().cloned());
        command.output().unwrap()
    }

    pub fn web_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.var("WEB_PORT"))
    }

    /// The containers, networks and volumes that exist for one environment's project.
    pub fn resources(&self, env: &str) -> Vec<String> {
        let label = format!("label=com.docker.compose.project={}", self.project(env));
        let mut found = Vec::new();
        for kind in [&["ps", "-a"][..], &["network", "ls"], &["volume", "ls"]] {
            let output = Command::new("docker")
                .args(kind)
                .args(["--quiet", "--filter", &label])
                .output()
                .unwrap();
            found.extend(
                String::from_utf8(output.stdout)
                    .unwrap()
                    .lines()
                    .map(str::to_owned),
            );
        }
        found
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.backups());
        for env in ["dev", "staging", "prod"] {
            let _ = self.compose(
                env,
                &["down", "--volumes", "--remove-orphans", "--timeout", "2"],
            );
            // The history and the lock live apart from the stack, so that down keeps them.
            let project = self.project(env);
            let _ = Command::new("docker")
                .args(["rm", "--force", "--volumes"])
                .args([
                    format!("{project}-xtask-state"),
                    format!("{project}-xtask-lock"),
                ])
                .output();
        }
    }
}

/// Builds the app image once for the whole test binary (BuildKit caches it across runs).
fn ensure_app_image(sandbox: &Sandbox) {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let started = Instant::now();
        let output = Command::new("docker")
            .args([
                "compose",
                "-p",
                &sandbox.prefix,
                "-f",
                "compose/compose.yaml",
                "build",
                "web",
            ])
            .current_dir(root())
            .envs(sandbox.vars.iter().cloned())
            .output()
            .unwrap();
        assert_success(&output, "building the app image");
        eprintln!("app image built in {:?}", started.elapsed());
    });
}

pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// An HTTP request with a timeout, any status accepted.
pub fn http(method: &str, url: &str, body: Option<&str>) -> Result<(u16, String), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let response = match body {
        None if method == "GET" => agent.get(url).call(),
        body => agent
            .post(url)
            .header("content-type", "application/json")
            .send(body.unwrap_or_default()),
    };
    let mut response = response.map_err(|err| err.to_string())?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .read_to_string()
        .map_err(|err| err.to_string())?;
    Ok((status, text))
}

/// A docker client configuration of the test's own, so that `docker login` never touches
/// the user's credentials; with the user's CLI plugins (a Compose installed by hand in
/// ~/.docker/cli-plugins, as Docker's docs do it, would be hidden otherwise).
pub struct DockerConfig(pub PathBuf);

impl DockerConfig {
    pub fn new(name: &str) -> DockerConfig {
        let dir =
            std::env::temp_dir().join(format!("travial-e2e-docker-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let users = std::env::var_os("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")));
        if let Some(plugins) = users.map(|config| config.join("cli-plugins")) {
            if plugins.is_dir() {
                std::os::unix::fs::symlink(&plugins, dir.join("cli-plugins")).unwrap();
            }
        }
        DockerConfig(dir)
    }

    pub fn path(&self) -> String {
        self.0.display().to_string()
    }
}

impl Drop for DockerConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The xtask running in the background, its stderr read line by line.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    pub fn start(sandbox: &Sandbox, args: &[&str]) -> Running {
        let mut child = Command::new(XTASK)
            .args(args)
            .current_dir(root())
            .envs(sandbox.vars.iter().cloned())
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (sender, lines) = mpsc::channel();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line of stderr that starts with `prefix`.
    pub fn wait_for_line(&mut self, prefix: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.seen.iter().any(|line| line.starts_with(prefix)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no `{prefix}` line within {limit:?}:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Sends SIGINT, as Ctrl-C does, and returns the exit code and how long the exit took.
    pub fn interrupt(&mut self) -> (Option<i32>, Duration) {
        let sent = Instant::now();
        let kill = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let limit = Duration::from_secs(10);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code();
            }
            if sent.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "still running {limit:?} after SIGINT:\n{}",
                    self.seen.join("\n")
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let took = sent.elapsed();
        self.seen.extend(self.lines.iter());
        (code, took)
    }

    pub fn log(&self) -> String {
        self.seen.join("\n")
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the end: the exit code and all of stderr.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        (status.code(), self.log())
    }
}

/// A release of the test's app image with an ID of its own (a label) and `extra`
/// Dockerfile lines.
pub fn image(tag: &str, extra: &str) -> String {
    let app = format!("{}:{}", APP_IMAGE, APP_TAG);
    build(
        tag,
        &format!("FROM {app}\nLABEL travial.test.release={tag}\n{extra}\n"),
    )
}

pub fn build(tag: &str, dockerfile: &str) -> String {
    let reference = format!("{}:{tag}", APP_IMAGE);
    let mut build = Command::new("docker")
        .args(["build", "--quiet", "--tag", &reference, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    build
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    assert_success(
        &build.wait_with_output().unwrap(),
        &format!("build {reference}"),
    );
    reference
}
