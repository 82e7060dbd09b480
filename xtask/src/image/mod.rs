//! `cargo xtask build` and `cargo xtask push`: the app image, tagged like a release.
//!
//! The image's name and build definition are the web service's in compose/compose.yaml,
//! the ones `deploy` uses: the build goes through `docker compose build` (BuildKit).

mod push;
pub mod reference;

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use xshell::{Shell, cmd};

use crate::{
    compose::{self, Merged},
    docker,
    plan::{self, Step},
    process::Docker,
};
pub use push::{PushOptions, push};
use reference::{Revision, tag_set, validate_repository, validate_tag};

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub extra_tags: Vec<String>,
    pub no_cache: bool,
}

/// What an image is built from: the app's version and the git revision.
#[derive(Debug, Clone)]
pub struct Source {
    pub version: String,
    pub repository_url: String,
    pub revision: Revision,
    pub full_sha: String,
}

/// The image's local name, as compose.yaml defines it (`APP_IMAGE` overrides it there).
#[derive(Debug, Clone)]
pub struct Image {
    pub repository: String,
    pub web_service: String,
}

pub fn build(sh: &Shell, root: &Path, options: &BuildOptions, dry_run: bool) -> anyhow::Result<()> {
    for tag in &options.extra_tags {
        validate_tag(tag)?;
    }
    docker::preflight(sh, !dry_run)?;
    let image = Image::from_compose(sh, root)?;
    let source = Source::read(sh)?;
    let tags = tag_set(&source.version, &source.revision, &options.extra_tags);
    let steps = build_plan(&image, &source, &tags, options.no_cache)?;
    if dry_run {
        plan::print(&steps);
        return Ok(());
    }
    plan::execute(sh, &steps)?;
    print_summary(sh, &image.repository, &tags)
}

/// `docker compose build` with the first tag, then `docker tag` for the others (instant).
pub fn build_plan(
    image: &Image,
    source: &Source,
    tags: &[String],
    no_cache: bool,
) -> anyhow::Result<Vec<Step>> {
    validate_repository(&image.repository)?;
    for tag in tags {
        validate_tag(tag)?;
    }
    let (first, others) = tags.split_first().context("no tag to build")?;
    let mut args = compose::base_args();
    args.push("build".to_owned());
    if no_cache {
        args.push("--no-cache".to_owned());
    }
    for (name, value) in [
        ("VERSION", source.version.as_str()),
        ("REVISION", source.full_sha.as_str()),
        ("CREATED", source.revision.commit_time.as_str()),
        ("SOURCE", source.repository_url.as_str()),
    ] {
        args.push("--build-arg".to_owned());
        args.push(format!("{name}={value}"));
    }
    args.push(image.web_service.clone());
    let mut steps = vec![
        Step::docker(
            &format!("built {}:{first}", image.repository),
            args,
            "the image did not build: see the output above",
        )
        .with_env("APP_IMAGE", &image.repository)
        .with_env("APP_TAG", first),
    ];
    for tag in others {
        steps.push(Step::docker(
            &format!("tagged {tag}"),
            vec![
                "tag".to_owned(),
                format!("{}:{first}", image.repository),
                format!("{}:{tag}", image.repository),
            ],
            "tagging failed",
        ));
    }
    Ok(steps)
}

fn print_summary(sh: &Shell, repository: &str, tags: &[String]) -> anyhow::Result<()> {
    let reference = format!("{repository}:{}", tags[0]);
    let inspect = Docker::new(
        sh,
        [
            "image",
            "inspect",
            "--format",
            "{{.Id}}\t{{.Size}}",
            &reference,
        ],
    )
    .output()?;
    anyhow::ensure!(
        inspect.status.success(),
        "docker has no image {reference} after the build"
    );
    let summary = String::from_utf8_lossy(&inspect.stdout);
    let (id, size) = summary
        .split_once('\t')
        .context("unexpected `docker image inspect` output")?;
    let megabytes = size.trim().parse::<f64>().unwrap_or_default() / 1e6;
    println!("image {id} ({megabytes:.1} MB)");
    for tag in tags {
        println!("  {repository}:{tag}");
    }
    Ok(())
}

impl Image {
    pub fn from_compose(sh: &Shell, root: &Path) -> anyhow::Result<Image> {
        let mut args = compose::base_args();
        args.push("config".to_owned());
        let output = Docker::new(sh, args).output()?;
        anyhow::ensure!(
            output.status.success(),
            "compose/compose.yaml is not valid: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        let merged = Merged::parse(&String::from_utf8_lossy(&output.stdout))?;
        let web_service = merged.xtask.web_service.clone();
        let reference = merged
            .service(&web_service)?
            .image
            .clone()
            .with_context(|| {
                format!(
                    "{} in {} has no image name",
                    web_service,
                    root.join("compose/compose.yaml").display()
                )
            })?;
        Ok(Image {
            repository: repository_of(&reference).to_owned(),
            web_service,
        })
    }

    pub fn reference(&self, tag: &str) -> String {
        format!("{}:{tag}", self.repository)
    }
}

/// `host:5000/ns/app:tag` → `host:5000/ns/app`: the tag is after the last `/`'s last `:`.
fn repository_of(reference: &str) -> &str {
    let name_start = reference.rfind('/').map_or(0, |slash| slash + 1);
    match reference[name_start..].rfind(':') {
        Some(colon) => &reference[..name_start + colon],
        None => reference,
    }
}

impl Source {
    pub fn read(sh: &Shell) -> anyhow::Result<Source> {
        #[derive(Deserialize)]
        struct Metadata {
            packages: Vec<Package>,
        }
        #[derive(Deserialize)]
        struct Package {
            name: String,
            version: String,
            repository: Option<String>,
        }
        let metadata = cmd!(sh, "cargo metadata --no-deps --format-version 1")
            .quiet()
            .read()?;
        let metadata: Metadata =
            serde_json::from_str(&metadata).context("cannot read `cargo metadata`")?;
        let app = metadata
            .packages
            .into_iter()
            .find(|package| package.name == "app")
            .context("the workspace has no `app` package")?;

        let git = |args: &[&str]| -> anyhow::Result<String> {
            let output = cmd!(sh, "git {args...}").quiet().read();
            output.context(
                "cannot read the git revision: the image's tags come from git, build from a clone",
            )
        };
        let full_sha = git(&["rev-parse", "HEAD"])?;
        Ok(Source {
            version: app.version,
            repository_url: app.repository.unwrap_or_default(),
            revision: Revision {
                short_sha: git(&["rev-parse", "--short", "HEAD"])?,
                dirty: !git(&["status", "--porcelain"])?.is_empty(),
                commit_time: git(&["log", "-1", "--format=%cI"])?,
            },
            full_sha,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source {
        Source {
            version: "1.4.2".into(),
            repository_url: "https://github.com/travial/travial".into(),
            revision: Revision {
                short_sha: "0a1b2c3".into(),
                dirty: false,
                commit_time: "2026-11-24T16:00:00+00:00".into(),
            },
            full_sha: "0a1b2c3d4e".into(),
        }
    }

    fn image() -> Image {
        Image {
            repository: "travial/app".into(),
            web_service: "web".into(),
        }
    }

    #[test]
    fn the_build_goes_through_compose_then_tags_locally() {
        let tags = tag_set("1.4.2", &source().revision, &[]);
        let lines: Vec<String> = build_plan(&image(), &source(), &tags, false)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "APP_IMAGE=travial/app APP_TAG=0a1b2c3 docker compose -p travial -f compose/compose.yaml build \
                 --build-arg VERSION=1.4.2 --build-arg REVISION=0a1b2c3d4e \
                 --build-arg CREATED=2026-11-24T16:00:00+00:00 \
                 --build-arg SOURCE=https://github.com/travial/travial web",
                "docker tag travial/app:0a1b2c3 travial/app:1.4.2",
                "docker tag travial/app:0a1b2c3 travial/app:1.4",
                "docker tag travial/app:0a1b2c3 travial/app:1",
                "docker tag travial/app:0a1b2c3 travial/app:latest",
            ]
        );
    }

    #[test]
    fn no_cache_is_passed_on_and_bad_tags_stop_the_plan() {
        let tags = vec!["0a1b2c3".to_owned()];
        let plan = build_plan(&image(), &source(), &tags, true).unwrap();
        assert!(plan[0].to_string().contains(" build --no-cache "));
        let bad = vec!["0a1b2c3".to_owned(), "no/slash".to_owned()];
        assert!(build_plan(&image(), &source(), &bad, false).is_err());
    }

    #[test]
    fn the_repository_is_the_reference_without_its_tag() {
        assert_eq!(repository_of("travial/app:latest"), "travial/app");
        assert_eq!(
            repository_of("127.0.0.1:5000/ns/app:1.0"),
            "127.0.0.1:5000/ns/app"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/ns/app"),
            "127.0.0.1:5000/ns/app"
        );
        assert_eq!(repository_of("app"), "app");
    }
}
