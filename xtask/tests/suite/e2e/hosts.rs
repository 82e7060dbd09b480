//! Remote hosts for the end-to-end tests (../shared/SANDBOX.md): each a network namespace
//! of its own, 10.201.N.2, with its own Docker engine and an SSH server whose sessions talk
//! to that engine, reached from here over real SSH with a key, a known_hosts file and an
//! ssh configuration of the test's own (an `ssh` first on PATH that adds `-F`). Each
//! engine starts empty but for the images a test gives it (`load`), as a fresh server
//! would pull them. Everything is removed when the `Hosts` is dropped, and leftovers of an
//! earlier run that was killed are removed before starting.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

const DATA: &str = "/var/lib/travial-e2e-hosts";
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Hosts {
    pub hosts: Vec<Host>,
    pub ssh: SshClient,
}

/// The test's own SSH client: a key, a known_hosts file, a configuration naming both, and
/// an `ssh` that uses it, first on the PATH the xtask is given. Removed when dropped.
pub struct SshClient {
    dir: PathBuf,
}

impl SshClient {
    pub fn new(name: &str) -> SshClient {
        let dir = PathBuf::from(DATA).join(format!("ssh-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        keygen(&dir.join("client_key"));
        let (config, known) = (dir.join("config"), dir.join("known_hosts"));
        std::fs::write(&known, "").unwrap();
        let client = SshClient { dir };
        client.strict_host_key_checking("yes");
        let dir = &client.dir;
        let wrapper = dir.join("bin/ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
                config.display()
            ),
        )
        .unwrap();
        run("chmod", &["755", wrapper.to_str().unwrap()]);
        client
    }

    /// The client's configuration with this `StrictHostKeyChecking`: `no` is what a user
    /// may have set, under which ssh connects despite a changed host key.
    pub fn strict_host_key_checking(&self, value: &str) {
        std::fs::write(
            self.dir.join("config"),
            format!(
                "Host *\n  IdentityFile {}\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking {value}\n  BatchMode yes\n",
                self.dir.join("client_key").display(),
                self.dir.join("known_hosts").display()
            ),
        )
        .unwrap();
    }

    /// The public key a server lets in.
    pub fn public_key(&self) -> PathBuf {
        self.dir.join("client_key.pub")
    }

    /// Trusts `host_key` (a public key file) for `address` (`10.201.1.2`, `[127.0.0.1]:2222`).
    pub fn trust(&self, address: &str, host_key: &Path) {
        let public = std::fs::read_to_string(host_key).unwrap();
        let key: Vec<&str> = public.split_whitespace().take(2).collect();
        let mut known = std::fs::read_to_string(self.dir.join("known_hosts")).unwrap();
        known.push_str(&format!("{address} {}\n", key.join(" ")));
        std::fs::write(self.dir.join("known_hosts"), known).unwrap();
    }

    /// PATH with this client's `ssh` first: how the xtask (and docker's ssh) reach servers.
    pub fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

impl Drop for SshClient {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub struct Host {
    pub n: u8,
    /// `10.201.N.2`.
    pub address: String,
    dir: PathBuf,
    /// Waited for once stopped, so that no zombie is left.
    dockerd: Option<std::process::Child>,
    /// The forwarders of `forward`, stopped with the host.
    forwarders: Vec<std::process::Child>,
}

impl Host {
    fn namespace(&self) -> String {
        format!("tv{}", self.n)
    }

    /// The engine's socket, for the test's own checks (never what the xtask uses).
    pub fn socket(&self) -> String {
        format!("unix:///run/travial-e2e-docker-{}.sock", self.n)
    }

    pub fn url(&self) -> String {
        format!("ssh://root@{}", self.address)
    }

    /// `docker ARGS…` on this host's engine, directly.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(["--host", &self.socket()])
            .args(args)
            .output()
            .unwrap()
    }

    /// `docker ARGS…` inside the host's network namespace (its loopback, its ports).
    pub fn inside(&self, program: &str, args: &[&str]) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.namespace()))
            .arg(program)
            .args(args)
            .output()
            .unwrap()
    }

    fn pidfile(&self, what: &str) -> PathBuf {
        self.dir.join(format!("{what}.pid"))
    }

    fn sshd_config(&self, host_key: &Path) -> String {
        format!(
            "ListenAddress {}:22\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             UsePAM no\nStrictModes no\nSetEnv DOCKER_HOST={}\n",
            self.address,
            host_key.display(),
            self.dir.join("authorized_keys").display(),
            self.pidfile("sshd").display(),
            self.socket(),
        )
    }

    /// (Re)starts sshd with `host_key` (a changed key is how a test sees a refusal).
    pub fn start_sshd(&self, host_key: &Path) {
        stop(&self.pidfile("sshd"));
        let config = self.dir.join("sshd_config");
        std::fs::write(&config, self.sshd_config(host_key)).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let started = self.inside(
            "/usr/sbin/sshd",
            &[
                "-f",
                config.to_str().unwrap(),
                "-E",
                self.dir.join("sshd.log").to_str().unwrap(),
            ],
        );
        assert!(started.status.success(), "sshd did not start: {started:?}");
        wait_until(&format!("sshd of {}", self.address), || {
            std::net::TcpStream::connect_timeout(
                &format!("{}:22", self.address).parse().unwrap(),
                Duration::from_millis(200),
            )
            .is_ok()
        });
    }

    /// How many SSH logins the host's server has accepted since it was made (its log).
    pub fn ssh_logins(&self) -> usize {
        std::fs::read_to_string(self.dir.join("sshd.log"))
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("Accepted publickey"))
            .count()
    }

    pub fn host_key(&self) -> PathBuf {
        self.dir.join("host_key")
    }

    /// This machine's `127.0.0.1:port` (a registry) at the host's own `127.0.0.1:port`,
    /// so that one name means the same server on both: through a Unix socket, which
    /// crosses network namespaces.
    pub fn forward(&mut self, port: u16) {
        let socket = self.dir.join(format!("forward-{port}.sock"));
        let _ = std::fs::remove_file(&socket);
        let here = Command::new("socat")
            .arg(format!("UNIX-LISTEN:{},fork", socket.display()))
            .arg(format!("TCP:127.0.0.1:{port}"))
            .spawn()
            .expect("socat: run .ci/run first, which installs it");
        self.forwarders.push(here);
        wait_until("the forwarder's socket", || socket.exists());
        let there = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.namespace()))
            .arg("socat")
            .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
            .arg(format!("UNIX-CONNECT:{}", socket.display()))
            .spawn()
            .unwrap();
        self.forwarders.push(there);
        wait_until("the forwarder in the host", || {
            self.inside(
                "bash",
                &["-c", &format!("exec 3<>/dev/tcp/127.0.0.1/{port}")],
            )
            .status
            .success()
        });
    }
}

impl Hosts {
    /// Hosts number `numbers` (10.201.N.2 each), up and reachable over SSH.
    pub fn start(numbers: &[u8]) -> Hosts {
        let name = numbers
            .iter()
            .map(u8::to_string)
            .collect::<Vec<_>>()
            .join("-");
        let mut hosts = Hosts {
            hosts: Vec::new(),
            ssh: SshClient::new(&name),
        };
        // Between hosts, through this machine, whose FORWARD policy dockerd sets to DROP.
        let rule = [
            "DOCKER-USER",
            "-s",
            "10.201.0.0/16",
            "-d",
            "10.201.0.0/16",
            "-j",
            "ACCEPT",
        ];
        let present = Command::new("iptables")
            .arg("-C")
            .args(rule)
            .output()
            .unwrap();
        if !present.status.success() {
            run("iptables", &[&["-I"][..], &rule].concat());
        }
        for &n in numbers {
            // Its engine's address pool is 10.(220 + n).0.0/16.
            assert!(n <= 35, "host number {n}: at most 35");
            let mut host = Host {
                n,
                address: format!("10.201.{n}.2"),
                dir: PathBuf::from(DATA).join(format!("host-{n}")),
                dockerd: None,
                forwarders: Vec::new(),
            };
            teardown(&mut host);
            // Pushed first: dropped (and torn down) with the others if the start fails.
            hosts.hosts.push(host);
            let host = hosts.hosts.last_mut().unwrap();
            start_host(host, &hosts.ssh.public_key());
            hosts.ssh.trust(
                &host.address.clone(),
                &host.host_key().with_extension("pub"),
            );
        }
        hosts
    }

    /// PATH with the test's `ssh` first: how the xtask (and docker's ssh) reach the hosts.
    pub fn path(&self) -> String {
        self.ssh.path()
    }

    /// Gives every host's engine the image, as a registry it pulls from would.
    pub fn load(&self, image: &str) {
        for host in &self.hosts {
            let mut save = Command::new("docker")
                .args(["save", image])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let load = Command::new("docker")
                .args(["--host", &host.socket(), "load", "--quiet"])
                .stdin(save.stdout.take().unwrap())
                .output()
                .unwrap();
            assert!(
                save.wait().unwrap().success() && load.status.success(),
                "loading {image} into {}: {load:?}",
                host.address
            );
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for host in &mut self.hosts {
            teardown(host);
        }
    }
}

fn start_host(host: &mut Host, client_key: &Path) {
    let (n, ns) = (host.n, host.namespace());
    std::fs::create_dir_all(&host.dir).unwrap();
    let (outside, inside) = (format!("tv{n}o"), format!("tv{n}i"));
    run("ip", &["netns", "add", &ns]);
    run(
        "ip",
        &[
            "link", "add", &outside, "type", "veth", "peer", "name", &inside,
        ],
    );
    run("ip", &["link", "set", &inside, "netns", &ns]);
    run(
        "ip",
        &["addr", "add", &format!("10.201.{n}.1/24"), "dev", &outside],
    );
    run("ip", &["link", "set", &outside, "up"]);
    run(
        "ip",
        &[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", host.address),
            "dev",
            &inside,
        ],
    );
    run("ip", &["-n", &ns, "link", "set", &inside, "up"]);
    run("ip", &["-n", &ns, "link", "set", "lo", "up"]);
    run(
        "ip",
        &[
            "-n",
            &ns,
            "route",
            "add",
            "default",
            "via",
            &format!("10.201.{n}.1"),
        ],
    );

    // Not `ip netns exec`: it remounts /sys, and dockerd then finds no devices cgroup.
    let log = std::fs::File::create(host.dir.join("dockerd.log")).unwrap();
    host.dockerd = Command::new("setsid")
        .arg("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .arg("dockerd")
        .args(["--data-root", host.dir.join("docker").to_str().unwrap()])
        .args(["--exec-root", &format!("/run/travial-e2e-exec-{n}")])
        .args(["--host", &host.socket()])
        .args(["--pidfile", host.pidfile("dockerd").to_str().unwrap()])
        .args(["--cgroup-parent", &format!("travial-e2e-{n}")])
        .args(["--bip", &format!("10.210.{n}.1/24")])
        .args([
            "--default-address-pool",
            &format!("base=10.{}.0.0/16,size=24", 220 + n),
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .ok();
    wait_until(&format!("the engine of {}", host.address), || {
        host.docker(&["info"]).status.success()
    });

    keygen(&host.host_key());
    std::fs::copy(client_key, host.dir.join("authorized_keys")).unwrap();
    host.start_sshd(&host.host_key());
}

/// Stops what a host runs and removes it; quiet about what is not there.
fn teardown(host: &mut Host) {
    for mut forwarder in host.forwarders.drain(..) {
        let _ = forwarder.kill();
        let _ = forwarder.wait();
    }
    stop(&host.pidfile("sshd"));
    stop(&host.pidfile("dockerd"));
    if let Some(mut dockerd) = host.dockerd.take() {
        let _ = dockerd.kill();
        let _ = dockerd.wait();
    }
    let _ = Command::new("ip")
        .args(["netns", "del", &host.namespace()])
        .output();
    let _ = Command::new("ip")
        .args(["link", "del", &format!("tv{}o", host.n)])
        .output();
    // A dockerd that was killed (or a machine restarted under it) leaves its data root
    // mounted on itself, and the mounts of its containers: removing the files under them
    // would stop halfway and the next engine would start on a broken data root.
    let exec_root = format!("/run/travial-e2e-exec-{}", host.n);
    for dir in [host.dir.join("docker"), PathBuf::from(&exec_root)] {
        let _ = Command::new("umount")
            .args(["--recursive", "--lazy"])
            .arg(&dir)
            .output();
    }
    let _ = std::fs::remove_dir_all(&host.dir);
    let _ = std::fs::remove_dir_all(&exec_root);
}

/// SIGTERM to the process of a pidfile, then SIGKILL if it is still there after a while.
fn stop(pidfile: &Path) {
    let Some(pid) = std::fs::read_to_string(pidfile)
        .ok()
        .and_then(|pid| pid.trim().parse::<u32>().ok())
    else {
        return;
    };
    let alive = || {
        Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    };
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .output();
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    if alive() {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .output();
    }
    let _ = std::fs::remove_file(pidfile);
}

pub fn keygen(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-f",
            path.to_str().unwrap(),
        ],
    );
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run {program} ({err}): run .ci/run first, which installs it")
        });
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + START_TIMEOUT;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start within {START_TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}
