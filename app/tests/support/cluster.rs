//! A throwaway PostgreSQL server of its own, for tests that stop and restart the database.
//! Debian's `pg_createcluster` makes it from the installed `postgresql` package; dropping
//! the value removes it.
//!
//! Shared by the app's and the xtask's tests (`#[path]`-included), so it uses std only.

#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
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

    /// Puts `line` first in the cluster's pg_hba.conf and has the server reload it; the
    /// reload completes shortly after this returns (see `first_answer`).
    pub fn prepend_hba(&self, line: &str) {
        let path = format!("/etc/postgresql/{}/{}/pg_hba.conf", self.version, self.name);
        let rules = std::fs::read_to_string(&path).expect("read pg_hba.conf");
        std::fs::write(&path, format!("{line}\n{rules}")).expect("write pg_hba.conf");
        self.ctl("reload");
    }

    /// `pg_isready`'s verdict on 127.0.0.1 at this cluster's port (0 accepting, 1 rejecting
    /// connections, 2 no answer), with `args` such as `-U user`. The versioned binary: Debian's
    /// wrapper reads every cluster's configuration and stumbles on those other tests are
    /// creating or dropping at the same time.
    pub fn pg_isready(&self, args: &[&str]) -> i32 {
        let status = Command::new(format!(
            "/usr/lib/postgresql/{}/bin/pg_isready",
            self.version
        ))
        .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
        .args(["--timeout", "5"])
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("run pg_isready");
        status.code().expect("pg_isready exited by a signal")
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

/// The type byte of the first message the server on 127.0.0.1:`port` answers a protocol
/// 3.0 startup message with (`R` for an authentication request, `E` for an error), or
/// `None` when nothing answers. A reference independent of the code under test: it only
/// needs one byte, so it reads no further.
pub fn first_answer(port: u16, user: &str) -> Option<u8> {
    let timeout = Duration::from_secs(2);
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let mut body = 196_608u32.to_be_bytes().to_vec(); // protocol 3.0
    for text in ["user", user, "database", "postgres", ""] {
        body.extend_from_slice(text.as_bytes());
        body.push(0);
    }
    let length = (body.len() as u32 + 4).to_be_bytes();
    stream.write_all(&[&length[..], &body].concat()).ok()?;
    let mut kind = [0];
    stream.read_exact(&mut kind).ok()?;
    Some(kind[0])
}

fn run(command: &mut Command) {
    let output = command.output().expect("run a PostgreSQL cluster command");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
