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
#[path = "../tests/suite/e2e/load.rs"]
mod load;
mod support;

use std::{thread, time::Duration};

use support::{IMAGE, Settings, median, release, remove_images};

const REDEPLOYS: usize = 5;

fn main() {
    let port = 28000 + std::process::id() % 1000;
    let settings = Settings::new(&[
        ("TRAVIAL_PROJECT", "travial-bench-zd"),
        ("APP_IMAGE", IMAGE),
        ("APP_TAG", "zd-base"),
        ("WEB_PORT", &port.to_string()),
        ("HTTPS_PORT", &(port + 1000).to_string()),
        ("POSTGRES_PASSWORD", "bench-owner"),
        ("APP_DB_PASSWORD", "bench-app"),
    ]);
    settings.build_app(&support::root());
    let releases: Vec<String> = (0..2)
        .map(|n| release("zd-base", &format!("zd-{n}")))
        .collect();
    settings.xtask(&["down", "prod", "--volumes", "--yes"], &[]);
    settings.xtask(&["deploy", "prod", "--no-build"], &[("APP_TAG", "zd-0")]);
    let base = format!("http://127.0.0.1:{port}");
    support::create_player(&base, "bench");

    let load = load::Load::start(&base, "bench");
    thread::sleep(Duration::from_secs(1));
    let mut rows = Vec::new();
    let mut times = Vec::new();
    let before = load.results();
    for n in 0..REDEPLOYS {
        let tag = format!("zd-{}", (n + 1) % 2);
        let (_, took) = settings.xtask(&["deploy", "prod", "--no-build"], &[("APP_TAG", &tag)]);
        times.push(took.as_secs_f64());
    }
    let after = load.results();
    rows.push(format!(
        "| redeploy with a new image (median of {REDEPLOYS}) | {:.1} s | {} of {} |",
        median(&mut times),
        after.failures.len() - before.failures.len(),
        after.sent - before.sent
    ));

    let before = load.results();
    let (_, took) = settings.xtask(&["rollback", "prod"], &[]);
    let after = load.results();
    rows.push(format!(
        "| rollback | {:.1} s | {} of {} |",
        took.as_secs_f64(),
        after.failures.len() - before.failures.len(),
        after.sent - before.sent
    ));

    // The proxy's image changes: Compose recreates it, the one restart of the proxy.
    let proxy = settings.get("PROXY_IMAGE").unwrap_or("caddy:2").to_owned();
    let other_proxy = "travial-bench/caddy:recreated";
    settings.run_in(
        &support::root(),
        "docker",
        &["tag", &proxy, other_proxy],
        &[],
    );
    let before = load.results();
    let (_, took) = settings.xtask(
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
    settings.xtask(&["down", "prod", "--volumes", "--yes"], &[]);
    remove_images(&releases);
    remove_images(&[other_proxy.to_owned()]);

    println!("| under ~100 requests/s | time | requests lost |");
    println!("|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}
