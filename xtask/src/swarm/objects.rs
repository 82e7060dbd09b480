//! The secrets and configs of a swarm stack: immutable in Swarm, so each value has a name
//! of its own (`travial-prod_postgres_password_1a2b3c4d5e6f`), which changes only when the
//! value does, and with it the services that use it. The version is a digest of the value
//! salted with a random value kept in the swarm itself (a config), so that a name, printed
//! or logged, says nothing about a password to anyone who cannot read the swarm's secrets.

use std::collections::BTreeMap;

use anyhow::Context;

use super::facts::{Facts, SALT, STACK_LABEL, Salt};
use crate::{
    docker::{Command, Engine, Secret},
    plan::Step,
    stack::{Model, Stack},
};

/// The versioned names, and the steps that make those the swarm lacks.
pub struct Objects {
    pub secrets: BTreeMap<String, String>,
    pub configs: BTreeMap<String, String>,
    pub steps: Vec<Step>,
}

/// Each of the model's secrets (from the values the command resolved) and inline configs,
/// with its versioned name; the steps create those the swarm does not have yet, after the
/// salt if the swarm has none.
pub fn plan(
    stack: &Stack,
    manager: &Engine,
    model: &Model,
    facts: &Facts,
) -> anyhow::Result<Objects> {
    let mut objects = Objects {
        secrets: BTreeMap::new(),
        configs: BTreeMap::new(),
        steps: Vec::new(),
    };
    if let Salt::New(salt) = &facts.salt {
        let create = manager
            .docker(["config", "create", SALT, "-"])
            .stdin_content("the salt, drawn here", salt.clone().into_bytes());
        objects.steps.push(Step::run(
            "the swarm's salt",
            create,
            "the salt of the secrets' names was not created",
        ));
    }
    let has = |objects: &[super::facts::Object], name: &str| {
        objects.iter().any(|object| object.name == name)
    };
    for (key, source) in &model.secrets {
        let variable = source.environment.as_deref().with_context(|| {
            format!("the secret `{key}` takes its value from no environment variable: a swarm deploy needs one")
        })?;
        let secret = stack
            .secrets
            .iter()
            .find(|secret| secret.name == variable)
            .with_context(|| format!("no value for the secret `{key}` ({variable})"))?;
        let name = versioned(&stack.project, key, &facts.salt, secret.expose());
        if !has(&facts.secrets, &name) {
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
    for key in model.configs.keys() {
        let content = model.config_content(key)?;
        let name = versioned(&stack.project, key, &facts.salt, &content);
        if !has(&facts.configs, &name) {
            let create = create(manager, "config", &stack.project, &name)
                .stdin_content(&format!("the config {key}"), content.into_bytes());
            objects.steps.push(Step::run(
                &format!("config {name}"),
                create,
                &format!("the config {name} was not created"),
            ));
        }
        objects.configs.insert(key.clone(), name);
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

/// `STACK_KEY_VERSION`: twelve hex digits of SHA-1 over the salt, the key and the value;
/// `<version>` while the salt is unknown (a dry run before the first deploy).
pub fn versioned(stack: &str, key: &str, salt: &Salt, value: &str) -> String {
    let salt = match salt {
        Salt::Existing(salt) | Salt::New(salt) => salt,
        Salt::Unknown => return format!("{stack}_{key}_<version>"),
    };
    let mut digest = sha1_smol::Sha1::new();
    for part in [salt.as_str(), "\0", key, "\0", value] {
        digest.update(part.as_bytes());
    }
    let hex = digest.digest().to_string();
    format!("{stack}_{key}_{}", &hex[..12])
}

#[cfg(test)]
mod tests {
    use super::{Salt, versioned};

    #[test]
    fn a_name_changes_with_the_value_and_the_salt_only() {
        let salt = |text: &str| Salt::Existing(text.to_owned());
        let name = versioned("travial-prod", "postgres_password", &salt("salt"), "p@ss");
        assert!(
            name.starts_with("travial-prod_postgres_password_"),
            "{name}"
        );
        assert_eq!(name.len(), "travial-prod_postgres_password_".len() + 12);
        assert_eq!(
            name,
            versioned(
                "travial-prod",
                "postgres_password",
                &Salt::New("salt".into()),
                "p@ss"
            )
        );
        assert_ne!(
            name,
            versioned("travial-prod", "postgres_password", &salt("salt"), "p@sS")
        );
        assert_ne!(
            name,
            versioned("travial-prod", "postgres_password", &salt("pepper"), "p@ss")
        );
        assert!(!name.contains("p@ss"));
        assert_eq!(
            versioned("travial-prod", "postgres_password", &Salt::Unknown, "p@ss"),
            "travial-prod_postgres_password_<version>"
        );
    }
}
