//! `cargo xtask deploy ENV`: the image built and brought to the engine, database up and
//! ready, migrations, then web up and healthy. A deploy never removes a volume: data
//! survives every deploy, failed or not.
//!
//! On this machine's engine the waits go through the published ports (`cargo xtask
//! wait`'s probes); on another machine's, through the engine itself (`up --wait`, the
//! services' healthchecks): nothing assumes a remote stack's ports are reachable here.

use std::time::{Duration, Instant};

use xshell::Shell;

use super::{
    Model, Stack, after_interruption,
    release::{Release, Wanted},
};
use crate::{
    cli::DeployArgs,
    docker::{self, Needs},
    interrupt, output,
    plan::{self, Step},
};

/// Compose counts in nanoseconds of an int64: a century is as long as it can wait.
const CENTURY_IN_SECONDS: u64 = 100 * 365 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct Options {
    pub build: bool,
    pub timeout: Duration,
}

impl DeployArgs {
    pub fn options(&self) -> Options {
        Options {
            build: !self.no_build,
            timeout: self.timeout,
        }
    }

    fn wanted(&self) -> Wanted<'_> {
        Wanted {
            build: !self.no_build,
            registry: self.registry.as_deref(),
            allow_dirty: self.allow_dirty,
        }
    }
}

pub fn run(sh: &Shell, args: &DeployArgs) -> anyhow::Result<()> {
    let (stack, model) = args.env.stack(sh)?;
    let options = args.options();
    docker::preflight(
        sh,
        &stack.engine,
        Needs::acting(args.dry_run, options.build),
    )?;
    let stack = args.secrets.resolve(sh, stack, &model)?;
    let release = Release::choose(sh, &stack, &model, &args.wanted())?;
    let stack = release.applied_to(stack);
    let steps = plan(&stack, &model, &options, &release)?;
    if args.dry_run {
        plan::print(&steps);
        return Ok(());
    }
    let started = Instant::now();
    let env = &args.env.env;
    interrupt::set_hint(after_interruption("deploy", env));
    plan::execute(sh, &steps)?;
    let elapsed = output::seconds(started.elapsed());
    println!(
        "{env} is up{}: {} ({elapsed})",
        stack.engine.on(),
        where_to_find(&stack, &model)?
    );
    Ok(())
}

/// The image brought to the engine, database up and ready, migrations, then web up and
/// healthy.
pub fn plan(
    stack: &Stack,
    model: &Model,
    options: &Options,
    release: &Release,
) -> anyhow::Result<Vec<Step>> {
    let mut steps = release.steps(&stack.engine, options.build)?;
    steps.extend(database_steps(stack, model, options.timeout)?);
    steps.push(migrate_step(stack, model));
    steps.extend(web_steps(stack, model, options.timeout)?);
    Ok(steps)
}

/// Starts the database and waits until PostgreSQL accepts connections: through its
/// published port with our own probe where that is on this machine, else by the engine's
/// healthcheck.
pub fn database_steps(
    stack: &Stack,
    model: &Model,
    timeout: Duration,
) -> anyhow::Result<Vec<Step>> {
    let db = model.xtask.db_service.as_str();
    let probe = probe_address(stack, model, db)?.map(|address| format!("postgres://{address}"));
    Ok(start_then_await(
        stack,
        db,
        &["--no-build"],
        probe,
        "ready",
        "accept connections",
        timeout,
    ))
}

/// A one-off container from the web image on the stack's network, removed afterwards.
pub fn migrate_step(stack: &Stack, model: &Model) -> Step {
    let settings = &model.xtask;
    let args = ["run", "--rm", "--no-deps", &settings.migrate_service];
    Step::run(
        &format!("migrations applied{}", stack.engine.on()),
        stack.compose_with_secrets(&args),
        &format!(
            "the migrations failed, so {} was not started ({} is running, its data untouched)",
            settings.web_service, settings.db_service
        ),
    )
}

/// Replaces web, then waits until its health endpoint answers 200. Always a new container:
/// Compose would keep one whose configuration is unchanged, and with it the secret files
/// it was given, where a rotated password must take effect.
fn web_steps(stack: &Stack, model: &Model, timeout: Duration) -> anyhow::Result<Vec<Step>> {
    let settings = &model.xtask;
    let web = settings.web_service.as_str();
    let probe = probe_address(stack, model, web)?
        .map(|address| format!("http://{address}{}", settings.health_path));
    Ok(start_then_await(
        stack,
        web,
        &["--no-build", "--no-deps", "--force-recreate"],
        probe,
        "healthy",
        "become healthy",
        timeout,
    ))
}

/// Where our own probe reaches a service: its published port, on this machine's engine only.
fn probe_address(stack: &Stack, model: &Model, service: &str) -> anyhow::Result<Option<String>> {
    if !stack.engine.is_local() {
        return Ok(None);
    }
    model.published_address(service, &stack.engine)
}

/// `up` for one service, then the wait until it is `ready_word`: our own probe through its
/// published port where there is one, else `up --wait`, the engine's healthcheck. On
/// timeout the service's last logs explain why.
fn start_then_await(
    stack: &Stack,
    service: &str,
    up_flags: &[&str],
    probe: Option<String>,
    ready_word: &str,
    what_failed: &str,
    timeout: Duration,
) -> Vec<Step> {
    let seconds = timeout.as_secs().min(CENTURY_IN_SECONDS).to_string();
    let not_ready =
        format!("{service} did not {what_failed} within {seconds}s: its last logs are above");
    let logs = stack.compose(&["logs", "--tail", "30", service]);
    let on = stack.engine.on();
    let ready = format!("{service} {ready_word}{on}");
    let mut up = vec!["up", "--detach"];
    up.extend_from_slice(up_flags);
    match probe {
        Some(target) => {
            up.push(service);
            vec![
                Step::run(
                    &format!("{service} started{on}"),
                    stack.compose_with_secrets(&up),
                    &format!("{service} did not start"),
                )
                .starts(service),
                Step::await_ready(&ready, target, timeout, &not_ready).diagnosed_by(logs),
            ]
        }
        None => {
            up.extend(["--wait", "--wait-timeout", &seconds, service]);
            vec![
                Step::run(&ready, stack.compose_with_secrets(&up), &not_ready)
                    .starts(service)
                    .diagnosed_by(logs),
            ]
        }
    }
}

/// `http://10.201.1.2:8080/`, or how to reach a port the engine's machine keeps to itself.
fn where_to_find(stack: &Stack, model: &Model) -> anyhow::Result<String> {
    let web = &model.xtask.web_service;
    let Some((host_ip, port)) = model.published(web)? else {
        return Ok(format!("{web} publishes no port"));
    };
    Ok(
        match (stack.engine.reach(host_ip, port), stack.engine.ssh()) {
            (Some(address), _) => format!("http://{address}/"),
            (None, Some(host)) => format!(
                "{web} listens on {host}'s own {}:{port}: `ssh -L {port}:{}:{port} {host}`, then http://127.0.0.1:{port}/",
                host_ip.unwrap_or_default(),
                host_ip.unwrap_or_default()
            ),
            (None, None) => format!(
                "{web} listens on the engine's own {}:{port} only",
                host_ip.unwrap_or_default()
            ),
        },
    )
}

#[cfg(test)]
#[path = "deploy_tests.rs"]
mod tests;
