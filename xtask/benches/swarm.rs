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
#[path = "../tests/suite/e2e/hosts.rs"]
mod hosts;
#[allow(dead_code)]
#[path = "../tests/suite/e2e/load.rs"]
mod load;
mod support;

use std::{process::Command, thread, time::Duration};

use support::{IMAGE, Settings, median, release, remove_images, sent};

const RUNS: usize = 3;

fn main() {
    let hosts = hosts::Hosts::start(&[33, 34]);
    let (manager, worker) = (&hosts.hosts[0], &hosts.hosts[1]);
    let port = "29080";
    let mut settings = Settings::new(&[
        ("TRAVIAL_PROJECT", "travial-bench-swarm"),
        ("APP_IMAGE", IMAGE),
        ("APP_TAG", "swarm-base"),
        ("WEB_PORT", port),
        ("HTTPS_PORT", "29443"),
        ("POSTGRES_PASSWORD", "bench-owner"),
        ("APP_DB_PASSWORD", "bench-app"),
        ("SWARM_ENDPOINT_MODE", "dnsrr"),
        ("SWARM_PUBLISH_MODE", "host"),
        ("SWARM_OVERLAY", "plain"),
        ("PATH", &hosts.path()),
    ]);
    // Named by ID, as the xtask names the app's image: by name, Swarm would ask Docker Hub.
    for key in ["POSTGRES_IMAGE", "PROXY_IMAGE"] {
        let image = settings
            .get(key)
            .expect("run `bash .ci/docker` first")
            .to_owned();
        hosts.load(&image);
        settings.set(key, &image_id(&image));
    }
    settings.build_app(&support::root());
    let releases: Vec<String> = (0..2)
        .map(|n| release("swarm-base", &format!("swarm-{n}")))
        .collect();
    let url = manager.url();
    let on_swarm = |command: &str, tag: &str| {
        settings.xtask(
            &[command, "prod", "--no-build", "--swarm", "--host", &url],
            &[("APP_TAG", tag)],
        )
    };
    let mut rows = Vec::new();

    let init = ["swarm", "init", &url, &worker.url()];
    let (_, first) = settings.xtask(&init, &[]);
    let (_, again) = settings.xtask(&init, &[]);
    rows.push(format!(
        "| `swarm init` of two fresh servers / again (nothing to change) | {:.1} s / {:.1} s | |",
        first.as_secs_f64(),
        again.as_secs_f64()
    ));

    let (first, took) = on_swarm("deploy", "swarm-0");
    rows.push(format!(
        "| first `deploy prod --swarm` (image sent to 2 nodes, db created, migrated, web 2/2) | {:.1} s, {} sent | |",
        took.as_secs_f64(),
        sent(&String::from_utf8_lossy(&first.stderr))
    ));
    let mut times: Vec<f64> = (0..RUNS)
        .map(|_| on_swarm("deploy", "swarm-0").1.as_secs_f64())
        .collect();
    rows.push(format!(
        "| redeploy of the same image (median of {RUNS}) | {:.1} s, 0 bytes sent | |",
        median(&mut times)
    ));

    let base = format!("http://{}:{port}", worker.address);
    support::create_player(&base, "bench");
    let load = load::Load::start(&base, "bench");
    thread::sleep(Duration::from_secs(1));
    let before = load.results();
    let mut times: Vec<f64> = (0..RUNS)
        .map(|n| {
            let tag = format!("swarm-{}", (n + 1) % 2);
            on_swarm("deploy", &tag).1.as_secs_f64()
        })
        .collect();
    let after = load.results();
    rows.push(format!(
        "| rolling update to a new image, 2 replicas (median of {RUNS}) | {:.1} s | {} of {} |",
        median(&mut times),
        after.failures.len() - before.failures.len(),
        after.sent - before.sent
    ));
    let before = load.results();
    let (_, took) = settings.xtask(&["rollback", "prod", "--swarm", "--host", &url], &[]);
    thread::sleep(Duration::from_secs(1));
    let results = load.finish();
    rows.push(format!(
        "| rollback | {:.1} s | {} of {} |",
        took.as_secs_f64(),
        results.failures.len() - before.failures.len(),
        results.sent - before.sent
    ));
    settings.xtask(
        &[
            "down",
            "prod",
            "--volumes",
            "--yes",
            "--swarm",
            "--host",
            &url,
        ],
        &[],
    );
    remove_images(&releases);

    println!("| on 2 nodes, ~100 requests/s through one node's proxy | time | requests lost |");
    println!("|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}

fn image_id(image: &str) -> String {
    let inspect = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", image])
        .output()
        .unwrap();
    assert!(inspect.status.success(), "no image {image} here");
    String::from_utf8_lossy(&inspect.stdout).trim().to_owned()
}
