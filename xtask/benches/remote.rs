//! The README's remote-deploy figures (a benchmark, not a test), on a real separate engine
//! in a network namespace reached over real SSH, as the end-to-end tests make it:
//!
//!     cargo bench -p xtask --bench remote
//!
//! - the first `deploy prod --host ssh://…` to a host without the app image: time to
//!   healthy, and the bytes sent (the image, streamed once);
//! - redeploys of the same image (median of five): time, and the bytes sent (none).
//!
//! It uses the stand-in images of `.ci/docker` (loaded into the host as a registry it
//! pulls from would give them) and a project prefix and port of its own. Needs root.

// What the end-to-end tests use, of which this benchmark needs a part.
#[allow(dead_code)]
#[path = "../tests/e2e/hosts.rs"]
mod hosts;

use std::{
    path::Path,
    process::{Command, Output},
    time::{Duration, Instant},
};

const RUNS: usize = 5;
const IMAGE: &str = "travial-bench/app";
const TAG: &str = "bench-remote";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let hosts = hosts::Hosts::start(&[30]);
    let host = &hosts.hosts[0];
    let mut vars: Vec<(String, String)> = std::fs::read_to_string("/etc/travial-ci.env")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let postgres = vars
        .iter()
        .find(|(key, _)| key == "POSTGRES_IMAGE")
        .map_or_else(|| "postgres:17".to_owned(), |(_, image)| image.clone());
    hosts.load(&postgres);
    if let Some((_, proxy)) = vars.iter().find(|(key, _)| key == "PROXY_IMAGE") {
        hosts.load(proxy);
    }
    for (key, value) in [
        ("TRAVIAL_PROJECT", "travial-bench".to_owned()),
        ("APP_IMAGE", IMAGE.to_owned()),
        ("APP_TAG", TAG.to_owned()),
        ("WEB_PORT", "28080".to_owned()),
        ("HTTPS_PORT", "28443".to_owned()),
        ("POSTGRES_PASSWORD", "bench-owner".to_owned()),
        ("APP_DB_PASSWORD", "bench-app".to_owned()),
        ("PATH", hosts.path()),
    ] {
        vars.push((key.to_owned(), value));
    }
    let run = |program: &str, args: &[&str]| -> (Output, Duration) {
        let started = Instant::now();
        let output = Command::new(program)
            .args(args)
            .current_dir(&root)
            .envs(vars.iter().cloned())
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (output, elapsed)
    };
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let url = host.url();
    let deploy = ["deploy", "prod", "--no-build", "--host", url.as_str()];
    run(
        "docker",
        &[
            "compose",
            "-p",
            "travial-bench",
            "-f",
            "compose/compose.yaml",
            "build",
            "web",
        ],
    );

    let (first, first_time) = run(xtask, &deploy);
    let first_sent = sent(&String::from_utf8_lossy(&first.stderr));
    let mut times = Vec::new();
    let mut redeploy_sent = Vec::new();
    for _ in 0..RUNS {
        let (output, elapsed) = run(xtask, &deploy);
        times.push(elapsed.as_secs_f64());
        redeploy_sent.push(sent(&String::from_utf8_lossy(&output.stderr)));
    }
    run(xtask, &["down", "prod", "--volumes", "--host", &url]);

    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| first `deploy prod --host` (image sent, db created, migrated, healthy) | {:.1} s, {first_sent} sent |",
        first_time.as_secs_f64()
    );
    times.sort_by(f64::total_cmp);
    println!(
        "| redeploy of the same image (median of {RUNS}) | {:.1} s, {} sent |",
        times[RUNS / 2],
        redeploy_sent.join(" / ")
    );
}

/// What the ship step's line says was sent: `10.7 MB`, or `0 bytes`.
fn sent(log: &str) -> String {
    for line in log.lines() {
        if line.contains("(0 bytes sent)") {
            return "0 bytes".to_owned();
        }
        if let Some(rest) = line.strip_prefix("✓ sent ") {
            let size = rest
                .split(" (")
                .nth(1)
                .and_then(|figures| figures.split(',').next());
            return size.unwrap_or("?").to_owned();
        }
    }
    panic!("no line about the image in:\n{log}")
}
