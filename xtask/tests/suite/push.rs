//! `cargo xtask build` and `cargo xtask push` end to end: the real engine and the real
//! registry (Debian's docker-registry with htpasswd authentication) that `.ci/docker` starts.

use crate::e2e;

use std::{
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::Duration,
};

use crate::e2e::{DockerConfig, Sandbox, assert_success, exclusive, http, setting, stderr};

fn registry_password() -> String {
    let file = setting("TEST_REGISTRY_PASSWORD_FILE");
    std::fs::read_to_string(&file).unwrap().trim().to_owned()
}

/// Pushes with `--allow-dirty`: the tests run in whatever state the tree is.
fn push(sandbox: &Sandbox, config: &DockerConfig, repo: &str, credentials: bool) -> Command {
    let mut command = push_without_allow_dirty(sandbox, config, repo, credentials);
    command.arg("--allow-dirty");
    command
}

fn push_without_allow_dirty(
    sandbox: &Sandbox,
    config: &DockerConfig,
    repo: &str,
    credentials: bool,
) -> Command {
    let mut command = Command::new(e2e::XTASK);
    command
        .args([
            "push",
            "--registry",
            &setting("TEST_REGISTRY"),
            "--repo",
            repo,
        ])
        .current_dir(e2e::root())
        .envs(sandbox.vars.iter().cloned())
        .env("DOCKER_CONFIG", &config.0)
        .env_remove("DOCKER_USERNAME")
        .env_remove("DOCKER_PASSWORD")
        .env_remove("DOCKER_TOKEN");
    if credentials {
        command
            .env("DOCKER_USERNAME", setting("TEST_REGISTRY_USER"))
            .env("DOCKER_PASSWORD", registry_password());
    }
    command
}

/// The registry's own answer, with basic authentication built here (no curl: its command
/// line would show the password to the process-list check).
fn registry_get(path: &str, accept: &str) -> (u16, String, Option<String>) {
    let credentials = format!("{}:{}", setting("TEST_REGISTRY_USER"), registry_password());
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(&format!("http://{}{path}", setting("TEST_REGISTRY")))
        .header(
            "authorization",
            &format!("Basic {}", base64(credentials.as_bytes())),
        )
        .header("accept", accept)
        .call()
        .unwrap();
    let digest = response
        .headers()
        .get("docker-content-digest")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.body_mut().read_to_string().unwrap();
    (response.status().as_u16(), body, digest)
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_matches_the_rfc_examples() {
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foobar"), "Zm9vYmFy");
}

#[test]
fn push_without_credentials_is_refused_as_unauthorized() {
    let _one_at_a_time = exclusive();
    let sandbox = Sandbox::new("push-anon");
    let config = DockerConfig::new("anon");
    let output = push(&sandbox, &config, "e2e/anonymous", false)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let log = stderr(&output);
    let error: Vec<&str> = log
        .lines()
        .filter(|line| line.starts_with("error:"))
        .collect();
    assert_eq!(error.len(), 1, "{log}");
    assert!(error[0].contains("unauthorized"), "{log}");
}

#[test]
fn push_with_credentials_publishes_every_tag_and_the_digest_runs() {
    let _one_at_a_time = exclusive();
    let sandbox = Sandbox::new("push");
    let config = DockerConfig::new("auth");
    let password = registry_password();

    // Watch the process list for the password while the push runs.
    let pushing = AtomicBool::new(true);
    let output: Output = thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut leaks = Vec::new();
            while pushing.load(Ordering::Relaxed) {
                let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
                let list = String::from_utf8_lossy(&ps.stdout).into_owned();
                leaks.extend(
                    list.lines()
                        .filter(|line| line.contains(&password))
                        .map(str::to_owned),
                );
                thread::sleep(Duration::from_millis(20));
            }
            leaks
        });
        let output = push(&sandbox, &config, "e2e/travial", true)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        pushing.store(false, Ordering::Relaxed);
        let leaks = watcher.join().unwrap();
        assert!(
            leaks.is_empty(),
            "the password was on a command line: {leaks:?}"
        );
        output
    });
    assert_success(&output, "push");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let all_output = format!("{stdout}{}", stderr(&output));
    assert!(!all_output.contains(&password), "the password was printed");

    let target = format!("{}/e2e/travial", setting("TEST_REGISTRY"));
    let printed_digest = stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("pushed {target}@")))
        .unwrap_or_else(|| panic!("no digest printed:\n{stdout}"))
        .to_owned();
    let pushed_tags: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix(&format!("{target}:")))
        .collect();
    assert!(pushed_tags.len() >= 4, "{stdout}");

    let (status, list, _) = registry_get("/v2/e2e/travial/tags/list", "application/json");
    assert_eq!(status, 200, "{list}");
    for tag in &pushed_tags {
        assert!(
            list.contains(&format!("\"{tag}\"")),
            "{tag} is not in the registry: {list}"
        );
    }
    let manifest_types = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";
    let (status, _, registry_digest) = registry_get(
        &format!("/v2/e2e/travial/manifests/{}", pushed_tags[0]),
        manifest_types,
    );
    assert_eq!(status, 200);
    assert_eq!(registry_digest.as_deref(), Some(printed_digest.as_str()));

    // The image, pulled back by digest, runs and answers its liveness probe.
    let by_digest = format!("{target}@{printed_digest}");
    let pull = Command::new("docker")
        .args(["pull", "--quiet", &by_digest])
        .env("DOCKER_CONFIG", &config.0)
        .output()
        .unwrap();
    assert_success(&pull, "pull by digest");
    let port = e2e::free_port();
    let run = Command::new("docker")
        .args([
            "run",
            "--detach",
            "--rm",
            "--publish",
            &format!("127.0.0.1:{port}:8000"),
        ])
        .args([
            "--env",
            "DATABASE_URL=postgres://nobody@127.0.0.1:1/none",
            &by_digest,
        ])
        .output()
        .unwrap();
    assert_success(&run, "run the pulled image");
    let container = String::from_utf8_lossy(&run.stdout).trim().to_owned();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let healthy = (0..50).any(|_| {
        thread::sleep(Duration::from_millis(200));
        http("GET", &url, None).is_ok_and(|(status, _)| status == 200)
    });
    let _ = Command::new("docker")
        .args(["rm", "--force", &container])
        .output();
    assert!(healthy, "the pulled image did not answer /healthz");

    // Nor is the password anywhere in the image.
    for inspect in [
        &["image", "inspect", &by_digest][..],
        &["history", "--no-trunc", &by_digest],
    ] {
        let output = Command::new("docker").args(inspect).output().unwrap();
        assert_success(&output, "inspect the image");
        assert!(
            !String::from_utf8_lossy(&output.stdout).contains(&password),
            "{inspect:?} shows the password"
        );
    }
}

#[test]
fn a_dirty_tree_is_refused_without_allow_dirty() {
    let _one_at_a_time = exclusive();
    let sandbox = Sandbox::new("dirty");
    let config = DockerConfig::new("dirty");
    // An untracked file makes the tree dirty whatever state it was in.
    let marker = e2e::root().join("dirty-tree-marker.tmp");
    std::fs::write(&marker, "").unwrap();
    let output = push_without_allow_dirty(&sandbox, &config, "e2e/dirty", true)
        .output()
        .unwrap();
    std::fs::remove_file(&marker).unwrap();
    assert_eq!(output.status.code(), Some(1));
    let log = stderr(&output);
    assert!(
        log.contains("uncommitted changes") && log.contains("--allow-dirty"),
        "{log}"
    );
    assert!(!log.contains("$ docker push"), "{log}");
}

#[test]
fn an_invalid_tag_is_refused_before_docker_runs() {
    let output = Command::new(e2e::XTASK)
        .args(["build", "--tag", "not/a-tag"])
        .current_dir(e2e::root())
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let log = stderr(&output);
    assert!(
        log.starts_with("error: `not/a-tag` is not a valid image tag"),
        "{log}"
    );
}

#[test]
fn build_tags_labels_and_rebuilds_to_the_same_image() {
    let _one_at_a_time = exclusive();
    let sandbox = Sandbox::new("build");
    let image_id = |output: &Output| -> String {
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        stdout
            .lines()
            .find_map(|line| {
                line.strip_prefix("image ")?
                    .split(' ')
                    .next()
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no `image ID (SIZE)` line:\n{stdout}"))
    };
    let first = sandbox.xtask(&["build", "--tag", "e2e-extra"]);
    assert_success(&first, "build");
    let stdout = String::from_utf8_lossy(&first.stdout).into_owned();
    for tag in ["e2e-extra", "0.1.0", "0.1", "0"] {
        assert!(
            stdout.contains(&format!("  {}:{tag}\n", e2e::APP_IMAGE)),
            "no tag {tag}:\n{stdout}"
        );
    }
    assert!(stdout.contains(" MB)"), "no size:\n{stdout}");

    // Nothing changed, so the second build is all cache hits: the very same image.
    let second = sandbox.xtask(&["build", "--tag", "e2e-extra"]);
    assert_success(&second, "second build");
    assert_eq!(image_id(&first), image_id(&second));

    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(e2e::root())
        .output()
        .unwrap();
    let label = "{{index .Config.Labels \"org.opencontainers.image.revision\"}}";
    let reference = format!("{}:e2e-extra", e2e::APP_IMAGE);
    let revision = Command::new("docker")
        .args(["image", "inspect", "--format", label, &reference])
        .output()
        .unwrap();
    assert_success(&revision, "inspect the labels");
    assert_eq!(
        String::from_utf8_lossy(&revision.stdout).trim(),
        String::from_utf8_lossy(&head.stdout).trim()
    );
}
