//! `cargo xtask deploy ENV` and the commands around a deployed stack: `migrate`, `down`,
//! `logs`, `config` (and `status`, in its own module).
//!
//! A deploy never removes a volume: data survives every deploy, failed or not.

use std::{path::Path, time::Duration};

use anyhow::Context;
use xshell::Shell;

use crate::{
    compose::{Merged, Stack},
    docker,
    hint::Hint,
    interrupt, output,
    plan::{self, Step},
    process::Docker,
};

#[derive(Debug, Clone)]
pub struct DeployOptions {
    pub build: bool,
    pub timeout: Duration,
}

pub fn deploy(
    sh: &Shell,
    root: &Path,
    env: &str,
    options: &DeployOptions,
    dry_run: bool,
) -> anyhow::Result<()> {
    let (stack, merged) = prepare(sh, root, env, dry_run)?;
    let steps = deploy_plan(&stack, &merged, options)?;
    if dry_run {
        plan::print(&steps);
        return Ok(());
    }
    let started = std::time::Instant::now();
    interrupt::set_hint(after_interruption("deploy", env));
    plan::execute(sh, &steps)?;
    let web = &merged.xtask.web_service;
    let elapsed = output::seconds(started.elapsed());
    match merged.published_address(web)? {
        Some(address) => println!("{env} is up: http://{address}/ ({elapsed})"),
        None => println!("{env} is up; {web} publishes no port ({elapsed})"),
    }
    Ok(())
}

pub fn migrate(
    sh: &Shell,
    root: &Path,
    env: &str,
    timeout: Duration,
    dry_run: bool,
) -> anyhow::Result<()> {
    let (stack, merged) = prepare(sh, root, env, dry_run)?;
    let mut steps = database_steps(&stack, &merged, timeout)?;
    steps.push(migrate_step(&stack, &merged));
    interrupt::set_hint(after_interruption("migrate", env));
    run_or_print(sh, &steps, dry_run)
}

pub fn down(
    sh: &Shell,
    root: &Path,
    env: &str,
    volumes: bool,
    dry_run: bool,
) -> anyhow::Result<()> {
    let stack = Stack::load(root, env)?;
    docker::preflight(sh, !dry_run)?;
    run_or_print(sh, &[down_step(&stack, volumes)], dry_run)
}

pub fn logs(
    sh: &Shell,
    root: &Path,
    env: &str,
    service: Option<&str>,
    follow: bool,
) -> anyhow::Result<()> {
    let mut args = compose(&Stack::load(root, env)?, &["logs"]);
    args.extend(follow.then(|| "--follow".to_owned()));
    args.extend(service.map(str::to_owned));
    docker::preflight(sh, true)?;
    Docker::new(sh, args).show()
}

/// The merged configuration exactly as Compose computes it. Compose needs no daemon for it.
pub fn config(sh: &Shell, root: &Path, env: &str) -> anyhow::Result<()> {
    let args = compose(&Stack::load(root, env)?, &["config"]);
    docker::preflight(sh, false)?;
    Docker::new(sh, args).show()
}

/// The `hint:` after Ctrl-C: both commands are safe to run again.
fn after_interruption(command: &str, env: &str) -> String {
    format!(
        "run `cargo xtask {command} {env}` again to finish (the data is kept), or `cargo xtask down {env}` to stop what was started"
    )
}

/// Every check that can fail before anything starts: the environment, its files, docker,
/// and the merged model (which also proves every required variable is set).
fn prepare(sh: &Shell, root: &Path, env: &str, dry_run: bool) -> anyhow::Result<(Stack, Merged)> {
    let stack = Stack::load(root, env)?;
    docker::preflight(sh, !dry_run)?;
    let output = Docker::new(sh, compose(&stack, &["config"])).output()?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Hint::maybe(
            format!(
                "the {env} configuration is incomplete, nothing was started: {}",
                stderr.trim()
            ),
            docker::known_fix(&stderr),
        ));
    }
    let merged = Merged::parse(&String::from_utf8_lossy(&output.stdout))
        .with_context(|| format!("in the merged configuration of {env}"))?;
    Ok((stack, merged))
}

fn run_or_print(sh: &Shell, steps: &[Step], dry_run: bool) -> anyhow::Result<()> {
    if dry_run {
        plan::print(steps);
        Ok(())
    } else {
        plan::execute(sh, steps)
    }
}

/// Build, database up and ready, migrations, then web up and healthy.
pub fn deploy_plan(
    stack: &Stack,
    merged: &Merged,
    options: &DeployOptions,
) -> anyhow::Result<Vec<Step>> {
    let mut steps = Vec::new();
    if options.build {
        steps.push(Step::docker(
            "image built",
            compose(stack, &["build"]),
            "the image did not build: see the compiler's output above",
        ));
    }
    steps.extend(database_steps(stack, merged, options.timeout)?);
    steps.push(migrate_step(stack, merged));
    steps.extend(web_steps(stack, merged, options.timeout)?);
    Ok(steps)
}

/// Starts the database and waits until PostgreSQL accepts connections: through its
/// published port with our own probe where there is one, else by the engine's healthcheck.
fn database_steps(stack: &Stack, merged: &Merged, timeout: Duration) -> anyhow::Result<Vec<Step>> {
    let db = merged.xtask.db_service.as_str();
    let probe = merged
        .published_address(db)?
        .map(|address| format!("postgres://{address}"));
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
fn migrate_step(stack: &Stack, merged: &Merged) -> Step {
    let settings = &merged.xtask;
    let mut args = compose(stack, &["run", "--rm", "--no-deps", &settings.web_service]);
    args.extend(settings.migrate_command.iter().cloned());
    Step::docker(
        "migrations applied",
        args,
        &format!(
            "the migrations failed, so {} was not started ({} is running, its data untouched)",
            settings.web_service, settings.db_service
        ),
    )
}

/// Starts or replaces web, then waits until its health endpoint answers 200.
fn web_steps(stack: &Stack, merged: &Merged, timeout: Duration) -> anyhow::Result<Vec<Step>> {
    let settings = &merged.xtask;
    let web = settings.web_service.as_str();
    let probe = merged
        .published_address(web)?
        .map(|address| format!("http://{address}{}", settings.health_path));
    let up_flags = ["--no-build", "--no-deps"];
    Ok(start_then_await(
        stack,
        web,
        &up_flags,
        probe,
        "healthy",
        "become healthy",
        timeout,
    ))
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
    let seconds = timeout.as_secs().to_string();
    let not_ready =
        format!("{service} did not {what_failed} within {seconds}s: its last logs are above");
    let logs = compose(stack, &["logs", "--tail", "30", service]);
    let ready = format!("{service} {ready_word}");
    let mut up = vec!["up", "--detach"];
    up.extend_from_slice(up_flags);
    match probe {
        Some(target) => {
            up.push(service);
            vec![
                Step::docker(
                    &format!("{service} started"),
                    compose(stack, &up),
                    &format!("{service} did not start"),
                )
                .starts(service),
                Step::await_ready(&ready, target, timeout, &not_ready).diagnosed_by(logs),
            ]
        }
        None => {
            up.extend(["--wait", "--wait-timeout", &seconds, service]);
            vec![
                Step::docker(&ready, compose(stack, &up), &not_ready)
                    .starts(service)
                    .diagnosed_by(logs),
            ]
        }
    }
}

fn down_step(stack: &Stack, volumes: bool) -> Step {
    let mut args = compose(stack, &["down", "--remove-orphans"]);
    if volumes {
        args.push("--volumes".to_owned());
    }
    Step::docker(
        if volumes {
            "stopped, data removed"
        } else {
            "stopped, data kept"
        },
        args,
        "the stack did not stop cleanly",
    )
}

pub fn compose(stack: &Stack, args: &[&str]) -> Vec<String> {
    let mut all = stack.compose_args();
    all.extend(args.iter().map(|arg| (*arg).to_owned()));
    all
}

#[cfg(test)]
mod tests;
