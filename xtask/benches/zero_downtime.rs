//! The README's zero-downtime figures (a benchmark, not a test), on the real engine with
//! the stand-in images of `.ci/docker`:
//!
//!     cargo bench -p xtask --bench zero_downtime
//!
//! prod is deployed, then, while a client sends about 100 requests a second (a read and a
//! write in turn, each on a new connection): five redeploys with a new image each, a
//! rollback, and a redeploy that recreates the proxy (its image changes: the one case
//! where the proxy restarts). For each: the time it takes and the requests lost.

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

const REDEPLOYS: usize = 5;
const IMAGE: &str = "travial-bench/app";

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let mut vars: Vec<(String, String)> = std::fs::read_to_string("/etc/travial-ci.env")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    let port = 28000 + std::process::id() % 1000;
    for (key, value) in [
        ("TRAVIAL_PROJECT", "travial-bench-zd".to_owned()),
        ("APP_IMAGE", IMAGE.to_owned()),
        ("APP_TAG", "zd-base".to_owned()),
        ("WEB_PORT", port.to_string()),
        ("HTTPS_PORT", (port + 1000).to_string()),
        ("POSTGRES_PASSWORD", "bench-owner".to_owned()),
        ("APP_DB_PASSWORD", "bench-app".to_owned()),
    ] {
        vars.retain(|(known, _)| known != key);
        vars.push((key.to_owned(), value));
    }
    let run = |program: &str, args: &[&str], extra: &[(&str, &str)]| -> (Output, Duration) {
        let started = Instant::now();
        let output = Command::new(program)
            .args(args)
            .current_dir(&root)
            .envs(vars.iter().cloned())
            .envs(extra.iter().copied())
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
    run(
        "docker",
        &[
            "compose",
            "-p",
            "travial-bench-zd",
            "-f",
            "compose/compose.yaml",
            "build",
            "web",
        ],
        &[],
    );
    let releases: Vec<String> = (0..2).map(|n| release(&format!("zd-{n}"))).collect();
    run(xtask, &["down", "prod", "--volumes"], &[]);
    run(
        xtask,
        &["deploy", "prod", "--no-build"],
        &[("APP_TAG", "zd-0")],
    );
    let base = format!("http://127.0.0.1:{port}");
    let player = r#"{"name":"bench","city":"Rome","birthdate":"1990-05-17"}"#;
    let created = Command::new("curl")
        .args([
            "--silent",
            "--fail",
            "-H",
            "content-type: application/json",
            "-d",
            player,
        ])
        .arg(format!("{base}/api/players"))
        .output()
        .unwrap();
    assert!(created.status.success(), "creating the player");

    let load = load::Load::start(&base, "bench");
    thread::sleep(Duration::from_secs(1));
    let mut rows = Vec::new();
    let mut times = Vec::new();
    let before = load.results();
    for n in 0..REDEPLOYS {
        let tag = format!("zd-{}", (n + 1) % 2);
        let (_, took) = run(
            xtask,
            &["deploy", "prod", "--no-build"],
            &[("APP_TAG", &tag)],
        );
        times.push(took.as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let after = load.results();
    rows.push(format!(
        "| redeploy with a new image (median of {REDEPLOYS}) | {:.1} s | {} of {} |",
        times[REDEPLOYS / 2],
        after.failures.len() - before.failures.len(),
        after.sent - before.sent
    ));

    let before = load.results();
    let (_, took) = run(xtask, &["rollback", "prod"], &[]);
    let after = load.results();
    rows.push(format!(
        "| rollback | {:.1} s | {} of {} |",
        took.as_secs_f64(),
        after.failures.len() - before.failures.len(),
        after.sent - before.sent
    ));

    // The proxy's image changes: Compose recreates it, the one restart of the proxy.
    let proxy = vars
        .iter()
        .find(|(key, _)| key == "PROXY_IMAGE")
        .map_or("caddy:2", |(_, image)| image.as_str())
        .to_owned();
    let other_proxy = "travial-bench/caddy:recreated";
    run("docker", &["tag", &proxy, other_proxy], &[]);
    let before = load.results();
    let (_, took) = run(
        xtask,
        &["deploy", "prod", "--no-build"],
        &[("PROXY_IMAGE", other_proxy)],
    );
    thread::sleep(Duration::from_secs(1));
    let results = load.finish();
    let lost = &results.failures[before.failures.len()..];
    let window = match (lost.first(), lost.last()) {
        (Some((first, _)), Some((last, _))) => {
            format!(", within {} ms", (*last - *first).as_millis())
        }
        _ => String::new(),
    };
    rows.push(format!(
        "| redeploy that recreates the proxy (its configuration or image changed) | {:.1} s | {} of {}{window} |",
        took.as_secs_f64(),
        lost.len(),
        results.sent - before.sent
    ));
    run(xtask, &["down", "prod", "--volumes"], &[]);
    for release in releases {
        let _ = Command::new("docker")
            .args(["image", "rm", &release])
            .output();
    }
    let _ = Command::new("docker")
        .args(["image", "rm", other_proxy])
        .output();

    println!("| under ~100 requests/s | time | requests lost |");
    println!("|---|---|---|");
    for row in rows {
        println!("{row}");
    }
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
        "FROM {IMAGE}:zd-base\nLABEL travial.bench={tag}\n"
    )
    .unwrap();
    assert!(build.wait().unwrap().success(), "build {reference}");
    reference
}
