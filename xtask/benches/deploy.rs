//! The README's deployment figures, on the real engine (a benchmark, not a test):
//!
//!     cargo bench -p xtask --bench deploy
//!
//! - `deploy dev --no-build` with the images built and a new volume, five times: the time
//!   to healthy, and how much of it is waiting (db ready + web switched to, once ready);
//! - the app image's size and layer count;
//! - after a one-line change in app/src: the rebuild (dependencies must come from cache)
//!   and the redeploy;
//! - `deploy dev --no-build` with nothing changed, and of a stopped stack (`down`, volumes
//!   kept), images warm (median of five each); with `BASELINE_XTASK` (an xtask built from
//!   an older commit), the same with that one on a stack of its own, in turn, and the ratio.
//!
//! It uses the stand-in images of `.ci/docker` where /etc/travial-ci.env names them, and a
//! project prefix and ports of its own, so it never touches a real `travial-dev` stack.

mod support;

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use support::{IMAGE, Settings, compared, contenders, median, root};

const RUNS: usize = 5;
const TAG: &str = "bench";

fn main() {
    let root = root();
    let port = |offset: u32| (28000 + offset + std::process::id() % 1000).to_string();
    let settings = Settings::new(&[
        ("TRAVIAL_PROJECT", "travial-bench"),
        ("APP_IMAGE", IMAGE),
        ("APP_TAG", TAG),
        ("WEB_PORT", &port(0)),
        ("DB_PORT", &port(1000)),
    ]);
    let down = || settings.xtask(&["down", "dev", "--volumes"], &[]);

    settings.build_app(&root);
    let mut totals = Vec::new();
    let mut waits = Vec::new();
    for _ in 0..RUNS {
        down();
        let (output, total) = settings.xtask(&["deploy", "dev", "--no-build"], &[]);
        let log = String::from_utf8_lossy(&output.stderr).into_owned();
        waits.push(step_seconds(&log, "db ready") + step_seconds(&log, "web switched to "));
        totals.push(total.as_secs_f64());
    }

    let format = "{{.Size}} {{len .RootFS.Layers}}";
    let reference = format!("{IMAGE}:{TAG}");
    let (inspect, _) = settings.run_in(
        &root,
        "docker",
        &["image", "inspect", "--format", format, &reference],
        &[],
    );
    let inspect = String::from_utf8_lossy(&inspect.stdout).into_owned();
    let (size, layers) = inspect.trim().split_once(' ').unwrap();
    let megabytes = size.parse::<f64>().unwrap() / 1e6;

    let copy = one_line_change(&root);
    let rebuild = settings.build_app(&copy);
    let (_, redeploy) = settings.xtask(&["deploy", "dev", "--no-build"], &[]);
    down();
    std::fs::remove_dir_all(&copy).unwrap();

    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| `deploy dev` to healthy, images built (median of {RUNS}) | {:.1} s |",
        median(&mut totals)
    );
    println!(
        "| of which waiting for db and web (median) | {:.1} s |",
        median(&mut waits)
    );
    println!("| app image size | {megabytes:.1} MB, {layers} layers |");
    println!(
        "| rebuild after a one-line change in app/src | {:.1} s |",
        rebuild.as_secs_f64()
    );
    println!(
        "| redeploy of that image | {:.1} s |",
        redeploy.as_secs_f64()
    );
    for row in nothing_changed_and_stopped() {
        println!("{row}");
    }
}

/// `deploy dev --no-build` with nothing changed, and of a stopped stack, for each
/// contender on a stack of its own, in turn.
fn nothing_changed_and_stopped() -> Vec<String> {
    let contenders = contenders();
    let stacks: Vec<Settings> = contenders
        .iter()
        .enumerate()
        .map(|(n, contender)| {
            let port =
                |offset: u32| (28200 + offset + n as u32 + std::process::id() % 100).to_string();
            Settings::new(&[
                (
                    "TRAVIAL_PROJECT",
                    &format!("travial-bench-{}", contender.name),
                ),
                ("APP_IMAGE", IMAGE),
                ("APP_TAG", TAG),
                ("WEB_PORT", &port(0)),
                ("DB_PORT", &port(1000)),
            ])
        })
        .collect();
    let deploy = ["deploy", "dev", "--no-build"];
    for (contender, stack) in contenders.iter().zip(&stacks) {
        stack.xtask_of(contender, &["down", "dev", "--volumes"], &[]);
        stack.xtask_of(contender, &deploy, &[]);
    }
    let mut unchanged = vec![Vec::new(); contenders.len()];
    let mut stopped = vec![Vec::new(); contenders.len()];
    for _ in 0..RUNS {
        for (n, (contender, stack)) in contenders.iter().zip(&stacks).enumerate() {
            unchanged[n].push(stack.xtask_of(contender, &deploy, &[]).1.as_secs_f64());
            stack.xtask_of(contender, &["down", "dev"], &[]);
            stopped[n].push(stack.xtask_of(contender, &deploy, &[]).1.as_secs_f64());
        }
    }
    for (contender, stack) in contenders.iter().zip(&stacks) {
        stack.xtask_of(contender, &["down", "dev", "--volumes"], &[]);
    }
    let row = |what: &str, times: &mut [Vec<f64>]| {
        let now = median(&mut times[0]);
        let before = times.get_mut(1).map(|times| median(times));
        format!(
            "| {what} (median of {RUNS}, before / now) | {} |",
            compared(before, now, " s")
        )
    };
    vec![
        row("`deploy dev` with nothing changed", &mut unchanged),
        row("`deploy dev` of a stopped stack, images warm", &mut stopped),
    ]
}

/// The seconds a deploy's `✓ STEP… (N s)` line reports.
fn step_seconds(log: &str, step: &str) -> f64 {
    log.lines()
        .find_map(|line| {
            line.strip_prefix(&format!("✓ {step}"))?
                .rsplit_once(" (")?
                .1
                .strip_suffix(" s)")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `{step}` step in:\n{log}"))
}

/// A copy of what the image is built from, with one line added to app/src/main.rs.
fn one_line_change(root: &Path) -> PathBuf {
    let copy = std::env::temp_dir().join(format!("travial-bench-{}", std::process::id()));
    // What the build context holds (see .dockerignore): the workspace's manifests and sources.
    for path in [
        "Cargo.toml",
        "Cargo.lock",
        ".dockerignore",
        "compose",
        "app",
        "xtask",
    ] {
        std::fs::create_dir_all(copy.join(path).parent().unwrap()).unwrap();
        let status = Command::new("cp")
            .args(["-R", "-p"])
            .arg(root.join(path))
            .arg(copy.join(path))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let main = copy.join("app/src/main.rs");
    let source = std::fs::read_to_string(&main).unwrap();
    // A line no earlier run wrote, so that BuildKit has no layer of it in its cache.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::fs::write(
        &main,
        format!("{source}// one-line change for the benchmark, {now}\n"),
    )
    .unwrap();
    copy
}
