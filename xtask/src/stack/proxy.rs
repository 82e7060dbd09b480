//! The proxy's configuration, its Caddyfile (compose.yaml's `configs`), as the running proxy
//! has it. Compose copies it in when it creates the container, and leaves a running one as
//! it is when only the content changed (`up` says "Running"): so a deploy compares the two,
//! checks a new one in a throwaway container of the proxy's image (nothing changes if Caddy
//! refuses it), then gives it to the running proxy, which the switch's graceful `caddy
//! reload` reads: a changed Caddyfile (or `DOMAIN`, `TLS_ISSUER`) applies without
//! recreating the proxy, and without losing a request.

use std::{fmt, sync::Arc};

use anyhow::Context;
use xshell::Shell;

use super::{Model, Stack};
use crate::{
    docker::{Command, run, tar},
    hint::Hint,
    plan::{Action, Step, Task},
};

/// Where the proxy reads its configuration.
pub const CADDYFILE: &str = "/etc/caddy/Caddyfile";

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    stack: Stack,
    service: String,
    image: String,
    /// As the model has it, for Caddy to read.
    content: String,
}

impl ProxyConfig {
    /// The proxy's Caddyfile in the model; `None` for a proxy without one.
    pub fn of(stack: &Stack, model: &Model) -> anyhow::Result<Option<ProxyConfig>> {
        let service = &model.xtask.proxy_service;
        let proxy = model.service(service)?;
        let Some(config) = proxy
            .configs
            .iter()
            .find(|config| config.target.as_deref() == Some(CADDYFILE))
        else {
            return Ok(None);
        };
        Ok(Some(ProxyConfig {
            stack: stack.clone(),
            service: service.clone(),
            image: proxy
                .image
                .clone()
                .with_context(|| format!("{service} has no image"))?,
            content: model.config_content(&config.source)?,
        }))
    }

    /// The step that checks a new configuration before anything changes.
    pub fn check_step(&self) -> Step {
        Step::new(
            &format!("{}'s configuration checked", self.service),
            Action::Task(Arc::new(Check(self.clone()))),
            "nothing was changed",
        )
    }

    /// The running proxy's container and its Caddyfile, if a proxy runs.
    fn running(&self, sh: &Shell) -> anyhow::Result<Option<(String, String)>> {
        let ids = run::read(sh, &self.stack.containers_of(&self.service))?;
        let Some(id) = ids.lines().next() else {
            return Ok(None);
        };
        let content = run::read(
            sh,
            &self.stack.engine().docker(["exec", id, "cat", CADDYFILE]),
        )?;
        Ok(Some((id.to_owned(), content)))
    }

    /// Caddy's own check, in a throwaway container of the proxy's image, with no network.
    fn validate(&self) -> Command {
        self.stack
            .engine()
            .docker([
                "run",
                "--rm",
                "--interactive",
                "--pull",
                "never",
                "--network",
                "none",
                "--env",
                "UPSTREAMS=127.0.0.1:1",
                &self.image,
                "caddy",
                "validate",
                "--config",
                "/dev/stdin",
                "--adapter",
                "caddyfile",
            ])
            .stdin_content("the new Caddyfile", self.content.clone().into_bytes())
    }

    /// Gives the running proxy the model's Caddyfile if it has another; whether it did.
    pub fn sync(&self, sh: &Shell) -> anyhow::Result<bool> {
        let Some((id, running)) = self.running(sh)? else {
            return Ok(false);
        };
        if running == self.content {
            return Ok(false);
        }
        let archive = tar::archive(&[tar::Entry {
            path: CADDYFILE.trim_start_matches('/'),
            mode: 0o644,
            content: Some(self.content.as_bytes()),
        }]);
        let copy = self
            .stack
            .engine()
            .docker(["cp", "-", &format!("{id}:/")])
            .stdin_content("the new Caddyfile", archive);
        run::act(sh, &copy)?;
        Ok(true)
    }
}

/// See `ProxyConfig::check_step`.
#[derive(Debug)]
struct Check(ProxyConfig);

impl Task for Check {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        let config = &self.0;
        if let Some((_, running)) = config.running(sh)? {
            if running == config.content {
                return Ok(format!("{}'s configuration unchanged", config.service));
            }
        }
        let checked = run::probe(sh, &config.validate())?;
        if !checked.status.success() {
            let said = String::from_utf8_lossy(&checked.stderr);
            let reason = said
                .lines()
                .rev()
                .find(|line| line.contains("Error") || line.contains("error"))
                .or_else(|| said.lines().last())
                .unwrap_or_default()
                .trim();
            return Err(Hint::new(
                format!("Caddy refuses {}'s new configuration: {reason}", config.service),
                "fix the Caddyfile in compose/compose.yaml, or DOMAIN and TLS_ISSUER: the proxy serves on with its current one",
            )
            .into());
        }
        Ok(format!("{}'s new configuration is valid", config.service))
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}    # if it differs from the running proxy's",
            self.0.validate()
        )
    }
}
