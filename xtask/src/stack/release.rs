//! Which image a deploy runs, and how it reaches the engine: the app's image at an
//! immutable tag (the git revision, unless APP_TAG names one), built here, then sent over
//! SSH to a remote engine that lacks it, or pushed to a registry and pulled there.

use anyhow::bail;
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
        let source = match (&given, wanted.build) {
            (Some(_), false) => None,
            _ => Some(Source::read(sh)?),
        };
        let tag = match (&given, &source) {
            (Some(tag), _) => tag.clone(),
            (None, Some(source)) => source.revision.tag(),
            (None, None) => unreachable!("the source is read when no tag is given"),
        };
        if !stack.engine.is_local() {
            if tag == "latest" {
                bail!(
                    "a deploy to {} runs an immutable tag, never `latest`: unset APP_TAG (the git revision is used) or name a release",
                    stack.engine
                );
            }
            let dirty = source.as_ref().is_some_and(|source| source.revision.dirty);
            if dirty && given.is_none() && !wanted.allow_dirty {
                bail!(
                    "the working tree has uncommitted changes, so {} would run `{tag}`, which no commit names: commit them, or pass --allow-dirty",
                    stack.engine
                );
            }
        }
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
                .expect("the source is read for a build");
            steps.extend(build::plan(&self.image, source, &tags, false)?);
        }
        match &self.registry {
            Some(registry) => {
                let login =
                    push::login_from_env(push::registry_of(&self.repository).or(Some(registry)))?;
                steps.extend(push::publish(&self.image, &tags, &self.repository, login));
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
