//! Nothing loses the database silently (issue: a console, confirmations, state that
//! survives cleanup), on this machine's engine: `down --volumes` asks for the environment's
//! name (but for dev) and without a terminal refuses; a deploy of another PostgreSQL major
//! version is refused before anything stops; `exec` and `psql` reach the containers with
//! no password. The lock and the history surviving prunes are in `zero_downtime` and
//! `remote`; the swarm's database label in `swarm`.

use std::process::Command;

use crate::e2e::{Sandbox, assert_success, build, exclusive, http, stderr};

const PLAYER: &str = r#"{"name":"ann","city":"Rome","birthdate":"1990-05-17"}"#;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn prod(name: &str) -> Sandbox {
    let mut sandbox = Sandbox::new(name);
    sandbox.set("POSTGRES_PASSWORD", "safety-owner-secret");
    sandbox.set("APP_DB_PASSWORD", "safety-app-secret");
    assert_success(
        &sandbox.xtask(&["deploy", "prod", "--no-build"]),
        "deploy prod",
    );
    let (status, body) = http("POST", &sandbox.web_url("/api/players"), Some(PLAYER)).unwrap();
    assert_eq!(status, 201, "{body}");
    sandbox
}

fn volumes(sandbox: &Sandbox, env: &str) -> String {
    let filter = format!("label=com.docker.compose.project={}", sandbox.project(env));
    let listed = Command::new("docker")
        .args(["volume", "ls", "--quiet", "--filter", &filter])
        .output()
        .unwrap();
    stdout(&listed)
}

#[test]
fn down_volumes_asks_for_the_name_and_without_a_terminal_refuses() {
    let _one_at_a_time = exclusive();
    let sandbox = prod("down-volumes");
    let refused = sandbox.xtask_input(&["down", "prod", "--volumes"], "prod\n");
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let log = stderr(&refused);
    assert!(
        log.contains("down --volumes deletes the data of prod for good"),
        "{log}"
    );
    assert!(log.contains("pass --yes"), "{log}");
    assert!(
        volumes(&sandbox, "prod").contains("db-data"),
        "removed anyway"
    );
    assert_eq!(
        http("GET", &sandbox.web_url("/api/players/ann"), None)
            .unwrap()
            .0,
        200
    );
    let dry = sandbox.xtask(&["down", "prod", "--volumes", "--dry-run"]);
    assert!(
        stdout(&dry).starts_with("# after typing the environment's name"),
        "{}",
        stdout(&dry)
    );
    assert_success(
        &sandbox.xtask(&["down", "prod", "--volumes", "--yes"]),
        "down --volumes --yes",
    );
    assert_eq!(volumes(&sandbox, "prod"), "", "volumes left");
}

#[test]
fn another_postgresql_major_version_is_refused_before_anything_stops() {
    let _one_at_a_time = exclusive();
    let mut sandbox = Sandbox::new("pg-major");
    assert_success(
        &sandbox.xtask(&["deploy", "dev", "--no-build"]),
        "deploy dev",
    );
    let db = |sandbox: &Sandbox| {
        let ps = sandbox.compose("dev", &["ps", "--quiet", "db"]);
        stdout(&ps).trim().to_owned()
    };
    let before = db(&sandbox);
    // An image of the next major version, as its official image says it (PG_MAJOR).
    let next = build(
        "postgres-next",
        &format!("FROM {}\nENV PG_MAJOR=16\n", sandbox.var("POSTGRES_IMAGE")),
    );
    let current = sandbox.var("POSTGRES_IMAGE").to_owned();
    sandbox.set("POSTGRES_IMAGE", &next);
    let refused = sandbox.xtask(&["deploy", "dev", "--no-build"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let log = stderr(&refused);
    assert!(
        log.contains("the data of dev is PostgreSQL 15's and ")
            && log.contains("is PostgreSQL 16: its server cannot start on that data"),
        "{log}"
    );
    assert!(log.contains("dump and restore"), "{log}");
    assert!(!log.contains("✓ db"), "something started:\n{log}");
    assert_eq!(db(&sandbox), before, "db was replaced");
    let running = Command::new("docker")
        .args(["inspect", "--format", "{{.State.Running}}", &before])
        .output()
        .unwrap();
    assert_eq!(stdout(&running).trim(), "true");
    let migrate = sandbox.xtask(&["migrate", "dev"]);
    assert_eq!(migrate.status.code(), Some(1));
    sandbox.set("POSTGRES_IMAGE", &current);
    assert_success(
        &sandbox.xtask(&["deploy", "dev", "--no-build"]),
        "the same major again",
    );
}

#[test]
fn exec_and_psql_reach_the_containers_without_a_password() {
    let _one_at_a_time = exclusive();
    let sandbox = prod("console");
    let ready = sandbox.xtask(&["exec", "prod", "db", "--", "pg_isready"]);
    assert_success(&ready, "exec db pg_isready");
    assert!(
        stdout(&ready).contains("accepting connections"),
        "{}",
        stdout(&ready)
    );
    let knows = sandbox.xtask(&["exec", "prod", "web", "--", "app", "migrations"]);
    assert_success(&knows, "exec web app migrations");
    assert_eq!(stdout(&knows).trim(), "3");
    let count = sandbox.xtask_input(
        &["psql", "prod", "--", "--tuples-only", "--no-align"],
        "SELECT count(*) FROM players;\n",
    );
    assert_success(&count, "psql with SQL on stdin");
    assert_eq!(stdout(&count).trim(), "1");
    // The first error fails the script.
    let failed = sandbox.xtask_input(&["psql", "prod"], "SELECT nope;\nSELECT 1;\n");
    assert_eq!(failed.status.code(), Some(1));
    assert!(stderr(&failed).contains("nope"), "{}", stderr(&failed));
    let missing = sandbox.xtask(&["exec", "prod", "adminer", "--", "true"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("prod has no service adminer"),
        "{}",
        stderr(&missing)
    );
}
