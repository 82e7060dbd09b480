//! `cargo xtask build` and `cargo xtask push`: the app image, tagged like a release.
//!
//! The image's name and build definition are the web service's in compose/compose.yaml,
//! the ones `deploy` uses: the build goes through `docker compose build` (BuildKit).

pub mod build;
pub mod push;
pub mod reference;

use anyhow::Context;
use serde::Deserialize;
use xshell::Shell;

use crate::{
    docker::{Command, run},
    stack::{Model, Stack},
};
pub use reference::{Reference, Revision};

/// What an image is built from: the app's version and the git revision.
#[derive(Debug, Clone)]
pub struct Source {
    pub version: String,
    pub repository_url: String,
    pub revision: Revision,
    pub full_sha: String,
    /// The newest migration in app/migrations, which the app embeds.
    pub migrations: u32,
}

/// The image's local name, as compose.yaml defines it (`APP_IMAGE` overrides it there).
#[derive(Debug, Clone)]
pub struct Image {
    pub repository: String,
    pub web_service: String,
}

impl Image {
    pub fn from_compose(sh: &Shell) -> anyhow::Result<Image> {
        Image::from_model(&Stack::base().model(sh)?)
    }

    /// The web service's image in a merged model, without its tag.
    pub fn from_model(model: &Model) -> anyhow::Result<Image> {
        let web_service = model.xtask.web_service.clone();
        let reference = model
            .service(&web_service)?
            .image
            .clone()
            .with_context(|| format!("{web_service} in compose/compose.yaml has no image name"))?;
        Ok(Image {
            repository: Reference::parse(&reference)?.repository,
            web_service,
        })
    }

    pub fn reference(&self, tag: &str) -> Reference {
        Reference::new(&self.repository, tag)
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
        let metadata = run::read(
            sh,
            &Command::new("cargo", ["metadata", "--no-deps", "--format-version", "1"]),
        )?;
        let metadata: Metadata =
            serde_json::from_str(&metadata).context("cannot read `cargo metadata`")?;
        let app = metadata
            .packages
            .into_iter()
            .find(|package| package.name == "app")
            .context("the workspace has no `app` package")?;

        let git = |args: &[&str]| -> anyhow::Result<String> {
            let output = run::read(sh, &Command::new("git", args.iter().copied()));
            Ok(output
                .context(
                    "cannot read the git revision: the image's tags come from git, build from a clone",
                )?
                .trim()
                .to_owned())
        };
        let full_sha = git(&["rev-parse", "HEAD"])?;
        let migrations = newest_migration(&sh.current_dir().join(MIGRATIONS_DIR))?;
        Ok(Source {
            migrations,
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

/// Where the app's migrations are, `V{version}__{name}.sql` each.
const MIGRATIONS_DIR: &str = "app/migrations";

/// The highest version among the migration files of `dir`.
fn newest_migration(dir: &std::path::Path) -> anyhow::Result<u32> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the migrations in {}", dir.display()))?;
    Ok(entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_prefix('V')?
                .split_once("__")?
                .0
                .parse::<u32>()
                .ok()
        })
        .max()
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_newest_migration_is_read_from_the_file_names() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        assert_eq!(
            super::newest_migration(&root.join(super::MIGRATIONS_DIR)).unwrap(),
            3
        );
    }
}
