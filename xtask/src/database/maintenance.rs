//! `cargo xtask maintenance ENV on|off`: the proxy answers every request but the health
//! checks with a 503 maintenance page (and `Retry-After`), or serves again. The switch is
//! a file in the proxy's own volume, which the Caddyfile's `@maintenance` matcher looks
//! for at each request: no reload, nothing lost in flight. A restore turns it on for its
//! swap; on a swarm, every node's proxy.

use xshell::Shell;

use crate::{
    cli::MaintenanceArgs,
    docker::{Engine, Needs, run},
    output,
    stack::{Model, Stack, Target, open},
    swarm,
};

/// The file whose presence turns the page on (see compose.yaml's Caddyfile).
const SWITCH: &str = "/data/travial-maintenance";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    On,
    Off,
}

pub fn run(sh: &Shell, args: &MaintenanceArgs) -> anyhow::Result<()> {
    let (stack, model) = open(sh, &args.env, Needs::to_act(args.dry_run))?;
    if args.dry_run {
        println!(
            "docker exec <each {} container> {}",
            model.xtask.proxy_service,
            command(args.mode).join(" ")
        );
        return Ok(());
    }
    set(sh, &stack, &model, args.mode)?;
    println!(
        "{} is {}{}",
        stack.name(),
        match args.mode {
            Mode::On => "in maintenance: its proxy answers 503 with the maintenance page",
            Mode::Off => "serving again",
        },
        stack.target.on()
    );
    Ok(())
}

fn command(mode: Mode) -> [&'static str; 3] {
    match mode {
        Mode::On => ["touch", "--", SWITCH],
        Mode::Off => ["rm", "-f", SWITCH],
    }
}

/// The page on or off on every proxy container of the stack.
pub fn set(sh: &Shell, stack: &Stack, model: &Model, mode: Mode) -> anyhow::Result<()> {
    let proxies = proxies(sh, stack, model)?;
    if proxies.is_empty() {
        anyhow::bail!(
            "{} of {} runs nowhere{}: deploy it first",
            model.xtask.proxy_service,
            stack.name(),
            stack.target.on()
        );
    }
    let started = std::time::Instant::now();
    for (engine, container) in &proxies {
        let mut args = vec!["exec".to_owned(), container.clone()];
        args.extend(command(mode).map(str::to_owned));
        run::act(sh, &engine.docker(args))?;
    }
    output::done(
        &format!(
            "maintenance page {}{}",
            match mode {
                Mode::On => "on",
                Mode::Off => "off",
            },
            stack.target.on()
        ),
        started.elapsed(),
    );
    Ok(())
}

/// Each running proxy container, with the engine it runs on.
fn proxies(sh: &Shell, stack: &Stack, model: &Model) -> anyhow::Result<Vec<(Engine, String)>> {
    let proxy = &model.xtask.proxy_service;
    match &stack.target {
        Target::Compose { engine } => {
            let ids = run::read(sh, &stack.containers_of(proxy))?;
            Ok(ids
                .lines()
                .map(|id| (engine.clone(), id.to_owned()))
                .collect())
        }
        Target::Swarm { manager } => {
            let filter = format!(
                "label=com.docker.swarm.service.name={}",
                swarm::service_name(stack, proxy)
            );
            let mut found = Vec::new();
            for node in swarm::nodes::list(sh, manager)? {
                let Some(engine) = node.engine()? else {
                    continue;
                };
                if node.status != "ready" {
                    continue;
                }
                let ids = run::read(sh, &engine.docker(["ps", "--quiet", "--filter", &filter]))?;
                found.extend(ids.lines().map(|id| (engine.clone(), id.to_owned())));
            }
            Ok(found)
        }
    }
}
