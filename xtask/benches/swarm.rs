//! The README's Swarm figures (a benchmark, not a test), on two real engines in network
//! namespaces reached over real SSH, as the end-to-end tests make them:
//!
//!     cargo bench -p xtask --bench swarm
//!
//! - `swarm init` of two fresh servers, then again (nothing to change);
//! - the first `deploy prod --swarm` (the image sent to both nodes, db created, migrated,
//!   web on both nodes);
//! - redeploys of the same image (median of three);
//! - while a client sends about 100 requests a second through the worker's proxy: rolling
//!   updates to a new image (median of three) and a rollback, with the requests lost.
//!
//! It uses the stand-in images of `.ci/docker` (loaded into the nodes as a registry would
//! give them), DNS round robin and host-mode ports (no IPVS here). Needs root.

#[allow(dead_code)]
#[path = "../tests/e2e/hosts.rs"]
mod hosts;
#[allow(dead_code)]
#[path = "../tests/e2e/load.rs"]
mod load;

use std::{
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

const RUNS: usize = 3;
const IMAGE: &str = "travial-bench/app";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let hosts = hosts::Hosts::start(&[33, 34]);
    let (manager, worker) = (&hosts.hosts[0], &hosts.hosts[1]);
    let mut vars: Vec<(String, String)> = std::fs::read_to_string("/etc/travial-ci.env")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    // Named by ID, as the xtask names the app's image: by name, Swarm would ask Docker Hub.
    for key in ["POSTGRES_IMAGE", "PROXY_IMAGE"] {
        let Some(position) = vars.iter().position(|(known, _)| known == key) else {
            panic!("/etc/travial-ci.env has no {key}: run `bash .ci/docker` first");
        };
        hosts.load(&vars[position].1);
        vars[position].1 = image_id(&vars[position].1);
    }
    let port = 29080;
    for (key, value) in [
        ("TRAVIAL_PROJECT", "travial-bench-swarm".to_owned()),
        ("APP_IMAGE", IMAGE.to_owned()),
        ("APP_TAG", "swarm-base".to_owned()),
        ("WEB_PORT", port.to_string()),
        ("HTTPS_PORT", "29443".to_owned()),
        ("POSTGRES_PASSWORD", "bench-owner".to_owned()),
        ("APP_DB_PASSWORD", "bench-app".to_owned()),
        ("SWARM_ENDPOINT_MODE", "dnsrr".to_owned()),
        ("SWARM_PUBLISH_MODE", "host".to_owned()),
        ("PATH", hosts.path()),
    ] {
        vars.retain(|(known, _)| known != key);
        vars.push((key.to_owned(), value));
    }
    let run = |program: &str, args: &[&str], tag: &str| -> (Output, Duration) {
        let started = Instant::now();
        let output = Command::new(program)
            .args(args)
            .current_dir(&root)
            .envs(vars.iter().cloned())
            .env("APP_TAG", tag)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{program} {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        (output, started.elapsed())
    };
    let xtask = env!("CARGO_BIN_EXE_xtask");
    let compose_build = [
        "compose",
        "-p",
        "travial-bench-swarm",
        "-f",
        "compose/compose.yaml",
        "build",
        "web",
    ];
    run("docker", &compose_build, "swarm-base");
    let releases: Vec<String> = (0..2).map(|n| release(&format!("swarm-{n}"))).collect();
    let url = manager.url();
    let swarm = |command: &str, tag: &str| {
        run(
            xtask,
            &[command, "prod", "--no-build", "--swarm", "--host", &url],
            tag,
        )
    };
    let mut rows = Vec::new();

    let (_, init) = run(xtask, &["swarm", "init", &url, &worker.url()], "");
    let (_, again) = run(xtask, &["swarm", "init", &url, &worker.url()], "");
    rows.push(format!(
        "| `swarm init` of two fresh servers / again (nothing to change) | {:.1} s / {:.1} s | |",
        init.as_secs_f64(),
        again.as_secs_f64()
    ));

    let (first, took) = swarm("deploy", "swarm-0");
    rows.push(format!(
        "| first `deploy prod --swarm` (image sent to 2 nodes, db created, migrated, web 2/2) | {:.1} s, {} sent | |",
        took.as_secs_f64(),
        sent(&String::from_utf8_lossy(&first.stderr))
    ));
    let mut times = Vec::new();
    for _ in 0..RUNS {
        times.push(swarm("deploy", "swarm-0").1.as_secs_f64());
    }
    rows.push(format!(
        "| redeploy of the same image (median of {RUNS}) | {:.1} s, 0 bytes sent | |",
        median(&mut times)
    ));

    let base = format!("http://{}:{port}", worker.address);
    let player = r#"{"name":"bench","city":"Rome","birthdate":"1990-05-17"}"#;
    let created = Command::new("curl")
        .args(["--silent", "--fail", "-H", "content-type: application/json"])
        .args(["-d", player, &format!("{base}/api/players")])
        .output()
        .unwrap();
    assert!(created.status.success(), "creating the player");
    let load = load::Load::start(&base, "bench");
    thread::sleep(Duration::from_secs(1));
    let before = load.results();
    let mut times = Vec::new();
    for n in 0..RUNS {
        times.push(
            swarm("deploy", &format!("swarm-{}", (n + 1) % 2))
                .1
                .as_secs_f64(),
        );
    }
    let after = load.results();
    rows.push(format!(
        "| rolling update to a new image, 2 replicas (median of {RUNS}) | {:.1} s | {} of {} |",
        median(&mut times),
        after.failures.len() - before.failures.len(),
        after.sent - before.sent
    ));
    let before = load.results();
    let (_, took) = run(
        xtask,
        &["rollback", "prod", "--swarm", "--host", &url],
        "swarm-0",
    );
    thread::sleep(Duration::from_secs(1));
    let results = load.finish();
    rows.push(format!(
        "| rollback | {:.1} s | {} of {} |",
        took.as_secs_f64(),
        results.failures.len() - before.failures.len(),
        results.sent - before.sent
    ));
    run(
        xtask,
        &["down", "prod", "--volumes", "--swarm", "--host", &url],
        "",
    );
    for release in releases {
        let _ = Command::new("docker")
            .args(["image", "rm", &release])
            .output();
    }

    println!("| on 2 nodes, ~100 requests/s through one node's proxy | time | requests lost |");
    println!("|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}

fn median(times: &mut [f64]) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn image_id(image: &str) -> String {
    let inspect = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "no image {image} here");
    String::from_utf8_lossy(&inspect.stdout).trim().to_owned()
}

/// A release of the built image with an ID of its own (a label).
fn release(tag: &str) -> String {
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
        "FROM {IMAGE}:swarm-base\nLABEL travial.bench={tag}\n"
    )
    .unwrap();
    assert!(build.wait().unwrap().success(), "build {reference}");
    reference
}

/// What the ship steps' lines say was sent to the nodes, in all: `21.4 MB`.
fn sent(log: &str) -> String {
    let megabytes: f64 = log
        .lines()
        .filter_map(|line| line.strip_prefix("✓ sent "))
        .filter_map(|rest| {
            rest.split(" (")
                .nth(1)?
                .split(" MB")
                .next()?
                .parse::<f64>()
                .ok()
        })
        .sum();
    format!("{megabytes:.1} MB")
}
