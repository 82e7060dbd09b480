//! The README's remote-deploy figures (a benchmark, not a test), on a real separate engine
//! in a network namespace reached over real SSH, as the end-to-end tests make it:
//!
//!     cargo bench -p xtask --bench remote
//!     BASELINE_XTASK=/path/to/old/xtask cargo bench -p xtask --bench remote
//!
//! - the first `deploy prod --host ssh://…` to a host without the app image: time to
//!   healthy, the bytes sent (the image, streamed once), the SSH connections it opened;
//! - redeploys of the same image (median of five): time, bytes sent, SSH connections;
//! - `status --host` (median of five).
//!
//! With `BASELINE_XTASK`, the same with that xtask on a host of its own, in turn, and the
//! ratio. It uses the stand-in images of `.ci/docker` (loaded into the hosts as a registry
//! they pull from would give them) and project prefixes and ports of its own. Needs root.

// What the end-to-end tests use, of which this benchmark needs a part.
#[allow(dead_code)]
#[path = "../tests/suite/e2e/hosts.rs"]
mod hosts;
mod support;

use support::{Contender, IMAGE, Settings, compared, contenders, median, sent};

const RUNS: usize = 5;

/// One contender's host and settings, and what was measured of it.
struct Run<'a> {
    contender: Contender,
    host: &'a hosts::Host,
    settings: Settings,
    first: (f64, String, usize),
    redeploys: Vec<f64>,
    redeploy_logins: Vec<usize>,
    statuses: Vec<f64>,
}

impl Run<'_> {
    /// The time, and the SSH logins the host accepted meanwhile.
    fn timed(&self, args: &[&str]) -> (f64, usize, String) {
        let before = self.host.ssh_logins();
        let (output, took) = self.settings.xtask_of(&self.contender, args, &[]);
        (
            took.as_secs_f64(),
            self.host.ssh_logins() - before,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

fn main() {
    let contenders = contenders();
    let numbers: Vec<u8> = [30, 35].into_iter().take(contenders.len()).collect();
    let hosts = hosts::Hosts::start(&numbers);
    let mut runs: Vec<Run> = contenders
        .into_iter()
        .zip(&hosts.hosts)
        .enumerate()
        .map(|(n, (contender, host))| {
            let settings = Settings::new(&[
                (
                    "TRAVIAL_PROJECT",
                    &format!("travial-bench-{}", contender.name),
                ),
                ("APP_IMAGE", IMAGE),
                ("APP_TAG", "bench-remote"),
                ("WEB_PORT", &(28080 + n).to_string()),
                ("HTTPS_PORT", &(28443 + n).to_string()),
                ("POSTGRES_PASSWORD", "bench-owner"),
                ("APP_DB_PASSWORD", "bench-app"),
                ("PATH", &hosts.path()),
            ]);
            Run {
                contender,
                host,
                settings,
                first: (0.0, String::new(), 0),
                redeploys: Vec::new(),
                redeploy_logins: Vec::new(),
                statuses: Vec::new(),
            }
        })
        .collect();
    for image in ["POSTGRES_IMAGE", "PROXY_IMAGE"] {
        hosts.load(
            runs[0]
                .settings
                .get(image)
                .expect("run `bash .ci/docker` first"),
        );
    }
    runs[0].settings.build_app(&support::root());

    for run in &mut runs {
        let url = run.host.url();
        let (took, logins, log) = run.timed(&["deploy", "prod", "--no-build", "--host", &url]);
        run.first = (took, sent(&log), logins);
    }
    for _ in 0..RUNS {
        for run in &mut runs {
            let url = run.host.url();
            let (took, logins, _) = run.timed(&["deploy", "prod", "--no-build", "--host", &url]);
            run.redeploys.push(took);
            run.redeploy_logins.push(logins);
            let (took, _, _) = run.timed(&["status", "prod", "--host", &url]);
            run.statuses.push(took);
        }
    }
    for run in &runs {
        let url = run.host.url();
        run.settings.xtask_of(
            &run.contender,
            &["down", "prod", "--volumes", "--yes", "--host", &url],
            &[],
        );
    }

    let (now, before) = (&runs[0], runs.get(1));
    let both = |f: &dyn Fn(&Run) -> String| match before {
        Some(before) => format!("{} / {}", f(before), f(now)),
        None => f(now),
    };
    let time = |f: &dyn Fn(&Run) -> f64| compared(before.map(f), f(now), " s");
    println!(
        "| on a host over SSH | {} |",
        match before {
            Some(_) => "before / now (ratio)",
            None => "now",
        }
    );
    println!("|---|---|");
    println!(
        "| first `deploy prod --host` (image sent, db created, migrated, healthy) | {}; {} sent |",
        time(&|run| run.first.0),
        both(&|run| run.first.1.clone())
    );
    println!(
        "| SSH connections of that first deploy | {} |",
        both(&|run| run.first.2.to_string())
    );
    println!(
        "| redeploy of the same image (median of {RUNS}) | {} |",
        time(&|run| median(&mut run.redeploys.clone()))
    );
    println!(
        "| SSH connections of one redeploy | {} |",
        both(&|run| {
            let mut logins = run.redeploy_logins.clone();
            logins.sort();
            logins[logins.len() / 2].to_string()
        })
    );
    println!(
        "| `status --host` (median of {RUNS}) | {} |",
        time(&|run| median(&mut run.statuses.clone()))
    );
}
