//! Which image a deploy runs, and how it reaches the engine: the app's image at an
//! immutable tag (the git revision, unless APP_TAG names one), built here, then sent over
//! SSH to a remote engine that lacks it, or pushed to a registry and pulled there.

use anyhow::{Context, bail};
use xshell::Shell;

use super::{Model, Stack};
use crate::{
    docker::{Engine, images},
    hint::Hint,
    image::{Image, Reference, Source, build, push},
    plan::Step,
};

#[derive(Debug, Clone)]
pub struct Release {
    /// The app image as built here: its repository, and the service that builds it.
    pub image: Image,
    /// What the stack runs: the image here (`travial/app:0a1b2c3`), or its copy in the
    /// registry.
    pub runs: Reference,
    pub registry: Option<String>,
    /// In the registry already (a rollback's image): pulled, never pushed again.
    pub published: bool,
    /// What a build labels the image with; read only when building.
    pub source: Option<Source>,
}

/// Whether a command builds the image here first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    Image,
    Skip,
}

/// What deploy and migrate decide the release from.
pub struct Wanted<'a> {
    pub build: Build,
    pub registry: Option<&'a str>,
    pub allow_dirty: bool,
}

impl Release {
    pub fn choose(
        sh: &Shell,
        stack: &Stack,
        model: &Model,
        wanted: &Wanted,
    ) -> anyhow::Result<Release> {
        let image = Image::from_model(model)?;
        let given = std::env::var("APP_TAG").ok().filter(|tag| !tag.is_empty());
        // The source is read when it names the tag, or labels a build.
        let (tag, source) = match (given, wanted.build) {
            (Some(tag), Build::Skip) => (tag, None),
            (given, _) => {
                let source = Source::read(sh)?;
                (given.unwrap_or_else(|| source.revision.tag()), Some(source))
            }
        };
        let dirty = source.as_ref().is_some_and(|source| source.revision.dirty);
        check_immutable(stack.engine(), &tag, dirty && !wanted.allow_dirty)?;
        let registry = wanted
            .registry
            .or(model.xtask.registry.as_deref())
            .filter(|registry| !registry.is_empty())
            .map(str::to_owned);
        let repository = match &registry {
            Some(registry) => push::target_repository(Some(registry), None, &image.repository),
            None => image.repository.clone(),
        };
        Ok(Release {
            image,
            runs: Reference::new(repository, tag),
            registry,
            published: false,
            source,
        })
    }

    /// An image deployed before (a rollback's), as the history names it: pulled from the
    /// registry its name gives, if any, and never pushed again.
    pub fn deployed(image: Reference, web_service: &str) -> Release {
        let registry = image.registry().map(str::to_owned);
        Release {
            image: Image {
                repository: image.repository.clone(),
                web_service: web_service.to_owned(),
            },
            published: registry.is_some(),
            registry,
            runs: image,
            source: None,
        }
    }

    /// Build here (when asked), then make the image the engine's: pushed to the registry
    /// and pulled there, or sent over SSH when the engine is elsewhere and lacks it.
    pub fn steps(&self, engine: &Engine, build: Build) -> anyhow::Result<Vec<Step>> {
        let mut steps = Vec::new();
        let tags = [self.runs.tag.clone()];
        if build == Build::Image {
            let source = self
                .source
                .as_ref()
                .context("a build needs the source's revision: choose the release with build")?;
            let reference = self.image.reference(&self.runs.tag).to_string();
            steps.extend(
                build::plan(&self.image, source, &tags, build::Cache::Use)?
                    .into_iter()
                    .map(|step| build::unless_built(step, reference.clone(), source)),
            );
        }
        match &self.registry {
            Some(registry) => {
                if !self.published {
                    let registry = self.runs.registry().or(Some(registry));
                    let login = push::login_from_env(registry)?;
                    steps.extend(push::publish(
                        &self.image,
                        &tags,
                        &self.runs.repository,
                        login,
                    ));
                }
                if !engine.is_local() {
                    steps.push(pull(engine, &self.runs));
                }
            }
            None if !engine.is_local() => {
                steps.push(Step::ship(&self.runs, vec![engine.clone()]));
            }
            None => {}
        }
        Ok(steps)
    }

    /// Where the steps will find the image: built here, here to send or push, or on the
    /// engine already. Nothing else would run it but an implicit pull from whatever
    /// registry its name reaches (Docker Hub for `travial/app`), which a deploy never does.
    pub fn check_present(&self, sh: &Shell, engine: &Engine, build: Build) -> anyhow::Result<()> {
        if build == Build::Image || self.published {
            return Ok(());
        }
        let here = self.image.reference(&self.runs.tag).to_string();
        if images::has(sh, &Engine::Local, &here)? {
            return Ok(());
        }
        let there = self.runs.to_string();
        if self.registry.is_none() && !engine.is_local() && images::has(sh, engine, &there)? {
            return Ok(());
        }
        let on = match engine.is_local() {
            true => "this machine".to_owned(),
            false => format!("neither this machine nor {engine}"),
        };
        Err(Hint::new(
            format!("{here} is not on {on}, and is never pulled from a registry the deploy does not name"),
            "build it (deploy without --no-build, or `cargo xtask build`), or deploy through the registry that has it (--registry HOST)",
        )
        .into())
    }

    /// The stack running this release.
    pub fn applied_to(&self, stack: Stack) -> Stack {
        stack.running(&self.runs)
    }
}

/// `docker pull` of `image` on `engine`.
pub fn pull(engine: &Engine, image: &Reference) -> Step {
    Step::run(
        &format!("pulled {image}{}", engine.on()),
        engine.docker(["pull", "--quiet", &image.to_string()]),
        &format!("{engine} could not pull {image}"),
    )
}

/// Another machine runs only what names one release: never `latest`, never an image built
/// from uncommitted changes (`dirty`, unless allowed), whatever its tag.
fn check_immutable(engine: &Engine, tag: &str, dirty: bool) -> anyhow::Result<()> {
    if engine.is_local() {
        return Ok(());
    }
    if tag == "latest" {
        bail!(
            "a deploy to {engine} runs an immutable tag, never `latest`: unset APP_TAG (the git revision is used) or name a release"
        );
    }
    if dirty {
        bail!(
            "the working tree has uncommitted changes, so what {engine} would run as `{tag}` matches no commit: commit them, or pass --allow-dirty"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_machine_runs_an_immutable_tag_of_a_commit() {
        let remote = Engine::over_ssh(&crate::docker::SshHost::parse("ssh://h").unwrap());
        assert!(check_immutable(&remote, "0a1b2c3", false).is_ok());
        let latest = check_immutable(&remote, "latest", false).unwrap_err();
        assert!(latest.to_string().contains("never `latest`"), "{latest}");
        let dirty = check_immutable(&remote, "v1", true).unwrap_err();
        assert!(dirty.to_string().contains("pass --allow-dirty"), "{dirty}");
        // This machine's engine is the developer's own.
        assert!(check_immutable(&Engine::Local, "latest", true).is_ok());
    }
}
