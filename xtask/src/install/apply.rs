//! Carrying install-docker's plan out: confirmations first, then every key fetched and
//! checked, and only then the steps and the checks, through the common executor. A refused
//! key or a declined question changes nothing.

use anyhow::{Context, bail};
use xshell::Shell;

use super::{
    apt_key,
    machine::Machine,
    steps::{Key, Plan},
};
use crate::{
    output,
    plan::{self, Action, Content},
};

pub fn execute(sh: &Shell, machine: &Machine, plan: &Plan, yes: bool) -> anyhow::Result<()> {
    plan::confirm(&plan.steps, yes)?;
    let mut steps = plan.steps.clone();
    for key in &plan.keys {
        let bytes = fetch_key(sh, machine, key)?;
        for step in &mut steps {
            if let Action::Write { path, content, .. } = &mut step.action {
                if *path == key.path {
                    *content = Content::Bytes(bytes.clone());
                }
            }
        }
    }
    let on_machine = |steps: &[plan::Step]| -> Vec<plan::Step> {
        steps.iter().map(|step| machine.step(step)).collect()
    };
    plan::execute(sh, &on_machine(&steps))?;
    plan::execute(sh, &on_machine(&plan.checks))?;
    for line in &plan.afterwards {
        eprintln!("{line}");
    }
    Ok(())
}

/// The key, fetched and checked; a mismatch stops everything before any step. A `file://`
/// key is the machine's own file, like the mirror it signs.
fn fetch_key(sh: &Shell, machine: &Machine, key: &Key) -> anyhow::Result<Vec<u8>> {
    let Key {
        url, fingerprint, ..
    } = key;
    let text = match url.strip_prefix("file://") {
        Some(path) if !machine.is_here() => machine
            .read_file(sh, path)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .with_context(|| {
                format!("there is no key at {url} on {machine}: nothing was changed")
            })?,
        _ => apt_key::fetch(url).context("nothing was changed")?,
    };
    let canonical = match apt_key::verify(&text, *fingerprint) {
        Ok(canonical) => canonical,
        Err(refusal) => bail!(
            "refusing the key at {url}: {refusal:#}; nothing was changed (a mirror that re-signs \
             Docker's packages with its own key needs `--key-fingerprint`, if you trust that key)"
        ),
    };
    output::progress(&format!(
        "✓ the key at {url} has the fingerprint {fingerprint}"
    ));
    Ok(canonical.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{docker::Command, install::apt_key::DOCKER};

    #[test]
    fn a_refused_key_stops_the_plan_before_any_step() {
        let root = std::env::temp_dir().join(format!("xtask-refused-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let other = format!(
            "file://{}/tests/data/install/other-key.asc",
            env!("CARGO_MANIFEST_DIR")
        );
        let marker = root.join("ran");
        let mut plan = Plan::default();
        plan.run(Command::new("touch", [marker.to_str().unwrap()]));
        plan.write_key(Key {
            path: root.join("docker.asc").display().to_string(),
            url: other.clone(),
            fingerprint: DOCKER,
        });
        let sh = Shell::new().unwrap();
        let err = format!(
            "{:#}",
            execute(&sh, &Machine::Here, &plan, true).unwrap_err()
        );
        assert!(
            err.starts_with(&format!(
                "refusing the key at {other}: its fingerprint is 7C90 E34C"
            )),
            "{err}"
        );
        assert!(err.contains("nothing was changed"), "{err}");
        assert!(!marker.exists(), "a step ran before the key was checked");
        assert!(!root.join("docker.asc").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
