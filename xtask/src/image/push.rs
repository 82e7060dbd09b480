//! `cargo xtask push`: every tag of the current revision, to Docker Hub or any registry.
//!
//! Credentials reach docker only through its standard input: never an argument, never
//! printed, never in an error message.

use anyhow::{Context, bail};
use xshell::Shell;

pub use super::reference::registry_of;
use super::{
    Image, Source, build,
    reference::{tag_set, validate_repository},
};
use crate::{
    cli::PushArgs,
    docker::{self, Command, Engine, Needs, Secret, images, run},
    plan::{self, Step},
};

/// Who logs in, and the secret they log in with (from DOCKER_PASSWORD or DOCKER_TOKEN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub registry: Option<String>,
    pub username: String,
    pub secret: Secret,
}

pub fn run(sh: &Shell, args: &PushArgs) -> anyhow::Result<()> {
    docker::preflight(sh, &Engine::Local, Needs::to_act(args.dry_run))?;
    let image = Image::from_compose(sh)?;
    let repo = args
        .repo
        .clone()
        .or_else(|| std::env::var("APP_IMAGE").ok());
    let target = target_repository(args.registry.as_deref(), repo.as_deref(), &image.repository);
    validate_repository(&target)?;
    let source = Source::read(sh)?;
    if source.revision.dirty && !args.allow_dirty {
        bail!(
            "the working tree has uncommitted changes, so the image would be `{}`: commit them, or pass --allow-dirty",
            source.revision.tag()
        );
    }
    let tags = tag_set(&source.version, &source.revision, &[]);
    let login = login_from_env(registry_of(&target))?;
    let built =
        !args.dry_run && images::has(sh, &Engine::Local, &image.reference(&tags[0]).to_string())?;
    let here = match built {
        true => Here::Built,
        false => Here::Missing,
    };
    if here == Here::Missing && !args.dry_run {
        // A missing image is built first: that needs what a build needs.
        docker::preflight(sh, &Engine::Local, Needs::ENGINE.and_build())?;
    }
    let steps = plan(&image, &source, &tags, &target, login, here)?;
    if args.dry_run {
        plan::print(&steps);
        return Ok(());
    }
    plan::execute(sh, &steps)?;
    let digest = pushed_digest(sh, &target, &tags[0])?;
    println!("pushed {target}@{digest}");
    for tag in &tags {
        println!("  {target}:{tag}");
    }
    Ok(())
}

/// Whether the image to push is here already (a dry run does not look: it shows the build).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Here {
    Built,
    Missing,
}

fn plan(
    image: &Image,
    source: &Source,
    tags: &[String],
    target: &str,
    login: Option<Login>,
    here: Here,
) -> anyhow::Result<Vec<Step>> {
    let mut steps: Vec<Step> = Vec::new();
    if here == Here::Missing {
        steps.extend(build::plan(image, source, tags, build::Cache::Use)?);
    }
    steps.extend(publish(image, tags, target, login));
    Ok(steps)
}

/// Each tag of the local image tagged for `target` and pushed there, after a login when
/// credentials are given.
pub fn publish(image: &Image, tags: &[String], target: &str, login: Option<Login>) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(login) = login {
        let mut line = vec!["login".to_owned()];
        line.extend(login.registry.clone());
        line.extend([
            "--username".to_owned(),
            login.username.clone(),
            "--password-stdin".to_owned(),
        ]);
        steps.push(Step::run(
            &format!("logged in as {}", login.username),
            Command::docker(line).stdin(login.secret),
            "the registry refused the credentials",
        ));
    }
    for tag in tags {
        let reference = format!("{target}:{tag}");
        if target != image.repository {
            steps.push(Step::run(
                &format!("tagged {reference}"),
                Command::docker(["tag", &image.reference(tag).to_string(), &reference]),
                "tagging failed",
            ));
        }
        steps.push(Step::run(
            &format!("pushed {reference}"),
            Command::docker(["push", "--quiet", &reference]),
            &format!("pushing {reference} failed"),
        ));
    }
    steps
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

/// Credentials from `DOCKER_USERNAME` with `DOCKER_PASSWORD` or `DOCKER_TOKEN`; without
/// them docker uses what it already has.
pub fn login_from_env(registry: Option<&str>) -> anyhow::Result<Option<Login>> {
    let set = |name: &str| std::env::var(name).is_ok_and(|value| !value.is_empty());
    let variable = ["DOCKER_PASSWORD", "DOCKER_TOKEN"]
        .into_iter()
        .find(|name| set(name));
    match (
        std::env::var("DOCKER_USERNAME")
            .ok()
            .filter(|u| !u.is_empty()),
        variable,
    ) {
        (Some(username), Some(variable)) => Ok(Some(Login {
            registry: registry.map(str::to_owned),
            username,
            secret: Secret::new(variable, std::env::var(variable).unwrap_or_default()),
        })),
        (None, None) => Ok(None),
        (Some(_), None) => {
            bail!("DOCKER_USERNAME is set but neither DOCKER_PASSWORD nor DOCKER_TOKEN: set one")
        }
        (None, Some(variable)) => bail!("{variable} is set but DOCKER_USERNAME is not: set it"),
    }
}

/// The manifest digest the registry returned, as docker recorded it after the push.
fn pushed_digest(sh: &Shell, target: &str, tag: &str) -> anyhow::Result<String> {
    let reference = format!("{target}:{tag}");
    let format = "{{range .RepoDigests}}{{println .}}{{end}}";
    let digests = run::read(
        sh,
        &Command::docker(["image", "inspect", "--format", format, &reference]),
    )?;
    digests
        .lines()
        .find_map(|line| line.strip_prefix(target)?.strip_prefix('@'))
        .map(str::to_owned)
        .with_context(|| format!("docker recorded no digest for {reference} after the push"))
}

#[cfg(test)]
mod tests {
    use super::*;
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
            migrations: 2,
        };
        (image, source)
    }

    #[test]
    fn the_dry_run_never_shows_the_secret() {
        let (image, source) = image_and_source();
        let login = Login {
            registry: Some("127.0.0.1:5000".into()),
            username: "ci".into(),
            secret: Secret::new("DOCKER_PASSWORD", "hunter2"),
        };
        let tags = vec!["abc1234".to_owned(), "latest".to_owned()];
        let steps = plan(
            &image,
            &source,
            &tags,
            "127.0.0.1:5000/travial/app",
            Some(login),
            Here::Built,
        )
        .unwrap();
        let lines: Vec<String> = steps.iter().map(ToString::to_string).collect();
        assert!(!format!("{lines:?}{steps:?}").contains("hunter2"));
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
        let steps = plan(&image, &source, &tags, "travial/app", None, Here::Missing).unwrap();
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
}
