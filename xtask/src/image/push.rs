//! `cargo xtask push`: every tag of the current revision, to Docker Hub or any registry.
//!
//! Credentials reach docker only through its standard input: never an argument, never
//! printed, never in an error message.

use std::{fmt, path::Path, time::Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use super::{
    Image, Source, build_plan,
    reference::{tag_set, validate_repository},
};
use crate::{
    docker,
    hint::Hint,
    interrupt, output,
    plan::{self, Step},
    process::{self, Docker},
};

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub registry: Option<String>,
    pub repo: Option<String>,
    pub allow_dirty: bool,
}

/// What the plan needs to know of the credentials: who, and which variable holds the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub registry: Option<String>,
    pub username: String,
    pub secret_variable: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PushStep {
    Docker(Step),
    Login(Login),
    Push(String),
}

impl fmt::Display for PushStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushStep::Docker(step) => step.fmt(f),
            PushStep::Login(login) => {
                let registry = login
                    .registry
                    .as_deref()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default();
                write!(
                    f,
                    "docker login{registry} --username {} --password-stdin  # password from ${}",
                    plan::shell_words(std::slice::from_ref(&login.username)),
                    login.secret_variable
                )
            }
            PushStep::Push(reference) => write!(f, "docker push --quiet {reference}"),
        }
    }
}

pub fn push(sh: &Shell, root: &Path, options: &PushOptions, dry_run: bool) -> anyhow::Result<()> {
    docker::preflight(sh, !dry_run)?;
    let image = Image::from_compose(sh, root)?;
    let repo = options
        .repo
        .clone()
        .or_else(|| std::env::var("APP_IMAGE").ok());
    let target = target_repository(
        options.registry.as_deref(),
        repo.as_deref(),
        &image.repository,
    );
    validate_repository(&target)?;
    let source = Source::read(sh)?;
    if source.revision.dirty && !options.allow_dirty {
        bail!(
            "the working tree has uncommitted changes, so the image would be `{}`: commit them, or pass --allow-dirty",
            source.revision.tag()
        );
    }
    let tags = tag_set(&source.version, &source.revision, &[]);
    let login = login_from_env(registry_of(&target))?;
    let built = !dry_run && image_exists(sh, &image.reference(&tags[0]));
    let steps = push_plan(&image, &source, &tags, &target, login, built)?;
    if dry_run {
        for step in &steps {
            println!("{step}");
        }
        return Ok(());
    }
    let labels: Vec<String> = steps.iter().map(PushStep::label).collect();
    let summary: Vec<(&str, Option<&str>)> =
        labels.iter().map(|label| (label.as_str(), None)).collect();
    for (index, step) in steps.iter().enumerate() {
        interrupt::set_state(plan::interrupted_state(&summary, index));
        execute(sh, step)?;
    }
    let digest = pushed_digest(sh, &target, &tags[0])?;
    println!("pushed {target}@{digest}");
    for tag in &tags {
        println!("  {target}:{tag}");
    }
    Ok(())
}

fn push_plan(
    image: &Image,
    source: &Source,
    tags: &[String],
    target: &str,
    login: Option<Login>,
    built: bool,
) -> anyhow::Result<Vec<PushStep>> {
    let mut steps: Vec<PushStep> = Vec::new();
    if !built {
        steps.extend(
            build_plan(image, source, tags, false)?
                .into_iter()
                .map(PushStep::Docker),
        );
    }
    steps.extend(login.map(PushStep::Login));
    for tag in tags {
        if target != image.repository {
            steps.push(PushStep::Docker(Step::docker(
                &format!("tagged {target}:{tag}"),
                vec![
                    "tag".to_owned(),
                    image.reference(tag),
                    format!("{target}:{tag}"),
                ],
                "tagging failed",
            )));
        }
        steps.push(PushStep::Push(format!("{target}:{tag}")));
    }
    Ok(steps)
}

impl PushStep {
    /// What the step has done when it ends.
    fn label(&self) -> String {
        match self {
            PushStep::Docker(step) => step.done.clone(),
            PushStep::Login(login) => format!("logged in as {}", login.username),
            PushStep::Push(reference) => format!("pushed {reference}"),
        }
    }
}

fn execute(sh: &Shell, step: &PushStep) -> anyhow::Result<()> {
    let started = Instant::now();
    match step {
        PushStep::Docker(step) => return plan::run_step(sh, step),
        PushStep::Login(login) => {
            output::command(&step.to_string());
            let secret = std::env::var(login.secret_variable).unwrap_or_default();
            let registry = login.registry.as_slice();
            let username = &login.username;
            let output = cmd!(
                sh,
                "docker login {registry...} --username {username} --password-stdin"
            )
            .stdin(secret)
            .secret()
            .ignore_status()
            .output()?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let reason =
                    process::last_line(&stderr).unwrap_or_else(|| "no reason given".to_owned());
                return Err(Hint::maybe(
                    format!("docker login failed: {reason}"),
                    docker::known_fix(&stderr),
                ));
            }
        }
        PushStep::Push(reference) => {
            let pushed = Docker::new(sh, ["push", "--quiet", reference]).capture()?;
            if !pushed.status.success() {
                return Err(push_failure(
                    reference,
                    &String::from_utf8_lossy(&pushed.stderr),
                ));
            }
        }
    }
    output::done(&step.label(), started.elapsed());
    Ok(())
}

/// `--registry` and `--repo` (or `APP_IMAGE`) replace the parts of the local name they give.
pub fn target_repository(registry: Option<&str>, repo: Option<&str>, local: &str) -> String {
    let repo = repo.unwrap_or(local);
    match registry {
        Some(registry) => format!(
            "{}/{}",
            registry.trim_end_matches('/'),
            strip_registry(repo)
        ),
        None => repo.to_owned(),
    }
}

fn strip_registry(repo: &str) -> &str {
    match registry_of(repo) {
        Some(registry) => &repo[registry.len() + 1..],
        None => repo,
    }
}

/// The registry host a repository names, `None` for Docker Hub.
fn registry_of(repo: &str) -> Option<&str> {
    let (first, _) = repo.split_once('/')?;
    (first.contains(['.', ':']) || first == "localhost").then_some(first)
}

/// Credentials from `DOCKER_USERNAME` with `DOCKER_PASSWORD` or `DOCKER_TOKEN`; without
/// them docker uses what it already has.
pub fn login_from_env(registry: Option<&str>) -> anyhow::Result<Option<Login>> {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.is_empty());
    let secret_variable = ["DOCKER_PASSWORD", "DOCKER_TOKEN"]
        .into_iter()
        .find(|name| set(name));
    match (
        std::env::var("DOCKER_USERNAME")
            .ok()
            .filter(|u| !u.is_empty()),
        secret_variable,
    ) {
        (Some(username), Some(secret_variable)) => Ok(Some(Login {
            registry: registry.map(str::to_owned),
            username,
            secret_variable,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => {
            bail!("DOCKER_USERNAME is set but neither DOCKER_PASSWORD nor DOCKER_TOKEN: set one")
        }
        (None, Some(variable)) => bail!("{variable} is set but DOCKER_USERNAME is not: set it"),
    }
}

fn image_exists(sh: &Shell, reference: &str) -> bool {
    let format = "{{.Id}}";
    cmd!(sh, "docker image inspect --format {format} {reference}")
        .quiet()
        .ignore_status()
        .output()
        .is_ok_and(|output| output.status.success())
}

/// The manifest digest the registry returned, as docker recorded it after the push.
fn pushed_digest(sh: &Shell, target: &str, tag: &str) -> anyhow::Result<String> {
    let reference = format!("{target}:{tag}");
    let format = "{{range .RepoDigests}}{{println .}}{{end}}";
    let digests = cmd!(sh, "docker image inspect --format {format} {reference}")
        .quiet()
        .read()?;
    digests
        .lines()
        .find_map(|line| line.strip_prefix(target)?.strip_prefix('@'))
        .map(str::to_owned)
        .with_context(|| format!("docker recorded no digest for {reference} after the push"))
}

/// The registry's reason, with what to do about it when that is known.
fn push_failure(reference: &str, stderr: &str) -> anyhow::Error {
    let reason = process::last_line(stderr).unwrap_or_else(|| "no reason given".to_owned());
    let lower = reason.to_lowercase();
    let (what, fix) = if [
        "unauthorized",
        "authentication required",
        "denied",
        "no basic auth credentials",
    ]
    .iter()
    .any(|word| lower.contains(word))
    {
        (
            "unauthorized",
            "set DOCKER_USERNAME and DOCKER_PASSWORD (or DOCKER_TOKEN), or run `docker login`",
        )
    } else if lower.contains("name unknown") || lower.contains("repository does not exist") {
        (
            "the registry has no such repository",
            "create it there, or check --repo",
        )
    } else if ["connection refused", "no such host", "timeout"]
        .iter()
        .any(|word| lower.contains(word))
    {
        (
            "the registry cannot be reached",
            "check --registry and the network",
        )
    } else {
        return Hint::maybe(
            format!("pushing {reference} failed: {reason}"),
            docker::known_fix(stderr),
        );
    };
    Hint::new(
        format!("pushing {reference} failed: {what} ({reason})"),
        fix,
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hint;
    use crate::image::reference::Revision;

    #[test]
    fn registry_and_repo_replace_parts_of_the_local_name() {
        assert_eq!(target_repository(None, None, "travial/app"), "travial/app");
        assert_eq!(
            target_repository(Some("127.0.0.1:5000"), None, "travial/app"),
            "127.0.0.1:5000/travial/app"
        );
        assert_eq!(
            target_repository(Some("ghcr.io/"), Some("me/game"), "travial/app"),
            "ghcr.io/me/game"
        );
        assert_eq!(
            target_repository(Some("ghcr.io"), Some("quay.io/me/game"), "x"),
            "ghcr.io/me/game"
        );
        assert_eq!(registry_of("127.0.0.1:5000/ns/app"), Some("127.0.0.1:5000"));
        assert_eq!(registry_of("travial/app"), None);
    }

    fn image_and_source() -> (Image, Source) {
        let image = Image {
            repository: "travial/app".into(),
            web_service: "web".into(),
        };
        let source = Source {
            version: "1.0.0".into(),
            repository_url: String::new(),
            revision: Revision {
                short_sha: "abc1234".into(),
                dirty: false,
                commit_time: "t".into(),
            },
            full_sha: "abc1234ff".into(),
        };
        (image, source)
    }

    #[test]
    fn the_dry_run_never_shows_the_secret() {
        let (image, source) = image_and_source();
        let login = Login {
            registry: Some("127.0.0.1:5000".into()),
            username: "ci".into(),
            secret_variable: "DOCKER_PASSWORD",
        };
        let tags = vec!["abc1234".to_owned(), "latest".to_owned()];
        let steps = push_plan(
            &image,
            &source,
            &tags,
            "127.0.0.1:5000/travial/app",
            Some(login),
            true,
        )
        .unwrap();
        let lines: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "docker login 127.0.0.1:5000 --username ci --password-stdin  # password from $DOCKER_PASSWORD",
                "docker tag travial/app:abc1234 127.0.0.1:5000/travial/app:abc1234",
                "docker push --quiet 127.0.0.1:5000/travial/app:abc1234",
                "docker tag travial/app:latest 127.0.0.1:5000/travial/app:latest",
                "docker push --quiet 127.0.0.1:5000/travial/app:latest",
            ]
        );
    }

    #[test]
    fn a_missing_image_is_built_first() {
        let (image, source) = image_and_source();
        let tags = vec!["abc1234".to_owned()];
        let steps = push_plan(&image, &source, &tags, "travial/app", None, false).unwrap();
        assert!(
            steps[0].to_string().contains("docker compose"),
            "{}",
            steps[0]
        );
        assert_eq!(
            steps[1].to_string(),
            "docker push --quiet travial/app:abc1234"
        );
    }

    #[test]
    fn push_failures_say_what_to_do() {
        let failure = |stderr: &str| {
            let err = push_failure("r/a:1", stderr);
            (err.to_string(), hint::of(&err).map(str::to_owned))
        };
        let (error, fix) =
            failure("The push refers to repository [r/a]\nno basic auth credentials\n");
        assert_eq!(
            error,
            "pushing r/a:1 failed: unauthorized (no basic auth credentials)"
        );
        assert!(fix.unwrap().starts_with("set DOCKER_USERNAME"));
        let (error, _) = failure("name unknown: repository name not known to registry");
        assert!(error.contains("no such repository"), "{error}");
        let (error, fix) = failure("dial tcp 127.0.0.1:5999: connect: connection refused");
        assert!(
            error.contains("cannot be reached") && fix.is_some(),
            "{error}"
        );
        assert_eq!(
            failure("something else"),
            ("pushing r/a:1 failed: something else".to_owned(), None)
        );
    }
}
