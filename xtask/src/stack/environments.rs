//! What the checkout holds: the environments (one per compose/compose.ENV.yaml) and the
//! services of compose.yaml, read without docker for the command line; and a YAML check
//! that names the file and line of a mistake.

use std::path::Path;

use anyhow::Context;

pub const COMPOSE_DIR: &str = "compose";

/// The environments, from the names of `compose.ENV.yaml` files in `dir`, sorted.
pub fn environments(dir: &Path) -> anyhow::Result<Vec<String>> {
    let entries = std::fs::read_dir(dir).with_context(|| {
        format!(
            "cannot read {}: run from a checkout of the project",
            dir.display()
        )
    })?;
    let names = entries.filter_map(|entry| entry.ok()?.file_name().into_string().ok());
    Ok(environments_from_file_names(names))
}

pub fn environments_from_file_names(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut envs: Vec<String> = names
        .into_iter()
        .filter_map(|name| {
            let env = name.strip_prefix("compose.")?.strip_suffix(".yaml")?;
            let valid = !env.is_empty()
                && env
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            valid.then(|| env.to_owned())
        })
        .collect();
    envs.sort();
    envs
}

/// The top-level `services` of compose/compose.yaml that run (those every environment has;
/// not the one-off tasks of a profile, which `up` never starts).
pub fn services(root: &Path) -> Vec<String> {
    let path = root.join(COMPOSE_DIR).join("compose.yaml");
    let yaml = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_yaml::from_str::<serde_yaml::Value>(&text).ok());
    let services = yaml
        .as_ref()
        .and_then(|yaml| yaml.get("services")?.as_mapping());
    services
        .map(|services| {
            services
                .iter()
                .filter(|(_, service)| service.get("profiles").is_none())
                .filter_map(|(key, _)| key.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Compose's own YAML errors do not always say which file; ours do, with the line.
pub fn check_yaml(root: &Path, file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(root.join(file))
        .with_context(|| format!("cannot read {}", file.display()))?;
    parse_yaml(&text).with_context(|| format!("{} cannot be used", file.display()))
}

/// Valid YAML that says something: an empty one (or only comments) is no environment,
/// and Compose would only report the secrets it then lacks.
fn parse_yaml(text: &str) -> anyhow::Result<()> {
    let value =
        serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|err| match err.location() {
            Some(at) => anyhow::anyhow!("line {}, column {}: {err}", at.line(), at.column()),
            None => anyhow::anyhow!("{err}"),
        })?;
    if value.is_null() {
        anyhow::bail!(
            "the file is empty: an environment's override gives at least its services' settings \
             (see compose/compose.prod.yaml)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn environments_come_from_override_file_names() {
        let names = [
            "compose.yaml",
            "compose.prod.yaml",
            "compose.dev.yaml",
            "README.md",
        ]
        .into_iter()
        .chain([
            "compose.staging.yaml",
            "compose..yaml",
            "compose.Bad_Name.yaml",
        ])
        .map(String::from);
        assert_eq!(
            environments_from_file_names(names),
            ["dev", "prod", "staging"]
        );
    }

    #[test]
    fn the_environments_and_services_of_this_repository() {
        assert_eq!(
            environments(&root().join(COMPOSE_DIR)).unwrap(),
            ["dev", "prod", "staging"]
        );
        assert_eq!(services(&root()), ["db", "proxy", "web"]);
    }

    #[test]
    fn an_empty_override_says_so() {
        for empty in ["", "\n", "# only a comment\n"] {
            let err = parse_yaml(empty).unwrap_err();
            assert!(err.to_string().starts_with("the file is empty"), "{err}");
        }
        assert!(parse_yaml("services: {}\n").is_ok());
    }

    #[test]
    fn a_yaml_error_names_the_line() {
        let err = parse_yaml("services:\n  db:\n    image: [postgres\n").unwrap_err();
        assert!(err.to_string().starts_with("line 4, column 1:"), "{err}");
    }
}
