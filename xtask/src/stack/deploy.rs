//! `cargo xtask deploy ENV`: the image built and brought to the engine, database up and
//! ready, migrations, then web up and healthy. A deploy never removes a volume: data
//! survives every deploy, failed or not.
//!
//! On this machine's engine the waits go through the published ports (`cargo xtask
//! wait`'s probes); on another machine's, through the engine itself (`up --wait`, the
//! services' healthchecks): nothing assumes a remote stack's ports are reachable here.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use xshell::Shell;

use super::{
    Model, Stack, Target, after_interruption, open,
    proxy::ProxyConfig,
    release::{Build, Release, Wanted},
    state::{self, Lock},
    switch::Switch,
};
use crate::{
    cli::DeployArgs,
    database::{
        self, Store,
        backup::{self, Before, Taken},
    },
    docker::{Needs, run},
    interrupt, output,
    plan::{self, Action, Step},
    swarm,
};

/// Compose counts in nanoseconds of an int64: a century is as long as it can wait.
const CENTURY_IN_SECONDS: u64 = 100 * 365 * 24 * 3600;

#[derive(Debug, Clone)]
pub struct Options {
    pub build: Build,
    pub timeout: Duration,
    /// A backup before migrations the database lacks, or not.
    pub before: Before,
}

impl DeployArgs {
    pub fn options(&self, store: Store) -> Options {
        Options {
            build: self.build(),
            timeout: self.timeout,
            before: match self.no_backup {
                true => Before::Nothing,
                false => Before::Backup {
                    store,
                    taken: Taken::default(),
                },
            },
        }
    }

    fn build(&self) -> Build {
        match self.no_build {
            true => Build::Skip,
            false => Build::Image,
        }
    }

    fn wanted(&self) -> Wanted<'_> {
        Wanted {
            build: self.build(),
            registry: self.registry.as_deref(),
            allow_dirty: self.allow_dirty,
        }
    }
}

pub fn run(sh: &Shell, args: &DeployArgs) -> anyhow::Result<()> {
    let needs = match args.build() {
        Build::Image => Needs::to_act(args.dry_run).and_build(),
        Build::Skip => Needs::to_act(args.dry_run),
    };
    let (stack, model) = open(sh, &args.env, needs)?;
    let options = args.options(backup::store(sh, &stack, &model, None));
    let stack = stack.with_resolved_secrets(sh, &model, args.secrets.file.as_deref())?;
    let release = Release::choose(sh, &stack, &model, &args.wanted())?;
    let stack = release.applied_to(stack);
    // On a swarm, what the swarm has is read under the lock: another deploy may change it.
    let steps = |dry_run: swarm::DryRun| -> anyhow::Result<Vec<Step>> {
        match &stack.target {
            Target::Compose { .. } => plan(&stack, &model, &options, &release),
            Target::Swarm { manager } => {
                let facts = swarm::Facts::read(sh, manager, dry_run)?;
                swarm::Plan::new(&stack, manager, &model, &facts, options.timeout).deploy(
                    &release,
                    options.build,
                    &options.before,
                )
            }
        }
    };
    if args.dry_run {
        plan::print(&steps(swarm::DryRun::Yes)?);
        println!("{}", LOCKED);
        return Ok(());
    }
    let started = Instant::now();
    let env = &args.env.env;
    interrupt::set_hint(after_interruption("deploy", env));
    release.check_present(sh, stack.engine(), options.build)?;
    let lock = Lock::take(sh, &stack, "deploy", args.break_lock)?;
    database::version::check(sh, &stack, &model)?;
    let steps = steps(swarm::DryRun::No)?;
    let record = state::begin(sh, &stack, &lock, "deploy", &release.runs.to_string())?;
    let outcome = plan::execute(sh, &steps);
    let result = serving_or_reason(sh, &stack, &model, &outcome);
    let record = state::Record {
        backup: options.before.taken(),
        ..record
    };
    state::finish(sh, &stack, &lock, &record, result);
    outcome?;
    prune_images(sh, &stack, &lock);
    drop(lock);
    let elapsed = output::seconds(started.elapsed());
    let everywhere = match stack.target {
        Target::Compose { .. } => "",
        // The proxy runs on every node, each publishing the port.
        Target::Swarm { .. } => ", and on every node of the swarm",
    };
    println!(
        "{env} is up{}: {}{everywhere} ({elapsed})",
        stack.target.on(),
        where_to_find(&stack, &model)?
    );
    Ok(())
}

/// What `--dry-run` says after the steps: they run under the lock.
pub const LOCKED: &str =
    "# all under the deploy lock, recorded in the history (cargo xtask history ENV)";

/// On one engine: the image brought to it, database up and ready, migrations, then web
/// replaced behind the proxy.
pub fn plan(
    stack: &Stack,
    model: &Model,
    options: &Options,
    release: &Release,
) -> anyhow::Result<Vec<Step>> {
    let mut steps = release.steps(stack.engine(), options.build)?;
    steps.extend(ProxyConfig::of(stack, model)?.map(|config| config.check_step()));
    steps.extend(database_steps(stack, model, options.timeout)?);
    steps.extend(
        options
            .before
            .step(stack, model, &release.runs, stack.engine()),
    );
    steps.push(super::migrate::UnlessCurrent::step(
        stack,
        model,
        &release.runs.to_string(),
    ));
    steps.extend(web_steps(stack, model, options.timeout)?);
    steps.extend(others_step(stack, model));
    Ok(steps)
}

/// For the history: the container (or swarm service) that serves now, or why the command
/// failed.
pub fn serving_or_reason(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    outcome: &anyhow::Result<()>,
) -> Result<String, String> {
    if let Err(err) = outcome {
        return Err(output::error_line(err));
    }
    let web = &model.xtask.web_service;
    match &stack.target {
        Target::Swarm { .. } => Ok(swarm::service_name(stack, web)),
        Target::Compose { .. } => {
            let running = run::read(sh, &stack.listing_of(web, "{{.Names}}"));
            Ok(running
                .map(|names| names.trim().to_owned())
                .unwrap_or_default())
        }
    }
}

/// Removes the app images older deploys sent to another host, but for the last few (which
/// a rollback may want): what the history says was deployed, nothing else, and never on
/// this machine's engine, whose images are the developer's. An image a container still
/// uses is kept by the engine itself.
fn prune_images(sh: &Shell, stack: &Stack, _lock: &Lock) {
    let engine = stack.engine();
    if engine.is_local() {
        return;
    }
    let Ok(records) = state::history(sh, stack) else {
        return;
    };
    let kept = state::recent_images(&records, IMAGES_KEPT);
    let mut removed: Vec<&str> = Vec::new();
    for record in &records {
        let image = record.image.as_str();
        if kept.iter().any(|kept| kept == image) || removed.contains(&image) {
            continue;
        }
        removed.push(image);
        // In use, or already gone: either way, nothing to do.
        let _ = run::probe(sh, &engine.docker(["image", "rm", image]));
    }
}

/// How many of the last deployed images stay on the engine for a rollback.
pub const IMAGES_KEPT: usize = 3;

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
        &format!("migrations applied{}", stack.target.on()),
        stack.compose_with_secrets(&args),
        &format!(
            "the migrations failed, so {} was not started ({} is running, its data untouched)",
            settings.web_service, settings.db_service
        ),
    )
}

/// The services that run beside the three the xtask drives (a scheduled backup), up and
/// as the model says; nothing when there are none.
fn others_step(stack: &Stack, model: &Model) -> Option<Step> {
    let others = model.others();
    if others.is_empty() {
        return None;
    }
    let mut up = vec!["up", "--detach", "--no-build", "--no-deps"];
    up.extend(&others);
    Some(Step::run(
        &format!("{} up{}", output::and_list(&others), stack.target.on()),
        stack.compose_with_secrets(&up),
        &format!("{} did not start (web serves)", output::and_list(&others)),
    ))
}

/// web replaced behind the proxy (see `switch`); then, on this machine's engine, the app
/// through the proxy's published port, as a user reaches it.
fn web_steps(stack: &Stack, model: &Model, timeout: Duration) -> anyhow::Result<Vec<Step>> {
    let settings = &model.xtask;
    let switch = Switch::new(stack, model, timeout)?;
    let mut steps = vec![
        Step::new(
            &format!("{} switched{}", settings.web_service, stack.target.on()),
            Action::Task(Arc::new(switch)),
            &format!("the new {} was not put in service", settings.web_service),
        )
        .starts(&settings.web_service),
    ];
    // With a domain, the proxy answers by that name only, over HTTPS: nothing to probe by
    // address here.
    let probe = match model.domain() {
        Some(_) => None,
        None => probe_address(stack, model, &settings.proxy_service)?,
    };
    if let Some(address) = probe {
        let target = format!("http://{address}{}", settings.health_path);
        steps.push(
            Step::await_ready(
                &format!(
                    "{} answers through {}",
                    settings.web_service, settings.proxy_service
                ),
                target,
                timeout,
                &format!(
                    "{} does not answer: its last logs are above",
                    settings.proxy_service
                ),
            )
            .diagnosed_by(stack.compose(&[
                "logs",
                "--tail",
                "30",
                &settings.proxy_service,
            ])),
        );
    }
    Ok(steps)
}

/// Where our own probe reaches a service: its published port, on this machine's engine only.
fn probe_address(stack: &Stack, model: &Model, service: &str) -> anyhow::Result<Option<String>> {
    let engine = stack.engine();
    if !engine.is_local() {
        return Ok(None);
    }
    model.published_address(service, engine)
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
    let on = stack.target.on();
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
    let web = &model.xtask.proxy_service;
    if let Some(domain) = model.domain() {
        return Ok(match model.published_for(web, 443) {
            Some("443") | None => format!("https://{domain}/"),
            Some(port) => format!("https://{domain}:{port}/"),
        });
    }
    let Some((host_ip, port)) = model.published(web)? else {
        return Ok(format!("{web} publishes no port"));
    };
    let engine = stack.engine();
    Ok(match (engine.reach(host_ip, port), engine.ssh()) {
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
    })
}

#[cfg(test)]
#[path = "deploy_tests.rs"]
mod tests;
