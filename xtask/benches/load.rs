//! The README's load figures (a benchmark, not a test): the app behind its proxy on the
//! local engine, its database filled to 100,000 players and 1,000,000 scores, under
//! Debian's `wrk` (`apt-get install wrk`):
//!
//!     BASELINE_XTASK=/path/to/old/target/release/xtask cargo bench -p xtask --bench load
//!
//! For each contender (this workspace, and with `BASELINE_XTASK` the workspace that xtask
//! was built from, with its own app and migrations), in turn: `deploy prod`, the data
//! inserted by the owner in the db container, then each request for 10 s from 16
//! connections (the throughput: requests per second, and p99, mostly queueing on two
//! cores shared with wrk), and for 5 s from one (the latency of a request alone: p50, p99).

mod support;

use std::{process::Command, time::Duration};

use support::{IMAGE, Settings, contenders};

const PLAYERS: u32 = 100_000;
const SCORES: u32 = 1_000_000;
const CITIES: u32 = 50;
/// The throughput's load, then the latency's.
const LOADED: Load = Load {
    connections: 16,
    duration: "10s",
};
const ALONE: Load = Load {
    connections: 1,
    duration: "5s",
};

struct Load {
    connections: u32,
    duration: &'static str,
}

/// What one request sustained: requests per second, p50 and p99 in ms, and the answers
/// that were not 2xx (the limiter's 429s, a timeout's 503s).
struct Measure {
    per_second: f64,
    p50: f64,
    p99: f64,
    not_ok: u64,
}

fn main() {
    assert!(
        which("wrk"),
        "the load benchmark needs wrk: apt-get install wrk"
    );
    let port = 29000 + std::process::id() % 500;
    let requests = requests();
    let mut measures: Vec<(String, Vec<(Measure, Measure)>)> = Vec::new();
    for contender in contenders() {
        let project = format!("travial-bench-load-{}", contender.name);
        let settings = Settings::new(&[
            ("TRAVIAL_PROJECT", &project),
            ("APP_IMAGE", IMAGE),
            ("APP_TAG", &format!("load-{}", contender.name)),
            ("WEB_PORT", &port.to_string()),
            ("HTTPS_PORT", &(port + 500).to_string()),
            ("POSTGRES_PASSWORD", "bench-owner"),
            ("APP_DB_PASSWORD", "bench-app"),
        ]);
        let down = ["down", "prod", "--volumes", "--yes"];
        settings.xtask_of(&contender, &down, &[]);
        settings.xtask_of(&contender, &["deploy", "prod"], &[]);
        let filled = fill(&settings, &format!("{project}-prod"));
        eprintln!(
            "{}: data inserted in {:.0} s",
            contender.name,
            filled.as_secs_f64()
        );
        let base = format!("http://127.0.0.1:{port}");
        let results = requests
            .iter()
            .map(|(_, path, script)| {
                let loaded = wrk(&base, path, script.as_deref(), &LOADED);
                (loaded, wrk(&base, path, script.as_deref(), &ALONE))
            })
            .collect();
        measures.push((contender.name.to_owned(), results));
        settings.xtask_of(&contender, &down, &[]);
    }
    print_table(&requests, &measures);
}

/// The requests measured: their label, path, and the wrk script a POST needs.
fn requests() -> Vec<(&'static str, &'static str, Option<String>)> {
    // Each score goes to a random player, as many clients' would.
    let post_score = format!(
        r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{{"place":"Colosseum","points":5}}'
request = function()
  return wrk.format(nil, "/api/players/p" .. math.random(1, {PLAYERS}) .. "/scores")
end
"#
    );
    vec![
        ("`GET /`", "/", None),
        ("`GET /api/ranking`", "/api/ranking", None),
        (
            "`GET /api/ranking?city=City7`",
            "/api/ranking?city=City7",
            None,
        ),
        ("`GET /api/players/p4242`", "/api/players/p4242", None),
        ("`POST /api/players/NAME/scores`", "/", Some(post_score)),
    ]
}

/// The players and scores, inserted by the owner through the db container's own psql
/// (both schemas have these tables; the newer keeps its totals by its triggers).
fn fill(settings: &Settings, compose_project: &str) -> Duration {
    let db = String::from_utf8(
        settings
            .run_in(
                &support::root(),
                "docker",
                &[
                    "ps",
                    "--quiet",
                    "--filter",
                    &format!("label=com.docker.compose.project={compose_project}"),
                    "--filter",
                    "label=com.docker.compose.service=db",
                ],
                &[],
            )
            .0
            .stdout,
    )
    .unwrap();
    let sql = format!(
        "\\set ON_ERROR_STOP on
INSERT INTO players (name, city, birthdate)
    SELECT 'p' || n, 'City' || (n % {CITIES}), date '1970-01-01' + (n % 15000)
    FROM generate_series(1, {PLAYERS}) n;
INSERT INTO scores (player_id, place, points)
    SELECT p.id, 'Colosseum', 1 + n % 100
    FROM generate_series(1, {SCORES}) n JOIN players p ON p.name = 'p' || (1 + n % {PLAYERS});
ANALYZE;
"
    );
    let script = std::env::temp_dir().join(format!("travial-load-{}.sql", std::process::id()));
    std::fs::write(&script, sql).unwrap();
    let user = settings
        .get("POSTGRES_USER")
        .unwrap_or("travial")
        .to_owned();
    let database = settings.get("POSTGRES_DB").unwrap_or("travial").to_owned();
    let stdin = std::fs::File::open(&script).unwrap();
    let started = std::time::Instant::now();
    let status = Command::new("docker")
        .args([
            "exec",
            "-i",
            db.trim(),
            "psql",
            "-q",
            "-U",
            &user,
            "-d",
            &database,
        ])
        .stdin(stdin)
        .status()
        .unwrap();
    let _ = std::fs::remove_file(&script);
    assert!(status.success(), "filling the database");
    started.elapsed()
}

/// `path` (or the script's requests) under `load`.
fn wrk(base: &str, path: &str, script: Option<&str>, load: &Load) -> Measure {
    let mut command = Command::new("wrk");
    // A thread per connection, at most two (the cores).
    let threads = load.connections.min(2).to_string();
    let connections = load.connections.to_string();
    command.args(["--threads", &threads, "--connections", &connections]);
    command.args(["--duration", load.duration, "--timeout", "10s", "--latency"]);
    let script_file = script.map(|script| {
        let file = std::env::temp_dir().join(format!("travial-load-{}.lua", std::process::id()));
        std::fs::write(&file, script).unwrap();
        file
    });
    if let Some(file) = &script_file {
        command.arg("--script").arg(file);
    }
    let output = command.arg(format!("{base}{path}")).output().unwrap();
    if let Some(file) = script_file {
        let _ = std::fs::remove_file(file);
    }
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk {path}: {report}");
    parse_report(&report).unwrap_or_else(|| panic!("wrk's report for {path}: {report}"))
}

/// Requests/sec and the 50% and 99% lines of `wrk --latency`'s report.
fn parse_report(report: &str) -> Option<Measure> {
    let field = |label: &str| {
        report
            .lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(label))
            .map(str::trim)
    };
    Some(Measure {
        per_second: field("Requests/sec:")?.parse().ok()?,
        p50: milliseconds(field("50%")?)?,
        p99: milliseconds(field("99%")?)?,
        not_ok: field("Non-2xx or 3xx responses:").map_or(Some(0), |n| n.parse().ok())?,
    })
}

/// wrk's `812.00us`, `3.21ms`, `1.02s` in milliseconds.
fn milliseconds(value: &str) -> Option<f64> {
    let (number, scale) = [("us", 0.001), ("ms", 1.0), ("s", 1000.0)]
        .into_iter()
        .find_map(|(unit, scale)| Some((value.strip_suffix(unit)?, scale)))?;
    Some(number.parse::<f64>().ok()? * scale)
}

/// A row per request: for each contender (before first), the throughput under load, the
/// latency alone and the p99 under load; with both, the throughput's ratio.
fn print_table(
    requests: &[(&str, &str, Option<String>)],
    measures: &[(String, Vec<(Measure, Measure)>)],
) {
    let columns: Vec<&(String, Vec<(Measure, Measure)>)> = measures.iter().rev().collect();
    let mut header = vec![format!("{PLAYERS} players, {SCORES} scores")];
    for (name, _) in &columns {
        header.push(format!(
            "{name}: req/s ({} connections)",
            LOADED.connections
        ));
        header.push(format!("{name}: p50 / p99 alone"));
        header.push(format!("{name}: p99 under load"));
    }
    if columns.len() == 2 {
        header.push("req/s now / before".to_owned());
    }
    println!("| {} |", header.join(" | "));
    println!("|{}", "---|".repeat(header.len()));
    for (index, (label, _, _)) in requests.iter().enumerate() {
        let mut cells = vec![label.to_string()];
        for (_, results) in &columns {
            let (loaded, alone) = &results[index];
            let refused = match loaded.not_ok {
                0 => String::new(),
                n => format!(" ({n} not 2xx)"),
            };
            cells.push(format!("{:.0}{refused}", loaded.per_second));
            cells.push(format!("{} / {}", ms(alone.p50), ms(alone.p99)));
            cells.push(ms(loaded.p99));
        }
        if let [(_, before), (_, now)] = columns.as_slice() {
            let ratio = now[index].0.per_second / before[index].0.per_second.max(f64::EPSILON);
            cells.push(match ratio < 10.0 {
                true => format!("{ratio:.2}x"),
                false => format!("{ratio:.0}x"),
            });
        }
        println!("| {} |", cells.join(" | "));
    }
}

/// `0.84 ms`, `12 ms`, `6540 ms`.
fn ms(value: f64) -> String {
    match value < 10.0 {
        true => format!("{value:.2} ms"),
        false => format!("{value:.0} ms"),
    }
}

fn which(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}
