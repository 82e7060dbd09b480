//! How the xtask runs a command, the same way for every one (see `Command`):
//!
//! - echoed as `$ docker …` when it acts (unless `--quiet`), and also when it only checks
//!   or reads with `--verbose` (see `output`);
//! - in a process group of its own, registered while it runs, so that Ctrl-C stops it and
//!   the processes it starts (see `interrupt`); its stdin is the secret it is given, or none;
//! - its stderr passed through as it comes, and its end kept: a failure then reads as the
//!   command's own last words, with a hint when `diagnosis::known_fix` knows the mistake.
//!   With `--quiet` the output is kept back, and shown only if the command fails.
//!
//! By intent: `act` changes something, `print` shows a result (`ps`, `logs`), `read`
//! returns what a command printed and fails with its reason, `probe` returns whatever
//! happened, for checks where a failure is an answer.

use std::{
    io::{self, Read, Write},
    process::{Child, ChildStdin, ChildStdout, ExitStatus, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::Context;
use xshell::Shell;

use super::{Command, diagnosis, tunnel};
use crate::{hint::Hint, interrupt, output};

/// How much of the end of a command's output is kept, to explain its failure.
const TAIL_BYTES: usize = 16 * 1024;
/// How many of its last lines `--quiet` shows when the command fails.
const TAIL_LINES: usize = 40;
/// How often a bounded command is checked for its end.
const POLL: Duration = Duration::from_millis(20);

/// Runs a command that acts (`up`, `build`, `apt-get install`): its output is progress,
/// kept back with `--quiet`; fails with its last line as the reason.
pub fn act(sh: &Shell, command: &Command) -> anyhow::Result<()> {
    stream(sh, command, Stdout::Progress)
}

/// Runs a command whose standard output is the result (`ps`, `logs`, `config`): always shown.
pub fn print(sh: &Shell, command: &Command) -> anyhow::Result<()> {
    stream(sh, command, Stdout::Result)
}

/// Like `print`, with the output passed through `filter` before it is shown (`config`
/// hides secret values): echoed, its stdout held until it ends.
pub fn print_filtered(
    sh: &Shell,
    command: &Command,
    filter: impl FnOnce(&str) -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let result = echoed_and_captured(sh, command)?;
    eprint!("{}", String::from_utf8_lossy(&result.stderr));
    print!("{}", filter(&String::from_utf8_lossy(&result.stdout))?);
    Ok(())
}

/// Runs a command that acts and answers on its stdout (an API request through `docker
/// system dial-stdio`): echoed like `act`, its stdout returned, failing with its reason.
pub fn act_reading(sh: &Shell, command: &Command) -> anyhow::Result<Vec<u8>> {
    Ok(echoed_and_captured(sh, command)?.stdout)
}

/// Echoed as an act, its output kept: what it printed, or its reason for failing.
fn echoed_and_captured(sh: &Shell, command: &Command) -> anyhow::Result<Output> {
    output::command(&command.to_string());
    let result = captured(sh, command, None)?.context("a command without a deadline ends")?;
    if !result.status.success() {
        let (reason, fix) = diagnosis::explain(&String::from_utf8_lossy(&result.stderr), command)
            .unwrap_or_else(|| (format!("`{command}` ended with {}", result.status), None));
        return Err(Hint::maybe(reason, fix));
    }
    Ok(result)
}

/// Runs a command that only reads, echoed with `--verbose`: its standard output, or its
/// reason for failing, with the fix when it is a known mistake.
pub fn read(sh: &Shell, command: &Command) -> anyhow::Result<String> {
    let output = probe(sh, command)?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let (reason, fix) = diagnosis::explain(&String::from_utf8_lossy(&output.stderr), command)
        .unwrap_or_else(|| (output.status.to_string(), None));
    Err(Hint::maybe(format!("`{command}` failed: {reason}"), fix))
}

/// Runs a command that only checks, echoed with `--verbose`: whatever it printed and its
/// status, unchecked.
pub fn probe(sh: &Shell, command: &Command) -> anyhow::Result<Output> {
    output::check(&command.to_string());
    captured(sh, command, None)?.context("a command without a deadline ends")
}

/// Like `probe`, but given up after `limit`: `None` if the command had not ended by then
/// (it is stopped). For a daemon that accepts connections and never answers.
pub fn probe_within(
    sh: &Shell,
    command: &Command,
    limit: Duration,
) -> anyhow::Result<Option<Output>> {
    output::check(&command.to_string());
    captured(sh, command, Some(limit))
}

fn captured(
    sh: &Shell,
    command: &Command,
    limit: Option<Duration>,
) -> anyhow::Result<Option<Output>> {
    let mut process = spawn(sh, command, Stdio::piped(), Stdio::piped())?;
    let running = interrupt::register(process.id());
    let stdout = process
        .stdout
        .take()
        .map(|pipe| thread::spawn(move || read_all(pipe)));
    let stderr = process
        .stderr
        .take()
        .map(|pipe| thread::spawn(move || read_all(pipe)));
    let status = wait_at_most(&mut process, limit);
    drop(running);
    let Some(status) = status else {
        return Ok(None);
    };
    let (stdout, stderr) = (joined(stdout), joined(stderr));
    interrupt::wait_if_interrupted();
    let status = status.with_context(|| cannot_run(command))?;
    Ok(Some(Output {
        status,
        stdout,
        stderr,
    }))
}

/// The child's status, or `None` when `limit` passed first: it is then stopped, with its
/// process group.
fn wait_at_most(process: &mut Child, limit: Option<Duration>) -> Option<io::Result<ExitStatus>> {
    let Some(limit) = limit else {
        return Some(process.wait());
    };
    let status = wait_within(process, limit);
    if status.is_none() {
        interrupt::stop_group(process.id());
        let _ = process.wait();
    }
    status
}

/// The child's status if it ends within `limit`.
fn wait_within(process: &mut Child, limit: Duration) -> Option<io::Result<ExitStatus>> {
    let deadline = Instant::now().checked_add(limit);
    loop {
        match process.try_wait() {
            Ok(Some(status)) => return Some(Ok(status)),
            Ok(None) => {}
            Err(err) => return Some(Err(err)),
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// Runs the command with its output passed on as it comes.
fn stream(sh: &Shell, command: &Command, stdout: Stdout) -> anyhow::Result<()> {
    let quiet = output::quiet();
    output::command(&command.to_string());
    let stdout_pipe = if quiet && stdout == Stdout::Progress {
        Stdio::piped()
    } else {
        Stdio::inherit()
    };
    let mut process = spawn(sh, command, stdout_pipe, Stdio::piped())?;
    let running = interrupt::register(process.id());
    let stderr = process
        .stderr
        .take()
        .map(|pipe| thread::spawn(move || keep_tail(pipe, !quiet)));
    let stdout = process
        .stdout
        .take()
        .map(|pipe| thread::spawn(move || keep_tail(pipe, false)));
    let status = process.wait();
    drop(running);
    let (stdout, stderr) = (joined(stdout), joined(stderr));
    interrupt::wait_if_interrupted();
    let status = status.with_context(|| cannot_run(command))?;
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
    let (reason, fix) = diagnosis::explain(&String::from_utf8_lossy(&stderr), command)
        .unwrap_or_else(|| (format!("`{command}` ended with {status}"), None));
    Err(Hint::maybe(reason, fix))
}

/// Starts the command in its own process group (the terminal's Ctrl-C then reaches the
/// xtask only, which stops the group, docker's plugin processes included), with its secret
/// on stdin if it has one.
fn spawn(sh: &Shell, command: &Command, stdout: Stdio, stderr: Stdio) -> anyhow::Result<Child> {
    let stdin = if command.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let mut child = process(sh, command)?
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| cannot_run(command))?;
    if let (Some(stdin), Some(mut pipe)) = (&command.stdin, child.stdin.take()) {
        // From a thread of its own: a command may write much before it reads. One that exits
        // before reading it all is not our failure: its status says why.
        let bytes = stdin.bytes().to_vec();
        thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    Ok(child)
}

/// Runs a command the user talks to (a psql console, a shell in a container): echoed, its
/// streams the terminal's, in the terminal's foreground (so it may read the terminal), and
/// Ctrl-C left to it: the xtask waits for it to end. Its exit status, as it is.
pub fn interactive(sh: &Shell, command: &Command) -> anyhow::Result<ExitStatus> {
    output::command(&command.to_string());
    let routed = tunnel::route(sh, command)?;
    let mut process = std::process::Command::new(&routed.program);
    process
        .args(&routed.args)
        .envs(routed.env.iter().map(|(name, value)| (name, value)))
        .current_dir(sh.current_dir());
    let _passing = interrupt::pass_through();
    let status = process.status().with_context(|| cannot_run(command))?;
    Ok(status)
}

/// A command whose stdin and stdout the xtask drives itself (a psql session, a stream
/// into a file): echoed as it starts, stopped with the rest on Ctrl-C, its stderr kept for
/// the reason it failed.
pub struct Piped {
    child: Child,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    stderr: Option<thread::JoinHandle<Vec<u8>>>,
    command: Command,
    _running: interrupt::Running,
}

impl Piped {
    /// Starts a command that acts (echoed unless `--quiet`).
    pub fn act(sh: &Shell, command: &Command) -> anyhow::Result<Piped> {
        output::command(&command.to_string());
        Piped::start(sh, command)
    }

    /// Starts a command that only reads (echoed with `--verbose`).
    pub fn read(sh: &Shell, command: &Command) -> anyhow::Result<Piped> {
        output::check(&command.to_string());
        Piped::start(sh, command)
    }

    fn start(sh: &Shell, command: &Command) -> anyhow::Result<Piped> {
        let mut child = process(sh, command)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| cannot_run(command))?;
        let running = interrupt::register(child.id());
        let stderr = child
            .stderr
            .take()
            .map(|pipe| thread::spawn(move || keep_tail(pipe, false)));
        Ok(Piped {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            child,
            stderr,
            command: command.clone(),
            _running: running,
        })
    }

    /// Its end, once its stdin is closed: its failure with its own last words.
    pub fn wait(mut self) -> anyhow::Result<()> {
        drop(self.stdin.take());
        drop(self.stdout.take());
        let status = self.child.wait();
        let stderr = joined(self.stderr.take());
        interrupt::wait_if_interrupted();
        let status = status.with_context(|| cannot_run(&self.command))?;
        if status.success() {
            return Ok(());
        }
        let (reason, fix) = diagnosis::explain(&String::from_utf8_lossy(&stderr), &self.command)
            .unwrap_or_else(|| (format!("`{}` ended with {status}", self.command), None));
        Err(Hint::maybe(reason, fix))
    }
}

/// What explains a failure, on stderr with the rest of the progress (stdout keeps only
/// results): `--- {title}:`, the command, all it printed, `---`. Whatever happens, never
/// an error of its own: the failure it explains is the one that counts.
pub fn show(sh: &Shell, title: &str, command: &Command) {
    eprintln!("--- {title}:");
    eprintln!("$ {command}");
    if let Ok(Some(output)) = captured(sh, command, None) {
        eprint!("{}", String::from_utf8_lossy(&output.stdout));
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
    }
    eprintln!("---");
}

/// For what runs while the command is being stopped (`interrupt`'s cleanup): neither
/// echoed nor registered (a registration then would stop it at once), its output ignored.
pub fn while_stopping(dir: &std::path::Path, command: &Command) -> bool {
    let command = &tunnel::route_if_open(command);
    let mut process = std::process::Command::new(&command.program);
    process
        .args(&command.args)
        .envs(command.env.iter().map(|(name, value)| (name, value)))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    process.status().is_ok_and(|status| status.success())
}

/// The process of `command`, its standard streams left to the caller: over its host's one
/// SSH connection if it goes to one (see `tunnel`).
pub(super) fn process(sh: &Shell, command: &Command) -> anyhow::Result<std::process::Command> {
    let command = &tunnel::route(sh, command)?;
    let mut process = std::process::Command::new(&command.program);
    process
        .args(&command.args)
        .envs(command.env.iter().map(|(name, value)| (name, value)))
        .envs(
            command
                .secret_env
                .iter()
                .map(|secret| (&secret.name, secret.expose())),
        )
        .current_dir(sh.current_dir());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut process, 0);
    Ok(process)
}

pub(super) fn cannot_run(command: &Command) -> String {
    format!("cannot run `{command}`")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stdout {
    Progress,
    Result,
}

/// What a pipe's reader thread collected, if there was a pipe.
fn joined(reader: Option<thread::JoinHandle<Vec<u8>>>) -> Vec<u8> {
    reader
        .map(|reader| reader.join().unwrap_or_default())
        .unwrap_or_default()
}

pub(super) fn read_all(mut pipe: impl Read) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes);
    bytes
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
#[path = "run_tests.rs"]
mod tests;
