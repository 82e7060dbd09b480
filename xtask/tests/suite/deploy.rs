//! `cargo xtask deploy` end to end, on the real engine with the stand-in images.

use crate::e2e;

use std::{
    net::TcpListener,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use crate::e2e::{Running, Sandbox, assert_success, exclusive, http, stderr};

const PLAYER: &str = r#"{"name":"ann","city":"Rome","birthdate":"1990-05-17"}"#;

fn player_status(sandbox: &Sandbox) -> u16 {
    http("GET", &sandbox.web_url("/api/players/ann"), None)
        .unwrap()
        .0
}

#[test]
fn dev_data_survives_redeploys_and_down_but_not_down_volumes() {
    let _one_at_a_time = exclusive();
    let sandbox = Sandbox::new("lifecycle");

    let deploy = sandbox.xtask(&["deploy", "dev"]);
    assert_success(&deploy, "deploy dev");
    let log = stderr(&deploy);
    for step in [
        "✓ db ready",
        "✓ migrations applied",
        "✓ web switched",
        "✓ web answers through proxy",
    ] {
        assert!(log.contains(step), "no `{step}` in:\n{log}");
    }
    assert!(String::from_utf8_lossy(&deploy.stdout).contains(&sandbox.web_url("/")));
    assert_eq!(
        http("GET", &sandbox.web_url("/healthz"), None).unwrap().0,
        200
    );
    let (status, body) = http("POST", &sandbox.web_url("/api/players"), Some(PLAYER)).unwrap();
    assert_eq!(status, 201, "{body}");

    assert_success(&sandbox.xtask(&["deploy", "dev"]), "deploy dev again");
    assert_eq!(
        player_status(&sandbox),
        200,
        "the player was lost by a redeploy"
    );

    assert_success(&sandbox.xtask(&["down", "dev"]), "down dev");
    assert!(
        http("GET", &sandbox.web_url("/healthz"), None).is_err(),
        "web still answers after down"
    );
    assert_success(
        &sandbox.xtask(&["deploy", "dev", "--no-build"]),
        "deploy dev after down",
    );
    assert_eq!(player_status(&sandbox), 200, "the player was lost by down");

    assert_success(
        &sandbox.xtask(&["down", "dev", "--volumes"]),
        "down dev --volumes",
    );
    assert_success(
        &sandbox.xtask(&["deploy", "dev", "--no-build"]),
        "deploy dev after down --volumes",
    );
    assert_eq!(
        player_status(&sandbox),
        404,
        "the data survived down --volumes"
    );
}

#[test]
fn prod_without_its_secrets_starts_nothing_and_names_each() {
    let _one_at_a_time = exclusive();
    let sandbox = Sandbox::new("nopassword");

    let mut command = Command::new(e2e::XTASK);
    command
        .args(["deploy", "prod", "--no-build"])
        .current_dir(e2e::root())
        .envs(sandbox.vars.iter().cloned())
        .env_remove("POSTGRES_PASSWORD")
        .env_remove("APP_DB_PASSWORD");
    let deploy = command.output().unwrap();
    assert_eq!(deploy.status.code(), Some(1));
    let log = stderr(&deploy);
    assert!(
        log.contains(
            "error: prod needs the secrets APP_DB_PASSWORD, POSTGRES_PASSWORD, which are not set"
        ),
        "{log}"
    );
    assert!(log.contains("hint: set APP_DB_PASSWORD and POSTGRES_PASSWORD in the environment, or in .secrets/prod.env"), "{log}");
    assert_eq!(
        log.lines()
            .filter(|line| line.starts_with("error:"))
            .count(),
        1,
        "{log}"
    );
    assert_eq!(sandbox.resources("prod"), Vec::<String>::new());
}

#[test]
fn a_failing_migration_stops_the_deploy_before_web() {
    let _one_at_a_time = exclusive();
    let mut sandbox = Sandbox::new("badmigration");
    // Compose itself starts db here, so it needs the secrets the xtask would give it.
    sandbox.set("POSTGRES_PASSWORD", "badmigration-owner");
    sandbox.set("APP_DB_PASSWORD", "badmigration-app");
    // A table in the way of the first migration: `app migrate` fails as it would on a real
    // conflict, with no hook in the app.
    assert_success(
        &sandbox.compose("dev", &["up", "--detach", "--wait", "db"]),
        "start db",
    );
    let conflict = sandbox.compose(
        "dev",
        &[
            "exec",
            "-T",
            "db",
            "psql",
            "-U",
            "travial",
            "-d",
            "travial",
            "-c",
            "CREATE TABLE players (id int)",
        ],
    );
    assert_success(&conflict, "create a conflicting table");

    let deploy = sandbox.xtask(&["deploy", "dev", "--no-build"]);
    assert_eq!(deploy.status.code(), Some(1), "{}", stderr(&deploy));
    let log = stderr(&deploy);
    assert!(
        log.contains("the migrations failed, so web was not started"),
        "{log}"
    );
    let web = sandbox.compose("dev", &["ps", "--all", "--quiet", "web"]);
    assert_eq!(
        String::from_utf8_lossy(&web.stdout).trim(),
        "",
        "web was created"
    );
}

#[test]
fn a_db_that_never_becomes_ready_times_out_with_its_logs() {
    let _one_at_a_time = exclusive();
    let mut sandbox = Sandbox::new("neverready");
    let image = never_ready_postgres(&sandbox);
    sandbox.set("POSTGRES_IMAGE", &image);

    let started = Instant::now();
    let deploy = sandbox.xtask(&["deploy", "dev", "--no-build", "--timeout", "5s"]);
    let elapsed = started.elapsed();
    assert!(!deploy.status.success());
    assert!(elapsed < Duration::from_secs(5 + 5), "took {elapsed:?}");
    let log = stderr(&deploy);
    assert!(
        log.contains("db did not accept connections within 5s"),
        "{log}"
    );
    assert!(
        log.contains("this database never listens"),
        "the db's logs are missing:\n{log}"
    );
}

#[test]
fn dev_and_prod_side_by_side_share_nothing() {
    let _one_at_a_time = exclusive();
    let mut sandbox = Sandbox::new("sidebyside");
    assert_success(
        &sandbox.xtask(&["deploy", "dev", "--no-build"]),
        "deploy dev",
    );
    let dev_url = sandbox.web_url("/healthz");
    let prod_port = e2e::free_port().to_string();
    sandbox.set("WEB_PORT", &prod_port);
    sandbox.set("POSTGRES_PASSWORD", "prod-secret-for-tests");
    sandbox.set("APP_DB_PASSWORD", "prod-app-secret-for-tests");
    assert_success(
        &sandbox.xtask(&["deploy", "prod", "--no-build"]),
        "deploy prod",
    );

    let dev = sandbox.resources("dev");
    let prod = sandbox.resources("prod");
    assert!(!dev.is_empty() && !prod.is_empty());
    assert!(
        dev.iter().all(|id| !prod.contains(id)),
        "dev {dev:?} and prod {prod:?} share something"
    );

    assert_success(&sandbox.xtask(&["down", "dev"]), "down dev");
    assert!(http("GET", &dev_url, None).is_err(), "dev still answers");
    assert_eq!(
        http("GET", &sandbox.web_url("/healthz"), None).unwrap().0,
        200,
        "prod went down with dev"
    );
}

/// The PostgreSQL image with an entrypoint that never starts the server.
fn never_ready_postgres(sandbox: &Sandbox) -> String {
    let image = "travial-e2e/never-ready:test";
    let dockerfile = format!(
        "FROM {}\nENTRYPOINT [\"sh\", \"-c\", \"echo this database never listens; exec sleep 3600\"]\n",
        sandbox.var("POSTGRES_IMAGE")
    );
    let mut build = Command::new("docker")
        .args(["build", "--quiet", "--tag", image, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut build.stdin.take().unwrap(), dockerfile.as_bytes()).unwrap();
    assert_success(
        &build.wait_with_output().unwrap(),
        "build the never-ready image",
    );
    image.to_owned()
}

/// The processes whose command line mentions `word` (the docker client and its compose
/// plugin name the project on theirs).
fn processes_mentioning(word: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(word))
        .collect()
}

#[test]
fn ctrl_c_stops_the_docker_processes_and_says_what_is_left() {
    let _one_at_a_time = exclusive();
    let mut sandbox = Sandbox::new("interrupt");
    let image = never_ready_postgres(&sandbox);
    sandbox.set("POSTGRES_IMAGE", &image);
    let project = sandbox.project("dev");

    // During the wait for a db that never gets ready.
    let mut deploy = Running::start(
        &sandbox,
        &["deploy", "dev", "--no-build", "--timeout", "120s"],
    );
    deploy.wait_for_line("✓ db started", Duration::from_secs(60));
    thread::sleep(Duration::from_millis(300));
    let (code, took) = deploy.interrupt();
    let log = deploy.log();
    assert_eq!(code, Some(130), "{log}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(
        log.contains(
            "interrupted during step 3 of 7 (db ready): db is running, web was not started"
        ),
        "{log}"
    );
    assert!(
        log.contains("hint: run `cargo xtask deploy dev` again"),
        "{log}"
    );
    assert_eq!(processes_mentioning(&project), Vec::<String>::new());

    // What it left, as `status --json` tells it.
    let status = sandbox.xtask(&["status", "dev", "--json"]);
    assert_success(&status, "status dev --json");
    let containers: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(containers.as_array().unwrap().len(), 1, "{containers}");
    assert_eq!(containers[0]["service"], "db");
    assert_eq!(containers[0]["state"], "running");
    let published = containers[0]["ports"][0]["published"].as_u64().unwrap();
    assert_eq!(published.to_string(), sandbox.var("DB_PORT"));

    // During a docker command that never ends by itself: the client and its compose plugin
    // both go.
    let mut logs = Running::start(&sandbox, &["logs", "dev", "--follow"]);
    logs.wait_for_line("$ docker compose", Duration::from_secs(30));
    let started = Instant::now();
    while processes_mentioning(&project).len() < 2 && started.elapsed() < Duration::from_secs(10) {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !processes_mentioning(&project).is_empty(),
        "docker never started"
    );
    let (code, took) = logs.interrupt();
    assert_eq!(code, Some(130), "{}", logs.log());
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(logs.log().ends_with("interrupted"), "{}", logs.log());
    assert_eq!(processes_mentioning(&project), Vec::<String>::new());
}

#[test]
fn a_taken_port_names_the_variable_that_moves_it() {
    let _one_at_a_time = exclusive();
    let sandbox = Sandbox::new("takenport");
    let port: u16 = sandbox.var("DB_PORT").parse().unwrap();
    let _squatter = TcpListener::bind(("127.0.0.1", port)).unwrap();

    let deploy = sandbox.xtask(&["deploy", "dev", "--no-build"]);
    let log = stderr(&deploy);
    assert_eq!(deploy.status.code(), Some(1), "{log}");
    let error = log.lines().find(|line| line.starts_with("error:")).unwrap();
    assert!(error.starts_with("error: db did not start: "), "{log}");
    let hint = log
        .lines()
        .find(|line| line.starts_with("hint:"))
        .unwrap_or_default();
    assert_eq!(
        hint,
        format!("hint: another program uses port {port}: set DB_PORT to a free one"),
        "{log}"
    );
}
