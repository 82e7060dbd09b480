//! Carrying a plan out: the questions first, then the steps in order, each ending with its
//! `✓` line, the first failure explained (its diagnosis) and stopping the rest; and, for
//! Ctrl-C, a record of what the steps done so far leave running.

use std::{
    io::{BufRead, IsTerminal},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use xshell::Shell;

use super::{Action, Content, Step, files};
use crate::{
    docker::{Command, diagnosis, preflight, run, ship},
    interrupt, output,
    poll::{Answer, Poll},
    wait,
};

/// How often `AwaitEngine` asks the engine again.
const ENGINE_POLL: Duration = Duration::from_millis(500);

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

/// Every question the steps ask, before any runs; `yes` answers them all.
pub fn confirm(steps: &[Step], yes: bool) -> anyhow::Result<()> {
    for question in steps.iter().filter_map(|step| step.confirm.as_deref()) {
        if yes {
            continue;
        }
        if !std::io::stdin().is_terminal() {
            bail!(
                "nothing was changed: the plan needs to {question}: run it again with --yes to allow that"
            );
        }
        eprint!("{question}? [y/N] ");
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .context("read the answer")?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("nothing was changed: the plan needs to {question}");
        }
    }
    Ok(())
}

/// What destroys or replaces data asks first: `warning`, then the environment's name to
/// type. `yes` answers for scripts; without a terminal to ask on, and without `yes`, it
/// refuses.
pub fn confirm_by_name(env: &str, warning: &str, yes: bool) -> anyhow::Result<()> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(crate::hint::Hint::new(
            format!("nothing was changed: {warning}, and there is no terminal to ask on"),
            "run it at a terminal, or pass --yes to allow it",
        )
        .into());
    }
    let mut sentence = warning.chars();
    let first = sentence
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default();
    eprint!(
        "{first}{}.\nType the environment's name ({env}) to go on: ",
        sentence.as_str()
    );
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("read the answer")?;
    if answer.trim() != env {
        bail!("nothing was changed: `{}` is not `{env}`", answer.trim());
    }
    Ok(())
}

/// One step: its `✓` line when it ends well, else its diagnosis and error.
fn run_step(sh: &Shell, step: &Step) -> anyhow::Result<()> {
    let started = Instant::now();
    let result = match &step.action {
        Action::Run(command) => run::act(sh, command).map(|()| step.done.clone()),
        Action::Await { target, timeout } => {
            wait::wait_for_one(target, *timeout).map(|()| step.done.clone())
        }
        Action::AwaitEngine { probe, timeout } => {
            await_engine(sh, probe, *timeout).map(|()| step.done.clone())
        }
        Action::Write {
            path,
            mode,
            content,
        } => write(path, *mode, content),
        Action::Ship { image, to } => ship::ship_to_each(sh, image, to),
        Action::Task(task) => task.run(sh),
        Action::Remove { path, reason } => std::fs::remove_file(path)
            .with_context(|| format!("remove {path}"))
            .map(|()| format!("removed {path} ({reason})")),
    };
    match result {
        Ok(done) => {
            output::done(&done, started.elapsed());
            Ok(())
        }
        Err(err) => {
            for command in &step.diagnose {
                run::show(sh, "what went wrong, as the logs tell it", command);
            }
            if step.on_failure.is_empty() {
                Err(err)
            } else {
                Err(err).context(step.on_failure.clone())
            }
        }
    }
}

fn write(path: &str, mode: u32, content: &Content) -> anyhow::Result<String> {
    let bytes = match content {
        Content::Text(text) => text.as_bytes(),
        Content::Bytes(bytes) => bytes,
        Content::Pending(what) => bail!("{path} was never fetched ({what})"),
    };
    Ok(match files::write(Path::new("/"), path, mode, bytes)? {
        files::Written::Created => format!("wrote {path}"),
        files::Written::Updated => format!("updated {path}"),
        files::Written::Unchanged => format!("{path} unchanged"),
    })
}

/// `probe` until it succeeds (the engine answers) or `timeout` passes; each attempt
/// bounded, for a daemon that takes connections and never answers.
fn await_engine(sh: &Shell, probe: &Command, timeout: Duration) -> anyhow::Result<()> {
    let poll = Poll::new(
        format!(
            "the Docker daemon to answer (up to {})",
            output::seconds(timeout)
        ),
        "the Docker daemon did not answer",
    )
    .timeout(timeout)
    .every(ENGINE_POLL);
    let mut last = String::new();
    poll.until(|| {
        let answer = run::probe_within(sh, probe, preflight::DAEMON_ANSWER_TIMEOUT)?;
        last = match answer {
            Some(output) if output.status.success() => return Ok(Answer::Ready(())),
            Some(output) => String::from_utf8_lossy(&output.stderr).into_owned(),
            None => "no answer".to_owned(),
        };
        Ok(Answer::NotYet(run::last_line(&last).unwrap_or_default()))
    })
    .map_err(|timeout| diagnosis::daemon_problem(&last).context(timeout))
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

#[cfg(test)]
mod tests {
    use super::*;

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
