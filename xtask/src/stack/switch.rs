//! Replacing web without dropping a request: a new web container beside the old, its
//! readiness awaited from inside it (through the engine, so the same on a remote host),
//! the proxy pointed at it by a graceful `caddy reload`, then the old drained (SIGTERM:
//! it finishes what it was serving) and removed. A new web that never gets ready is
//! removed and the old keeps serving.
//!
//! A redeploy that would change nothing of web (the same image, settings and secrets: see
//! `unchanged`) keeps its container; a changed Caddyfile still reaches the proxy, reloaded.
//!
//! Nothing that may serve is removed before the proxy points elsewhere: after a deploy
//! stopped midway, every running web container counts as old (the proxy may point at any
//! of them) and is drained only once the new one serves.

use std::{fmt, time::Duration};

use anyhow::bail;
use xshell::Shell;

use super::{Model, Stack, proxy::ProxyConfig, unchanged};
use crate::{
    docker::{Command, run},
    hint::Hint,
    interrupt, output,
    plan::Task,
    poll::{Answer, Poll},
};

/// How often the new container is asked whether it is ready.
const READY_POLL: Duration = Duration::from_millis(200);
/// How long a proxy just (re)started may take before its admin endpoint takes a reload.
const PROXY_START: Duration = Duration::from_secs(10);
/// How long an old container may take to finish its requests once told to stop: the
/// app's own limit is 8 s.
const DRAIN_SECONDS: &str = "10";
const NEW: &str = "<the new web>";

#[derive(Debug)]
pub struct Switch {
    pub stack: Stack,
    pub web: String,
    pub proxy: String,
    pub port: u16,
    pub ready: Vec<String>,
    pub timeout: Duration,
    /// Given to the running proxy before its reload, if it has another.
    pub config: Option<ProxyConfig>,
    /// What tells whether the running web is what this deploy would make.
    pub model: Model,
}

/// A web container as `docker ps` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Container {
    id: String,
    name: String,
    state: String,
}

impl Switch {
    pub fn new(stack: &Stack, model: &Model, timeout: Duration) -> anyhow::Result<Switch> {
        Ok(Switch {
            stack: stack.clone(),
            web: model.xtask.web_service.clone(),
            proxy: model.xtask.proxy_service.clone(),
            port: model.xtask.web_port,
            ready: model.xtask.ready_command.clone(),
            timeout,
            config: ProxyConfig::of(stack, model)?,
            model: model.clone(),
        })
    }

    /// The running web kept, when it is what this deploy would make: the proxy's own
    /// changes applied (recreated for new settings, reloaded for a new Caddyfile).
    fn keep(&self, sh: &Shell, current: &Container) -> anyhow::Result<Option<String>> {
        let image = self.stack.app_image();
        let hashes = unchanged::config_hashes(sh, &self.stack, &[&self.web, &self.proxy])?;
        let web_unchanged = unchanged::as_deployed(
            sh,
            &self.stack,
            &self.model,
            &self.web,
            &current.name,
            image.as_deref(),
            hashes.get(&self.web),
        )?;
        if !web_unchanged {
            return Ok(None);
        }
        let proxy = run::read(sh, &self.stack.containers_of(&self.proxy))?;
        let proxy_unchanged = match proxy.lines().next() {
            Some(id) => unchanged::as_deployed(
                sh,
                &self.stack,
                &self.model,
                &self.proxy,
                id,
                None,
                hashes.get(&self.proxy),
            )?,
            None => false,
        };
        if !proxy_unchanged {
            run::act(sh, &self.proxy_up())?;
        }
        let new_config = match &self.config {
            Some(config) => config.sync(sh)?,
            None => false,
        };
        let mut proxy_changes = Vec::new();
        if !proxy_unchanged {
            proxy_changes.push(format!("{} started anew", self.proxy));
        }
        if new_config {
            proxy_changes.push(format!("{} given its new configuration", self.proxy));
        }
        if !proxy_changes.is_empty() {
            self.reload_proxy(sh, &current.name)?;
        }
        let proxy_changes = match proxy_changes.as_slice() {
            [] => String::new(),
            changes => format!("; {}", changes.join(", ")),
        };
        Ok(Some(format!(
            "{} unchanged: {} kept{}{proxy_changes}",
            self.web,
            current.name,
            self.stack.target.on()
        )))
    }

    fn scale_up(&self, count: usize) -> Command {
        let scale = format!("{}={count}", self.web);
        self.stack.compose_with_secrets(&[
            "up",
            "--detach",
            "--no-build",
            "--no-deps",
            "--no-recreate",
            "--scale",
            &scale,
            &self.web,
        ])
    }

    fn is_ready(&self, container: &str) -> Command {
        let mut args = vec!["exec".to_owned(), container.to_owned()];
        args.extend(self.ready.iter().cloned());
        self.stack.engine().docker(args)
    }

    fn proxy_up(&self) -> Command {
        self.stack
            .compose(&["up", "--detach", "--no-build", "--no-deps", &self.proxy])
    }

    fn point_proxy_at(&self, container: &str) -> Command {
        let upstreams = format!("UPSTREAMS={container}:{}", self.port);
        self.stack.compose(&[
            "exec",
            "-T",
            "-e",
            &upstreams,
            &self.proxy,
            "caddy",
            "reload",
            "--config",
            super::proxy::CADDYFILE,
            "--adapter",
            "caddyfile",
        ])
    }

    fn drain(&self, container: &str) -> [Command; 2] {
        let engine = self.stack.engine();
        [
            engine.docker(["stop", "--time", DRAIN_SECONDS, container]),
            engine.docker(["rm", container]),
        ]
    }

    /// The service's containers, oldest first.
    fn containers(&self, sh: &Shell) -> anyhow::Result<Vec<Container>> {
        let project = format!("label=com.docker.compose.project={}", self.stack.project);
        let service = format!("label=com.docker.compose.service={}", self.web);
        let listing = run::read(
            sh,
            &self.stack.engine().docker([
                "ps",
                "--all",
                "--filter",
                &project,
                "--filter",
                &service,
                "--format",
                "{{.ID}} {{.Names}} {{.State}}",
            ]),
        )?;
        let mut containers: Vec<Container> = listing
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                Some(Container {
                    id: words.next()?.to_owned(),
                    name: words.next()?.to_owned(),
                    state: words.next().unwrap_or_default().to_owned(),
                })
            })
            .collect();
        // `docker ps` lists the newest first.
        containers.reverse();
        Ok(containers)
    }

    /// Until the container says it is ready, or exits, or the time is up.
    fn await_ready(&self, sh: &Shell, container: &Container) -> anyhow::Result<()> {
        let probe = self.is_ready(&container.name);
        let state = self.stack.engine().docker([
            "inspect",
            "--format",
            "{{.State.Status}} {{.RestartCount}}",
            &container.name,
        ]);
        let poll = Poll::new(
            format!("the new {} to get ready", self.web),
            format!("the new {} ({}) was not ready", self.web, container.name),
        )
        .timeout(self.timeout)
        .every(READY_POLL);
        poll.until(|| {
            let output = run::probe(sh, &probe)?;
            if output.status.success() {
                return Ok(Answer::Ready(()));
            }
            // An exit, or a restart after one (`restart: unless-stopped`): it will not be.
            let state = run::read(sh, &state)?;
            let mut state = state.split_whitespace();
            let (status, restarts) = (
                state.next().unwrap_or_default(),
                state.next().unwrap_or("0"),
            );
            if matches!(status, "exited" | "dead" | "restarting") || restarts != "0" {
                bail!(
                    "the new {} ({}) exited instead of getting ready",
                    self.web,
                    container.name
                );
            }
            let stderr = String::from_utf8_lossy(&output.stderr);
            Ok(Answer::NotYet(run::last_line(&stderr).unwrap_or_default()))
        })
    }

    /// `caddy reload`, tried again while a proxy just started does not take it yet.
    fn reload_proxy(&self, sh: &Shell, container: &str) -> anyhow::Result<()> {
        let reload = self.point_proxy_at(container);
        output::command(&reload.to_string());
        let poll = Poll::new(
            format!("{} to take the new upstream", self.proxy),
            format!("{} did not take the new upstream", self.proxy),
        )
        .timeout(PROXY_START)
        .every(READY_POLL);
        poll.until(|| {
            let answer = run::probe(sh, &reload)?;
            if answer.status.success() {
                return Ok(Answer::Ready(()));
            }
            let stderr = String::from_utf8_lossy(&answer.stderr);
            Ok(Answer::NotYet(
                run::last_line(&stderr).unwrap_or_else(|| answer.status.to_string()),
            ))
        })
    }

    /// The new container's last logs, then its removal: the old ones keep serving.
    fn abandon(&self, sh: &Shell, container: &Container) {
        run::show(
            sh,
            &format!("what went wrong, as the new {}'s logs tell it", self.web),
            &self
                .stack
                .engine()
                .docker(["logs", "--tail", "30", &container.name]),
        );
        let _ = run::act(
            sh,
            &self
                .stack
                .engine()
                .docker(["rm", "--force", &container.name]),
        );
    }
}

impl Task for Switch {
    fn run(&self, sh: &Shell) -> anyhow::Result<String> {
        let (old, stopped): (Vec<Container>, Vec<Container>) = self
            .containers(sh)?
            .into_iter()
            .partition(|container| container.state == "running");
        if let ([current], []) = (old.as_slice(), stopped.as_slice()) {
            if let Some(kept) = self.keep(sh, current)? {
                return Ok(kept);
            }
        }
        // Left by a deploy stopped midway, or exited: they serve nothing, and would count
        // towards the scale.
        for container in &stopped {
            run::act(
                sh,
                &self
                    .stack
                    .engine()
                    .docker(["rm", "--force", &container.name]),
            )?;
        }
        run::act(sh, &self.scale_up(old.len() + 1))?;
        let new = self
            .containers(sh)?
            .into_iter()
            .find(|container| !old.iter().any(|known| known.id == container.id))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "`{}` started no new container",
                    self.scale_up(old.len() + 1)
                )
            })?;
        // Stopped before the switch: the new container goes, the old keeps serving.
        let remove_new = self.stack.engine().docker(["rm", "--force", &new.name]);
        let dir = sh.current_dir();
        interrupt::on_interruption(
            "new web",
            Box::new(move || {
                run::while_stopping(&dir, &remove_new);
            }),
        );
        let ready = self
            .await_ready(sh, &new)
            .and_then(|()| run::act(sh, &self.proxy_up()))
            .and_then(|()| match &self.config {
                Some(config) => config.sync(sh).map(drop),
                None => Ok(()),
            });
        // From the reload on, the proxy may point at the new container: stopped now, it is
        // kept beside the old, and the next deploy drains both.
        interrupt::forget_cleanup("new web");
        if let Err(err) = ready.and_then(|()| self.reload_proxy(sh, &new.name)) {
            self.abandon(sh, &new);
            let kept = match old.as_slice() {
                [] => "nothing serves yet".to_owned(),
                old => format!(
                    "{} keeps serving",
                    old.iter()
                        .map(|container| container.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            return Err(Hint::new(
                format!("{err:#}: it was removed, {kept}"),
                "fix what its logs above say, then deploy again",
            )
            .into());
        }
        for container in &old {
            for command in self.drain(&container.name) {
                run::act(sh, &command)?;
            }
        }
        Ok(format!(
            "{} switched to {}{}",
            self.web,
            new.name,
            self.stack.target.on()
        ))
    }
}

/// The commands, with what is found when it runs in `<…>`.
impl fmt::Display for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [stop, remove] = self.drain("<each old web>");
        let ready = self.is_ready(NEW);
        let sync = match &self.config {
            Some(_) => format!(
                "{}    # the new Caddyfile, if the running proxy has another\n",
                self.stack.engine().docker([
                    "cp",
                    "-",
                    &format!("<the {} container>:/", self.proxy)
                ])
            ),
            None => String::new(),
        };
        write!(
            f,
            "# nothing of what follows if web runs this image, settings and secrets already\n{}\n{ready}    # until it succeeds, for at most {} s\n{}\n{sync}{}\n{stop}\n{remove}",
            self.scale_up(2).to_string().replace(
                &format!("{}=2", self.web),
                &format!("{}=<running + 1>", self.web)
            ),
            self.timeout.as_secs(),
            self.proxy_up(),
            self.point_proxy_at(NEW),
        )
    }
}
