//! The `app` binary as Docker runs it: migrations, configuration errors, signals, and a
//! database that goes away and comes back.

mod support;

use std::{
    process::{Child, Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use support::{TestDb, cluster::Cluster};

const APP: &str = env!("CARGO_BIN_EXE_app");

fn app_command(database_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(APP);
    command
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_LOG", "warn");
    command
}

fn migrate(database_url: &str) -> Output {
    app_command(database_url, &["migrate"]).output().unwrap()
}

fn stdout_of(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn applied(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|line| line.starts_with("applied "))
        .collect()
}

async fn columns(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT table_name || '.' || column_name || ':' || data_type
             FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn migrate_applies_each_version_once() {
    let db = TestDb::empty().await;
    let first = stdout_of(&migrate(&db.url()));
    assert_eq!(
        applied(&first),
        [
            "applied V1__players",
            "applied V2__scores",
            "applied V3__player_totals"
        ]
    );
    let schema = columns(&db).await;
    assert!(
        schema.contains(&"players.name:character varying".to_owned()),
        "{schema:?}"
    );

    let second = stdout_of(&migrate(&db.url()));
    assert!(applied(&second).is_empty(), "{second}");
    assert!(
        second.contains("0 migration(s) applied now, 3 in all"),
        "{second}"
    );
    assert_eq!(columns(&db).await, schema);
}

#[tokio::test]
async fn concurrent_migrates_both_succeed_and_apply_the_schema_once() {
    let db = TestDb::empty().await;
    let url = db.url();
    let runs: Vec<Child> = (0..2)
        .map(|_| {
            app_command(&url, &["migrate"])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<String> = runs
        .into_iter()
        .map(|run| stdout_of(&run.wait_with_output().unwrap()))
        .collect();
    let mut all_applied: Vec<&str> = outputs.iter().flat_map(|out| applied(out)).collect();
    all_applied.sort();
    assert_eq!(
        all_applied,
        [
            "applied V1__players",
            "applied V2__scores",
            "applied V3__player_totals"
        ]
    );
}

#[test]
fn missing_configuration_is_one_clear_line() {
    let output = Command::new(APP)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: DATABASE_URL is not set"),
        "{stderr}"
    );

    let usage = Command::new(APP).arg("fly").output().unwrap();
    assert_eq!(usage.status.code(), Some(2));

    // What a rollback asks an image, without a database.
    let newest = Command::new(APP)
        .arg("migrations")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&newest.stdout), "3\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_a_migration_and_exits_130() {
    a_signal_stops_a_migration("TERM").await;
}

/// Ctrl-C: what `docker compose run` passes on to the one-off container's PID 1.
#[tokio::test(flavor = "multi_thread")]
async fn sigint_stops_a_migration_and_exits_130() {
    a_signal_stops_a_migration("INT").await;
}

async fn a_signal_stops_a_migration(signal: &str) {
    let db = TestDb::empty().await;
    // Another session holds the migration lock: `app migrate` waits for it.
    let holder = db.client().await;
    holder
        .execute(
            "SELECT pg_advisory_lock($1)",
            &[&app::db::MIGRATION_LOCK_KEY],
        )
        .await
        .unwrap();
    let mut migrate = app_command(&db.url(), &["migrate"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(500));
    assert!(
        migrate.try_wait().unwrap().is_none(),
        "it should be waiting for the lock"
    );
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args([&format!("-{signal}"), &migrate.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = loop {
        if let Some(status) = migrate.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(5) {
            let _ = migrate.kill();
            panic!("app migrate ignored SIG{signal}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut migrate.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(columns(&db).await.is_empty(), "nothing was applied");
}

/// A running `app serve` on a free loopback port.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(database_url: &str) -> Server {
        Server::start_with(database_url, &[])
    }

    fn start_with(database_url: &str, vars: &[(&str, &str)]) -> Server {
        let port = support::cluster::free_port();
        let child = app_command(database_url, &["serve"])
            .env("APP_ADDR", format!("127.0.0.1:{port}"))
            .envs(vars.iter().copied())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        server.await_status("/healthz", 200, Duration::from_secs(10));
        server
    }

    fn await_status(&self, path: &str, expected: u16, within: Duration) {
        let deadline = Instant::now() + within;
        let mut last = None;
        while Instant::now() < deadline {
            last = request(&self.base, "GET", path, None)
                .ok()
                .map(|(status, _)| status);
            if last == Some(expected) {
                return;
            }
            thread::sleep(Duration::from_millis(100));
        }
        panic!("{path} did not answer {expected} within {within:?}; last: {last:?}");
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not exit within {within:?}"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn request(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), ureq::Error> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let url = format!("{base}{path}");
    let mut response = match (method, body) {
        ("GET", _) => agent.get(&url).call()?,
        (_, body) => agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.unwrap_or_default())?,
    };
    let status = response.status().as_u16();
    Ok((status, response.body_mut().read_to_string()?))
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_a_slow_request_finish_then_exits_0() {
    let db = TestDb::migrated().await;
    let mut server = Server::start(&db.url());

    // An open transaction holding a lock on players makes the next insert wait: a slow
    // request made by the database itself, with no test hook in the app.
    let locker = db.client().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE players IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let base = server.base.clone();
    let slow_request = thread::spawn(move || {
        let body = r#"{"name":"late","city":"Rome","birthdate":"1990-01-01"}"#;
        request(&base, "POST", "/api/players", Some(body)).unwrap()
    });
    let watcher = db.client().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: i64 = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                &[&db.name],
            )
            .await
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the insert never started waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    server.terminate();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server exited with a request in flight"
    );
    locker.batch_execute("COMMIT").await.unwrap();

    let (status, body) = slow_request.join().unwrap();
    assert_eq!(status, 201, "{body}");
    assert!(server.wait_exit(Duration::from_secs(5)).success());
}

/// One request on a kept-alive connection, as a proxy sends it: the response's head, in
/// lower case.
fn exchange(connection: &mut std::net::TcpStream) -> String {
    use std::io::{Read, Write};
    connection
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: app\r\n\r\n")
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    while !String::from_utf8_lossy(&received).ends_with("\"status\":\"ok\"}") {
        let read = connection.read(&mut buffer).unwrap();
        assert!(read > 0, "closed without a response");
        received.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&received).to_lowercase()
}

#[tokio::test(flavor = "multi_thread")]
async fn draining_after_sigterm_serves_and_closes_each_connection_after_its_response() {
    use std::io::Read;
    let db = TestDb::migrated().await;
    let mut server = Server::start_with(&db.url(), &[("APP_DRAIN_SECONDS", "2")]);
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut kept_alive = std::net::TcpStream::connect(&address).unwrap();
    kept_alive
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert!(!exchange(&mut kept_alive).contains("connection: close"));

    server.terminate();
    thread::sleep(Duration::from_millis(300));
    let head = exchange(&mut kept_alive);
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert_eq!(kept_alive.read(&mut [0; 16]).unwrap(), 0, "left open");
    // New connections are still served while draining.
    let mut fresh = std::net::TcpStream::connect(&address).unwrap();
    assert!(exchange(&mut fresh).contains("connection: close"));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "stopped before the drain ended"
    );
    assert!(server.wait_exit(Duration::from_secs(5)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_the_database_down_and_back_without_a_restart() {
    let cluster = tokio::task::spawn_blocking(Cluster::start_new)
        .await
        .unwrap();
    let url = cluster.url("postgres");
    stdout_of(&migrate(&url));
    let server = Server::start(&url);
    server.await_status("/readyz", 200, Duration::from_secs(10));

    // The container's own probes, as the engine (and a deploy's switch) run them.
    let probe = |args: &[&str]| {
        Command::new(APP)
            .arg("healthcheck")
            .args(args)
            .env("APP_ADDR", server.base.trim_start_matches("http://"))
            .status()
            .unwrap()
            .success()
    };
    assert!(probe(&[]) && probe(&["--ready"]));

    cluster.stop();
    let (status, body) = request(&server.base, "GET", "/readyz", None).unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"reason\""), "{body}");
    assert!(probe(&[]), "alive without its database");
    assert!(!probe(&["--ready"]), "ready without its database");
    let (status, body) = request(&server.base, "GET", "/api/ranking", None).unwrap();
    assert_eq!(status, 503, "{body}");
    let (status, _) = request(&server.base, "GET", "/healthz", None).unwrap();
    assert_eq!(status, 200);

    cluster.start();
    server.await_status("/readyz", 200, Duration::from_secs(10));
    let (status, body) = request(&server.base, "GET", "/api/ranking", None).unwrap();
    assert_eq!((status, body.as_str()), (200, "[]"));
}
