//! `cargo xtask build [--tag T]… [--no-cache]`: the app image through `docker compose
//! build`, then every tag of the release.

use std::{fmt, sync::Arc};

use anyhow::Context;
use xshell::Shell;

use super::{
    Image, Source,
    reference::{tag_set, validate_repository, validate_tag},
};
use crate::{
    cli::BuildArgs,
    docker::{self, Command, Engine, Needs, run},
    plan::{self, Action, Step, Task},
    stack::Stack,
};

pub fn run(sh: &Shell, args: &BuildArgs) -> anyhow::Result<()> {
    for tag in &args.tags {
        validate_tag(tag)?;
    }
    docker::preflight(sh, &Engine::Local, Needs::to_act(args.dry_run).and_build())?;
    let image = Image::from_compose(sh)?;
    let source = Source::read(sh)?;
    let tags = tag_set(&source.version, &source.revision, &args.tags);
    let cache = match args.no_cache {
        true => Cache::Ignore,
        false => Cache::Use,
    };
    let steps = plan(&image, &source, &tags, cache)?;
    if args.dry_run {
        plan::print(&steps);
        return Ok(());
    }
    plan::execute(sh, &steps)?;
    print_summary(sh, &image.repository, &tags)
}

/// Whether a build may take its layers from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cache {
    Use,
    Ignore,
}

/// `docker compose build` with the first tag, then `docker tag` for the others (instant).
pub fn plan(
    image: &Image,
    source: &Source,
    tags: &[String],
    cache: Cache,
) -> anyhow::Result<Vec<Step>> {
    validate_repository(&image.repository)?;
    for tag in tags {
        validate_tag(tag)?;
    }
    let (first, others) = tags.split_first().context("no tag to build")?;
    let mut args = vec!["build".to_owned()];
    if cache == Cache::Ignore {
        args.push("--no-cache".to_owned());
    }
    let migrations = source.migrations.to_string();
    for (name, value) in [
        ("VERSION", source.version.as_str()),
        ("REVISION", source.full_sha.as_str()),
        ("CREATED", source.revision.commit_time.as_str()),
        ("SOURCE", source.repository_url.as_str()),
        ("MIGRATIONS", migrations.as_str()),
    ] {
        args.push("--build-arg".to_owned());
        args.push(format!("{name}={value}"));
    }
    args.push(image.web_service.clone());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let build = Stack::base()
        .compose(&args)
        .env("APP_IMAGE", &image.repository)
        .env("APP_TAG", first);
    let mut steps = vec![Step::run(
        &format!("built {}:{first}", image.repository),
        build,
        "the image did not build: see the output above",
    )];
    for tag in others {
        steps.push(Step::run(
            &format!("tagged {tag}"),
            Command::docker([
                "tag",
                &image.reference(first).to_string(),
                &image.reference(tag).to_string(),
            ]),
            "tagging failed",
        ));
    }
    Ok(steps)
}

/// A deploy's build of a committed revision: nothing to do when the image at its tag was
/// built from that very commit (its `org.opencontainers.image.revision` label), as a clean
/// tree's image always is. A tree with changes is always built (BuildKit's cache decides
/// what that redoes), and so is everything `cargo xtask build` is asked for.
pub fn unless_built(build: Step, reference: String, source: &Source) -> Step {
    if source.revision.dirty {
        return build;
    }
    let Action::Run(command) = build.action else {
        return build;
    };
    Step::new(
        &build.done,
        Action::Task(Arc::new(UnlessBuilt {
            reference,
            revision: source.full_sha.clone(),
            build: command,
            done: build.done.clone(),
        })),
        &build.on_failure,
    )
}

#[derive(Debug)]
struct UnlessBuilt {
    reference: String,
    revision: String,
    build: Command,
    done: String,
}

const REVISION_LABEL: &str = "{{index .Config.Labels \"org.opencontainers.image.revision\"}}";

impl Task for UnlessBuilt {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        let built = Command::docker([
            "image",
            "inspect",
            "--format",
            REVISION_LABEL,
            &self.reference,
        ]);
        if run::read(sh, &built).is_ok_and(|revision| revision.trim() == self.revision) {
            return Ok(format!(
                "{} is built already, from this commit",
                self.reference
            ));
        }
        run::act(sh, &self.build)?;
        Ok(self.done.clone())
    }
}

impl fmt::Display for UnlessBuilt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}    # unless {} was built from this commit already",
            self.build, self.reference
        )
    }
}

fn print_summary(sh: &Shell, repository: &str, tags: &[String]) -> anyhow::Result<()> {
    let reference = format!("{repository}:{}", tags[0]);
    let inspect = Command::docker([
        "image",
        "inspect",
        "--format",
        "{{.Id}}\t{{.Size}}",
        &reference,
    ]);
    let summary = run::read(sh, &inspect)
        .with_context(|| format!("docker has no image {reference} after the build"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::reference::Revision;

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
            migrations: 2,
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
        let lines: Vec<String> = plan(&image(), &source(), &tags, Cache::Use)
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
                 --build-arg SOURCE=https://github.com/travial/travial --build-arg MIGRATIONS=2 web",
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
        let plan = plan(&image(), &source(), &tags, Cache::Ignore).unwrap();
        assert!(plan[0].to_string().contains(" build --no-cache "));
        let bad = vec!["0a1b2c3".to_owned(), "no/slash".to_owned()];
        assert!(super::plan(&image(), &source(), &bad, Cache::Use).is_err());
    }
}
