//! One SSH connection per host for a whole command: every docker and ssh command the
//! xtask runs against a host travels over it.
//!
//! Docker's own `--host ssh://…` opens a connection per docker command (its helper runs
//! `ssh … docker system dial-stdio` each time), each checking the host key as the user's
//! configuration says, however lax. Instead, the first command for a host opens one ssh
//! "master" (OpenSSH's connection sharing: `ControlMaster`, its socket in a private
//! directory of this process's own), authenticated once, the host key checked strictly
//! whatever the configuration says (an unknown key taken only where the configuration
//! accepts new ones). Docker's socket there is then forwarded to a local Unix socket by
//! that same connection (`-O forward`), and each docker command is given `--host
//! unix://…` in place of `ssh://…`; each ssh command joins the master (`-S`), and may never
//! open a connection of its own (`ProxyCommand=false` for the case the master is gone).
//!
//! The master's remote command waits on its stdin, which is a pipe from this process: when
//! the xtask ends, however it ends, the pipe closes and the connection with it. `close_all`
//! does that on the way out (after Ctrl-C's cleanup, which may still need the connection)
//! and removes the directory; one left by a killed xtask is removed by the next.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Stdio},
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    thread,
    time::Duration,
};

use anyhow::{Context, bail};
use xshell::Shell;

use super::{Command, SshHost, diagnosis, quote::shell_words};
use crate::{hint::Hint, output};

/// How long ssh may take to connect and log in before it gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a closed master may take to end by itself before it is killed.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// What the master's remote command says once it runs: logged in.
const READY: &str = "travial-ssh-ready";
/// The docker endpoint of a host that names none (`docker context inspect` failed there).
const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";
/// How docker there names its endpoint (the current context's).
const ENDPOINT: [&str; 5] = [
    "docker",
    "context",
    "inspect",
    "--format",
    "{{.Endpoints.docker.Host}}",
];
const DIR_PREFIX: &str = "travial-ssh-";

static TUNNELS: Mutex<Option<Tunnels>> = Mutex::new(None);
/// How many connections this process has opened: each one's sockets are named by it.
static OPENED: AtomicUsize = AtomicUsize::new(0);

struct Tunnels {
    /// Private to this process (0700): the masters' and the forwarded sockets.
    dir: PathBuf,
    open: HashMap<SshHost, Tunnel>,
}

struct Tunnel {
    master: Child,
    /// Held open: the master's remote command ends when it closes.
    lifeline: Option<ChildStdin>,
    control: PathBuf,
    /// Docker's endpoint there (`unix:///var/run/docker.sock`), as the master found it
    /// when it logged in; `None` where docker was not there then (`install-docker`).
    endpoint: Option<String>,
    /// The local end of docker's socket there, once a docker command has needed it.
    docker: Option<PathBuf>,
}

fn tunnels() -> MutexGuard<'static, Option<Tunnels>> {
    TUNNELS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `command` as it must run: over the host's one connection (opened now if it is the
/// first) when it goes to an SSH host, else as it is. The registry is locked only briefly:
/// Ctrl-C's cleanup needs it while a connection is being opened.
pub fn route(sh: &Shell, command: &Command) -> anyhow::Result<Command> {
    let Some(host) = &command.ssh else {
        return Ok(command.clone());
    };
    if with_tunnel(host, |_| ()).is_none() {
        let dir = private_dir()?;
        let control = dir.join(format!("c{}", OPENED.fetch_add(1, Ordering::SeqCst)));
        let tunnel = Tunnel::open(sh, host, control)?;
        if let Some(tunnels) = tunnels().as_mut() {
            tunnels.open.entry(host.clone()).or_insert(tunnel);
        }
    }
    let unknown = || anyhow::anyhow!("the SSH connection to {host} was closed");
    with_tunnel(host, |tunnel| tunnel.check_alive(host)).ok_or_else(unknown)??;
    if command.program == "docker" {
        let control = with_tunnel(host, |tunnel| {
            tunnel
                .docker
                .is_none()
                .then(|| (tunnel.control.clone(), tunnel.endpoint.clone()))
        })
        .ok_or_else(unknown)?;
        if let Some((control, endpoint)) = control {
            let local = forward_docker(sh, host, &control, endpoint)?;
            with_tunnel(host, |tunnel| tunnel.docker = Some(local));
        }
    }
    with_tunnel(host, |tunnel| tunnel.carry(command)).ok_or_else(unknown)
}

/// `f` on the host's open connection, under the registry's lock; `None` if there is none.
fn with_tunnel<T>(host: &SshHost, f: impl FnOnce(&mut Tunnel) -> T) -> Option<T> {
    tunnels().as_mut()?.open.get_mut(host).map(f)
}

/// The directory of this process's sockets, made by the first connection.
fn private_dir() -> anyhow::Result<PathBuf> {
    let mut guard = tunnels();
    let tunnels = match guard.as_mut() {
        Some(tunnels) => tunnels,
        None => guard.insert(Tunnels::new()?),
    };
    Ok(tunnels.dir.clone())
}

/// `command` over its host's connection if that is open, else as it is: for what runs
/// while the command is being stopped, which opens nothing.
pub fn route_if_open(command: &Command) -> Command {
    let guard = tunnels();
    let tunnel = command
        .ssh
        .as_ref()
        .and_then(|host| guard.as_ref()?.open.get(host));
    match tunnel {
        Some(tunnel) if command.program != "docker" || tunnel.docker.is_some() => {
            tunnel.carry(command)
        }
        _ => command.clone(),
    }
}

/// Closes every connection and removes the directory: on the way out, whatever the
/// outcome.
pub fn close_all() {
    let Some(mut tunnels) = tunnels().take() else {
        return;
    };
    for tunnel in tunnels.open.values_mut() {
        tunnel.close();
    }
    let _ = std::fs::remove_dir_all(&tunnels.dir);
}

impl Tunnels {
    fn new() -> anyhow::Result<Tunnels> {
        let base = std::env::temp_dir();
        remove_left_by_killed_runs(&base);
        let dir = base.join(format!("{DIR_PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&dir)
            .with_context(|| format!("cannot make {} for the SSH connections", dir.display()))?;
        Ok(Tunnels {
            dir,
            open: HashMap::new(),
        })
    }
}

/// The directories of xtasks that were killed (their process is gone): their sockets are
/// dead, and nobody else would remove them.
fn remove_left_by_killed_runs(base: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Tunnel {
    /// The master: logged in, or the reason it could not, named as ssh's problems are.
    fn open(sh: &Shell, host: &SshHost, control: PathBuf) -> anyhow::Result<Tunnel> {
        let command = master_command(host, &control, strict_checking(sh, host));
        output::check(&command.to_string());
        let mut master = super::run::process(sh, &command)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| super::run::cannot_run(&command))?;
        let lifeline = master.stdin.take();
        let stdout = master.stdout.take().context("the master's stdout")?;
        let stderr = master.stderr.take().context("the master's stderr")?;
        let (said, heard) = mpsc::channel();
        thread::spawn(move || {
            // What the remote command printed before it said it runs: docker's endpoint.
            let mut before = Vec::new();
            let mut logged_in = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == READY {
                    logged_in = true;
                    break;
                }
                before.push(line);
            }
            let _ = said.send(logged_in.then_some(before));
        });
        let stderr = thread::spawn(move || super::run::read_all(stderr));
        let mut tunnel = Tunnel {
            master,
            lifeline,
            control,
            endpoint: None,
            docker: None,
        };
        match heard.recv_timeout(CONNECT_TIMEOUT) {
            Ok(Some(said)) => {
                tunnel.endpoint = said
                    .iter()
                    .rev()
                    .find(|line| line.contains("://"))
                    .map(|line| line.trim().to_owned());
                Ok(tunnel)
            }
            Ok(None) => {
                let mut tunnel = tunnel;
                tunnel.close();
                let stderr =
                    String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
                Err(refused(host, &stderr, &command))
            }
            Err(_) => {
                let mut tunnel = tunnel;
                tunnel.close();
                Err(Hint::new(
                    format!(
                        "{host} did not answer over SSH within {} s",
                        CONNECT_TIMEOUT.as_secs()
                    ),
                    "check the address, and that the host is up and sshd runs there",
                )
                .into())
            }
        }
    }

    /// A connection that ended midway (the network, the host rebooting) is an error of its
    /// own: what docker would say of the forwarded socket would not name it.
    fn check_alive(&mut self, host: &SshHost) -> anyhow::Result<()> {
        if let Ok(Some(status)) = self.master.try_wait() {
            return Err(Hint::new(
                format!("the SSH connection to {host} was lost ({status})"),
                "check the host and the network, then run the command again",
            )
            .into());
        }
        Ok(())
    }

    /// `command` over this connection: docker through the forwarded socket, ssh joined to
    /// the master. Carried, it goes to no SSH host of its own any more.
    fn carry(&self, command: &Command) -> Command {
        if command.program == "docker" {
            let mut carried = command.clone();
            carried.ssh = None;
            let socket = self
                .docker
                .as_ref()
                .map(|path| format!("unix://{}", path.display()));
            if let (Some(socket), Some(at)) = (socket, host_flag(&carried.args)) {
                carried.args[at] = socket;
            }
            return carried;
        }
        joined(&self.control, command.clone())
    }

    fn close(&mut self) {
        drop(self.lifeline.take());
        let deadline = std::time::Instant::now() + CLOSE_WAIT;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.master.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
    }
}

/// Docker's socket there (its current context's, as `docker system dial-stdio` would
/// use: as the master found it, else asked now), forwarded by the master to a socket
/// beside its own (`cN`, `dN`).
fn forward_docker(
    sh: &Shell,
    host: &SshHost,
    control: &Path,
    endpoint: Option<String>,
) -> anyhow::Result<PathBuf> {
    let endpoint = match endpoint {
        Some(endpoint) => endpoint,
        None => {
            let asked = joined(
                control,
                host.command(shell_words(&ENDPOINT.map(String::from))),
            );
            let output = super::run::probe(sh, &asked)?;
            match output.status.success() {
                true => String::from_utf8_lossy(&output.stdout).trim().to_owned(),
                false => String::new(),
            }
        }
    };
    let remote = match endpoint.strip_prefix("unix://") {
        Some(path) => path.to_owned(),
        None if endpoint.is_empty() => DEFAULT_DOCKER_SOCKET.to_owned(),
        None => bail!(
            "docker on {host} listens on {endpoint}, not on a Unix socket: the xtask reaches \
             a host's docker through its socket (set that host's docker context back to the default)"
        ),
    };
    let name = control.file_name().unwrap_or_default().to_string_lossy();
    let local = control.with_file_name(name.replacen('c', "d", 1));
    let mut args = vec![
        "-S".to_owned(),
        control.display().to_string(),
        "-O".to_owned(),
        "forward".to_owned(),
        "-L".to_owned(),
        format!("{}:{remote}", local.display()),
    ];
    args.extend(host.ssh_args());
    let forward = Command::new("ssh", args);
    let output = super::run::probe(sh, &forward)?;
    if !output.status.success() {
        bail!(
            "`{forward}` failed: {}",
            super::run::last_line(&String::from_utf8_lossy(&output.stderr))
                .unwrap_or_else(|| output.status.to_string())
        );
    }
    Ok(local)
}

/// `command` joined to the master at `control`: never a connection of its own.
fn joined(control: &Path, mut command: Command) -> Command {
    command.ssh = None;
    if command.program != "ssh" {
        return command;
    }
    let mut args = vec![
        "-S".to_owned(),
        control.display().to_string(),
        "-o".to_owned(),
        "ControlMaster=no".to_owned(),
        // Used only to open a connection of its own, which it must never do.
        "-o".to_owned(),
        "ProxyCommand=false".to_owned(),
    ];
    args.append(&mut command.args);
    command.args = args;
    command
}

/// Where `--host ssh://…`'s value is in a docker command line.
fn host_flag(args: &[String]) -> Option<usize> {
    args.windows(2)
        .position(|pair| pair[0] == "--host" && pair[1].starts_with("ssh://"))
        .map(|at| at + 1)
}

/// How strictly the master checks the host key: `yes`, or `accept-new` where the user's
/// configuration takes unknown keys (`accept-new`, or `no`, which would also take a
/// changed one: never here).
fn strict_checking(sh: &Shell, host: &SshHost) -> &'static str {
    let mut args = vec!["-G".to_owned()];
    args.extend(host.ssh_args());
    let configured = super::run::probe(sh, &Command::new("ssh", args))
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default();
    strictness(&configured)
}

/// From `ssh -G`'s output (`stricthostkeychecking accept-new`).
fn strictness(configured: &str) -> &'static str {
    let value = configured
        .lines()
        .find_map(|line| line.strip_prefix("stricthostkeychecking "))
        .map(str::trim);
    match value {
        Some("accept-new" | "false" | "no" | "off") => "accept-new",
        _ => "yes",
    }
}

/// The master: logged in once, never asking anything, its remote command waiting on its
/// stdin (the lifeline) after saying it runs.
fn master_command(host: &SshHost, control: &Path, strict: &str) -> Command {
    let mut args: Vec<String> = [
        "-o",
        "BatchMode=yes",
        "-o",
        &format!("ConnectTimeout={}", CONNECT_TIMEOUT.as_secs() / 2),
        "-o",
        &format!("StrictHostKeyChecking={strict}"),
        "-o",
        "ControlMaster=yes",
        "-o",
        &format!("ControlPath={}", control.display()),
        "-o",
        "ControlPersist=no",
        "-o",
        "ServerAliveInterval=15",
        "-T",
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(host.ssh_args());
    // Through sh, whatever the login shell: docker's endpoint, if docker is there, then the
    // word that says it runs, then a wait on stdin, the lifeline.
    let remote = format!(
        "{} 2>/dev/null; echo {READY}; exec cat >/dev/null",
        shell_words(&ENDPOINT.map(String::from))
    );
    args.push(shell_words(&["sh".to_owned(), "-c".to_owned(), remote]));
    Command::new("ssh", args)
}

/// Why the master could not log in, named as ssh's problems are.
fn refused(host: &SshHost, stderr: &str, command: &Command) -> anyhow::Error {
    match diagnosis::ssh_problem(stderr, &host.to_string(), &host.url()) {
        Some((problem, fix)) => Hint::new(problem, fix).into(),
        None => anyhow::anyhow!(
            "`{command}` failed: {}",
            super::run::last_line(stderr).unwrap_or_else(|| "ssh ended".to_owned())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> SshHost {
        SshHost::parse("ssh://deploy@10.201.1.2:2222").unwrap()
    }

    #[test]
    fn the_host_key_is_checked_strictly_and_unknown_keys_taken_only_where_configured() {
        assert_eq!(
            strictness("user deploy\nstricthostkeychecking true\n"),
            "yes"
        );
        assert_eq!(strictness("stricthostkeychecking ask\n"), "yes");
        assert_eq!(strictness(""), "yes");
        assert_eq!(
            strictness("stricthostkeychecking accept-new\n"),
            "accept-new"
        );
        // `no` would connect despite a changed key: here it only takes unknown ones.
        assert_eq!(strictness("stricthostkeychecking false\n"), "accept-new");
        let master = master_command(&host(), Path::new("/tmp/t/c0"), "yes").to_string();
        assert!(master.contains("-o StrictHostKeyChecking=yes"), "{master}");
        assert!(
            master.contains("-o ControlMaster=yes -o ControlPath=/tmp/t/c0"),
            "{master}"
        );
        assert!(
            master.contains("-p 2222 -- deploy@10.201.1.2 'sh -c ")
                && master.contains("2>/dev/null; echo travial-ssh-ready; exec cat >/dev/null"),
            "{master}"
        );
    }

    #[test]
    fn docker_goes_through_the_forwarded_socket_and_ssh_joins_the_master() {
        let tunnel = Tunnel {
            master: std::process::Command::new("true").spawn().unwrap(),
            lifeline: None,
            control: PathBuf::from("/tmp/t/c0"),
            endpoint: None,
            docker: Some(PathBuf::from("/tmp/t/d0")),
        };
        let engine = super::super::Engine::over_ssh(&host());
        let ps = engine.docker(["ps"]);
        assert_eq!(
            ps.to_string(),
            "docker --host ssh://deploy@10.201.1.2:2222 ps"
        );
        assert_eq!(tunnel.carry(&ps).args, ["--host", "unix:///tmp/t/d0", "ps"]);
        let ssh = host().command("true".to_owned());
        let carried = tunnel.carry(&ssh).args.join(" ");
        assert!(
            carried.starts_with(
                "-S /tmp/t/c0 -o ControlMaster=no -o ProxyCommand=false -o BatchMode=yes"
            ),
            "{carried}"
        );
        let local = Command::docker(["ps"]);
        assert_eq!(route_if_open(&local), local);
    }
}
