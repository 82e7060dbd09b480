//! The plans of an environment on a swarm, through its manager: pure functions of what the
//! swarm has (`Facts`), the merged model and the release, tested as the exact lines.
//!
//! A deploy:
//! 1. the image built here, then on every node: sent over SSH to those that lack it (the
//!    node's address is its `travial.ssh` label), or pushed to the registry the nodes pull;
//! 2. the secrets and configs the swarm lacks, under versioned names (after the salt the
//!    names are made with, on the first deploy);
//! 3. `docker stack deploy` of all but web: the database (on its node, with its volume) and
//!    the proxy, waited for until they converge (their healthchecks pass);
//! 4. the migrations, once, as a job on the stack's network;
//! 5. `docker stack deploy` with web: a rolling update, start-first and health-gated, that
//!    Swarm rolls back by itself if the new tasks never get healthy; then the xtask checks
//!    that web converged on the new image, or fails with the tasks' errors.
//!
//! A rollback is 1 (no build), 2, 5; `migrate` is 1 (no build), 2, the database alone, 4.
//! Without a registry, the app's image is named by its ID in the stack (see `AppImage`).

use std::{sync::Arc, time::Duration};

use anyhow::Context;

use super::{
    facts::Facts,
    objects::{self, Objects},
    service_name,
    stackfile::{self, DB_NODE_LABEL, Options},
    tasks::{AppImage, Converged, Gone, Job, PruneVersions, StackDeploy},
};
use crate::{
    database::backup::Before,
    docker::Engine,
    plan::{Action, Step},
    stack::{
        Model, Stack,
        release::{Build, Release},
    },
};

/// Whether `down` removes the data too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volumes {
    Keep,
    Remove,
}

pub struct Plan<'a> {
    stack: &'a Stack,
    manager: &'a Engine,
    model: &'a Model,
    facts: &'a Facts,
    timeout: Duration,
}

/// Whether the migration job runs when it would change nothing: `migrate` runs it, a
/// deploy does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Migrations {
    Always,
    UnlessCurrent,
}

/// Which services a `docker stack deploy` updates.
enum Phase<'a> {
    /// All but web: what the migrations need, and the proxy.
    AllButWeb,
    /// These alone.
    Only(&'a str),
    /// Every service, web's rolling update among them; what the model lost is removed.
    All,
}

impl<'a> Plan<'a> {
    pub fn new(
        stack: &'a Stack,
        manager: &'a Engine,
        model: &'a Model,
        facts: &'a Facts,
        timeout: Duration,
    ) -> Plan<'a> {
        Plan {
            stack,
            manager,
            model,
            facts,
            timeout,
        }
    }

    pub fn deploy(
        &self,
        release: &Release,
        build: Build,
        before: &Before,
    ) -> anyhow::Result<Vec<Step>> {
        let (mut steps, objects) = self.image_and_objects(release, build)?;
        steps.push(self.stack_deploy(&objects, release, Phase::AllButWeb)?);
        steps.extend(before.step(self.stack, self.model, &release.runs, self.manager));
        steps.push(self.migrations(&objects, release, Migrations::UnlessCurrent)?);
        steps.push(self.stack_deploy(&objects, release, Phase::All)?);
        steps.push(self.converged(release));
        steps.push(self.prune_versions(&objects));
        Ok(steps)
    }

    pub fn rollback(&self, release: &Release) -> anyhow::Result<Vec<Step>> {
        let (mut steps, objects) = self.image_and_objects(release, Build::Skip)?;
        steps.push(self.stack_deploy(&objects, release, Phase::All)?);
        steps.push(self.converged(release));
        steps.push(self.prune_versions(&objects));
        Ok(steps)
    }

    /// The database up if need be, then the migration job: web is left as it is.
    pub fn migrate(&self, release: &Release, before: &Before) -> anyhow::Result<Vec<Step>> {
        let (mut steps, objects) = self.image_and_objects(release, Build::Skip)?;
        let db = self.model.xtask.db_service.as_str();
        steps.push(self.stack_deploy(&objects, release, Phase::Only(db))?);
        steps.extend(before.step(self.stack, self.model, &release.runs, self.manager));
        steps.push(self.migrations(&objects, release, Migrations::Always)?);
        Ok(steps)
    }

    /// The image on every node, then the secrets and configs the swarm lacks.
    fn image_and_objects(
        &self,
        release: &Release,
        build: Build,
    ) -> anyhow::Result<(Vec<Step>, Objects)> {
        let mut steps = self.image_steps(release, build)?;
        let objects = objects::plan(self.stack, self.manager, self.model, self.facts)?;
        steps.extend(objects.steps.iter().cloned());
        Ok((steps, objects))
    }

    /// Built here, then brought to every node: by the registry (the nodes pull with the
    /// credentials `stack deploy` passes on), or over SSH.
    fn image_steps(&self, release: &Release, build: Build) -> anyhow::Result<Vec<Step>> {
        let mut steps = release.steps(&Engine::Local, build)?;
        if release.registry.is_some() {
            return Ok(steps);
        }
        let mut engines = Vec::new();
        for node in &self.facts.nodes {
            let engine = node.engine()?.with_context(|| {
                format!(
                    "node {} has no `{}` label, so the image cannot be sent to it: run `cargo xtask swarm init` with it",
                    node.id,
                    super::nodes::SSH_LABEL
                )
            })?;
            if node.status == "ready" {
                engines.push(engine);
            }
        }
        steps.push(Step::ship(&release.runs, engines));
        Ok(steps)
    }

    fn app_image(&self, release: &Release) -> AppImage {
        AppImage {
            manager: self.manager.clone(),
            reference: release.runs.to_string(),
            by_id: release.registry.is_none(),
        }
    }

    /// `docker stack deploy` of the phase's services, the stack file on stdin, waiting until
    /// they converge.
    fn stack_deploy(
        &self,
        objects: &Objects,
        release: &Release,
        phase: Phase,
    ) -> anyhow::Result<Step> {
        let settings = &self.model.xtask;
        let mut all_but_web = vec![settings.db_service.as_str(), &settings.proxy_service];
        all_but_web.extend(self.model.others());
        let (services, done): (Vec<&str>, String) = match phase {
            Phase::AllButWeb => (
                all_but_web.clone(),
                format!("{} converged", crate::output::and_list(&all_but_web)),
            ),
            Phase::Only(service) => (vec![service], format!("{service} converged")),
            Phase::All => (
                [all_but_web, vec![&settings.web_service]].concat(),
                "stack deployed".to_owned(),
            ),
        };
        let everything = services.contains(&settings.web_service.as_str());
        let app = self.app_image(release);
        let options = Options {
            web_image: app.to_string(),
            web_release: release.runs.to_string(),
            web_replicas: settings.web_replicas,
            endpoint_mode: self.facts.modes.endpoint.clone(),
            publish_mode: self.facts.modes.publish.clone(),
            encrypted: self.facts.modes.encrypted,
            secrets: objects.secrets.clone(),
            configs: objects.configs.clone(),
            services: services.into_iter().map(str::to_owned).collect(),
        };
        // Detached: the xtask waits for what changes itself (see `converge`).
        let mut args = vec![
            "stack",
            "deploy",
            "--detach=true",
            "--quiet",
            "--compose-file",
            "-",
        ];
        // A service the model no longer has goes; not before web is in the file.
        if everything {
            args.push("--prune");
        }
        // With a registry, the nodes pull by digest with the credentials passed on. The
        // images sent over SSH have no registry to ask for a digest: asking one that cannot
        // be reached only delays the deploy.
        match release.registry {
            Some(_) => args.push("--with-registry-auth"),
            None => args.extend(["--resolve-image", "never"]),
        }
        args.push(&self.stack.project);
        let done = format!("{done}{}", self.manager.on());
        let deploy = StackDeploy {
            command: self.manager.docker(args),
            file: stackfile::stack_file(self.model, &options)?,
            web_service: settings.web_service.clone(),
            app,
            done: done.clone(),
            stack: self.stack.project.clone(),
            // web's replicas update one at a time, each given the whole timeout.
            timeout: match everything {
                true => self
                    .timeout
                    .saturating_mul(settings.web_replicas.saturating_add(1)),
                false => self.timeout,
            },
            prune: everything,
        };
        Ok(Step::new(
            &done,
            Action::Task(Arc::new(deploy)),
            "the stack did not converge",
        ))
    }

    /// `app migrate`, once, on the stack's network, with the migrate service's settings.
    fn migrations(
        &self,
        objects: &Objects,
        release: &Release,
        when: Migrations,
    ) -> anyhow::Result<Step> {
        let settings = &self.model.xtask;
        let migrate = self.model.service(&settings.migrate_service)?;
        let mut create: Vec<String> = [
            "service",
            "create",
            "--detach",
            "--mode",
            "replicated-job",
            "--restart-condition",
            "none",
        ]
        .map(String::from)
        .to_vec();
        create.push(
            match release.registry {
                Some(_) => "--with-registry-auth",
                None => "--no-resolve-image",
            }
            .to_owned(),
        );
        let name = service_name(self.stack, &settings.migrate_service);
        create.extend([
            "--name".to_owned(),
            name.clone(),
            "--network".to_owned(),
            format!("{}_default", self.stack.project),
        ]);
        // Beside the database, on the manager (see `swarm init`), whose engine then
        // removes what Swarm leaves of it; labelled as the stack's, for `down`.
        let namespace = format!("com.docker.stack.namespace={}", self.stack.project);
        create.extend([
            "--constraint".to_owned(),
            format!("node.labels.{DB_NODE_LABEL}==true"),
            "--label".to_owned(),
            namespace.clone(),
            "--container-label".to_owned(),
            namespace,
        ]);
        for secret in &migrate.secrets {
            let versioned = objects
                .secrets
                .get(&secret.source)
                .with_context(|| format!("no secret `{}`", secret.source))?;
            create.extend([
                "--secret".to_owned(),
                format!("source={versioned},target={}", secret.source),
            ]);
        }
        for (key, value) in &migrate.environment {
            if let Some(value) = value {
                create.extend(["--env".to_owned(), format!("{key}={value}")]);
            }
        }
        let job = Job {
            manager: self.manager.clone(),
            name,
            create,
            app: self.app_image(release),
            command: migrate.command.clone(),
            timeout: self.timeout,
            unless: match when {
                Migrations::Always => None,
                Migrations::UnlessCurrent => Some(crate::stack::migrate::Current {
                    stack: self.stack.clone(),
                    model: self.model.clone(),
                    image: release.runs.to_string(),
                }),
            },
        };
        Ok(Step::new(
            &format!("migrations applied{}", self.manager.on()),
            Action::Task(Arc::new(job)),
            &format!(
                "the migrations failed, so {} was not updated (its data untouched)",
                settings.web_service
            ),
        ))
    }

    /// Once web serves: the versions of secrets and configs neither current nor previous.
    fn prune_versions(&self, objects: &Objects) -> Step {
        let current = objects
            .secrets
            .values()
            .chain(objects.configs.values())
            .cloned()
            .collect();
        Step::new(
            "old versions of secrets and configs removed",
            Action::Task(Arc::new(PruneVersions {
                manager: self.manager.clone(),
                project: self.stack.project.clone(),
                current,
            })),
            "the old versions of secrets and configs were not removed",
        )
    }

    fn converged(&self, release: &Release) -> Step {
        let web = &self.model.xtask.web_service;
        Step::new(
            &format!("{web} converged on {}", release.runs),
            Action::Task(Arc::new(Converged {
                manager: self.manager.clone(),
                service: service_name(self.stack, web),
                release: release.runs.to_string(),
            })),
            &format!("{web} did not converge on the new image"),
        )
        .starts(web)
    }
}

/// `docker stack rm`, waited for; then, with `Volumes::Remove`, each node's volumes of
/// the stack, and the stack's secrets and configs.
pub fn down(
    stack: &Stack,
    manager: &Engine,
    model: &Model,
    facts: &Facts,
    volumes: Volumes,
) -> anyhow::Result<Vec<Step>> {
    let project = &stack.project;
    let mut steps = vec![Step::run(
        match volumes {
            Volumes::Remove => "stack removed",
            Volumes::Keep => "stack removed, data kept",
        },
        manager.docker(["stack", "rm", project]),
        "the stack was not removed",
    )];
    let engines = facts.engines()?;
    steps.push(Step::new(
        "its containers gone",
        Action::Task(Arc::new(Gone {
            project: project.clone(),
            engines: engines.clone(),
        })),
        "the stack's containers did not go",
    ));
    if volumes == Volumes::Keep {
        return Ok(steps);
    }
    let mut names: Vec<String> = model
        .volumes
        .keys()
        .map(|key| format!("{project}_{key}"))
        .collect();
    names.sort();
    for engine in engines {
        let mut args = vec!["volume".to_owned(), "rm".to_owned(), "--force".to_owned()];
        args.extend(names.iter().cloned());
        steps.push(Step::run(
            &format!("volumes removed on {engine}"),
            engine.docker(args),
            "the volumes were not removed",
        ));
    }
    for (kind, objects) in [("secret", &facts.secrets), ("config", &facts.configs)] {
        let names: Vec<&str> = objects
            .iter()
            .filter(|object| object.stack.as_deref() == Some(project.as_str()))
            .map(|object| object.name.as_str())
            .collect();
        if names.is_empty() {
            continue;
        }
        let mut args = vec![kind, "rm"];
        args.extend(names);
        steps.push(Step::run(
            &format!("{kind}s removed"),
            manager.docker(args),
            &format!("the {kind}s were not removed"),
        ));
    }
    Ok(steps)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
