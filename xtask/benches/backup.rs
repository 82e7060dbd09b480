//! The README's backup figures (a benchmark, not a test): backup, verify and restore of a
//! database of 100,000 players and 1,000,000 scores, on this machine's engine and on a real
//! separate engine in a network namespace reached over real SSH:
//!
//!     cargo bench -p xtask --bench backup
//!
//! The data is made inside the database (`generate_series`, through `cargo xtask psql`),
//! then each command is timed once; the dump's size is the manifest's. Needs root (the
//! remote host).

#[allow(dead_code)]
#[path = "../tests/suite/e2e/hosts.rs"]
mod hosts;
mod support;

use std::{
    io::Write,
    process::{Command, Stdio},
    time::Duration,
};

use support::{IMAGE, Settings, root};

const PLAYERS: u32 = 100_000;
const SCORES: u32 = 1_000_000;

fn main() {
    let dir = std::env::temp_dir().join("travial-bench-backups");
    let _ = std::fs::remove_dir_all(&dir);
    let mut settings = Settings::new(&[
        ("TRAVIAL_PROJECT", "travial-bench"),
        ("APP_IMAGE", IMAGE),
        ("APP_TAG", "bench-backup"),
        ("WEB_PORT", "28180"),
        ("DB_PORT", "28132"),
        ("HTTPS_PORT", "28143"),
        ("POSTGRES_PASSWORD", "bench-owner"),
        ("APP_DB_PASSWORD", "bench-app"),
        ("BACKUP_DIR", dir.to_str().unwrap()),
    ]);
    settings.build_app(&root());
    let mut rows = vec![measure(&settings, "this machine", &[])];

    let hosts = hosts::Hosts::start(&[31]);
    let host = &hosts.hosts[0];
    settings.set("PATH", &hosts.path());
    for image in ["POSTGRES_IMAGE", "PROXY_IMAGE"] {
        hosts.load(settings.get(image).expect("run `bash .ci/docker` first"));
    }
    let url = host.url();
    rows.push(measure(&settings, "a host over SSH", &["--host", &url]));
    let _ = std::fs::remove_dir_all(&dir);

    println!("| {PLAYERS} players, {SCORES} scores | backup | verify | restore |");
    println!("|---|---|---|---|");
    for (place, backup, verify, restore, size) in rows {
        println!(
            "| {place} | {:.1} s ({size:.1} MB) | {:.1} s | {:.1} s |",
            backup.as_secs_f64(),
            verify.as_secs_f64(),
            restore.as_secs_f64()
        );
    }
}

/// prod deployed (where `flags` say), filled, then backed up, verified and restored: the
/// three times, and the dump's size.
fn measure(
    settings: &Settings,
    place: &str,
    flags: &[&str],
) -> (String, Duration, Duration, Duration, f64) {
    let with = |args: &[&'static str]| -> Vec<String> {
        args.iter()
            .chain(flags)
            .map(|arg| (*arg).to_owned())
            .collect()
    };
    let run = |args: &[&'static str]| {
        let args = with(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        settings.xtask(&args, &[])
    };
    run(&["deploy", "prod", "--no-build"]);
    let fill = format!(
        "INSERT INTO players (name, city, birthdate) SELECT 'p' || g, 'city' || (g % 50), \
         DATE '1950-01-01' + (g % 20000) FROM generate_series(1, {PLAYERS}) g;\n\
         INSERT INTO scores (player_id, place, points) SELECT 1 + g % {PLAYERS}, 'place' || (g % 300), \
         1 + g % 50 FROM generate_series(1, {SCORES}) g;\n"
    );
    let psql_args = with(&["psql", "prod"]);
    psql(
        settings,
        &psql_args.iter().map(String::as_str).collect::<Vec<_>>(),
        &fill,
    );
    let (backup, backup_time) = run(&["backup", "prod"]);
    let summary = String::from_utf8_lossy(&backup.stdout).into_owned();
    let size: f64 = summary
        .split(", ")
        .find_map(|part| part.strip_suffix(" MB"))
        .and_then(|megabytes| megabytes.parse().ok())
        .unwrap_or_default();
    let (_, verify_time) = run(&["backup", "verify", "prod"]);
    let (_, restore_time) = run(&["restore", "prod", "--yes"]);
    run(&["down", "prod", "--volumes", "--yes"]);
    (
        place.to_owned(),
        backup_time,
        verify_time,
        restore_time,
        size,
    )
}

/// `cargo xtask psql …` with `sql` on its stdin.
fn psql(settings: &Settings, args: &[&str], sql: &str) {
    let mut child = Command::new(support::XTASK)
        .args(args)
        .current_dir(root())
        .envs(settings.0.iter().cloned())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "filling the database");
}
