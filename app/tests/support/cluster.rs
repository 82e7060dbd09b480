//! A throwaway PostgreSQL server of its own, for tests that stop and restart the database.
//! Debian's `pg_createcluster` makes it from the installed `postgresql` package; dropping
//! the value removes it.
//!
//! Shared by the app's and the xtask's tests (`#[path]`-included), so it uses std only.

#![allow(dead_code)]

use std::{
    io::Write,
    net::TcpListener,
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
};

pub const PASSWORD: &str = "cluster-test";

pub struct Cluster {
    version: String,
    name: String,
    pub port: u16,
}

impl Cluster {
    /// Creates and starts a new cluster on a free port, with the password `PASSWORD` for
    /// the `postgres` user over TCP.
    pub fn start_new() -> Cluster {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let cluster = Cluster {
            version: installed_version(),
            name,
            port: free_port(),
        };
        run(Command::new("pg_createcluster").args([
            &cluster.version,
            &cluster.name,
            "--port",
            &cluster.port.to_string(),
            "--start",
        ]));
        let mut psql = Command::new("runuser")
            .args([
                "-u",
                "postgres",
                "--",
                "psql",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(["-p", &cluster.port.to_string()])
            .stdin(Stdio::piped())
            .spawn()
            .expect("run psql");
        writeln!(
            psql.stdin.take().unwrap(),
            "ALTER USER postgres PASSWORD '{PASSWORD}';"
        )
        .unwrap();
        assert!(
            psql.wait().unwrap().success(),
            "psql failed to set the password"
        );
        cluster
    }

    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    pub fn stop(&self) {
        self.ctl("stop");
    }

    /// `pg_ctlcluster start` returns once the server accepts connections.
    pub fn start(&self) {
        self.ctl("start");
    }

    fn ctl(&self, action: &str) {
        run(Command::new("pg_ctlcluster").args([&self.version, &self.name, action]));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster")
            .args(["--stop", &self.version, &self.name])
            .status();
    }
}

/// The newest PostgreSQL major version installed under /usr/lib/postgresql.
fn installed_version() -> String {
    std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed: run .ci/run or apt-get install postgresql")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.parse::<u32>().is_ok())
        .max_by_key(|name| name.parse::<u32>().unwrap())
        .expect("no PostgreSQL version under /usr/lib/postgresql")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port")
        .port()
}

fn run(command: &mut Command) {
    let output = command.output().expect("run a PostgreSQL cluster command");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
