//! A PostgreSQL data directory is made by one major version, and only that version's server
//! starts on it: a deploy with another (`POSTGRES_IMAGE=postgres:18` on a 17's data) would
//! leave the database crash-looping. Checked before anything is stopped, from the data
//! itself (its `PG_VERSION`, read from the volume) and the image (its `PG_MAJOR`, as the
//! official image sets it, else what its `postgres --version` says).

use anyhow::Context;
use xshell::Shell;

use crate::{
    docker::{Engine, images, run},
    hint::Hint,
    stack::{Model, Stack, Target, unchanged},
    swarm,
};

/// Where the official image keeps its data, and the stack mounts its volume.
const DATA_DIR: &str = "/var/lib/postgresql/data";

/// Refuses an image of another major version than the data's.
pub fn check(sh: &Shell, stack: &Stack, model: &Model) -> anyhow::Result<()> {
    let db = model.service(&model.xtask.db_service)?;
    let Some(image) = db.image.clone() else {
        return Ok(());
    };
    let Some(volume) = db
        .volumes
        .iter()
        .find(|mount| mount.target == DATA_DIR)
        .and_then(|mount| mount.source.clone())
    else {
        return Ok(());
    };
    // The server that runs on the data now stays as it is: nothing to check.
    if matches!(stack.target, Target::Compose { .. })
        && unchanged::runs_image(sh, stack, &model.xtask.db_service, &image)?
    {
        return Ok(());
    }
    let volume = format!("{}_{volume}", stack.project);
    let Some(engine) = data_engine(sh, stack)? else {
        return Ok(());
    };
    let exists = run::probe(sh, &engine.docker(["volume", "inspect", &volume]))?;
    if !exists.status.success() {
        // A first deploy: no data yet.
        return Ok(());
    }
    if !images::has(sh, &engine, &image)? {
        // What `up` would pull anyway; if it cannot, `up` says why.
        if run::act(sh, &engine.docker(["pull", "--quiet", &image])).is_err() {
            return Ok(());
        }
    }
    let mount = format!("{volume}:/data:ro");
    let data = run::read(
        sh,
        &engine.run_once(&image, Some(&mount), "cat", &["/data/PG_VERSION"]),
    )
    .ok()
    .map(|version| version.trim().to_owned())
    .filter(|version| !version.is_empty());
    let Some(data) = data else {
        return Ok(());
    };
    let server = image_major(sh, &engine, &image)?;
    match server {
        Some(server) if server != data => Err(Hint::new(
            format!(
                "the data of {} is PostgreSQL {data}'s and {image} is PostgreSQL {server}: its server cannot start on that data, so nothing was changed",
                stack.name()
            ),
            format!(
                "keep the image of PostgreSQL {data}, or move the data by dump and restore: `cargo xtask backup {env}`, `cargo xtask down {env} --volumes`, deploy with the new image, `cargo xtask restore {env}` (README: Upgrading PostgreSQL)",
                env = stack.name()
            ),
        )
        .into()),
        _ => Ok(()),
    }
}

/// The engine whose volume holds the data: the project's, or a swarm's database node.
fn data_engine(sh: &Shell, stack: &Stack) -> anyhow::Result<Option<Engine>> {
    match &stack.target {
        Target::Compose { engine } => Ok(Some(engine.clone())),
        Target::Swarm { manager } => {
            let nodes = swarm::nodes::list(sh, manager)?;
            nodes
                .iter()
                .find(|node| node.db)
                .map(|node| node.engine())
                .transpose()
                .map(Option::flatten)
        }
    }
}

/// The image's major version: its `PG_MAJOR`, else its `postgres --version`.
fn image_major(sh: &Shell, engine: &Engine, image: &str) -> anyhow::Result<Option<String>> {
    let environment = run::read(
        sh,
        &engine.docker([
            "image",
            "inspect",
            "--format",
            "{{range .Config.Env}}{{println .}}{{end}}",
            image,
        ]),
    )?;
    if let Some(major) = environment
        .lines()
        .find_map(|line| line.strip_prefix("PG_MAJOR="))
    {
        return Ok(Some(major.trim().to_owned()));
    }
    let version = run::read(
        sh,
        &engine.run_once(image, None, "postgres", &["--version"]),
    )
    .context("cannot tell the image's PostgreSQL version")?;
    Ok(major_of(&version))
}

/// `postgres (PostgreSQL) 17.2 (Debian 17.2-1.pgdg120+1)` → `17`; `9.6.24` → `9.6`.
fn major_of(version: &str) -> Option<String> {
    let number = version.split_whitespace().nth(2)?;
    let mut parts = number.split('.');
    let first = parts.next()?;
    match first.parse::<u32>().ok()? {
        major if major >= 10 => Some(major.to_string()),
        major => Some(format!("{major}.{}", parts.next()?)),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn majors_as_postgres_prints_them() {
        assert_eq!(
            super::major_of("postgres (PostgreSQL) 17.2 (Debian 17.2-1.pgdg120+1)").as_deref(),
            Some("17")
        );
        assert_eq!(
            super::major_of("postgres (PostgreSQL) 9.6.24").as_deref(),
            Some("9.6")
        );
        assert_eq!(super::major_of("nonsense"), None);
    }
}
