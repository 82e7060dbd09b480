//! Where an environment's secrets come from: each secret the merged model declares with an
//! `environment:` source names a variable; its value is, in order, that variable of the
//! xtask's own environment, the line of the environment's secrets file that sets it, or
//! (dev only) its `x-xtask: secret_defaults` entry. A secret missing from all three stops
//! the command before anything starts.
//!
//! The secrets file is dotenv (`NAME=value` lines), given by `--secrets FILE` or found at
//! `.secrets/ENV.env`; refused when others may read it or when git tracks it. It is read,
//! never copied: the values reach Compose only through its process environment.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::Context;
use xshell::Shell;

use super::Model;
use crate::{
    docker::{Command, Secret, run},
    hint::Hint,
};

/// Where an environment's secrets file is looked for, from the project root.
pub const SECRETS_DIR: &str = ".secrets";

/// The secrets the model needs, each resolved; every missing one is named.
pub fn resolve(
    sh: &Shell,
    env: &str,
    model: &Model,
    file: Option<&Path>,
) -> anyhow::Result<Vec<Secret>> {
    let file = secrets_file(sh, env, file)?;
    let (secrets, missing) = lookup(model, &file, |name| std::env::var(name).ok());
    if missing.is_empty() {
        return Ok(secrets);
    }
    let where_ = file.map_or_else(default_path(env), |file| file.path.display().to_string());
    Err(Hint::new(
        format!(
            "{env} needs the secret{} {}, which {} not set: nothing was started",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" },
        ),
        format!(
            "set {} in the environment, or in {where_} (NAME=value lines, mode 0600, never in git)",
            missing.join(" and ")
        ),
    )
    .into())
}

/// What `resolve` finds, without requiring anything: for hiding values from printed text.
pub fn known(sh: &Shell, env: &str, model: &Model, file: Option<&Path>) -> Vec<Secret> {
    let file = secrets_file(sh, env, file).unwrap_or(None);
    lookup(model, &file, |name| std::env::var(name).ok()).0
}

/// `text` with every value of `secrets` replaced by `********`.
pub fn redact(text: &str, secrets: &[Secret]) -> String {
    let mut values: Vec<&str> = secrets
        .iter()
        .map(Secret::expose)
        .filter(|value| !value.is_empty())
        .collect();
    // A value inside another must not leave the longer one half shown.
    values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    values.into_iter().fold(text.to_owned(), |text, value| {
        text.replace(value, "********")
    })
}

fn default_path(env: &str) -> impl FnOnce() -> String {
    let path = format!("{SECRETS_DIR}/{env}.env");
    move || path
}

/// A secrets file, read.
struct SecretsFile {
    path: PathBuf,
    values: Vec<(String, String)>,
}

/// Each needed variable, from the environment, the file or the defaults, and the names of
/// those found nowhere.
fn lookup(
    model: &Model,
    file: &Option<SecretsFile>,
    environment: impl Fn(&str) -> Option<String>,
) -> (Vec<Secret>, Vec<String>) {
    let mut secrets = Vec::new();
    let mut missing = Vec::new();
    for name in model.secret_variables() {
        let from_file = file.as_ref().and_then(|file| {
            file.values
                .iter()
                .rev()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
                .filter(|value| !value.is_empty())
        });
        let value = environment(&name)
            .filter(|value| !value.is_empty())
            .or(from_file)
            .or_else(|| model.xtask.secret_defaults.get(&name).cloned());
        match value {
            Some(value) => secrets.push(Secret::new(name, value)),
            None => missing.push(name),
        }
    }
    (secrets, missing)
}

/// `--secrets FILE`, else `.secrets/ENV.env` if it exists; checked before it is read.
fn secrets_file(
    sh: &Shell,
    env: &str,
    given: Option<&Path>,
) -> anyhow::Result<Option<SecretsFile>> {
    let root = sh.current_dir();
    let path = match given {
        Some(path) => root.join(path),
        None => {
            let path = root.join(SECRETS_DIR).join(format!("{env}.env"));
            if !path.exists() {
                return Ok(None);
            }
            path
        }
    };
    let shown = path
        .strip_prefix(&root)
        .unwrap_or(&path)
        .display()
        .to_string();
    // Opened once, and that open file checked and read: what is checked is what is read,
    // whatever is renamed or replaced meanwhile.
    let mut file = std::fs::File::open(&path)
        .with_context(|| format!("cannot read the secrets file {shown}"))?;
    let metadata = file
        .metadata()
        .with_context(|| format!("cannot read the secrets file {shown}"))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Hint::new(
            format!("the secrets file {shown} may be read by others (mode {mode:04o})"),
            format!("`chmod 600 {shown}`, then consider its secrets seen and change them"),
        )
        .into());
    }
    // A link to a file git tracks is that file: its secrets are in the history too.
    let target = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    for (tracked, what) in [
        (&path, shown.clone()),
        (&target, target.display().to_string()),
    ] {
        if tracked_by_git(sh, tracked) {
            return Err(Hint::new(
                format!("git tracks the secrets file {what}: its secrets are in the repository's history"),
                format!(
                    "`git rm --cached {what}`, keep {SECRETS_DIR}/ in .gitignore, and change every secret it held"
                ),
            )
            .into());
        }
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text)
        .with_context(|| format!("cannot read the secrets file {shown}"))?;
    let values = parse_dotenv(&text).map_err(|err| anyhow::anyhow!("{shown}: {err}"))?;
    Ok(Some(SecretsFile { path, values }))
}

/// Whether git tracks `path` (false outside a repository or without git).
fn tracked_by_git(sh: &Shell, path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    let (dir, path) = (dir.display().to_string(), path.display().to_string());
    let ls_files = Command::new(
        "git",
        ["-C", &dir, "ls-files", "--error-unmatch", "--", &path],
    );
    run::probe(sh, &ls_files).is_ok_and(|output| output.status.success())
}

/// `NAME=value` lines: blank lines and `#` comments skipped, `export ` allowed before the
/// name. A value runs to the end of its line (spaces around it trimmed, a `#` kept), or is
/// quoted: `'…'` as written, `"…"` with `\"`, `\\`, `\n` and `\t`.
pub fn parse_dotenv(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut values = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((name, value)) = line.split_once('=') else {
            return Err(format!("line {number} is not NAME=value"));
        };
        let name = name.trim();
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("line {number}: `{name}` is not a variable name"));
        }
        let value = unquote(value.trim()).map_err(|err| format!("line {number}: {err}"))?;
        values.push((name.to_owned(), value));
    }
    Ok(values)
}

fn unquote(value: &str) -> Result<String, String> {
    let Some(quote) = value.chars().next().filter(|c| *c == '\'' || *c == '"') else {
        return Ok(value.to_owned());
    };
    let mut unquoted = String::new();
    let mut chars = value[1..].chars();
    loop {
        match chars.next() {
            None => return Err(format!("the value has no closing {quote}")),
            Some(c) if c == quote => break,
            Some('\\') if quote == '"' => match chars.next() {
                Some('n') => unquoted.push('\n'),
                Some('t') => unquoted.push('\t'),
                Some(c @ ('"' | '\\')) => unquoted.push(c),
                Some(c) => {
                    unquoted.push('\\');
                    unquoted.push(c);
                }
                None => return Err(format!("the value has no closing {quote}")),
            },
            Some(c) => unquoted.push(c),
        }
    }
    let rest = chars.as_str().trim();
    if !rest.is_empty() && !rest.starts_with('#') {
        return Err(format!("`{rest}` after the closing {quote}"));
    }
    Ok(unquoted)
}

#[cfg(test)]
mod tests {
    use xshell::cmd;

    use super::*;

    fn model(defaults: &str) -> Model {
        Model::parse(&format!(
            "services: {{}}
secrets:
  postgres_password: {{ environment: POSTGRES_PASSWORD }}
  app_db_password: {{ environment: APP_DB_PASSWORD }}
  tls_cert: {{ file: ./cert.pem }}
{}{defaults}",
            crate::stack::model::TEST_SETTINGS
        ))
        .unwrap()
    }

    fn file(values: &[(&str, &str)]) -> Option<SecretsFile> {
        Some(SecretsFile {
            path: PathBuf::from(".secrets/prod.env"),
            values: values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    fn names(secrets: &[Secret]) -> Vec<(String, String)> {
        secrets
            .iter()
            .map(|s| (s.name.clone(), s.expose().to_owned()))
            .collect()
    }

    #[test]
    fn the_environment_then_the_file_then_the_defaults() {
        let dev = model(
            "  secret_defaults:\n    POSTGRES_PASSWORD: dev-only\n    APP_DB_PASSWORD: app-dev\n",
        );
        let environment = |name: &str| (name == "POSTGRES_PASSWORD").then(|| "from-env".to_owned());
        let (secrets, missing) = lookup(
            &dev,
            &file(&[("APP_DB_PASSWORD", "from-file")]),
            environment,
        );
        assert!(missing.is_empty());
        assert_eq!(
            names(&secrets),
            [
                ("APP_DB_PASSWORD".into(), "from-file".into()),
                ("POSTGRES_PASSWORD".into(), "from-env".into())
            ]
        );
        let (secrets, _) = lookup(&dev, &None, |_| None);
        assert_eq!(secrets[0].expose(), "app-dev");
    }

    #[test]
    fn every_missing_secret_is_named() {
        let prod = model("");
        let (secrets, missing) = lookup(&prod, &None, |_| Some(String::new()));
        assert!(secrets.is_empty());
        assert_eq!(missing, ["APP_DB_PASSWORD", "POSTGRES_PASSWORD"]);
        // `POSTGRES_PASSWORD=` in the file gives no password either.
        let file = Some(SecretsFile {
            path: PathBuf::from(".secrets/prod.env"),
            values: vec![("POSTGRES_PASSWORD".to_owned(), String::new())],
        });
        let (_, missing) = lookup(&prod, &file, |_| None);
        assert_eq!(missing, ["APP_DB_PASSWORD", "POSTGRES_PASSWORD"]);
    }

    #[test]
    fn dotenv_lines_as_people_write_them() {
        let text = "# prod\n\nPOSTGRES_PASSWORD=p@ss/w:rd %41?#x y'z\nexport APP_DB_PASSWORD = ' spaced '\nQUOTED=\"a\\\"b\\\\c\\n\" # note\n";
        assert_eq!(
            parse_dotenv(text).unwrap(),
            [
                (
                    "POSTGRES_PASSWORD".to_owned(),
                    "p@ss/w:rd %41?#x y'z".to_owned()
                ),
                ("APP_DB_PASSWORD".to_owned(), " spaced ".to_owned()),
                ("QUOTED".to_owned(), "a\"b\\c\n".to_owned()),
            ]
        );
        assert_eq!(
            parse_dotenv("A=\n").unwrap(),
            [("A".to_owned(), String::new())]
        );
        for (bad, expected) in [
            ("just words\n", "line 1 is not NAME=value"),
            ("\n1X=y\n", "line 2: `1X` is not a variable name"),
            ("A='open\n", "line 1: the value has no closing '"),
            ("A='x' y\n", "line 1: `y` after the closing '"),
        ] {
            assert_eq!(parse_dotenv(bad).unwrap_err(), expected, "{bad}");
        }
    }

    #[test]
    fn redaction_hides_every_value_the_longest_first() {
        let secrets = [
            Secret::new("A", "abc"),
            Secret::new("B", "abcdef"),
            Secret::new("C", ""),
        ];
        assert_eq!(
            redact("x abcdef y abc z", &secrets),
            "x ******** y ******** z"
        );
    }

    #[test]
    fn a_secrets_file_others_can_read_or_git_tracks_is_refused() {
        let dir = std::env::temp_dir().join(format!("xtask-secrets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(SECRETS_DIR)).unwrap();
        let sh = Shell::new().unwrap();
        sh.change_dir(&dir);
        let path = dir.join(SECRETS_DIR).join("prod.env");
        std::fs::write(&path, "POSTGRES_PASSWORD=s3cret\n").unwrap();

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = secrets_file(&sh, "prod", None).err().unwrap();
        assert!(
            err.to_string()
                .contains("may be read by others (mode 0644)"),
            "{err}"
        );

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let found = secrets_file(&sh, "prod", None).unwrap().unwrap();
        assert_eq!(
            found.values,
            [("POSTGRES_PASSWORD".to_owned(), "s3cret".to_owned())]
        );
        assert!(secrets_file(&sh, "staging", None).unwrap().is_none());
        assert!(secrets_file(&sh, "staging", Some(Path::new("nope.env"))).is_err());

        cmd!(sh, "git init --quiet").run().unwrap();
        cmd!(sh, "git add --force .secrets/prod.env").run().unwrap();
        let err = secrets_file(&sh, "prod", None).err().unwrap();
        assert!(
            err.to_string()
                .starts_with("git tracks the secrets file .secrets/prod.env"),
            "{err}"
        );
        // A link, itself untracked, to the file git tracks.
        std::os::unix::fs::symlink(&path, dir.join(SECRETS_DIR).join("staging.env")).unwrap();
        let err = secrets_file(&sh, "staging", None).err().unwrap();
        assert!(
            err.to_string().starts_with("git tracks the secrets file /")
                && err.to_string().contains(".secrets/prod.env"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
