//! The README's figure: how long after PostgreSQL starts accepting connections `cargo xtask
//! wait` returns, median and worst of 20 restarts of a throwaway cluster.
//!
//!     cargo bench -p xtask --bench wait_latency
//!
//! "Accepting" is seen by a reference poller in this process: a startup message every
//! millisecond (`cluster::first_answer`), stamped at the first authentication request. The
//! server log's "ready to accept connections" would do too, but its wall-clock timestamps
//! would have to be parsed and matched to this process's clock; the poller measures what a
//! client sees. It notices readiness up to about a millisecond late, so the delays below are
//! low by that much at most. Its connections cost the 2-core machines this runs on some CPU,
//! which the server and `wait` then lack: if anything, that makes `wait` look slower.
//!
//! Scenarios, 20 restarts each:
//! - `start`: the server is started right after `wait`, as `deploy` does with a container;
//! - `staggered`: started 0, 0.1, … 1.9 s after `wait`, so that readiness falls at every
//!   point of the backoff (50 ms growing by a tenth up to 1 s) rather than where one start time puts it;
//! - `psql loop`: the script this replaces, `until psql -c 'select 1'; do sleep 1; done`,
//!   under the staggered starts.

#[path = "../../app/tests/support/cluster.rs"]
mod cluster;

use std::{
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use cluster::{Cluster, first_answer};

const RESTARTS: u32 = 20;
const STAGGER: Duration = Duration::from_millis(100);

fn main() {
    let cluster = Cluster::start_new();
    let url = cluster.url("postgres");
    let xtask = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command.args(["wait", &url, "--timeout", "60s", "--quiet"]);
        command
    };
    let psql_loop = || {
        let mut command = Command::new("sh");
        command
            .args([
                "-c",
                "until psql \"$1\" -c 'select 1'; do sleep 1; done",
                "-",
            ])
            .arg(&url)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    let scenarios: [(&str, &dyn Fn() -> Command, bool); 3] = [
        ("start", &xtask, false),
        ("staggered", &xtask, true),
        ("psql loop", &psql_loop, true),
    ];
    println!("delay from accepting connections to the waiter's exit, {RESTARTS} restarts each");
    for (name, waiter, staggered) in scenarios {
        let mut delays: Vec<f64> = (0..RESTARTS)
            .map(|run| {
                let stagger = if staggered {
                    STAGGER * run
                } else {
                    Duration::ZERO
                };
                delay_ms(&cluster, &mut waiter(), stagger)
            })
            .collect();
        delays.sort_by(f64::total_cmp);
        let middle = delays.len() / 2;
        let median = (delays[middle - 1] + delays[middle]) / 2.0;
        let worst = delays[delays.len() - 1];
        let all: Vec<String> = delays.iter().map(|delay| format!("{delay:.0}")).collect();
        println!("{name:>10}: median {median:.0} ms, worst {worst:.0} ms");
        println!("{:>10}  (all, ms: {})", "", all.join(" "));
    }
}

/// Stops the server, starts the waiter, starts the server `stagger` later; the waiter's
/// exit minus the moment the server accepted connections.
fn delay_ms(cluster: &Cluster, waiter: &mut Command, stagger: Duration) -> f64 {
    cluster.stop();
    let mut child = waiter.spawn().expect("start the waiter");
    // Stamped by a thread blocked on the exit, not when this one gets round to it.
    let exited = thread::spawn(move || {
        let status = child.wait().expect("wait for the waiter");
        assert!(status.success(), "the waiter failed: {status}");
        Instant::now()
    });
    thread::sleep(stagger);
    thread::scope(|scope| {
        // `start` returns seconds after the server accepts connections: it runs aside.
        scope.spawn(|| cluster.start());
        while first_answer(cluster.port, "postgres") != Some(b'R') {
            thread::sleep(Duration::from_millis(1));
        }
        let accepting = Instant::now();
        let exited = exited.join().expect("the waiter's thread");
        match exited.checked_duration_since(accepting) {
            Some(delay) => delay.as_secs_f64() * 1000.0,
            // The waiter noticed before the poller did.
            None => -(accepting.duration_since(exited).as_secs_f64() * 1000.0),
        }
    })
}
