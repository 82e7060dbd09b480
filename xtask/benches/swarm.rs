//! The README's Swarm figures (a benchmark, not a test), on two real engines in network
//! namespaces reached over real SSH, as the end-to-end tests make them:
//!
//!     cargo bench -p xtask --bench swarm
//!     BASELINE_XTASK=/path/to/old/xtask cargo bench -p xtask --bench swarm
//!
//! - `swarm init` of two fresh servers, then again (nothing to change);
//! - the first `deploy prod --swarm` (the image sent to both nodes, db created, migrated,
//!   web on both nodes);
//! - redeploys of the same image (median of three), and the SSH connections of one;
//! - while a client sends about 100 requests a second through the worker's proxy: rolling
//!   updates to a new image (median of three) and a rollback, with the requests lost.
//!
//! With `BASELINE_XTASK`, the same with that xtask on a cluster of its own, step by step
//! in turn, and the ratio. It uses the stand-in images of `.ci/docker` (loaded into the
//! nodes as a registry would give them), DNS round robin and host-mode ports (no IPVS
//! here), a plain overlay (no ESP). Needs root.

#[allow(dead_code)]
#[path = "../tests/suite/e2e/hosts.rs"]
mod hosts;
#[allow(dead_code)]
#[path = "../tests/suite/e2e/load.rs"]
mod load;
mod support;

use std::{process::Command, thread, time::Duration};

use support::{
    Contender, IMAGE, Settings, compared, contenders, median, release, remove_images, sent,
};

const RUNS: usize = 3;

/// One contender's cluster and settings.
struct Cluster<'a> {
    contender: Contender,
    manager: &'a hosts::Host,
    worker: &'a hosts::Host,
    settings: Settings,
    port: String,
}

impl Cluster<'_> {
    fn xtask(&self, args: &[&str], extra: &[(&str, &str)]) -> (String, f64) {
        let (output, took) = self.settings.xtask_of(&self.contender, args, extra);
        (
            String::from_utf8_lossy(&output.stderr).into_owned(),
            took.as_secs_f64(),
        )
    }

    fn on_swarm(&self, command: &str, tag: &str) -> (String, f64) {
        let url = self.manager.url();
        self.xtask(
            &[command, "prod", "--no-build", "--swarm", "--host", &url],
            &[("APP_TAG", tag)],
        )
    }

    fn logins(&self) -> usize {
        self.manager.ssh_logins() + self.worker.ssh_logins()
    }
}

/// What one step measured of each contender: now first.
struct Row {
    what: String,
    times: Vec<f64>,
    /// Whatever else is said of each (bytes sent, requests lost).
    notes: Vec<String>,
}

impl Row {
    fn print(&self) {
        let notes = match self.notes.as_slice() {
            [now] => now.clone(),
            [now, before] => format!("{before} / {now}"),
            _ => String::new(),
        };
        println!(
            "| {} | {} | {notes} |",
            self.what,
            compared(self.times.get(1).copied(), self.times[0], " s")
        );
    }
}

fn main() {
    let contenders = contenders();
    let numbers: Vec<u8> = [32, 33, 34, 35]
        .into_iter()
        .take(2 * contenders.len())
        .collect();
    let hosts = hosts::Hosts::start(&numbers);
    let clusters: Vec<Cluster> = contenders
        .into_iter()
        .enumerate()
        .map(|(n, contender)| {
            let port = (29080 + n).to_string();
            let mut settings = Settings::new(&[
                (
                    "TRAVIAL_PROJECT",
                    &format!("travial-bench-swarm-{}", contender.name),
                ),
                ("APP_IMAGE", IMAGE),
                ("APP_TAG", "swarm-base"),
                ("WEB_PORT", &port),
                ("HTTPS_PORT", &(29443 + n).to_string()),
                ("POSTGRES_PASSWORD", "bench-owner"),
                ("APP_DB_PASSWORD", "bench-app"),
                ("SWARM_ENDPOINT_MODE", "dnsrr"),
                ("SWARM_PUBLISH_MODE", "host"),
                ("SWARM_OVERLAY", "plain"),
                ("PATH", &hosts.path()),
            ]);
            // Named by ID, as the xtask names the app's image: by name, Swarm would ask
            // Docker Hub.
            for key in ["POSTGRES_IMAGE", "PROXY_IMAGE"] {
                let image = settings
                    .get(key)
                    .expect("run `bash .ci/docker` first")
                    .to_owned();
                settings.set(key, &image_id(&image));
            }
            Cluster {
                contender,
                manager: &hosts.hosts[2 * n],
                worker: &hosts.hosts[2 * n + 1],
                settings,
                port,
            }
        })
        .collect();
    for key in ["POSTGRES_IMAGE", "PROXY_IMAGE"] {
        let settings = Settings::new(&[]);
        hosts.load(settings.get(key).expect("run `bash .ci/docker` first"));
    }
    clusters[0].settings.build_app(&support::root());
    let releases: Vec<String> = (0..2)
        .map(|n| release("swarm-base", &format!("swarm-{n}")))
        .collect();
    let mut rows = Vec::new();

    let each = |f: &dyn Fn(&Cluster) -> (f64, String)| -> (Vec<f64>, Vec<String>) {
        clusters.iter().map(f).unzip()
    };
    for what in [
        "`swarm init` of two fresh servers",
        "`swarm init` again (nothing to change)",
    ] {
        let (times, _) = each(&|cluster| {
            let init = [
                "swarm",
                "init",
                &cluster.manager.url(),
                &cluster.worker.url(),
            ];
            (cluster.xtask(&init, &[]).1, String::new())
        });
        rows.push(Row {
            what: what.into(),
            times,
            notes: Vec::new(),
        });
    }
    let (times, notes) = each(&|cluster| {
        let (log, took) = cluster.on_swarm("deploy", "swarm-0");
        (took, format!("{} sent", sent(&log)))
    });
    rows.push(Row {
        what: "first `deploy prod --swarm` (image sent to 2 nodes, db created, migrated, web 2/2)"
            .into(),
        times,
        notes,
    });

    let mut redeploys = vec![Vec::new(); clusters.len()];
    let mut logins = vec![0; clusters.len()];
    for _ in 0..RUNS {
        for (n, cluster) in clusters.iter().enumerate() {
            let before = cluster.logins();
            redeploys[n].push(cluster.on_swarm("deploy", "swarm-0").1);
            logins[n] = cluster.logins() - before;
        }
    }
    rows.push(Row {
        what: format!("redeploy of the same image (median of {RUNS})"),
        times: redeploys.iter_mut().map(|times| median(times)).collect(),
        notes: logins
            .iter()
            .map(|logins| format!("{logins} SSH connections to 2 nodes"))
            .collect(),
    });

    let mut updates = Vec::new();
    let mut update_notes = Vec::new();
    let mut rollbacks = Vec::new();
    let mut rollback_notes = Vec::new();
    for cluster in &clusters {
        let base = format!("http://{}:{}", cluster.worker.address, cluster.port);
        support::create_player(&base, "bench");
        let load = load::Load::start(&base, "bench");
        thread::sleep(Duration::from_secs(1));
        let before = load.results();
        let mut times: Vec<f64> = (0..RUNS)
            .map(|n| {
                cluster
                    .on_swarm("deploy", &format!("swarm-{}", (n + 1) % 2))
                    .1
            })
            .collect();
        let after = load.results();
        updates.push(median(&mut times));
        update_notes.push(format!(
            "{} of {} lost",
            after.failures.len() - before.failures.len(),
            after.sent - before.sent
        ));
        let before = load.results();
        let url = cluster.manager.url();
        let (_, took) = cluster.xtask(&["rollback", "prod", "--swarm", "--host", &url], &[]);
        thread::sleep(Duration::from_secs(1));
        let results = load.finish();
        rollbacks.push(took);
        rollback_notes.push(format!(
            "{} of {} lost",
            results.failures.len() - before.failures.len(),
            results.sent - before.sent
        ));
    }
    rows.push(Row {
        what: format!("rolling update to a new image, 2 replicas, under load (median of {RUNS})"),
        times: updates,
        notes: update_notes,
    });
    rows.push(Row {
        what: "rollback, under load".into(),
        times: rollbacks,
        notes: rollback_notes,
    });
    for cluster in &clusters {
        let url = cluster.manager.url();
        cluster.xtask(
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
    }
    remove_images(&releases);

    println!(
        "| on 2 nodes, ~100 requests/s through one node's proxy | time{} | |",
        match clusters.len() {
            1 => "",
            _ => ": before / now (ratio)",
        }
    );
    println!("|---|---|---|");
    for row in rows {
        row.print();
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
