//! How the xtask runs docker, the same way for every command:
//!
//! - echoed as `$ docker …` when it acts (unless `--quiet`), and also when it only checks
//!   or reads with `--verbose` (see `output`);
//! - in a process group of its own, registered while it runs, so that Ctrl-C stops it and
//!   the processes it starts (see `interrupt`); no standard input;
//! - its stderr passed through as it comes, and its end kept: a failure then reads as
//!   docker's own last words, with a hint when `docker::known_fix` knows the mistake.
//!   With `--quiet` the output is kept back, and shown only if the command fails.

use std::{
    io::{self, Read, Write},
    path::PathBuf,
    process::{Command, ExitStatus, Output, Stdio},
    thread,
};

use anyhow::Context;
use xshell::Shell;

use crate::{docker, hint::Hint, interrupt, output, plan};

/// How much of the end of a command's output is kept, to explain its failure.
const TAIL_BYTES: usize = 16 * 1024;
/// How many of its last lines `--quiet` shows when the command fails.
const TAIL_LINES: usize = 40;

/// `docker ARGS…` with extra environment variables, run in the Shell's directory.
#[derive(Debug, Clone)]
pub struct Docker {
    dir: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
}

impl Docker {
    pub fn new<S: AsRef<str>>(sh: &Shell, args: impl IntoIterator<Item = S>) -> Docker {
        Docker {
            dir: sh.current_dir(),
            env: Vec::new(),
            args: args
                .into_iter()
                .map(|arg| arg.as_ref().to_owned())
                .collect(),
        }
    }

    /// Variables for Compose's interpolation; never secrets: they are echoed.
    pub fn envs(mut self, vars: &[(String, String)]) -> Docker {
        self.env.extend(vars.iter().cloned());
        self
    }

    /// The command as a shell would take it: `APP_TAG=x docker compose …`.
    pub fn line(&self) -> String {
        plan::command_line(&self.env, &self.args)
    }

    /// A command that acts (`up`, `build`, `run`): its output is progress, kept back with
    /// `--quiet`.
    pub fn run(&self) -> anyhow::Result<()> {
        self.stream(Stdout::Progress)
    }

    /// A command whose standard output is the result (`ps`, `logs`, `config`): always shown.
    pub fn show(&self) -> anyhow::Result<()> {
        self.stream(Stdout::Result)
    }

    /// A command that acts, whose output the caller reads (`push`): echoed like `run`,
    /// its output captured, its status not checked.
    pub fn capture(&self) -> anyhow::Result<Output> {
        output::command(&self.line());
        self.unechoed()
    }

    /// A command that only checks or reads: echoed with `--verbose` only, its output
    /// captured, its status not checked.
    pub fn output(&self) -> anyhow::Result<Output> {
        output::check(&self.line());
        self.unechoed()
    }

    /// Like `output`, for a command whose line the caller shows itself.
    pub fn unechoed(&self) -> anyhow::Result<Output> {
        let mut command = self.command();
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = command.spawn().with_context(|| self.cannot_run())?;
        let running = interrupt::register(child.id());
        let result = child.wait_with_output();
        drop(running);
        interrupt::wait_if_interrupted();
        result.with_context(|| self.cannot_run())
    }

    fn stream(&self, stdout: Stdout) -> anyhow::Result<()> {
        let quiet = output::quiet();
        output::command(&self.line());
        let mut command = self.command();
        command.stderr(Stdio::piped());
        if quiet && stdout == Stdout::Progress {
            command.stdout(Stdio::piped());
        }
        let mut child = command.spawn().with_context(|| self.cannot_run())?;
        let running = interrupt::register(child.id());
        let stderr = child
            .stderr
            .take()
            .map(|pipe| thread::spawn(move || keep_tail(pipe, !quiet)));
        let stdout = child
            .stdout
            .take()
            .map(|pipe| thread::spawn(move || keep_tail(pipe, false)));
        let status = child.wait();
        drop(running);
        let stderr = stderr
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default();
        let stdout = stdout
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default();
        interrupt::wait_if_interrupted();
        let status = status.with_context(|| self.cannot_run())?;
        if status.success() {
            return Ok(());
        }
        if quiet {
            // What the command said, held back until now: it explains the error below.
            eprint!(
                "{}",
                last_lines(&String::from_utf8_lossy(&stdout), TAIL_LINES)
            );
            eprint!(
                "{}",
                last_lines(&String::from_utf8_lossy(&stderr), TAIL_LINES)
            );
        }
        Err(self.failure(status, &String::from_utf8_lossy(&stderr)))
    }

    fn command(&self) -> Command {
        let mut command = Command::new("docker");
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        // Its own group: the terminal's Ctrl-C reaches the xtask only, which stops the
        // group, docker's plugin processes included.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
    }

    fn cannot_run(&self) -> String {
        format!("cannot run `{}`", self.line())
    }

    /// Docker's last line as the reason, with the fix when the mistake is a known one.
    fn failure(&self, status: ExitStatus, stderr: &str) -> anyhow::Error {
        let reason =
            last_line(stderr).unwrap_or_else(|| format!("`{}` ended with {status}", self.line()));
        Hint::maybe(reason, docker::known_fix(stderr))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stdout {
    Progress,
    Result,
}

/// Reads a pipe to its end, passing it on to stderr if asked, and returns its last bytes.
fn keep_tail(mut pipe: impl Read, forward: bool) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut buffer = [0; 8192];
    loop {
        match pipe.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => {
                if forward {
                    let mut stderr = io::stderr().lock();
                    let _ = stderr.write_all(&buffer[..read]);
                    let _ = stderr.flush();
                }
                tail.extend_from_slice(&buffer[..read]);
                if tail.len() > 2 * TAIL_BYTES {
                    tail.drain(..tail.len() - TAIL_BYTES);
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    tail
}

/// The last line with something in it, without terminal escapes.
pub fn last_line(text: &str) -> Option<String> {
    text.lines()
        .rev()
        .map(|line| strip_escapes(line).trim().to_owned())
        .find(|line| !line.is_empty())
}

/// The last `count` lines, each ending with a newline.
pub fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(count);
    lines[start..]
        .iter()
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Drops `ESC [ … letter` sequences and other control characters (`\r` redraws).
fn strip_escapes(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else if c == '\r' {
            // What a terminal shows after a carriage return: the rewrite.
            plain.clear();
        } else if !c.is_control() || c == '\t' {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_the_last_line_as_a_terminal_shows_it() {
        let stderr = " Container x  Starting\n\x1b[31mError\x1b[0m response from daemon: port is already allocated\n\n";
        assert_eq!(
            last_line(stderr).as_deref(),
            Some("Error response from daemon: port is already allocated")
        );
        assert_eq!(
            last_line("waiting 1\rwaiting 2\r done\n").as_deref(),
            Some("done")
        );
        assert_eq!(last_line("\n  \n"), None);
    }

    #[test]
    fn quiet_failures_show_the_last_lines() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(last_lines("", 2), "");
    }
}
