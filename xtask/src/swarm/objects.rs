//! The secrets and configs of a swarm stack: immutable in Swarm, so each value has a name
//! of its own (`travial-prod_postgres_password_1a2b3c4d5e6f`), which changes only when the
//! value does, and with it the services that use it. The version is a digest of the value
//! salted with a random value kept in the swarm itself (a config), so that a name, printed
//! or logged, says nothing about a password to anyone who cannot read the swarm's secrets.

use std::collections::BTreeMap;

use anyhow::Context;
use base64::Engine as _;
use xshell::Shell;

use super::stackfile;
use crate::{
    docker::{Command, Engine, Secret, run},
    plan::Step,
    stack::Stack,
};

/// The config that holds the salt; cluster-wide, made once.
const SALT: &str = "travial-xtask-salt";
/// Marks what the xtask made for a stack, so that `down` finds it.
pub const STACK_LABEL: &str = "travial.stack";

/// The versioned names, and the steps that make those the swarm lacks.
pub struct Objects {
    pub secrets: BTreeMap<String, String>,
    pub configs: BTreeMap<String, String>,
    pub steps: Vec<Step>,
}

/// Each of the model's secrets (from the values the deploy resolved) and inline configs,
/// with its versioned name; the steps create those the swarm does not have yet.
pub fn plan(
    sh: &Shell,
    stack: &Stack,
    model: &serde_json::Value,
    dry_run: bool,
) -> anyhow::Result<Objects> {
    let manager = &stack.engine;
    let salt = salt(sh, manager, dry_run)?;
    let existing = |kind: &str| -> anyhow::Result<Vec<String>> {
        let listing = run::read(sh, &manager.docker([kind, "ls", "--format", "{{.Name}}"]))?;
        Ok(listing.lines().map(str::to_owned).collect())
    };
    let (secrets_there, configs_there) = (existing("secret")?, existing("config")?);
    let mut objects = Objects {
        secrets: BTreeMap::new(),
        configs: BTreeMap::new(),
        steps: Vec::new(),
    };
    let sources = model["secrets"].as_object().cloned().unwrap_or_default();
    for (key, source) in &sources {
        let variable = source["environment"].as_str().with_context(|| {
            format!("the secret `{key}` takes its value from no environment variable: a swarm deploy needs one")
        })?;
        let secret = stack
            .secrets
            .iter()
            .find(|secret| secret.name == variable)
            .with_context(|| format!("no value for the secret `{key}` ({variable})"))?;
        let name = versioned(&stack.project, key, &salt, secret.expose());
        if !secrets_there.contains(&name) {
            let create = create(manager, "secret", &stack.project, &name)
                .stdin(Secret::new(variable, secret.expose()));
            objects.steps.push(Step::run(
                &format!("secret {name}"),
                create,
                &format!("the secret {name} was not created"),
            ));
        }
        objects.secrets.insert(key.clone(), name);
    }
    for key in model["configs"]
        .as_object()
        .map(|configs| configs.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let content = stackfile::config_content(model, &key)?;
        let name = versioned(&stack.project, &key, &salt, &content);
        if !configs_there.contains(&name) {
            let create = create(manager, "config", &stack.project, &name)
                .stdin_content(&format!("the config {key}"), content.into_bytes());
            objects.steps.push(Step::run(
                &format!("config {name}"),
                create,
                &format!("the config {name} was not created"),
            ));
        }
        objects.configs.insert(key, name);
    }
    Ok(objects)
}

fn create(manager: &Engine, kind: &str, stack: &str, name: &str) -> Command {
    manager.docker([
        kind,
        "create",
        "--label",
        &format!("{STACK_LABEL}={stack}"),
        name,
        "-",
    ])
}

/// `STACK_KEY_VERSION`: twelve hex digits of SHA-1 over the salt, the key and the value.
pub fn versioned(stack: &str, key: &str, salt: &str, value: &str) -> String {
    let mut digest = sha1_smol::Sha1::new();
    for part in [salt, "\0", key, "\0", value] {
        digest.update(part.as_bytes());
    }
    let hex = digest.digest().to_string();
    format!("{stack}_{key}_{}", &hex[..12])
}

/// The swarm's salt, made (32 random bytes, as hex) if it has none; a placeholder in a dry run.
fn salt(sh: &Shell, manager: &Engine, dry_run: bool) -> anyhow::Result<String> {
    let inspect = run::probe(
        sh,
        &manager.docker(["config", "inspect", "--format", "{{json .Spec.Data}}", SALT]),
    )?;
    if inspect.status.success() {
        let encoded: String =
            serde_json::from_slice(&inspect.stdout).context("cannot read the swarm's salt")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .context("cannot read the swarm's salt")?;
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    if dry_run {
        return Ok("<the swarm's salt>".to_owned());
    }
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom")
            .context("cannot open /dev/urandom for the swarm's salt")?,
        &mut bytes,
    )
    .context("cannot read /dev/urandom for the swarm's salt")?;
    let random: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let create = manager
        .docker(["config", "create", SALT, "-"])
        .stdin_content("the salt", random.clone().into_bytes());
    run::read(sh, &create)?;
    Ok(random)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_name_changes_with_the_value_and_the_salt_only() {
        let name = super::versioned("travial-prod", "postgres_password", "salt", "p@ss");
        assert!(
            name.starts_with("travial-prod_postgres_password_"),
            "{name}"
        );
        assert_eq!(name.len(), "travial-prod_postgres_password_".len() + 12);
        assert_eq!(
            name,
            super::versioned("travial-prod", "postgres_password", "salt", "p@ss")
        );
        assert_ne!(
            name,
            super::versioned("travial-prod", "postgres_password", "salt", "p@sS")
        );
        assert_ne!(
            name,
            super::versioned("travial-prod", "postgres_password", "pepper", "p@ss")
        );
        assert!(!name.contains("p@ss"));
    }
}
