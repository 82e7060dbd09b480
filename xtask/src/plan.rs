//! Plan as data, then act: a command computes its steps with plain functions (tested
//! without Docker); `--dry-run` prints them; executing them is this thin loop, which shows
//! each step's `✓` line and records, for Ctrl-C, what the steps done so far leave running.

use std::{
    fmt,
    time::{Duration, Instant},
};

use anyhow::Context;
use xshell::Shell;

use crate::{interrupt, output, process::Docker, wait};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What the step achieves, printed with its elapsed time when it ends: `db ready`.
    pub done: String,
    pub action: Action,
    /// On failure, these docker arguments print what explains it (a service's last logs).
    pub diagnose: Option<Vec<String>>,
    /// On failure, what the user should know or do: the error's outermost context.
    pub on_failure: String,
    /// The service this step starts, for the state an interruption leaves.
    pub starts: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `docker ARGS…` with extra environment variables (never secrets: they are printed),
    /// echoed as it runs.
    Docker {
        env: Vec<(String, String)>,
        args: Vec<String>,
    },
    /// The same wait as `cargo xtask wait TARGET --timeout …`.
    Await { target: String, timeout: Duration },
}

impl Step {
    pub fn docker(done: &str, args: Vec<String>, on_failure: &str) -> Step {
        Step {
            done: done.to_owned(),
            action: Action::Docker {
                env: Vec::new(),
                args,
            },
            diagnose: None,
            on_failure: on_failure.to_owned(),
            starts: None,
        }
    }

    pub fn await_ready(done: &str, target: String, timeout: Duration, on_failure: &str) -> Step {
        Step {
            done: done.to_owned(),
            action: Action::Await { target, timeout },
            diagnose: None,
            on_failure: on_failure.to_owned(),
            starts: None,
        }
    }

    /// Sets a variable in the command's environment, for Compose's interpolation.
    pub fn with_env(mut self, name: &str, value: &str) -> Step {
        if let Action::Docker { env, .. } = &mut self.action {
            env.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    pub fn diagnosed_by(mut self, docker_args: Vec<String>) -> Step {
        self.diagnose = Some(docker_args);
        self
    }

    /// Marks the step as the one that starts `service`.
    pub fn starts(mut self, service: &str) -> Step {
        self.starts = Some(service.to_owned());
        self
    }
}

/// The line `--dry-run` prints: a command a user can paste into a shell.
impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Docker { env, args } => f.write_str(&command_line(env, args)),
            Action::Await { target, timeout } => write!(
                f,
                "cargo xtask wait {} --timeout {}s",
                shell_words(std::slice::from_ref(target)),
                timeout.as_secs()
            ),
        }
    }
}

pub fn print(steps: &[Step]) {
    for step in steps {
        println!("{step}");
    }
}

/// Runs the steps in order and stops at the first failure, after printing its diagnosis.
pub fn execute(sh: &Shell, steps: &[Step]) -> anyhow::Result<()> {
    let summary: Vec<(&str, Option<&str>)> = steps
        .iter()
        .map(|step| (step.done.as_str(), step.starts.as_deref()))
        .collect();
    for (index, step) in steps.iter().enumerate() {
        interrupt::set_state(interrupted_state(&summary, index));
        run_step(sh, step)?;
    }
    interrupt::set_state(interrupted_state(&summary, steps.len()));
    Ok(())
}

/// One step: its `✓` line when it ends well, else its diagnosis and error.
pub fn run_step(sh: &Shell, step: &Step) -> anyhow::Result<()> {
    let started = Instant::now();
    let result = match &step.action {
        Action::Docker { env, args } => Docker::new(sh, args).envs(env).run(),
        Action::Await { target, timeout } => wait::wait_for_one(target, *timeout),
    };
    if let Err(err) = result {
        if let Some(args) = &step.diagnose {
            print_diagnosis(sh, args);
        }
        return Err(err).context(step.on_failure.clone());
    }
    output::done(&step.done, started.elapsed());
    Ok(())
}

/// What is true if the command stops during step `current` (or after the last), from each
/// step's `done` label and the service it starts, if any: the services the steps before
/// started, and those they did not get to.
/// `during step 2 of 5 (db ready): db is running, web was not started`.
pub fn interrupted_state(steps: &[(&str, Option<&str>)], current: usize) -> String {
    let mut facts: Vec<String> = Vec::new();
    for (index, (_, starts)) in steps.iter().enumerate() {
        let Some(service) = starts else { continue };
        if facts
            .iter()
            .any(|known| known.starts_with(&format!("{service} ")))
        {
            continue;
        }
        facts.push(match index.cmp(&current) {
            std::cmp::Ordering::Less => format!("{service} is running"),
            std::cmp::Ordering::Equal => format!("{service} was being started"),
            std::cmp::Ordering::Greater => format!("{service} was not started"),
        });
    }
    if facts.is_empty() {
        let done: Vec<&str> = steps[..current.min(steps.len())]
            .iter()
            .map(|(done, _)| *done)
            .collect();
        facts.push(match done.is_empty() {
            true => "no step had finished".to_owned(),
            false => format!("finished: {}", done.join(", ")),
        });
    }
    match steps.get(current) {
        Some((done, _)) => format!(
            "during step {} of {} ({done}): {}",
            current + 1,
            steps.len(),
            facts.join(", ")
        ),
        None => format!("after the last step: {}", facts.join(", ")),
    }
}

/// On stderr with the rest of the progress, so that stdout keeps only results.
fn print_diagnosis(sh: &Shell, docker_args: &[String]) {
    eprintln!("--- what went wrong, as the logs tell it:");
    eprintln!("$ docker {}", shell_words(docker_args));
    if let Ok(output) = Docker::new(sh, docker_args).unechoed() {
        eprint!("{}", String::from_utf8_lossy(&output.stdout));
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
    }
    eprintln!("---");
}

/// `NAME=value docker ARGS…`: a command a user can paste into a shell.
pub fn command_line(env: &[(String, String)], args: &[String]) -> String {
    let mut line = String::new();
    for (name, value) in env {
        line.push_str(&format!(
            "{name}={} ",
            shell_words(std::slice::from_ref(value))
        ));
    }
    line + "docker " + &shell_words(args)
}

/// `0.8 s`: how elapsed times are shown (install-docker uses it too).
pub fn seconds(elapsed: Duration) -> String {
    output::seconds(elapsed)
}

/// Quotes each argument only where a POSIX shell would otherwise split or expand it.
pub fn shell_words(args: &[String]) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=@,+%{}".contains(c);
    args.iter()
        .map(|arg| {
            if !arg.is_empty() && arg.chars().all(plain) {
                arg.clone()
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_commands_survive_a_shell() {
        let args = ["run", "--label", "a b", "it's", "", "{{.ID}}"].map(String::from);
        assert_eq!(
            shell_words(&args),
            r#"run --label 'a b' 'it'\''s' '' {{.ID}}"#
        );
    }

    #[test]
    fn variables_print_before_the_command() {
        let step = Step::docker("built", vec!["compose".into(), "build".into()], "")
            .with_env("APP_TAG", "0a1b2c3-dirty");
        assert_eq!(
            step.to_string(),
            "APP_TAG=0a1b2c3-dirty docker compose build"
        );
    }

    #[test]
    fn a_wait_prints_as_the_equivalent_command() {
        let step = Step::await_ready(
            "db ready",
            "postgres://127.0.0.1:5432".into(),
            Duration::from_secs(60),
            "",
        );
        assert_eq!(
            step.to_string(),
            "cargo xtask wait postgres://127.0.0.1:5432 --timeout 60s"
        );
    }

    #[test]
    fn an_interruption_says_what_is_running_and_what_was_not_started() {
        let steps = [
            ("db started", Some("db")),
            ("db ready", None),
            ("migrations applied", None),
            ("web started", Some("web")),
            ("web healthy", None),
        ];
        assert_eq!(
            interrupted_state(&steps, 1),
            "during step 2 of 5 (db ready): db is running, web was not started"
        );
        assert_eq!(
            interrupted_state(&steps, 0),
            "during step 1 of 5 (db started): db was being started, web was not started"
        );
        assert_eq!(
            interrupted_state(&steps, 5),
            "after the last step: db is running, web is running"
        );
    }

    #[test]
    fn without_services_an_interruption_lists_the_steps_done() {
        let steps = [("image built", None), ("tagged 1.0", None)];
        assert_eq!(
            interrupted_state(&steps, 0),
            "during step 1 of 2 (image built): no step had finished"
        );
        assert_eq!(
            interrupted_state(&steps, 1),
            "during step 2 of 2 (tagged 1.0): finished: image built"
        );
    }
}
