//! `cargo xtask wait` against real servers: throwaway PostgreSQL clusters from the installed
//! package (compared with `pg_isready` at the same moment), and small std servers for HTTP,
//! TCP and the starting-up answer a real server only gives for instants.

#[path = "../../../app/tests/support/cluster.rs"]
mod cluster;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use cluster::{Cluster, first_answer, free_port};

/// Longer than any wait here is allowed to take: a hung `wait` fails the test, not CI.
const LIMIT: Duration = Duration::from_secs(40);

#[test]
fn postgres_is_ready_once_the_cluster_starts_during_the_wait() {
    let cluster = Cluster::start_new();
    cluster.stop();
    let mut wait = Wait::spawn(&[&url(cluster.port), "--timeout", "30s"]);
    thread::sleep(Duration::from_millis(300));
    assert!(wait.running(), "wait returned while the server was down");
    assert_eq!(cluster.pg_isready(&[]), 2);

    thread::scope(|scope| {
        // `start` returns well after the server accepts connections: `wait` must not.
        scope.spawn(|| cluster.start());
        let done = wait.finish();
        assert_eq!(done.code, 0, "{}", done.stderr);
        assert_eq!(cluster.pg_isready(&[]), 0);
        let ready = format!("ready: postgres 127.0.0.1:{} (", cluster.port);
        assert!(done.stderr.starts_with(&ready), "{}", done.stderr);
    });
}

#[test]
fn postgres_verdicts_follow_the_server_down_and_back() {
    let cluster = Cluster::start_new();
    let target = url(cluster.port);
    let up = run_wait(&[&target, "--timeout", "5s"]);
    assert_eq!((up.code, cluster.pg_isready(&[])), (0, 0), "{up:?}");

    cluster.stop();
    let down = run_wait(&[&target, "--timeout", "1s"]);
    assert_eq!((down.code, cluster.pg_isready(&[])), (3, 2), "{down:?}");
    let line = format!(
        "postgres 127.0.0.1:{}: not ready: connection refused\n",
        cluster.port
    );
    assert!(down.stderr.starts_with(&line), "{}", down.stderr);

    let mut wait = Wait::spawn(&[&target, "--timeout", "30s"]);
    thread::sleep(Duration::from_millis(300));
    assert!(wait.running(), "wait returned while the server was down");
    thread::scope(|scope| {
        scope.spawn(|| cluster.start());
        let back = wait.finish();
        assert_eq!((back.code, cluster.pg_isready(&[])), (0, 0), "{back:?}");
    });
}

#[test]
fn a_refused_user_a_wrong_password_or_a_missing_database_still_count_as_ready() {
    let cluster = Cluster::start_new();
    cluster.prepend_hba("host all refused 127.0.0.1/32 reject");
    // The reload is asynchronous: this user's first answer turns from `R` to `E` with it.
    until("pg_hba.conf was not reloaded", || {
        first_answer(cluster.port, "refused") == Some(b'E')
    });
    let port = cluster.port;
    let targets = [
        format!("postgres://refused@127.0.0.1:{port}/postgres"),
        format!("postgres://nobody@127.0.0.1:{port}/postgres"),
        format!("postgres://postgres:wrong@127.0.0.1:{port}/postgres"),
        format!("postgres://postgres@127.0.0.1:{port}/nothing"),
    ];
    let args: Vec<&str> = targets.iter().map(String::as_str).collect();
    let done = run_wait(&[&args[..], &["--timeout", "5s"]].concat());
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(
        done.stderr.matches("ready: postgres").count(),
        4,
        "{}",
        done.stderr
    );
    for args in [["-U", "refused"], ["-U", "nobody"], ["-d", "nothing"]] {
        assert_eq!(cluster.pg_isready(&args), 0, "pg_isready {args:?}");
    }
}

#[test]
fn starting_up_is_not_ready_until_the_real_server_answers() {
    let cluster = Cluster::start_new();
    cluster.stop();
    let port = cluster.port;
    let starting = StartingUp::bind(port);

    let done = run_wait(&[&url(port), "--timeout", "1s"]);
    assert_eq!(done.code, 3, "{}", done.stderr);
    let line = format!(
        "postgres 127.0.0.1:{port}: not ready: the database system is starting up (57P03)\n"
    );
    assert!(done.stderr.starts_with(&line), "{}", done.stderr);
    // libpq's verdict on the same answer: 1, "rejecting connections".
    assert_eq!(cluster.pg_isready(&[]), 1);

    let mut wait = Wait::spawn(&[&url(port), "--timeout", "30s"]);
    let seen = starting.served();
    until("wait never asked the starting server", || {
        starting.served() >= seen + 2
    });
    assert!(
        wait.running(),
        "wait took a starting server for a ready one"
    );
    starting.stop();
    thread::scope(|scope| {
        scope.spawn(|| cluster.start());
        let done = wait.finish();
        assert_eq!((done.code, cluster.pg_isready(&[])), (0, 0), "{done:?}");
    });
}

#[test]
fn http_200_is_ready_and_a_pipe_gets_no_progress() {
    let server = HttpServer::start(200);
    let done = run_wait(&[&server.url(), "--timeout", "5s"]);
    assert_eq!(done.code, 0, "{}", done.stderr);
    let ready = format!("ready: {} (", server.url());
    assert!(done.stderr.starts_with(&ready), "{}", done.stderr);
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
    assert!(!done.stderr.contains(['\r', '\x1b']), "{:?}", done.stderr);

    let quiet = run_wait(&[&server.url(), "--quiet"]);
    assert_eq!((quiet.code, quiet.stderr.as_str()), (0, ""));
}

#[test]
fn http_503_is_not_ready_until_200() {
    let server = HttpServer::start(503);
    let done = run_wait(&[&server.url(), "--timeout", "1s"]);
    assert_eq!(done.code, 3, "{}", done.stderr);
    let line = format!(
        "{}: not ready: status 503 Service Unavailable\n",
        server.url()
    );
    assert!(done.stderr.starts_with(&line), "{}", done.stderr);

    let mut wait = Wait::spawn(&[&server.url(), "--timeout", "30s"]);
    let seen = server.requests();
    until("wait asked no more", || server.requests() >= seen + 2);
    assert!(wait.running(), "wait took a 503 for ready");
    server.answer(200);
    let done = wait.finish();
    assert_eq!(done.code, 0, "{}", done.stderr);
}

#[test]
fn a_server_that_never_answers_is_cut_by_the_attempt_timeout_and_the_deadline() {
    let silent = HttpServer::start(HttpServer::SILENT);
    let done = run_wait(&[
        &silent.url(),
        "--timeout",
        "2s",
        "--attempt-timeout",
        "500ms",
    ]);
    assert_eq!(done.code, 3, "{}", done.stderr);
    assert!(done.elapsed >= Duration::from_secs(2), "{done:?}");
    assert!(done.elapsed < Duration::from_secs(3), "{done:?}");
    let line = format!("{}: not ready: no answer within 500 ms\n", silent.url());
    assert!(done.stderr.starts_with(&line), "{}", done.stderr);
    // Each attempt gave up after 500 ms and the next one connected again.
    assert!(
        silent.connections() >= 3,
        "{} attempts",
        silent.connections()
    );

    // An attempt may not outlive the deadline, whatever its own timeout: PostgreSQL too.
    for target in [silent.url(), url(silent.port)] {
        let done = run_wait(&[&target, "--timeout", "1s", "--attempt-timeout", "10s"]);
        assert_eq!(done.code, 3, "{}", done.stderr);
        assert!(done.elapsed < Duration::from_secs(2), "{done:?}");
        assert!(
            done.stderr.contains(": not ready: no answer within "),
            "{done:?}"
        );
    }
}

#[test]
fn tcp_is_ready_once_the_port_opens() {
    let port = free_port();
    let mut wait = Wait::spawn(&[&format!("tcp://127.0.0.1:{port}"), "--timeout", "30s"]);
    thread::sleep(Duration::from_millis(300));
    assert!(wait.running(), "wait returned while the port was closed");
    let _listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let done = wait.finish();
    assert_eq!(done.code, 0, "{}", done.stderr);
}

#[test]
fn the_deadline_holds_for_targets_that_never_come_up() {
    let (closed, silent) = (free_port(), HttpServer::start(HttpServer::SILENT));
    let tcp = format!("tcp://127.0.0.1:{closed}");
    let done = run_wait(&[&tcp, &silent.url(), "--timeout", "2s"]);
    assert_eq!(done.code, 3, "{}", done.stderr);
    assert!(done.elapsed >= Duration::from_secs(2), "{done:?}");
    assert!(done.elapsed < Duration::from_secs(3), "{done:?}");
    let lines: Vec<&str> = done.stderr.lines().collect();
    assert_eq!(
        lines[0],
        format!("tcp 127.0.0.1:{closed}: not ready: connection refused")
    );
    assert_eq!(
        lines[1],
        format!("{}: not ready: no answer within 2.0 s", silent.url())
    );
    assert!(
        lines[2].starts_with("error: timed out after 2.0 s waiting for tcp"),
        "{lines:?}"
    );
}

#[test]
fn huge_durations_are_waited_or_refused_never_a_panic() {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let open = format!("tcp://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let closed = format!("tcp://127.0.0.1:{}", free_port());
    let most = "18446744073709551615";
    let (timeout, interval) = (format!("{most}s"), format!("{most}ms"));
    let ready = run_wait(&[
        &open,
        "--timeout",
        &timeout,
        "--interval",
        &interval,
        "--attempt-timeout",
        &timeout,
    ]);
    assert_eq!(ready.code, 0, "{}", ready.stderr);
    let not_ready = run_wait(&[&closed, "--timeout", "1s", "--interval", &interval]);
    assert_eq!(not_ready.code, 3, "{}", not_ready.stderr);
    let too_long = run_wait(&[&closed, "--timeout", &format!("{most}m")]);
    assert_eq!(too_long.code, 2, "{}", too_long.stderr);
    assert!(
        too_long.stderr.contains("longer than any clock can count"),
        "{}",
        too_long.stderr
    );
    for done in [ready, not_ready, too_long] {
        assert!(!done.stderr.contains("panicked"), "{}", done.stderr);
    }
}

#[test]
fn a_bad_target_exits_2_before_any_waiting() {
    let closed = format!("tcp://127.0.0.1:{}", free_port());
    for (target, reason) in [
        ("ftp://127.0.0.1/", "unknown scheme `ftp`"),
        ("postgres://:5432", "no host"),
        ("tcp://127.0.0.1:70000", "bad port `70000`"),
        ("127.0.0.1:5432", "no scheme"),
    ] {
        // The good target first: it must not be waited for either.
        let done = run_wait(&[&closed, target, "--timeout", "30s"]);
        assert_eq!(done.code, 2, "{target}: {}", done.stderr);
        assert!(done.elapsed < Duration::from_secs(5), "{target}: {done:?}");
        let message = format!("error: bad target `{target}`: {reason}");
        assert!(done.stderr.starts_with(&message), "{}", done.stderr);
    }
}

#[test]
fn a_terminal_gets_a_live_line() {
    let port = free_port();
    let xtask = env!("CARGO_BIN_EXE_xtask");
    // util-linux's `script` gives the command a pseudo-terminal and copies what it prints.
    let output = Command::new("script")
        .args(["--quiet", "--return", "/dev/null", "--command"])
        .arg(format!(
            "'{xtask}' wait tcp://127.0.0.1:{port} --timeout 1s"
        ))
        .stdin(Stdio::null())
        .output()
        .expect("run script (util-linux)");
    let shown = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{shown}");
    let live = format!("\r\x1b[2Kwaiting for tcp 127.0.0.1:{port} (");
    // Redrawn as the elapsed time moves, about every 100 ms.
    assert!(shown.matches(&live).count() >= 5, "{shown:?}");
    let last = format!("\r\x1b[2Ktcp 127.0.0.1:{port}: not ready: connection refused");
    assert!(shown.contains(&last), "{shown:?}");
}

/// Polls `condition` until it holds; a test fails rather than hangs.
fn until(what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < LIMIT, "{what}");
        thread::sleep(Duration::from_millis(10));
    }
}

fn url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

/// A `cargo xtask wait` running in the background.
struct Wait {
    child: Child,
    started: Instant,
}

#[derive(Debug)]
struct Done {
    code: i32,
    stderr: String,
    elapsed: Duration,
}

fn run_wait(args: &[&str]) -> Done {
    Wait::spawn(args).finish()
}

impl Wait {
    fn spawn(args: &[&str]) -> Wait {
        let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("wait")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start xtask");
        Wait {
            child,
            started: Instant::now(),
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Its exit, or a failed test after `LIMIT` rather than a hung one.
    fn finish(mut self) -> Done {
        let mut stderr = self.child.stderr.take().unwrap();
        let reader = thread::spawn(move || {
            let mut text = String::new();
            stderr.read_to_string(&mut text).unwrap();
            text
        });
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if self.started.elapsed() > LIMIT {
                let _ = self.child.kill();
                panic!("wait still running after {LIMIT:?}");
            }
            thread::sleep(Duration::from_millis(5));
        };
        let elapsed = self.started.elapsed();
        Done {
            code: status.code().expect("xtask exited by a signal"),
            stderr: reader.join().unwrap(),
            elapsed,
        }
    }
}

/// A server that answers every startup message as PostgreSQL does while it starts up
/// (or recovers after a crash), then closes the connection.
struct StartingUp {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    thread: thread::JoinHandle<()>,
}

/// PostgreSQL 15's ErrorResponse, field by field: severity (localized, then not), SQLSTATE,
/// message, and where in its source it was raised.
const STARTING_UP: &[u8] = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\
    Fpostmaster.c\0L2356\0RProcessStartupPacket\0\0";

impl StartingUp {
    fn bind(port: u16) -> StartingUp {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        // Polled, so that `stop` can close the port for the real server to take it.
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let (stopping, counter) = (stop.clone(), served.clone());
        let thread = thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        answer_starting_up(stream);
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        StartingUp {
            stop,
            served,
            thread,
        }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap();
    }
}

fn answer_starting_up(mut stream: TcpStream) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    loop {
        // A message of the startup phase: its length, which counts itself, then the rest.
        let mut length = [0; 4];
        if stream.read_exact(&mut length).is_err() {
            return;
        }
        let mut rest = vec![0; (u32::from_be_bytes(length) as usize).saturating_sub(4)];
        if stream.read_exact(&mut rest).is_err() {
            return;
        }
        // SSLRequest or GSSENCRequest, which libpq sends first: the postmaster declines
        // with a single `N`, then reads the real startup message.
        if rest.starts_with(&[0x04, 0xd2, 0x16]) {
            if stream.write_all(b"N").is_err() {
                return;
            }
            continue;
        }
        let mut answer = vec![b'E'];
        answer.extend_from_slice(&(STARTING_UP.len() as u32 + 4).to_be_bytes());
        answer.extend_from_slice(STARTING_UP);
        let _ = stream.write_all(&answer);
        return;
    }
}

/// An HTTP server answering every request with one status, or never answering at all.
struct HttpServer {
    port: u16,
    status: Arc<AtomicU16>,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

impl HttpServer {
    /// Accepts connections, reads nothing, answers nothing, closes nothing.
    const SILENT: u16 = 0;

    fn start(status: u16) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer {
            port,
            status: Arc::new(AtomicU16::new(status)),
            requests: Arc::new(AtomicUsize::new(0)),
            connections: Arc::new(AtomicUsize::new(0)),
        };
        let (status, requests, connections) = (
            server.status.clone(),
            server.requests.clone(),
            server.connections.clone(),
        );
        // The thread lives as long as the test process: nothing to clean up.
        thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                connections.fetch_add(1, Ordering::SeqCst);
                match status.load(Ordering::SeqCst) {
                    HttpServer::SILENT => held.push(stream),
                    code => {
                        answer_http(stream, code);
                        requests.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        });
        server
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/healthz", self.port)
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn answer_http(mut stream: TcpStream, code: u16) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut request = Vec::new();
    let mut buffer = [0; 1024];
    while !request.ends_with(b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
        }
    }
    let reason = if code == 200 {
        "OK"
    } else {
        "Service Unavailable"
    };
    let response =
        format!("HTTP/1.1 {code} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    let _ = stream.write_all(response.as_bytes());
}
