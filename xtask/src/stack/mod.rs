//! One environment's stack and the commands that act on it. `Stack` knows where it runs
//! (`Target`: a Compose project on one engine, or a swarm stack through a manager), builds
//! every compose command line (the base file, then the environment's override, one project
//! per environment) and computes the merged model once.

pub mod clock;
pub mod config;
pub mod deploy;
pub mod down;
mod environments;
pub mod history;
pub mod logs;
pub mod migrate;
mod model;
mod proxy;
pub mod release;
pub mod rollback;
pub mod secrets;
pub mod state;
pub mod status;
mod switch;
mod target;
pub mod unchanged;

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::Shell;

pub use environments::{COMPOSE_DIR, environments, services};
pub use model::{Model, Service, Settings};
pub use target::{Target, open};

use crate::{
    docker::{Command, Engine, Secret, diagnosis, run},
    hint::Hint,
    image::Reference,
};

const BASE_FILE: &str = "compose.yaml";
const DEFAULT_PROJECT_PREFIX: &str = "travial";
/// Overrides the prefix of the Compose project names: two checkouts (or the end-to-end
/// tests) on one machine then never touch each other's stacks.
pub const PROJECT_PREFIX_VARIABLE: &str = "TRAVIAL_PROJECT";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// The environment, or `None` for the base file alone (the app image's definition).
    pub env: Option<String>,
    /// Each environment is its own Compose project, so dev, staging and prod on one
    /// machine never share containers, networks or volumes.
    pub project: String,
    /// Relative to the project root, base first.
    pub files: Vec<PathBuf>,
    pub target: Target,
    /// What the commands that create containers give Compose for its `secrets:`.
    pub secrets: Vec<Secret>,
    /// Variables every compose command is given, printed with it: the image to run.
    pub vars: Vec<(String, String)>,
}

impl Stack {
    /// The environment `env` (the command line has checked that it exists), each of its
    /// files checked to parse before anything runs; on this machine's engine until `open`
    /// chooses its target.
    pub fn load(root: &Path, env: &str) -> anyhow::Result<Stack> {
        let here = Target::Compose {
            engine: Engine::Local,
        };
        let stack = Stack::new(env, &project_prefix(), here);
        for file in &stack.files {
            environments::check_yaml(root, file)?;
        }
        Ok(stack)
    }

    pub fn new(env: &str, prefix: &str, target: Target) -> Stack {
        let dir = Path::new(COMPOSE_DIR);
        Stack {
            env: Some(env.to_owned()),
            project: format!("{prefix}-{env}"),
            files: vec![dir.join(BASE_FILE), dir.join(format!("compose.{env}.yaml"))],
            target,
            secrets: Vec::new(),
            vars: Vec::new(),
        }
    }

    /// compose.yaml alone, which defines the app image and its build for every environment.
    pub fn base() -> Stack {
        Stack {
            env: None,
            project: project_prefix(),
            files: vec![Path::new(COMPOSE_DIR).join(BASE_FILE)],
            target: Target::Compose {
                engine: Engine::Local,
            },
            secrets: Vec::new(),
            vars: Vec::new(),
        }
    }

    /// The engine the stack's commands go to first (see `Target::engine`).
    pub fn engine(&self) -> &Engine {
        self.target.engine()
    }

    /// `docker compose -p PROJECT -f BASE -f OVERRIDE ARGS…` on the target's engine.
    pub fn compose(&self, args: &[&str]) -> Command {
        self.compose_on(self.engine(), args)
    }

    fn compose_on(&self, engine: &Engine, args: &[&str]) -> Command {
        let mut line = vec!["compose".to_owned(), "-p".to_owned(), self.project.clone()];
        for file in &self.files {
            line.push("-f".to_owned());
            line.push(file.display().to_string());
        }
        line.extend(args.iter().map(|arg| (*arg).to_owned()));
        self.vars
            .iter()
            .fold(engine.docker(line), |command, (name, value)| {
                command.env(name, value)
            })
    }

    /// The stack running `image` as its app image.
    pub fn running(mut self, image: &Reference) -> Stack {
        self.vars = vec![
            ("APP_IMAGE".to_owned(), image.repository.clone()),
            ("APP_TAG".to_owned(), image.tag.clone()),
        ];
        self
    }

    /// The IDs of the service's running containers, as `compose ps --quiet SERVICE` lists
    /// them (by Compose's own labels, one-off `run` containers left out), without starting
    /// Compose: a tenth of the time.
    pub fn containers_of(&self, service: &str) -> Command {
        self.listing_of(service, "{{.ID}}")
    }

    /// `docker ps` of the service's running containers, each as `format` says.
    pub fn listing_of(&self, service: &str, format: &str) -> Command {
        self.engine().docker([
            "ps".to_owned(),
            "--format".to_owned(),
            format.to_owned(),
            "--filter".to_owned(),
            format!("label=com.docker.compose.project={}", self.project),
            "--filter".to_owned(),
            format!("label=com.docker.compose.service={service}"),
            "--filter".to_owned(),
            "label=com.docker.compose.oneoff=False".to_owned(),
        ])
    }

    /// The app image it runs (`running`), if it was given one.
    pub fn app_image(&self) -> Option<String> {
        let var = |name: &str| {
            self.vars
                .iter()
                .find(|(known, _)| known == name)
                .map(|(_, value)| value.as_str())
        };
        Some(format!("{}:{}", var("APP_IMAGE")?, var("APP_TAG")?))
    }

    /// The same line with the stack's secrets in its environment: for the commands that
    /// create containers (`up`, `run`).
    pub fn compose_with_secrets(&self, args: &[&str]) -> Command {
        self.compose(args).secret_envs(&self.secrets)
    }

    pub fn with_secrets(mut self, secrets: Vec<Secret>) -> Stack {
        self.secrets = secrets;
        self
    }

    /// The stack with the secrets its model declares, every one required: from the
    /// environment, the secrets file (`file`, else .secrets/ENV.env), or dev's defaults.
    pub fn with_resolved_secrets(
        self,
        sh: &Shell,
        model: &Model,
        file: Option<&Path>,
    ) -> anyhow::Result<Stack> {
        let secrets = secrets::resolve(sh, self.name(), model, file)?;
        Ok(self.with_secrets(secrets))
    }

    /// How messages name it: `dev`, or `compose.yaml`.
    pub fn name(&self) -> &str {
        self.env.as_deref().unwrap_or(BASE_FILE)
    }

    /// The merged, interpolated model, as Compose computes it here (it needs no daemon),
    /// with the services of every profile: also proves that every variable the files
    /// require is set.
    pub fn model(&self, sh: &Shell) -> anyhow::Result<Model> {
        let config = self.compose_on(&Engine::Local, &["--profile", "*", "config"]);
        let output = run::probe(sh, &config)?;
        if !output.status.success() {
            // Compose itself missing (or only v1's): said as such, with how to install it.
            crate::docker::preflight::compose_version(sh)?;
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(Hint::maybe(
                format!(
                    "the {} configuration is incomplete, nothing was started: {}",
                    self.name(),
                    stderr.trim()
                ),
                diagnosis::known_fix(&stderr),
            ));
        }
        Model::parse(&String::from_utf8_lossy(&output.stdout))
            .with_context(|| format!("in the merged configuration of {}", self.name()))
    }
}

/// Read once per command: see `PROJECT_PREFIX_VARIABLE`.
fn project_prefix() -> String {
    std::env::var(PROJECT_PREFIX_VARIABLE)
        .ok()
        .filter(|prefix| !prefix.is_empty())
        .unwrap_or_else(|| DEFAULT_PROJECT_PREFIX.to_owned())
}

/// The `hint:` after Ctrl-C: deploy and migrate are safe to run again.
pub fn after_interruption(command: &str, env: &str) -> String {
    format!(
        "run `cargo xtask {command} {env}` again to finish (the data is kept), or `cargo xtask down {env}` to stop what was started"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_comes_before_the_override_and_projects_are_per_environment() {
        let here = || Target::Compose {
            engine: Engine::Local,
        };
        let stack = Stack::new("staging", "travial", here());
        assert_eq!(
            stack.compose(&["ps"]).to_string(),
            "docker compose -p travial-staging -f compose/compose.yaml -f compose/compose.staging.yaml ps"
        );
        assert_ne!(
            Stack::new("dev", "travial", here()).project,
            Stack::new("prod", "travial", here()).project
        );
    }
}
