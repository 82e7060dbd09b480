//! What a redeploy would change of what runs: nothing, for a container that runs the
//! release's image (the same image ID), with the settings Compose would give it now (its
//! `config-hash` label: Compose's own hash of the service's configuration) and the same
//! secret files. Compose counts a secret's name in that hash, not its content: the files
//! are read back through the engine (`docker cp`, over the same connection that sent
//! them) and compared here, never printed.

use std::collections::BTreeMap;

use xshell::Shell;

use super::{Model, Stack};
use crate::docker::{images, run, tar};

const CONFIG_HASH: &str = "com.docker.compose.config-hash";

/// Compose's hash of each service's configuration as a deploy would give it now, by
/// service name: one `config --hash` for all of them.
pub fn config_hashes(
    sh: &Shell,
    stack: &Stack,
    services: &[&str],
) -> anyhow::Result<BTreeMap<String, String>> {
    let listing = run::read(
        sh,
        &stack.compose(&["config", "--hash", &services.join(",")]),
    )?;
    Ok(listing
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(service, hash)| (service.to_owned(), hash.trim().to_owned()))
        .collect())
}

/// Whether `container` of `service` is what a redeploy with `image` would make, given
/// the service's `wanted_hash` (see `config_hashes`).
pub fn as_deployed(
    sh: &Shell,
    stack: &Stack,
    model: &Model,
    service: &str,
    container: &str,
    image: Option<&str>,
    wanted_hash: Option<&String>,
) -> anyhow::Result<bool> {
    let engine = stack.engine();
    let format = format!("{{{{.Image}}}} {{{{index .Config.Labels \"{CONFIG_HASH}\"}}}}");
    let running = run::read(
        sh,
        &engine.docker(["inspect", "--format", &format, container]),
    )?;
    let mut running = running.split_whitespace();
    let (running_image, running_hash) = (running.next(), running.next());
    if let Some(image) = image {
        if running_image.is_none() || images::id(sh, engine, image)?.as_deref() != running_image {
            return Ok(false);
        }
    }
    if wanted_hash.is_none() || wanted_hash.map(String::as_str) != running_hash {
        return Ok(false);
    }
    for (path, variable) in model.secret_files(service)? {
        let Some(secret) = variable
            .and_then(|variable| stack.secrets.iter().find(|secret| secret.name == variable))
        else {
            return Ok(false);
        };
        let copy = engine.docker(["cp", &format!("{container}:{path}"), "-"]);
        let output = run::probe(sh, &copy)?;
        let given = output
            .status
            .success()
            .then(|| tar::first_file(&output.stdout).ok())
            .flatten();
        if given.as_deref() != Some(secret.expose().as_bytes()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether a running container of `service` runs `image` (the same image ID).
pub fn runs_image(sh: &Shell, stack: &Stack, service: &str, image: &str) -> anyhow::Result<bool> {
    let ids = run::read(sh, &stack.containers_of(service))?;
    let Some(id) = ids.lines().next() else {
        return Ok(false);
    };
    let engine = stack.engine();
    let running = run::read(
        sh,
        &engine.docker(["inspect", "--format", "{{.Image}}", id]),
    )?;
    Ok(images::id(sh, engine, image)?.as_deref() == Some(running.trim()))
}
