//! What the benchmarks share: the workspace, the settings of `.ci/docker` with each
//! benchmark's own, a runner that times a command and ends the benchmark if it fails, and
//! the app's image built as Compose builds it, with releases of it.

#![allow(dead_code)]

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

pub const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
/// The app image the benchmarks build and deploy.
pub const IMAGE: &str = "travial-bench/app";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The variables a benchmark's commands get: the stand-ins of `.ci/docker` where
/// /etc/travial-ci.env names them, then `own`, which win.
pub struct Settings(pub Vec<(String, String)>);

impl Settings {
    pub fn new(own: &[(&str, &str)]) -> Settings {
        let mut settings = Settings(
            std::fs::read_to_string("/etc/travial-ci.env")
                .unwrap_or_default()
                .lines()
                .filter_map(|line| line.split_once('='))
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
        );
        // The load's client writes ~50 times a second from one address.
        settings.set("APP_WRITES_PER_MINUTE", "1000000");
        for (key, value) in own {
            settings.set(key, value);
        }
        settings
    }

    pub fn set(&mut self, key: &str, value: &str) {
        self.0.retain(|(known, _)| known != key);
        self.0.push((key.to_owned(), value.to_owned()));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(known, _)| known == key)
            .map(|(_, value)| value.as_str())
    }

    /// `program ARGS` in `dir`, with these variables and `extra`, timed; a failure ends the
    /// benchmark with what the command said.
    pub fn run_in(
        &self,
        dir: &Path,
        program: &str,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> (Output, Duration) {
        let started = Instant::now();
        let output = Command::new(program)
            .args(args)
            .current_dir(dir)
            .envs(self.0.iter().cloned())
            .envs(extra.iter().copied())
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (output, elapsed)
    }

    /// `cargo xtask ARGS` in the workspace.
    pub fn xtask(&self, args: &[&str], extra: &[(&str, &str)]) -> (Output, Duration) {
        self.run_in(&root(), XTASK, args, extra)
    }

    /// The same with another build of the xtask (`Contender`). The one of before asked
    /// nothing before it removed data, and knows no `--yes`.
    pub fn xtask_of(
        &self,
        contender: &Contender,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> (Output, Duration) {
        let args: Vec<&str> = args
            .iter()
            .copied()
            .filter(|arg| !(contender.is_baseline() && *arg == "--yes"))
            .collect();
        self.run_in(&root(), &contender.binary, &args, extra)
    }

    /// The app image as `deploy` builds it (`APP_IMAGE:APP_TAG` of these settings), from
    /// the sources in `dir`; the time it took.
    pub fn build_app(&self, dir: &Path) -> Duration {
        let args = [
            "compose",
            "-p",
            "travial-bench",
            "-f",
            "compose/compose.yaml",
            "build",
            "web",
        ];
        self.run_in(dir, "docker", &args, &[]).1
    }
}

/// A build of the xtask a benchmark runs: this one, and with `BASELINE_XTASK` (the path
/// of an xtask built from an older commit, with its own compose files) that one too,
/// each on a stack of its own, in turn: the README's "before / now" figures come from one
/// run, as a ratio, since these machines are noisy.
pub struct Contender {
    /// `now`, `before`.
    pub name: &'static str,
    pub binary: String,
}

impl Contender {
    pub fn is_baseline(&self) -> bool {
        self.name == "before"
    }
}

pub fn contenders() -> Vec<Contender> {
    let mut contenders = vec![Contender {
        name: "now",
        binary: XTASK.to_owned(),
    }];
    if let Some(binary) = std::env::var("BASELINE_XTASK")
        .ok()
        .filter(|binary| !binary.is_empty())
    {
        assert!(Path::new(&binary).exists(), "BASELINE_XTASK: no {binary}");
        contenders.push(Contender {
            name: "before",
            binary,
        });
    }
    contenders
}

/// `before / now` of a time, and the ratio: `10.5 s / 2.1 s (0.20x)`; `now` alone
/// without a baseline.
pub fn compared(before: Option<f64>, now: f64, unit: &str) -> String {
    // Two decimals below one: `status` takes a fraction of a second.
    let figure = |value: f64| match value < 1.0 {
        true => format!("{value:.2}{unit}"),
        false => format!("{value:.1}{unit}"),
    };
    match before {
        Some(before) => format!(
            "{} / {} ({:.2}x)",
            figure(before),
            figure(now),
            now / before.max(f64::EPSILON)
        ),
        None => figure(now),
    }
}

/// A release of `IMAGE:base` with an ID of its own (a label): `IMAGE:tag`.
pub fn release(base: &str, tag: &str) -> String {
    let reference = format!("{IMAGE}:{tag}");
    let mut build = Command::new("docker")
        .args(["build", "--quiet", "--tag", &reference, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    write!(
        build.stdin.take().unwrap(),
        "FROM {IMAGE}:{base}\nLABEL travial.bench={tag}\n"
    )
    .unwrap();
    assert!(build.wait().unwrap().success(), "build {reference}");
    reference
}

/// Player `name`, made through the app at `base`, for the load's requests.
pub fn create_player(base: &str, name: &str) {
    let player = format!(r#"{{"name":"{name}","city":"Rome","birthdate":"1990-05-17"}}"#);
    let created = Command::new("curl")
        .args(["--silent", "--fail", "-H", "content-type: application/json"])
        .args(["-d", &player, &format!("{base}/api/players")])
        .output()
        .unwrap();
    assert!(created.status.success(), "creating the player");
}

pub fn remove_images(images: &[String]) {
    for image in images {
        let _ = Command::new("docker").args(["image", "rm", image]).output();
    }
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// What the ship steps' lines say was sent, in all: `10.7 MB`, or `0 bytes`.
pub fn sent(log: &str) -> String {
    // `✓ sent IMAGE to a (10.7 MB, …); sent IMAGE to b (…)`: a line for each ship.
    let megabytes: Vec<f64> = log
        .lines()
        .filter(|line| line.starts_with("✓ "))
        .flat_map(|line| line.split("sent ").skip(1))
        .filter_map(|rest| rest.split(" (").nth(1)?.split(" MB").next()?.parse().ok())
        .collect();
    match megabytes.is_empty() {
        true => "0 bytes".to_owned(),
        false => format!("{:.1} MB", megabytes.iter().sum::<f64>()),
    }
}
