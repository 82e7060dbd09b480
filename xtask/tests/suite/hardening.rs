//! What a security review found (issue: hardening), on this machine's engine: bad settings
//! are refused before anything changes, and the stack keeps serving; the proxy answers a
//! request too large with a 413; the app's image is never pulled from a registry the
//! deploy does not name. The swarm's part is in `swarm`.

use std::process::Command;

use crate::e2e::{
    self, DockerConfig, Sandbox, assert_success, exclusive, http, load::Load, stderr,
};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn web_container(sandbox: &Sandbox) -> String {
    let ps = sandbox.compose("dev", &["ps", "--quiet", "web", "proxy"]);
    stdout(&ps)
}

#[test]
fn bad_settings_are_refused_before_anything_changes() {
    let _one_at_a_time = exclusive();
    let sandbox = Sandbox::new("settings");
    assert_success(
        &sandbox.xtask(&["deploy", "dev", "--no-build"]),
        "deploy dev",
    );
    let before = web_container(&sandbox);
    let refused = |name: &str, value: &str, says: &str| {
        let deploy = sandbox.xtask_with(&[(name, value)], &["deploy", "dev", "--no-build"]);
        let log = stderr(&deploy);
        assert_eq!(deploy.status.code(), Some(1), "{name}={value:?}: {log}");
        assert!(log.contains(says), "{name}={value:?}: {log}");
        assert!(
            !log.contains("✓ db"),
            "{name}={value:?} started something: {log}"
        );
    };
    refused(
        "DOMAIN",
        "example.com {",
        "error: nothing was changed: DOMAIN is `example.com {`",
    );
    refused(
        "TLS_ISSUER",
        "letsencrypt",
        "TLS_ISSUER is `letsencrypt`: write acme or internal",
    );
    // What only Caddy itself can tell: its own check, in a throwaway proxy.
    refused(
        "TLS_ISSUER",
        "internal\n\tbogus",
        "Caddy refuses proxy's new configuration",
    );
    refused("POSTGRES_USER", "owner@evil.example", "POSTGRES_USER is ");
    refused("APP_DB_USER", "app/other", "APP_DB_USER is ");
    refused("POSTGRES_DB", "travial?host=evil", "POSTGRES_DB is ");
    assert_eq!(web_container(&sandbox), before, "something was replaced");
    assert_eq!(
        http("GET", &sandbox.web_url("/readyz"), None).unwrap().0,
        200
    );
}

#[test]
fn a_request_too_large_is_a_413_through_the_proxy_and_a_new_limit_applies_under_load_losing_nothing()
 {
    let _one_at_a_time = exclusive();
    let mut sandbox = Sandbox::new("body");
    assert_success(
        &sandbox.xtask(&["deploy", "dev", "--no-build"]),
        "deploy dev",
    );
    let player = format!(
        r#"{{"name":"ann","city":"{}","birthdate":"1990-05-17"}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    let (status, _) = http("POST", &sandbox.web_url("/api/players"), Some(&player)).unwrap();
    assert_eq!(status, 413);
    // A smaller body over the proxy's limit, then the limit raised: the running proxy
    // takes it (the app's own limit answers then), and is not recreated.
    let proxy = || {
        let ps = sandbox.compose("dev", &["ps", "--quiet", "proxy"]);
        stdout(&ps)
    };
    let before = proxy();
    let middle = format!(
        r#"{{"name":"bob","city":"{}","birthdate":"1990-05-17"}}"#,
        "x".repeat(1500 * 1024)
    );
    let url = sandbox.web_url("/api/players");
    assert_eq!(http("POST", &url, Some(&middle)).unwrap().0, 413);
    let ann = r#"{"name":"ann","city":"Rome","birthdate":"1990-05-17"}"#;
    assert_eq!(http("POST", &url, Some(ann)).unwrap().0, 201);
    let web = |sandbox: &Sandbox| stdout(&sandbox.compose("dev", &["ps", "--quiet", "web"]));
    let web_before = web(&sandbox);
    // Under load (about 100 requests a second), nothing lost: web is kept as it is, and the
    // proxy reloads its new configuration gracefully.
    sandbox.set("MAX_REQUEST_BODY", "3MB");
    let load = Load::start(&sandbox.web_url(""), "ann");
    let changed = sandbox.xtask(&["deploy", "dev", "--no-build"]);
    load.finish().assert_nothing_lost();
    assert_success(&changed, "a new limit");
    let log = stderr(&changed);
    assert!(
        log.contains("✓ web unchanged: ") && log.contains("proxy given its new configuration"),
        "{log}"
    );
    assert_eq!(
        web(&sandbox),
        web_before,
        "web was replaced for a change of the proxy's"
    );
    let (status, body) = http("POST", &url, Some(&middle)).unwrap();
    assert_eq!(status, 400, "{body}");
    sandbox.set("MAX_REQUEST_BODY", "1MB");
    let unchanged = sandbox.xtask(&["deploy", "dev", "--no-build"]);
    assert_success(&unchanged, "the limit back");
    assert_eq!(http("POST", &url, Some(&middle)).unwrap().0, 413);
    let now = {
        let ps = sandbox.compose("dev", &["ps", "--quiet", "proxy"]);
        stdout(&ps)
    };
    assert_eq!(now, before, "the proxy was recreated");
}

#[test]
fn the_app_image_is_never_pulled_from_a_registry_the_deploy_does_not_name() {
    let _one_at_a_time = exclusive();
    let registry = e2e::setting("TEST_REGISTRY");
    let config = DockerConfig::new("implicit");
    let password = std::fs::read_to_string(e2e::setting("TEST_REGISTRY_PASSWORD_FILE")).unwrap();
    let docker = |args: &[&str]| {
        Command::new("docker")
            .args(args)
            .env("DOCKER_CONFIG", config.path())
            .output()
            .unwrap()
    };
    let mut login = Command::new("docker")
        .args([
            "login",
            &registry,
            "--username",
            &e2e::setting("TEST_REGISTRY_USER"),
        ])
        .arg("--password-stdin")
        .env("DOCKER_CONFIG", config.path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    login
        .stdin
        .take()
        .unwrap()
        .write_all(password.trim().as_bytes())
        .unwrap();
    assert!(login.wait().unwrap().success());
    // As an image of that name would be on Docker Hub: in a registry, not here.
    let elsewhere = format!("{registry}/travial-e2e/app");
    let reference = format!("{elsewhere}:implicit");
    let app = format!("{}:{}", e2e::APP_IMAGE, e2e::APP_TAG);
    assert!(docker(&["tag", &app, &reference]).status.success());
    assert_success(&docker(&["push", "--quiet", &reference]), "push");
    assert!(docker(&["image", "rm", &reference]).status.success());

    let mut sandbox = Sandbox::new("implicit");
    sandbox.set("DOCKER_CONFIG", &config.path());
    sandbox.set("APP_IMAGE", &elsewhere);
    sandbox.set("APP_TAG", "implicit");
    for command in [&["deploy", "dev", "--no-build"][..], &["migrate", "dev"]] {
        let refused = sandbox.xtask(command);
        let log = stderr(&refused);
        assert_eq!(refused.status.code(), Some(1), "{command:?}: {log}");
        assert!(
            log.contains(&format!("{reference} is not on this machine")),
            "{command:?}: {log}"
        );
        let here = docker(&["image", "inspect", &reference]);
        assert!(!here.status.success(), "{command:?} pulled it");
    }
}

#[test]
fn writes_through_the_proxy_are_limited_by_the_address_the_proxy_saw() {
    let _one_at_a_time = exclusive();
    let mut sandbox = Sandbox::new("writes");
    sandbox.set("APP_WRITES_PER_MINUTE", "60");
    assert_success(
        &sandbox.xtask(&["deploy", "dev", "--no-build"]),
        "deploy dev",
    );
    // What the proxy sees of this machine: the network's gateway.
    let network = format!("{}_default", sandbox.project("dev"));
    let gateway = Command::new("docker")
        .args([
            "network",
            "inspect",
            "--format",
            "{{(index .IPAM.Config 0).Gateway}}",
            &network,
        ])
        .output()
        .unwrap();
    let gateway = stdout(&gateway).trim().to_owned();
    assert!(!gateway.is_empty());
    let url = sandbox.web_url("/api/players");
    let player = |n: u32| format!(r#"{{"name":"w{n}","city":"Rome","birthdate":"1990-05-17"}}"#);
    // 60 a minute: a burst of 6.
    for n in 0..6 {
        assert_eq!(http("POST", &url, Some(&player(n))).unwrap().0, 201);
    }
    let (status, body) = http("POST", &url, Some(&player(6))).unwrap();
    assert_eq!(status, 429, "{body}");
    // Keyed by the client's address as the proxy passed it, not by the proxy's own.
    assert!(
        body.contains(&format!("too many writes from {gateway}:")),
        "{body}"
    );
    for _ in 0..30 {
        assert_eq!(
            http("GET", &sandbox.web_url("/api/ranking"), None)
                .unwrap()
                .0,
            200
        );
    }
}
