//! Which image a deploy runs, and how it reaches the engine: the app's image at an
//! immutable tag (the git revision, unless APP_TAG names one), built here, then sent over
//! SSH to a remote engine that lacks it, or pushed to a registry and pulled there.

use anyhow::{Context, bail};
use xshell::Shell;

use super::{Model, Stack};
use crate::{
    docker::Engine,
    image::{Image, Source, build, push},
    plan::{Action, Step},
};

#[derive(Debug, Clone)]
pub struct Release {
    /// The image as built here: `travial/app`.
    pub image: Image,
    pub tag: String,
    /// What the stack runs: the image's repository, or its copy in the registry.
    pub repository: String,
    pub registry: Option<String>,
    /// In the registry already (a rollback's image): pulled, never pushed again.
    pub published: bool,
    /// What a build labels the image with; read only when building.
    pub source: Option<Source>,
}

/// What deploy and migrate decide the release from.
pub struct Wanted<'a> {
    pub build: bool,
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
            (Some(tag), false) => (tag, None),
            (given, _) => {
                let source = Source::read(sh)?;
                (given.unwrap_or_else(|| source.revision.tag()), Some(source))
            }
        };
        let dirty = source.as_ref().is_some_and(|source| source.revision.dirty);
        check_immutable(&stack.engine, &tag, dirty && !wanted.allow_dirty)?;
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
            tag,
            repository,
            registry,
            published: false,
            source,
        })
    }

    /// `REPOSITORY:TAG`, as the stack runs it.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }

    /// Build here (when asked), then make the image the engine's: pushed to the registry
    /// and pulled there, or sent over SSH when the engine is elsewhere and lacks it.
    pub fn steps(&self, engine: &Engine, build: bool) -> anyhow::Result<Vec<Step>> {
        let mut steps = Vec::new();
        let tags = [self.tag.clone()];
        if build {
            let source = self
                .source
                .as_ref()
                .context("a build needs the source's revision: choose the release with build")?;
            steps.extend(build::plan(&self.image, source, &tags, false)?);
        }
        match &self.registry {
            Some(registry) => {
                if !self.published {
                    let registry = push::registry_of(&self.repository).or(Some(registry));
                    let login = push::login_from_env(registry)?;
                    steps.extend(push::publish(&self.image, &tags, &self.repository, login));
                }
                if !engine.is_local() {
                    let reference = self.reference();
                    steps.push(Step::run(
                        &format!("pulled {reference}{}", engine.on()),
                        engine.docker(["pull", "--quiet", &reference]),
                        &format!("{engine} could not pull {reference}"),
                    ));
                }
            }
            None if !engine.is_local() => steps.push(Step::new(
                &format!("{} on {engine}", self.reference()),
                Action::Ship {
                    image: self.reference(),
                    to: engine.clone(),
                },
                &format!("the image did not reach {engine}"),
            )),
            None => {}
        }
        Ok(steps)
    }

    /// The stack running this release.
    pub fn applied_to(&self, stack: Stack) -> Stack {
        stack.running(&self.repository, &self.tag)
    }
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
