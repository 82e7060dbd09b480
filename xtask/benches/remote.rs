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
#[path = "../tests/suite/e2e/hosts.rs"]
mod hosts;
mod support;

use support::{IMAGE, Settings, median, sent};

const RUNS: usize = 5;

fn main() {
    let hosts = hosts::Hosts::start(&[30]);
    let host = &hosts.hosts[0];
    let settings = Settings::new(&[
        ("TRAVIAL_PROJECT", "travial-bench"),
        ("APP_IMAGE", IMAGE),
        ("APP_TAG", "bench-remote"),
        ("WEB_PORT", "28080"),
        ("HTTPS_PORT", "28443"),
        ("POSTGRES_PASSWORD", "bench-owner"),
        ("APP_DB_PASSWORD", "bench-app"),
        ("PATH", &hosts.path()),
    ]);
    for image in ["POSTGRES_IMAGE", "PROXY_IMAGE"] {
        hosts.load(settings.get(image).expect("run `bash .ci/docker` first"));
    }
    let url = host.url();
    let deploy = ["deploy", "prod", "--no-build", "--host", url.as_str()];
    settings.build_app(&support::root());

    let (first, first_time) = settings.xtask(&deploy, &[]);
    let first_sent = sent(&String::from_utf8_lossy(&first.stderr));
    let mut times = Vec::new();
    let mut redeploy_sent = Vec::new();
    for _ in 0..RUNS {
        let (output, elapsed) = settings.xtask(&deploy, &[]);
        times.push(elapsed.as_secs_f64());
        redeploy_sent.push(sent(&String::from_utf8_lossy(&output.stderr)));
    }
    settings.xtask(&["down", "prod", "--volumes", "--yes", "--host", &url], &[]);

    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| first `deploy prod --host` (image sent, db created, migrated, healthy) | {:.1} s, {first_sent} sent |",
        first_time.as_secs_f64()
    );
    println!(
        "| redeploy of the same image (median of {RUNS}) | {:.1} s, {} sent |",
        median(&mut times),
        redeploy_sent.join(" / ")
    );
}
