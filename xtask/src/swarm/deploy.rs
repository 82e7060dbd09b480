//! `deploy` and `rollback` of an environment on a swarm, through its manager:
//!
//! 1. the image built here, then on every node: sent over SSH to those that lack it (the
//!    node's address is its `travial.ssh` label), or pushed to the registry the nodes pull;
//! 2. the secrets and configs the swarm lacks, under versioned names;
//! 3. `docker stack deploy` of all but web: the database (on its node, with its volume) and
//!    the proxy, waited for until they converge (their healthchecks pass);
//! 4. the migrations, once, as a job on the stack's network;
//! 5. `docker stack deploy` with web: a rolling update, start-first and health-gated, that
//!    Swarm rolls back by itself if the new tasks never get healthy; then the xtask checks
//!    that web converged on the new image, or fails with the tasks' errors.
//!
//! Without a registry, the app's image is named by its ID in the stack (see `AppImage`).

use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail};
use serde_json::Value;
use xshell::Shell;

use super::{
    nodes,
    objects::{self, Objects},
    stackfile::{DB_NODE_LABEL, Options},
    tasks::{AppImage, Converged, Job, StackDeploy},
};
use crate::{
    docker::{Engine, run},
    hint::Hint,
    plan::{Action, Step},
    stack::{Model, Stack, release::Release},
};

/// What a swarm deploy needs beyond the stack and its model.
pub struct Deploy<'a> {
    pub stack: &'a Stack,
    pub model: &'a Model,
    /// `docker compose --profile '*' config --format json`: every service, migrate's too.
    pub full: Value,
    pub release: &'a Release,
    pub timeout: Duration,
}

/// The merged model with every profile's services, as JSON, for the stack file.
pub fn full_model(sh: &Shell, stack: &Stack) -> anyhow::Result<Value> {
    let text = run::read(
        sh,
        &stack.compose(&["--profile", "*", "config", "--format", "json"]),
    )?;
    serde_json::from_str(&text).context("cannot read the merged model as JSON")
}

/// Where a manager answers: a swarm's manager, else a hint to make one.
pub fn check_manager(sh: &Shell, manager: &Engine) -> anyhow::Result<()> {
    let state = run::read(
        sh,
        &manager.docker(["info", "--format", "{{.Swarm.ControlAvailable}}"]),
    )?;
    if state.trim() != "true" {
        return Err(Hint::new(
            format!("{manager} is not a swarm manager"),
            "make the swarm first: `cargo xtask swarm init ssh://MANAGER [ssh://WORKER…]`, then deploy with --host MANAGER",
        )
        .into());
    }
    Ok(())
}

impl Deploy<'_> {
    /// Every step of a deploy (`migrate: true`) or a rollback (no migration).
    pub fn steps(
        &self,
        sh: &Shell,
        build: bool,
        migrate: bool,
        dry_run: bool,
    ) -> anyhow::Result<Vec<Step>> {
        let manager = &self.stack.engine;
        let mut steps = self.image_steps(sh, build)?;
        let objects = objects::plan(sh, self.stack, &self.full, dry_run)?;
        steps.extend(objects.steps.iter().cloned());
        let settings = &self.model.xtask;
        let all_but_web: Vec<String> = [&settings.db_service, &settings.proxy_service]
            .map(String::clone)
            .to_vec();
        if migrate {
            steps.push(self.stack_deploy(
                &objects,
                all_but_web.clone(),
                "db and proxy converged",
            )?);
            steps.push(Step::new(
                &format!("migrations applied{}", manager.on()),
                Action::Task(Arc::new(self.job(&objects)?)),
                &format!(
                    "the migrations failed, so {} was not updated (its data untouched)",
                    settings.web_service
                ),
            ));
        }
        let mut everything = all_but_web;
        everything.push(settings.web_service.clone());
        steps.push(self.stack_deploy(&objects, everything, "stack deployed")?);
        steps.push(
            Step::new(
                &format!(
                    "{} converged on {}",
                    settings.web_service,
                    self.release.reference()
                ),
                Action::Task(Arc::new(Converged {
                    manager: manager.clone(),
                    service: self.service(&settings.web_service),
                    release: self.release.reference(),
                })),
                &format!("{} did not converge on the new image", settings.web_service),
            )
            .starts(&settings.web_service),
        );
        Ok(steps)
    }

    fn service(&self, name: &str) -> String {
        format!("{}_{name}", self.stack.project)
    }

    /// Built here, then brought to every node: by the registry, or over SSH.
    fn image_steps(&self, sh: &Shell, build: bool) -> anyhow::Result<Vec<Step>> {
        let manager = &self.stack.engine;
        // The registry's path: nodes pull with the credentials `stack deploy` passes on.
        let mut steps = self.release.steps(&Engine::Local, build)?;
        if self.release.registry.is_some() {
            return Ok(steps);
        }
        for node in nodes::list(sh, manager)? {
            let engine = node.engine()?.with_context(|| {
                format!(
                    "node {} has no `{}` label, so the image cannot be sent to it: run `cargo xtask swarm init` with it",
                    node.id,
                    nodes::SSH_LABEL
                )
            })?;
            if node.status != "ready" {
                continue;
            }
            steps.push(Step::new(
                &format!("{} on {engine}", self.release.reference()),
                Action::Ship {
                    image: self.release.reference(),
                    to: engine.clone(),
                },
                &format!("the image did not reach {engine}"),
            ));
        }
        Ok(steps)
    }

    fn app_image(&self) -> AppImage {
        AppImage {
            manager: self.stack.engine.clone(),
            reference: self.release.reference(),
            by_id: self.release.registry.is_none(),
        }
    }

    fn options(&self, objects: &Objects, services: Vec<String>) -> anyhow::Result<Options> {
        let mode = |name: &str, default: &str, allowed: &[&str]| -> anyhow::Result<String> {
            let value = std::env::var(name)
                .ok()
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| default.to_owned());
            if !allowed.contains(&value.as_str()) {
                bail!("{name} is `{value}`: use {}", allowed.join(" or "));
            }
            Ok(value)
        };
        Ok(Options {
            web_image: self.release.reference(),
            web_release: self.release.reference(),
            web_replicas: self.model.xtask.web_replicas,
            endpoint_mode: mode("SWARM_ENDPOINT_MODE", "vip", &["vip", "dnsrr"])?,
            publish_mode: mode("SWARM_PUBLISH_MODE", "ingress", &["ingress", "host"])?,
            secrets: objects.secrets.clone(),
            configs: objects.configs.clone(),
            services,
        })
    }

    /// `docker stack deploy` of `services`, the stack file on stdin, waiting until they
    /// converge.
    fn stack_deploy(
        &self,
        objects: &Objects,
        services: Vec<String>,
        done: &str,
    ) -> anyhow::Result<Step> {
        let everything = services.contains(&self.model.xtask.web_service);
        let options = self.options(objects, services)?;
        // Waiting, quietly: the step's line says when it converged; errors still show.
        let mut args = vec![
            "stack",
            "deploy",
            "--detach=false",
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
        match self.release.registry {
            Some(_) => args.push("--with-registry-auth"),
            None => args.extend(["--resolve-image", "never"]),
        }
        args.push(&self.stack.project);
        let done = format!("{done}{}", self.stack.engine.on());
        let deploy = StackDeploy {
            command: self.stack.engine.docker(args),
            model: self.full.clone(),
            settings: self.model.xtask.clone(),
            options,
            app: self.app_image(),
            done: done.clone(),
            stack: self.stack.project.clone(),
            // web's replicas update one at a time, each given the whole timeout.
            timeout: match everything {
                true => self
                    .timeout
                    .saturating_mul(self.model.xtask.web_replicas.saturating_add(1)),
                false => self.timeout,
            },
        };
        Ok(Step::new(
            &done,
            Action::Task(Arc::new(deploy)),
            "the stack did not converge",
        ))
    }

    /// `app migrate`, once, on the stack's network, with the migrate service's settings.
    fn job(&self, objects: &Objects) -> anyhow::Result<Job> {
        let settings = &self.model.xtask;
        let migrate = &self.full["services"][&settings.migrate_service];
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
            match self.release.registry {
                Some(_) => "--with-registry-auth",
                None => "--no-resolve-image",
            }
            .to_owned(),
        );
        let name = self.service(&settings.migrate_service);
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
        for secret in migrate["secrets"].as_array().into_iter().flatten() {
            let source = secret["source"].as_str().unwrap_or_default();
            let versioned = objects
                .secrets
                .get(source)
                .with_context(|| format!("no secret `{source}`"))?;
            create.extend([
                "--secret".to_owned(),
                format!("source={versioned},target={source}"),
            ]);
        }
        for (key, value) in migrate["environment"].as_object().into_iter().flatten() {
            if let Some(value) = value.as_str() {
                create.extend(["--env".to_owned(), format!("{key}={value}")]);
            }
        }
        let command = migrate["command"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|arg| arg.as_str().map(str::to_owned))
            .collect();
        Ok(Job {
            manager: self.stack.engine.clone(),
            name,
            create,
            app: self.app_image(),
            command,
            timeout: self.timeout,
        })
    }
}
