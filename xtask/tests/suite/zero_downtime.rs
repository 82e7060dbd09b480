//! Redeploys that drop nothing (issue: zero downtime), on the real engine with the Caddy
//! stand-in in front: while a client sends about 100 requests a second, a redeploy with a
//! new image, a deploy of an image that never gets ready (it must fail) and a rollback each
//! lose no request; a second deploy is refused at once, naming the lock; Ctrl-C releases
//! it; and with a domain, Caddy serves HTTPS with a certificate of its own (`tls internal`).

use crate::e2e;

use std::{
    process::Command,
    thread,
    time::{Duration, Instant},
};

use crate::e2e::{
    Running, Sandbox, assert_success, build, exclusive, http, image, load::Load, stderr,
};

fn prod(name: &str) -> Sandbox {
    let mut sandbox = Sandbox::new(name);
    sandbox.set("POSTGRES_PASSWORD", "zero-downtime-owner");
    sandbox.set("APP_DB_PASSWORD", "zero-downtime-app");
    sandbox
}

/// The image of the web container that serves (the only one after a deploy).
fn serving_image(sandbox: &Sandbox) -> Vec<String> {
    let project = format!(
        "label=com.docker.compose.project={}",
        sandbox.project("prod")
    );
    let listing = Command::new("docker")
        .args([
            "ps",
            "--filter",
            &project,
            "--filter",
            "label=com.docker.compose.service=web",
        ])
        .args(["--format", "{{.Image}}"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn deploy(sandbox: &mut Sandbox, tag: &str, extra: &[&str]) -> std::process::Output {
    sandbox.set("APP_TAG", tag);
    let mut args = vec!["deploy", "prod", "--no-build"];
    args.extend(extra);
    sandbox.xtask(&args)
}

#[test]
fn a_redeploy_a_failed_deploy_and_a_rollback_lose_no_request() {
    let _one_at_a_time = exclusive();
    let mut sandbox = prod("zero");
    let first = image("zero-1", "");
    let second = image("zero-2", "");
    // Exits at once (a usage error): never ready.
    let broken = image("zero-broken", "CMD [\"fly\"]");
    assert_success(&deploy(&mut sandbox, "zero-1", &[]), "the first deploy");
    let player = r#"{"name":"ann","city":"Rome","birthdate":"1990-05-17"}"#;
    assert_eq!(
        http("POST", &sandbox.web_url("/api/players"), Some(player))
            .unwrap()
            .0,
        201
    );

    let load = Load::start(&sandbox.web_url(""), "ann");
    thread::sleep(Duration::from_secs(1));

    let redeploy = deploy(&mut sandbox, "zero-2", &[]);
    assert_success(&redeploy, "the redeploy with a new image");
    assert_eq!(serving_image(&sandbox), std::slice::from_ref(&second));

    let failed = deploy(&mut sandbox, "zero-broken", &["--timeout", "20s"]);
    let log = stderr(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(log.contains("exited instead of getting ready"), "{log}");
    assert!(log.contains("keeps serving"), "{log}");
    assert_eq!(
        serving_image(&sandbox),
        std::slice::from_ref(&second),
        "the old web stopped serving"
    );

    let rollback = sandbox.xtask(&["rollback", "prod"]);
    assert_success(&rollback, "the rollback");
    assert!(
        String::from_utf8_lossy(&rollback.stdout).contains(&format!("prod is back on {first}"))
    );
    assert_eq!(
        serving_image(&sandbox),
        std::slice::from_ref(&first),
        "after the rollback"
    );

    thread::sleep(Duration::from_secs(1));
    let results = load.finish();
    // Sequential requests at ~100 a second: one that hung instead of failing shows here.
    results.assert_nothing_lost();

    let history = sandbox.xtask(&["history", "prod", "--json"]);
    assert_success(&history, "history");
    let records: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let summary: Vec<(String, String, String)> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|record| {
            let result = record["result"].as_str().unwrap();
            let result = result.split(':').next().unwrap().to_owned();
            (
                record["command"].as_str().unwrap().to_owned(),
                record["image"].as_str().unwrap().to_owned(),
                result,
            )
        })
        .collect();
    let row = |command: &str, image: &str, result: &str| {
        (command.to_owned(), image.to_owned(), result.to_owned())
    };
    assert_eq!(
        summary,
        [
            row("rollback", &first, "succeeded"),
            row("deploy", &broken, "failed"),
            row("deploy", &second, "succeeded"),
            row("deploy", &first, "succeeded"),
        ]
    );
}

#[test]
fn a_second_deploy_is_refused_at_once_and_ctrl_c_releases_the_lock() {
    let _one_at_a_time = exclusive();
    let mut sandbox = prod("lock");
    // Migrates like the app, but its web never serves: never ready, never exits, until the
    // deploy gives up.
    let app = format!("{}:{}", e2e::APP_IMAGE, e2e::APP_TAG);
    build(
        "lock-stuck",
        &format!(
            "FROM {app} AS app\nFROM {}\nCOPY --from=app /usr/local/bin/app /usr/local/bin/app\n\
             ENTRYPOINT [\"bash\", \"-c\", \"if [ \\\"$0\\\" = migrate ]; then exec app migrate; fi; exec sleep 600\"]\n\
             CMD [\"serve\"]\n",
            sandbox.var("POSTGRES_IMAGE")
        ),
    );
    assert_success(&deploy(&mut sandbox, "test", &[]), "the first deploy");

    sandbox.set("APP_TAG", "lock-stuck");
    let mut stuck = Running::start(
        &sandbox,
        &["deploy", "prod", "--no-build", "--timeout", "120s"],
    );
    stuck.wait_for_line("$ APP_IMAGE=", Duration::from_secs(60));
    // The database has every migration already: none runs, and web starts next.
    stuck.wait_for_line("✓ no migration to apply", Duration::from_secs(60));
    thread::sleep(Duration::from_secs(1));

    let started = Instant::now();
    let refused = deploy(&mut sandbox, "test", &[]);
    let log = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{log}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused after {:?}",
        started.elapsed()
    );
    let error = log
        .lines()
        .find(|line| line.starts_with("error:"))
        .unwrap_or_default();
    assert!(
        error.starts_with("error: prod is locked: a deploy by "),
        "{log}"
    );
    assert!(error.contains(" since 20"), "{log}");
    assert!(log.contains("--break-lock"), "{log}");
    // The routine cleanup of a server (often from cron) removes every stopped or created
    // container: the lock runs, so it stays, and a deploy is still refused.
    let pruned = Command::new("docker")
        .args(["container", "prune", "--force"])
        .output()
        .unwrap();
    assert_success(&pruned, "docker container prune");
    let refused = deploy(&mut sandbox, "test", &[]);
    assert!(
        stderr(&refused).contains("error: prod is locked: a deploy by "),
        "the lock did not survive a prune: {}",
        stderr(&refused)
    );

    let (code, _) = stuck.interrupt();
    assert_eq!(code, Some(130), "{}", stuck.log());
    let lock = format!("{}-xtask-lock", sandbox.project("prod"));
    let inspect = Command::new("docker")
        .args(["container", "inspect", &lock])
        .output()
        .unwrap();
    assert!(
        !inspect.status.success(),
        "the lock is still held after Ctrl-C"
    );
    assert_eq!(
        serving_image(&sandbox).len(),
        1,
        "the stuck web was left running"
    );

    let after = deploy(&mut sandbox, "test", &[]);
    assert_success(&after, "a deploy after the interrupted one");
    let history = sandbox.xtask(&["history", "prod"]);
    let history = String::from_utf8_lossy(&history.stdout).into_owned();
    assert!(history.contains("lock-stuck  interrupted"), "{history}");

    // A lock left by a command that was killed: deploy, rollback and down are refused, naming
    // it, until --break-lock removes it.
    let stale = Command::new("docker")
        .args(["run", "--detach", "--name", &lock])
        .args(["--label", "travial.lock.command=deploy"])
        .args(["--label", "travial.lock.by=gone@elsewhere"])
        .args(["--label", "travial.lock.since=2026-01-01T00:00:00Z"])
        .arg("travial-xtask/state:2")
        .output()
        .unwrap();
    assert_success(&stale, "a stale lock");
    for command in [
        &["deploy", "prod", "--no-build"][..],
        &["rollback", "prod"],
        &["down", "prod"],
    ] {
        let refused = sandbox.xtask(command);
        let log = stderr(&refused);
        assert_eq!(refused.status.code(), Some(1), "{command:?}: {log}");
        assert!(
            log.contains(
                "error: prod is locked: a deploy by gone@elsewhere since 2026-01-01T00:00:00Z"
            ),
            "{command:?}: {log}"
        );
    }
    let broken = deploy(&mut sandbox, "test", &["--break-lock"]);
    assert_success(&broken, "deploy --break-lock");
    assert!(stderr(&broken).contains("broke the lock of a deploy by gone@elsewhere"));

    // A web that never gets ready (it neither answers nor exits) is given up on at the
    // deadline, its logs shown, and the old one keeps serving.
    let never = deploy(&mut sandbox, "lock-stuck", &["--timeout", "5s"]);
    let log = stderr(&never);
    assert_eq!(never.status.code(), Some(1), "{log}");
    assert!(log.contains("was not ready within 5 s"), "{log}");
    assert!(
        log.contains("--- what went wrong, as the new web's logs tell it:"),
        "{log}"
    );
    assert!(log.contains("keeps serving"), "{log}");
    let test_image = format!("{}:test", e2e::APP_IMAGE);
    assert_eq!(serving_image(&sandbox), [test_image]);
}

/// Migrations are never reverted: a rollback to an image that knows fewer than the
/// database has applied is refused, unless forced.
#[test]
fn a_rollback_to_an_image_older_than_the_schema_needs_force() {
    let _one_at_a_time = exclusive();
    let mut sandbox = prod("schema");
    // Claims to know only V1 (as a release before V2 and V3 would); otherwise the real app.
    let app = format!("{}:{}", e2e::APP_IMAGE, e2e::APP_TAG);
    let old = build(
        "schema-v1",
        &format!(
            "FROM {app} AS app\nFROM {}\nCOPY --from=app /usr/local/bin/app /usr/local/bin/app.real\n\
             RUN printf '#!/bin/bash\\nif [ \"$1\" = migrations ]; then echo 1; else exec app.real \"$@\"; fi\\n' \
             > /usr/local/bin/app && chmod 755 /usr/local/bin/app\n\
             ENTRYPOINT [\"app\"]\nCMD [\"serve\"]\n",
            sandbox.var("POSTGRES_IMAGE")
        ),
    );
    assert_success(&deploy(&mut sandbox, "schema-v1", &[]), "the older release");
    assert_success(&deploy(&mut sandbox, "test", &[]), "the newer release");

    let refused = sandbox.xtask(&["rollback", "prod"]);
    let log = stderr(&refused);
    assert_eq!(refused.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "error: {old} knows the migrations up to V1, and the database has V3 applied"
        )),
        "{log}"
    );
    assert!(log.contains("hint: "), "{log}");
    assert!(log.contains("roll back anyway with --force"), "{log}");
    let test_image = format!("{}:test", e2e::APP_IMAGE);
    assert_eq!(serving_image(&sandbox), std::slice::from_ref(&test_image));

    let forced = sandbox.xtask(&["rollback", "prod", "--force"]);
    assert_success(&forced, "rollback --force");
    assert_eq!(serving_image(&sandbox), [old]);
}

#[test]
fn with_a_domain_caddy_serves_https_with_a_certificate_of_its_own() {
    let _one_at_a_time = exclusive();
    let mut sandbox = prod("https");
    sandbox.set("DOMAIN", "travial.test");
    sandbox.set("TLS_ISSUER", "internal");
    assert_success(&deploy(&mut sandbox, "test", &[]), "deploy with a domain");
    let root = sandbox.compose(
        "prod",
        &[
            "exec",
            "-T",
            "proxy",
            "cat",
            "/data/caddy/pki/authorities/local/root.crt",
        ],
    );
    assert_success(&root, "Caddy's root certificate");
    let ca = std::env::temp_dir().join(format!("travial-e2e-ca-{}.crt", std::process::id()));
    std::fs::write(&ca, &root.stdout).unwrap();
    let port = sandbox.var("HTTPS_PORT").to_owned();
    let url = format!("https://travial.test:{port}/readyz");
    let resolve = format!("travial.test:{port}:127.0.0.1");
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        let curl = Command::new("curl")
            .args([
                "--silent",
                "--show-error",
                "--resolve",
                &resolve,
                "--cacert",
                ca.to_str().unwrap(),
                &url,
            ])
            .output()
            .unwrap();
        if curl.status.success() || Instant::now() > deadline {
            break curl;
        }
        thread::sleep(Duration::from_millis(250));
    };
    let _ = std::fs::remove_file(&ca);
    assert_success(&answer, "GET over HTTPS, the certificate checked");
    assert_eq!(
        String::from_utf8_lossy(&answer.stdout),
        r#"{"status":"ready"}"#
    );
}
