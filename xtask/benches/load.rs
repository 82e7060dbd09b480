//! The README's load figures (a benchmark, not a test): the app behind its proxy on the
//! local engine, its database filled to 100,000 players and 1,000,000 scores, under
//! Debian's `wrk` (`apt-get install wrk`):
//!
//!     BASELINE_XTASK=/path/to/old/target/release/xtask cargo bench -p xtask --bench load
//!
//! For each contender (this workspace, and with `BASELINE_XTASK` the workspace that xtask
//! was built from, with its own app and migrations), in turn: `deploy prod`, the data
//! inserted by the owner in the db container, then each request for 10 s from 16
//! connections: requests per second, p50 and p99 latency.

mod support;

use std::{process::Command, time::Duration};

use support::{IMAGE, Settings, contenders};

const PLAYERS: u32 = 100_000;
const SCORES: u32 = 1_000_000;
const CITIES: u32 = 50;
const DURATION: &str = "10s";
const CONNECTIONS: &str = "16";

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
    let mut measures: Vec<(String, Vec<Measure>)> = Vec::new();
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
            .map(|(_, path, script)| wrk(&base, path, script.as_deref()))
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

/// `path` (or the script's requests) for `DURATION` from `CONNECTIONS` connections.
fn wrk(base: &str, path: &str, script: Option<&str>) -> Measure {
    let mut command = Command::new("wrk");
    command.args([
        "--threads",
        "2",
        "--connections",
        CONNECTIONS,
        "--duration",
        DURATION,
    ]);
    command.args(["--timeout", "10s", "--latency"]);
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

/// One column per contender, the one of before first, and with both, the throughput's
/// ratio.
fn print_table(requests: &[(&str, &str, Option<String>)], measures: &[(String, Vec<Measure>)]) {
    let columns: Vec<&(String, Vec<Measure>)> = measures.iter().rev().collect();
    let mut header: Vec<String> = columns
        .iter()
        .map(|(name, _)| format!("{name}: req/s, p50 / p99"))
        .collect();
    if columns.len() == 2 {
        header.push("throughput now / before".to_owned());
    }
    println!(
        "| {PLAYERS} players, {SCORES} scores, {CONNECTIONS} connections | {} |",
        header.join(" | ")
    );
    println!("|---|{}", "---|".repeat(header.len()));
    for (index, (label, _, _)) in requests.iter().enumerate() {
        let mut cells: Vec<String> = columns
            .iter()
            .map(|(_, results)| {
                let measure = &results[index];
                let refused = match measure.not_ok {
                    0 => String::new(),
                    n => format!(" ({n} not 2xx)"),
                };
                format!(
                    "{:.0}, {:.1} / {:.1} ms{refused}",
                    measure.per_second, measure.p50, measure.p99
                )
            })
            .collect();
        if let [(_, before), (_, now)] = columns.as_slice() {
            let ratio = now[index].per_second / before[index].per_second.max(f64::EPSILON);
            cells.push(format!("{ratio:.0}x"));
        }
        println!("| {label} | {} |", cells.join(" | "));
    }
}

fn which(program: &str) -> bool {
    Command::new(program).arg("--version").output().is_ok()
}
