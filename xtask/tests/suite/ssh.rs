//! One SSH connection per command (issue: fast over SSH), on a real host over real SSH:
//! counted in the host's sshd log, for a deploy, a redeploy that changes nothing (and
//! keeps web's container), a failed deploy and a Ctrl-C, none of which leaves an ssh
//! process, socket or directory behind; a host key changed during a run cannot be used
//! by it (there is no second connection), and is refused by the next.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::e2e::{self, Running, Sandbox, assert_success, exclusive, hosts::Hosts, http, stderr};

/// Nothing of the xtask's SSH connections is left: no directory of sockets in its TMPDIR,
/// no process that names one.
fn assert_nothing_left(tmp: &Path, after: &str) {
    let dirs: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("travial-ssh-"))
        .collect();
    assert_eq!(dirs, Vec::<String>::new(), "left after {after}");
    let needle = tmp.display().to_string();
    let processes: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|entry| std::fs::read(entry.path().join("cmdline")).ok())
        .map(|cmdline| String::from_utf8_lossy(&cmdline).replace('\0', " "))
        .filter(|cmdline| cmdline.contains(&needle))
        .collect();
    assert_eq!(processes, Vec::<String>::new(), "running after {after}");
}

fn web_container(host: &e2e::hosts::Host, sandbox: &Sandbox) -> String {
    let project = format!(
        "label=com.docker.compose.project={}",
        sandbox.project("prod")
    );
    let ps = host.docker(&[
        "ps",
        "--quiet",
        "--filter",
        &project,
        "--filter",
        "label=com.docker.compose.service=web",
    ]);
    String::from_utf8_lossy(&ps.stdout).trim().to_owned()
}

#[test]
fn each_command_opens_one_connection_leaves_nothing_and_a_redeploy_keeps_web() {
    let _one_at_a_time = exclusive();
    let hosts = Hosts::start(&[14]);
    let host = &hosts.hosts[0];
    let mut sandbox = Sandbox::new("ssh");
    let tmp = PathBuf::from(format!("/tmp/{}-tmp", sandbox.prefix));
    std::fs::create_dir_all(&tmp).unwrap();
    sandbox.set("TMPDIR", tmp.to_str().unwrap());
    sandbox.set("PATH", &hosts.path());
    sandbox.set("POSTGRES_PASSWORD", "ssh-owner-secret");
    sandbox.set("APP_DB_PASSWORD", "ssh-app-secret");
    hosts.load(sandbox.var("POSTGRES_IMAGE"));
    hosts.load(sandbox.var("PROXY_IMAGE"));
    let url = host.url();
    let deploy = ["deploy", "prod", "--host", url.as_str(), "--no-build"];

    // A first deploy: the image sent, the stack made, over one connection.
    let logins = host.ssh_logins();
    assert_success(&sandbox.xtask(&deploy), "the first deploy");
    assert_eq!(
        host.ssh_logins() - logins,
        1,
        "connections of a first deploy"
    );
    assert_nothing_left(&tmp, "a deploy");
    let web = web_container(host, &sandbox);
    assert!(!web.is_empty());
    let site = format!("http://{}:{}", host.address, sandbox.var("WEB_PORT"));
    let player = r#"{"name":"ann","city":"Rome","birthdate":"1990-05-17"}"#;
    assert_eq!(
        http("POST", &format!("{site}/api/players"), Some(player))
            .unwrap()
            .0,
        201
    );

    // The same again: one connection, no migration container, web's container kept.
    let logins = host.ssh_logins();
    let again = sandbox.xtask(&deploy);
    assert_success(&again, "a redeploy of the same");
    let log = stderr(&again);
    assert_eq!(host.ssh_logins() - logins, 1, "connections of a redeploy");
    assert!(log.contains("✓ no migration to apply: "), "{log}");
    assert!(log.contains("✓ web unchanged: "), "{log}");
    assert!(!log.contains(" run --rm "), "{log}");
    assert_eq!(web_container(host, &sandbox), web, "web was replaced");
    assert_nothing_left(&tmp, "a redeploy");

    // A changed secret is a change: web is replaced (and migrate sets the role's password).
    sandbox.set("APP_DB_PASSWORD", "ssh-app-secret-2");
    let rotated = sandbox.xtask(&deploy);
    assert_success(&rotated, "a deploy with a new password");
    let log = stderr(&rotated);
    assert!(log.contains("✓ migrations applied"), "{log}");
    let replaced = web_container(host, &sandbox);
    assert_ne!(replaced, web, "web kept its old password: {log}");
    assert_eq!(
        http("GET", &format!("{site}/api/players/ann"), None)
            .unwrap()
            .0,
        200
    );

    // A deploy that fails (Caddy refuses the configuration): one connection, nothing left.
    let logins = host.ssh_logins();
    let refused = sandbox.xtask_with(&[("MAX_REQUEST_BODY", "lots")], &deploy);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("Caddy refuses"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        host.ssh_logins() - logins,
        1,
        "connections of a failed deploy"
    );
    assert_nothing_left(&tmp, "a failed deploy");

    // Ctrl-C midway: the lock released over the same connection, then nothing left.
    let logins = host.ssh_logins();
    let mut running = Running::start(&sandbox, &deploy);
    running.wait_for_line("$ ", Duration::from_secs(60));
    let (code, _) = running.interrupt();
    assert_eq!(code, Some(130), "{}", running.log());
    assert_eq!(
        host.ssh_logins() - logins,
        1,
        "connections of an interrupted deploy"
    );
    assert_nothing_left(&tmp, "Ctrl-C");

    // The host key changes while a deploy runs (one that replaces web, long enough): the
    // run goes on over its one connection (its lock, taken before, released at the end),
    // opens no other, and the next command refuses the new key, whatever the user's ssh
    // configuration says.
    sandbox.set("APP_DB_PASSWORD", "ssh-app-secret-3");
    let logins = host.ssh_logins();
    let mut running = Running::start(&sandbox, &deploy);
    running.wait_for_line("$ ", Duration::from_secs(60));
    let impostor = host.host_key().with_file_name("impostor_key");
    e2e::hosts::keygen(&impostor);
    host.start_sshd(&impostor);
    assert!(
        running.is_running(),
        "the deploy ended before the key changed"
    );
    let (code, log) = running.finish();
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(
        host.ssh_logins() - logins,
        1,
        "the run connected again: {log}"
    );
    hosts.ssh.strict_host_key_checking("no");
    let next = sandbox.xtask(&["status", "prod", "--host", &url]);
    assert_eq!(next.status.code(), Some(1));
    assert!(
        stderr(&next).starts_with(&format!(
            "error: the SSH host key of root@{} has changed",
            host.address
        )),
        "{}",
        stderr(&next)
    );
    assert_nothing_left(&tmp, "a refused host key");
    hosts.ssh.strict_host_key_checking("yes");
    host.start_sshd(&host.host_key());

    assert_success(
        &sandbox.xtask(&["down", "prod", "--host", &url, "--volumes", "--yes"]),
        "down --volumes",
    );
    assert_nothing_left(&tmp, "down");
    let _ = std::fs::remove_dir_all(&tmp);
}
