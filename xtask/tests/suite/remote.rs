//! Deploying to another host over SSH (issue: remote host), on a real separate engine in a
//! network namespace of its own, reached over real SSH, which starts without the app
//! image: the first deploy sends it, a redeploy sends nothing, the data survives, status,
//! logs and down work there, nothing runs on this machine's engine, and a changed host key
//! is refused.

use crate::e2e;

use crate::e2e::{Sandbox, assert_success, exclusive, hosts::Hosts, http, stderr};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_remote_host_from_a_first_deploy_to_down() {
    let _one_at_a_time = exclusive();
    let hosts = Hosts::start(&[11]);
    let host = &hosts.hosts[0];
    let mut sandbox = Sandbox::new("remote");
    sandbox.set("PATH", &hosts.path());
    sandbox.set("POSTGRES_PASSWORD", "remote-owner-secret");
    sandbox.set("APP_DB_PASSWORD", "remote-app-secret");
    hosts.load(sandbox.var("POSTGRES_IMAGE"));
    hosts.load(sandbox.var("PROXY_IMAGE"));
    let url = host.url();
    let on = format!("on root@{}", host.address);
    let web = format!("http://{}:{}", host.address, sandbox.var("WEB_PORT"));

    // The first deploy sends the image, and the app answers there.
    let first = sandbox.xtask(&["deploy", "prod", "--host", &url, "--no-build"]);
    assert_success(&first, "the first remote deploy");
    let log = stderr(&first);
    let sent = format!("✓ sent travial-e2e/app:test to root@{} (", host.address);
    assert!(log.contains(&sent), "{log}");
    for step in [
        format!("✓ db ready {on}"),
        format!("✓ migrations applied {on}"),
    ] {
        assert!(log.contains(&step), "no `{step}` in:\n{log}");
    }
    assert!(
        log.lines()
            .any(|line| line.starts_with("✓ web switched to ") && line.contains(&on)),
        "{log}"
    );
    assert!(
        stdout(&first).contains(&format!("prod is up {on}: {web}/")),
        "{}",
        stdout(&first)
    );
    let player = r#"{"name":"ann","city":"Rome","birthdate":"1990-05-17"}"#;
    let (status, body) = http("POST", &format!("{web}/api/players"), Some(player)).unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        sandbox.resources("prod"),
        Vec::<String>::new(),
        "something runs on this machine's engine"
    );

    // A redeploy of the same image sends nothing; the data is still there.
    let again = sandbox.xtask(&["deploy", "prod", "--host", &url, "--no-build"]);
    assert_success(&again, "the redeploy");
    let already = format!(
        "✓ root@{} has travial-e2e/app:test already (0 bytes sent)",
        host.address
    );
    assert!(stderr(&again).contains(&already), "{}", stderr(&again));
    assert_eq!(
        http("GET", &format!("{web}/api/players/ann"), None)
            .unwrap()
            .0,
        200
    );

    // Status and logs, there.
    let status = sandbox.xtask(&["status", "prod", "--host", &url, "--json"]);
    assert_success(&status, "status");
    let containers: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let running: Vec<&str> = containers
        .as_array()
        .unwrap()
        .iter()
        .filter(|container| container["state"] == "running")
        .map(|container| container["service"].as_str().unwrap())
        .collect();
    assert_eq!(running, ["backup", "db", "proxy", "web"]);
    let logs = sandbox.xtask(&["logs", "prod", "web", "--host", &url]);
    assert_success(&logs, "logs");
    assert!(stdout(&logs).contains("listening on"), "{}", stdout(&logs));

    // A changed host key is refused, never accepted silently.
    let impostor = host.host_key().with_file_name("impostor_key");
    e2e::hosts::keygen(&impostor);
    host.start_sshd(&impostor);
    // Also where the user's ssh configuration would connect anyway (with a warning).
    for checking in ["yes", "no"] {
        hosts.ssh.strict_host_key_checking(checking);
        let refused = sandbox.xtask(&["status", "prod", "--host", &url]);
        assert_eq!(refused.status.code(), Some(1), "{checking}");
        let log = stderr(&refused);
        assert!(
            log.starts_with(&format!(
                "error: the SSH host key of root@{} has changed",
                host.address
            )),
            "StrictHostKeyChecking {checking}: {log}"
        );
        assert!(log.contains("hint: if root@"), "{log}");
    }
    hosts.ssh.strict_host_key_checking("yes");
    host.start_sshd(&host.host_key());

    // Down keeps the data there; down --volumes removes it.
    assert_success(&sandbox.xtask(&["down", "prod", "--host", &url]), "down");
    let project = format!(
        "label=com.docker.compose.project={}",
        sandbox.project("prod")
    );
    let left = host.docker(&["ps", "--all", "--quiet", "--filter", &project]);
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "",
        "containers left after down"
    );
    // The history is kept there, apart from the stack.
    let history = sandbox.xtask(&["history", "prod", "--host", &url]);
    assert_success(&history, "history");
    let lines = stdout(&history);
    assert_eq!(
        lines
            .lines()
            .filter(|line| line.contains(" deploy "))
            .count(),
        2,
        "{lines}"
    );
    assert_success(
        &sandbox.xtask(&["deploy", "prod", "--host", &url, "--no-build"]),
        "deploy after down",
    );
    assert_eq!(
        http("GET", &format!("{web}/api/players/ann"), None)
            .unwrap()
            .0,
        200,
        "down lost the data"
    );
    assert_success(
        &sandbox.xtask(&["down", "prod", "--host", &url, "--volumes", "--yes"]),
        "down --volumes",
    );
    let volumes = host.docker(&["volume", "ls", "--quiet"]);
    assert_eq!(
        String::from_utf8_lossy(&volumes.stdout).trim(),
        "",
        "volumes left after down --volumes"
    );
    let containers = host.docker(&["ps", "--all", "--quiet"]);
    assert_eq!(
        String::from_utf8_lossy(&containers.stdout).trim(),
        "",
        "containers (the history's?) left after down --volumes"
    );
}

#[test]
fn through_a_registry_the_host_pulls_what_was_pushed_here() {
    let _one_at_a_time = exclusive();
    let mut hosts = Hosts::start(&[12]);
    let registry = e2e::setting("TEST_REGISTRY");
    let port: u16 = registry.rsplit(':').next().unwrap().parse().unwrap();
    hosts.hosts[0].forward(port);
    let host = &hosts.hosts[0];
    let mut sandbox = Sandbox::new("remote-registry");
    hosts.load(sandbox.var("POSTGRES_IMAGE"));
    hosts.load(sandbox.var("PROXY_IMAGE"));
    let config = e2e::DockerConfig::new("remote-registry");
    let password = std::fs::read_to_string(e2e::setting("TEST_REGISTRY_PASSWORD_FILE")).unwrap();
    for (name, value) in [
        ("PATH", hosts.path()),
        ("DOCKER_CONFIG", config.path()),
        ("DOCKER_USERNAME", e2e::setting("TEST_REGISTRY_USER")),
        ("DOCKER_PASSWORD", password.trim().to_owned()),
        ("POSTGRES_PASSWORD", "registry-owner-secret".to_owned()),
        ("APP_DB_PASSWORD", "registry-app-secret".to_owned()),
    ] {
        sandbox.set(name, &value);
    }

    let deploy = sandbox.xtask(&[
        "deploy",
        "prod",
        "--host",
        &host.url(),
        "--registry",
        &registry,
        "--no-build",
    ]);
    assert_success(&deploy, "deploy through the registry");
    let log = stderr(&deploy);
    let reference = format!("{registry}/travial-e2e/app:test");
    assert!(log.contains(&format!("✓ pushed {reference}")), "{log}");
    assert!(
        log.contains(&format!("✓ pulled {reference} on root@{}", host.address)),
        "{log}"
    );
    assert!(
        !log.contains("✓ sent"),
        "the image went over SSH too:\n{log}"
    );
    let running = host.docker(&[
        "ps",
        "--filter",
        "label=com.docker.compose.service=web",
        "--format",
        "{{.Image}}",
    ]);
    assert_eq!(String::from_utf8_lossy(&running.stdout).trim(), reference);
    let web = format!("http://{}:{}/readyz", host.address, sandbox.var("WEB_PORT"));
    assert_eq!(http("GET", &web, None).unwrap().0, 200);
}

#[test]
fn backup_psql_and_restore_go_through_the_hosts_engine() {
    let _one_at_a_time = exclusive();
    let hosts = Hosts::start(&[13]);
    let host = &hosts.hosts[0];
    let mut sandbox = Sandbox::new("remote-backup");
    sandbox.set("PATH", &hosts.path());
    sandbox.set("POSTGRES_PASSWORD", "remote-owner-secret");
    sandbox.set("APP_DB_PASSWORD", "remote-app-secret");
    hosts.load(sandbox.var("POSTGRES_IMAGE"));
    hosts.load(sandbox.var("PROXY_IMAGE"));
    let url = host.url();
    let web = format!("http://{}:{}", host.address, sandbox.var("WEB_PORT"));
    let on_host = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--host", &url]);
        sandbox.xtask(&all)
    };
    assert_success(&on_host(&["deploy", "prod", "--no-build"]), "deploy");
    let player = r#"{"name":"ann","city":"Rome","birthdate":"1990-05-17"}"#;
    let (status, body) = http("POST", &format!("{web}/api/players"), Some(player)).unwrap();
    assert_eq!(status, 201, "{body}");

    // The routine cleanups of a server leave the history (and its container) as it was.
    for prune in [
        &["system", "prune", "--force"][..],
        &["container", "prune", "--force"],
    ] {
        let pruned = host.docker(prune);
        assert!(pruned.status.success(), "{pruned:?}");
    }
    let history = on_host(&["history", "prod", "--json"]);
    let records: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(
        records[0]["command"], "deploy",
        "the history did not survive a prune"
    );

    let backup = on_host(&["backup", "prod"]);
    assert_success(&backup, "backup over SSH");
    assert!(
        stdout(&backup).contains("4 tables, 5 rows, migrations up to V3"),
        "{}",
        stdout(&backup)
    );
    let sql = sandbox.xtask_input(&["psql", "prod", "--host", &url], "DELETE FROM players;\n");
    assert_success(&sql, "psql over SSH");
    let gone = http("GET", &format!("{web}/api/players/ann"), None).unwrap();
    assert_eq!(gone.0, 404, "{}", gone.1);

    assert_success(&on_host(&["backup", "verify", "prod"]), "verify over SSH");
    assert_success(&on_host(&["restore", "prod", "--yes"]), "restore over SSH");
    let back = http("GET", &format!("{web}/api/players/ann"), None).unwrap();
    assert_eq!(back.0, 200, "{}", back.1);
    let list = on_host(&["backup", "list", "prod"]);
    assert_success(&list, "backup list");
    assert!(
        stdout(&list).contains("restore") && stdout(&list).contains("manual"),
        "{}",
        stdout(&list)
    );
}
