//! What a `docker stack deploy` changes, and when the change is done, decided by the xtask
//! rather than by waiting a fixed time.
//!
//! Each service of a stack file is labelled with a hash of its part of the file, with the
//! versioned names of the secrets and configs it uses (`travial.spec`): a service whose
//! label is the same runs that very spec, and a phase with no service to change is
//! skipped. `stack deploy --detach=false` would wait on every service, changed or not, and
//! then 5 s more for each to be "stable"; instead the xtask deploys detached and asks
//! Swarm until each changed service has all its replicas running on the new spec (tasks
//! run only once healthy) and its update is complete (Swarm's own monitor has passed).

use std::{collections::BTreeMap, time::Duration};

use anyhow::bail;
use serde_json::Value;
use sha2::{Digest, Sha256};
use xshell::Shell;

use crate::{
    docker::{Engine, run},
    poll::{Answer, Poll},
};

/// The label of every service: the hash of its spec.
pub const SPEC_LABEL: &str = "travial.spec";
const POLL: Duration = Duration::from_millis(500);

/// Each service's hash: its part of the file, and the names of the secrets and configs it
/// refers to (a new version of one is a new spec).
pub fn spec_hashes(file: &Value) -> BTreeMap<String, String> {
    let Some(services) = file["services"].as_object() else {
        return BTreeMap::new();
    };
    services
        .iter()
        .map(|(name, service)| {
            let mut hasher = Sha256::new();
            hasher.update(serde_json::to_vec(service).unwrap_or_default());
            for kind in ["secrets", "configs"] {
                for used in service[kind].as_array().into_iter().flatten() {
                    let key = used["source"]
                        .as_str()
                        .or(used.as_str())
                        .unwrap_or_default();
                    hasher.update(b"\0");
                    hasher.update(file[kind][key]["name"].as_str().unwrap_or(key).as_bytes());
                }
            }
            let hash: String = hasher
                .finalize()
                .iter()
                .take(8)
                .map(|byte| format!("{byte:02x}"))
                .collect();
            (name.clone(), hash)
        })
        .collect()
}

/// The file with each service labelled with its hash.
pub fn labelled(mut file: Value, hashes: &BTreeMap<String, String>) -> Value {
    for (name, hash) in hashes {
        let deploy = &mut file["services"][name]["deploy"];
        if !deploy.is_object() {
            *deploy = Value::Object(Default::default());
        }
        deploy["labels"][SPEC_LABEL] = Value::String(hash.clone());
    }
    file
}

/// The stack's services as Swarm has them: their short name and spec hash (empty if
/// unlabelled).
pub fn deployed(
    sh: &Shell,
    manager: &Engine,
    stack: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let namespace = format!("label=com.docker.stack.namespace={stack}");
    let names = run::read(
        sh,
        &manager.docker(["service", "ls", "--quiet", "--filter", &namespace]),
    )?;
    let ids: Vec<&str> = names.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let format = format!("{{{{.Spec.Name}}}}|{{{{index .Spec.Labels \"{SPEC_LABEL}\"}}}}");
    let mut args = vec!["service", "inspect", "--format", &format];
    args.extend(ids);
    let listing = run::read(sh, &manager.docker(args))?;
    let prefix = format!("{stack}_");
    Ok(listing
        .lines()
        .filter_map(|line| line.split_once('|'))
        .filter_map(|(name, hash)| {
            Some((
                name.strip_prefix(&prefix)?.to_owned(),
                hash.trim().to_owned(),
            ))
        })
        .collect())
}

/// The services of the file whose spec differs from what Swarm has (or that it lacks),
/// sorted; with `prune`, also those Swarm has that the file no longer does.
pub fn changed(
    wanted: &BTreeMap<String, String>,
    deployed: &BTreeMap<String, String>,
    prune: bool,
) -> Vec<String> {
    let mut changed: Vec<String> = wanted
        .iter()
        .filter(|(name, hash)| deployed.get(*name) != Some(*hash))
        .map(|(name, _)| name.clone())
        .collect();
    if prune {
        changed.extend(
            deployed
                .keys()
                .filter(|name| !wanted.contains_key(*name))
                .cloned(),
        );
    }
    changed.sort();
    changed
}

/// Where one service stands, from what Swarm says of it.
#[derive(Debug, PartialEq, Eq)]
pub enum Standing {
    Done,
    /// Swarm gave up on the update (rolled back or paused): said why.
    GaveUp(String),
    NotYet(String),
}

/// From the service's update state and message, its desired replicas (`n/m` as `service
/// ls` prints them) and the states of its up-to-date tasks that should run.
pub fn standing(update: &str, message: &str, replicas: &str, tasks: &[&str]) -> Standing {
    if update.starts_with("rollback") || update == "paused" {
        return Standing::GaveUp(match message.is_empty() {
            true => update.to_owned(),
            false => format!("{update}: {message}"),
        });
    }
    let desired: usize = replicas
        .split_once('/')
        .map(|(_, rest)| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(1);
    let running = tasks
        .iter()
        .filter(|state| state.starts_with("Running"))
        .count();
    if running < desired || running < tasks.len() {
        return Standing::NotYet(format!("{running} of {desired} running the new spec"));
    }
    if !(update.is_empty() || update == "completed") {
        return Standing::NotYet(format!("update {update}"));
    }
    Standing::Done
}

/// Until every service of `services` is done: `Ok` with those Swarm gave up on (rolled
/// back), which the caller explains; an error at `timeout`.
pub fn await_services(
    sh: &Shell,
    manager: &Engine,
    stack: &str,
    services: &[String],
    timeout: Duration,
) -> anyhow::Result<Vec<(String, String)>> {
    let full: Vec<String> = services
        .iter()
        .map(|name| format!("{stack}_{name}"))
        .collect();
    let poll = Poll::new(
        format!("{} to converge", full.join(", ")),
        format!("the services of {stack} did not converge"),
    )
    .timeout(timeout)
    .every(POLL);
    poll.until(|| {
        let standings = standings(sh, manager, stack, &full)?;
        let gave_up: Vec<(String, String)> = standings
            .iter()
            .filter_map(|(name, standing)| match standing {
                Standing::GaveUp(why) => Some((name.clone(), why.clone())),
                _ => None,
            })
            .collect();
        let waiting: Vec<String> = standings
            .iter()
            .filter_map(|(name, standing)| match standing {
                Standing::NotYet(why) => Some(format!("{name}: {why}")),
                _ => None,
            })
            .collect();
        Ok(match waiting.is_empty() {
            true => Answer::Ready(gave_up),
            false => Answer::NotYet(waiting.join(", ")),
        })
    })
}

/// Each service's standing, in three calls whatever their number.
fn standings(
    sh: &Shell,
    manager: &Engine,
    stack: &str,
    full: &[String],
) -> anyhow::Result<Vec<(String, Standing)>> {
    let namespace = format!("label=com.docker.stack.namespace={stack}");
    let listing = run::read(
        sh,
        &manager.docker([
            "service",
            "ls",
            "--filter",
            &namespace,
            "--format",
            "{{.Name}} {{.Replicas}}",
        ]),
    )?;
    let replicas: BTreeMap<&str, &str> = listing
        .lines()
        .filter_map(|line| line.split_once(' '))
        .collect();
    let mut standings = Vec::new();
    // Gone from Swarm (pruned): done.
    let present: Vec<&String> = full
        .iter()
        .filter(|name| replicas.contains_key(name.as_str()))
        .collect();
    for name in full
        .iter()
        .filter(|name| !replicas.contains_key(name.as_str()))
    {
        standings.push((name.clone(), Standing::Done));
    }
    if present.is_empty() {
        return Ok(standings);
    }
    let mut inspect = vec![
        "service".to_owned(),
        "inspect".to_owned(),
        "--format".to_owned(),
        "{{.Spec.Name}}|{{if .UpdateStatus}}{{.UpdateStatus.State}}|{{.UpdateStatus.Message}}{{else}}|{{end}}".to_owned(),
    ];
    inspect.extend(present.iter().map(|name| (*name).clone()));
    let updates = run::read(sh, &manager.docker(inspect))?;
    // Swarm's own filter, as `docker service update` uses it: the tasks of the current spec.
    let mut ps = vec![
        "service".to_owned(),
        "ps".to_owned(),
        "--filter".to_owned(),
        "desired-state=running".to_owned(),
        "--filter".to_owned(),
        "_up-to-date=true".to_owned(),
        "--format".to_owned(),
        "{{.Name}}|{{.CurrentState}}".to_owned(),
    ];
    ps.extend(present.iter().map(|name| (*name).clone()));
    let tasks = run::read(sh, &manager.docker(ps))?;
    for line in updates.lines() {
        let mut fields = line.splitn(3, '|');
        let (name, update, message) = (
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default(),
            fields.next().unwrap_or_default(),
        );
        let states: Vec<&str> = tasks
            .lines()
            .filter_map(|task| task.split_once('|'))
            .filter(|(task, _)| {
                task.rsplit_once('.')
                    .is_some_and(|(service, _)| service == name)
            })
            .map(|(_, state)| state)
            .collect();
        let replicas = replicas.get(name).copied().unwrap_or("0/1");
        standings.push((
            name.to_owned(),
            standing(update, message, replicas, &states),
        ));
    }
    if standings.len() < full.len() {
        bail!("Swarm did not say where every service of {stack} stands");
    }
    Ok(standings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(version: &str) -> Value {
        json!({
            "services": {
                "db": { "image": "postgres:17", "secrets": [{ "source": "pw", "target": "pw" }] },
                "proxy": { "image": "caddy:2", "configs": [{ "source": "caddyfile" }] },
            },
            "secrets": { "pw": { "external": true, "name": format!("p_pw_{version}") } },
            "configs": { "caddyfile": { "external": true, "name": "p_caddyfile_1" } },
        })
    }

    #[test]
    fn a_new_secret_version_changes_the_services_that_use_it_only() {
        let before = spec_hashes(&file("a"));
        let after = spec_hashes(&file("b"));
        assert_eq!(before, spec_hashes(&file("a")));
        assert_ne!(before["db"], after["db"]);
        assert_eq!(before["proxy"], after["proxy"]);
        assert_eq!(changed(&after, &before, false), ["db"]);
        assert_eq!(changed(&before, &before, false), Vec::<String>::new());
        let mut with_web = before.clone();
        with_web.insert("web".into(), "x".into());
        // Only a deploy of the whole stack removes what the file no longer has.
        assert_eq!(changed(&before, &with_web, false), Vec::<String>::new());
        assert_eq!(changed(&before, &with_web, true), ["web"]);
        let labelled = labelled(file("a"), &before);
        assert_eq!(
            labelled["services"]["db"]["deploy"]["labels"][SPEC_LABEL],
            before["db"].as_str()
        );
    }

    #[test]
    fn done_when_every_replica_runs_the_new_spec_and_swarm_has_finished() {
        assert_eq!(
            standing("", "", "1/1", &["Running 3 seconds ago"]),
            Standing::Done
        );
        assert_eq!(
            standing(
                "completed",
                "",
                "2/2",
                &["Running 1 second ago", "Running now"]
            ),
            Standing::Done
        );
        // Swarm's monitor of the last task has not passed yet.
        assert!(matches!(
            standing("updating", "", "2/2", &["Running", "Running"]),
            Standing::NotYet(_)
        ));
        // The new spec's tasks are not all there, or not healthy (starting) yet.
        assert!(matches!(
            standing("updating", "", "2/2", &["Running"]),
            Standing::NotYet(_)
        ));
        assert!(matches!(
            standing("", "", "1/1", &["Starting 1 second ago"]),
            Standing::NotYet(_)
        ));
        assert!(matches!(standing("", "", "0/1", &[]), Standing::NotYet(_)));
        // A global service: as many as its nodes.
        assert_eq!(
            standing("", "", "2/2", &["Running", "Running"]),
            Standing::Done
        );
        assert_eq!(
            standing(
                "rollback_completed",
                "update rolled back due to failure",
                "2/2",
                &["Running"]
            ),
            Standing::GaveUp("rollback_completed: update rolled back due to failure".into())
        );
    }
}
