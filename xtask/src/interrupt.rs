//! Ctrl-C (SIGINT), SIGTERM and SIGHUP during any command: stop the docker processes it
//! started, say what state it leaves (`interrupted during step 2 of 5 (db ready): db is
//! running, web was not started`) and exit 130.
//!
//! Every docker process the xtask starts runs in a process group of its own (see
//! `process`), registered here while it runs: so the terminal's Ctrl-C reaches the xtask
//! alone, and the handler stops each group, compose's plugin process included, with SIGTERM
//! then, after a grace period, SIGKILL. The executor records what its steps have done.

use std::{
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use crate::output;

/// What a shell reports for a command ended by SIGINT (128 + 2).
pub const EXIT_CODE: i32 = 130;
/// How long docker may take to stop by itself before it is killed.
const GRACE: Duration = Duration::from_secs(1);
/// How long the killed processes may take to disappear.
const KILL_WAIT: Duration = Duration::from_millis(500);
const POLL: Duration = Duration::from_millis(20);

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// While a command the user talks to runs (a console), its Ctrl-C is its own.
static PASSING_THROUGH: AtomicBool = AtomicBool::new(false);
static STATE: Mutex<State> = Mutex::new(State {
    groups: Vec::new(),
    state: None,
    hint: None,
    cleanup: Vec::new(),
});

/// What must still happen when the command is stopped (the deploy lock released): run
/// after the docker processes are stopped, before the exit.
pub type Cleanup = Box<dyn Fn() + Send>;

struct State {
    /// The process groups of the docker processes running now.
    groups: Vec<u32>,
    /// What is true if the command stops now: `db is running, web was not started`.
    state: Option<String>,
    /// What to run next, after an interruption.
    hint: Option<String>,
    /// Named, so that what no longer needs doing is forgotten.
    cleanup: Vec<(String, Cleanup)>,
}

fn state() -> MutexGuard<'static, State> {
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Installs the handler; without it (a platform ctrlc does not support) the signals keep
/// their default effect.
pub fn install() {
    if let Err(err) = ctrlc::set_handler(on_signal) {
        if !output::quiet() {
            eprintln!("warning: Ctrl-C will not stop docker cleanly: {err}");
        }
    }
}

/// Whether a signal has come: the command is being stopped.
pub fn requested() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Records what is true if the command stops now.
pub fn set_state(text: impl Into<String>) {
    state().state = Some(text.into());
}

/// What the user may run after an interruption: `cargo xtask down dev` …
pub fn set_hint(text: impl Into<String>) {
    state().hint = Some(text.into());
}

/// Runs `cleanup` if the command is stopped before `forget_cleanup(name)`.
pub fn on_interruption(name: &str, cleanup: Cleanup) {
    let mut state = state();
    state.cleanup.retain(|(known, _)| known != name);
    state.cleanup.push((name.to_owned(), cleanup));
}

pub fn forget_cleanup(name: &str) {
    state().cleanup.retain(|(known, _)| known != name);
}

/// A running docker process, stopped with its group if a signal comes; unregistered when
/// dropped, once it has been waited for.
pub struct Running(u32);

/// Registers the process `pid`, the leader of its own process group.
pub fn register(pid: u32) -> Running {
    let mut state = state();
    state.groups.push(pid);
    // A signal that came between the spawn and now found no group to stop: stop it here.
    if requested() {
        signal(&[pid], "TERM");
    }
    Running(pid)
}

impl Drop for Running {
    fn drop(&mut self) {
        state().groups.retain(|group| *group != self.0);
    }
}

/// After a docker process ends: if a signal ended it, the handler is about to exit with
/// the right message and code, so this thread must not go on to report a failure.
pub fn wait_if_interrupted() {
    while requested() {
        thread::park();
    }
}

/// Signals go to the foreground command alone until the guard is dropped.
pub struct PassThrough;

pub fn pass_through() -> PassThrough {
    PASSING_THROUGH.store(true, Ordering::SeqCst);
    PassThrough
}

impl Drop for PassThrough {
    fn drop(&mut self) {
        PASSING_THROUGH.store(false, Ordering::SeqCst);
    }
}

fn on_signal() {
    if PASSING_THROUGH.load(Ordering::SeqCst) {
        return;
    }
    INTERRUPTED.store(true, Ordering::SeqCst);
    let groups = state().groups.clone();
    stop(&groups);
    let cleanup = std::mem::take(&mut state().cleanup);
    for (_, run) in cleanup.iter().rev() {
        run();
    }
    // Last: the cleanup may have needed a host's SSH connection.
    crate::docker::tunnel::close_all();
    let (what, hint) = {
        let state = state();
        (state.state.clone(), state.hint.clone())
    };
    output::interrupted(what.as_deref(), hint.as_deref());
    std::process::exit(EXIT_CODE);
}

/// Stops one process group the way an interruption does: a command given up on.
pub fn stop_group(group: u32) {
    stop(&[group]);
}

/// SIGTERM to each group, SIGKILL to those still there after the grace period.
fn stop(groups: &[u32]) {
    if groups.is_empty() {
        return;
    }
    signal(groups, "TERM");
    if !gone_within(groups, GRACE) {
        signal(groups, "KILL");
        gone_within(groups, KILL_WAIT);
    }
}

/// Through the `kill` command, which every Unix has: no `unsafe`, no libc binding.
fn signal(groups: &[u32], name: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg("--")
        .args(groups.iter().map(|group| format!("-{group}")))
        .stderr(std::process::Stdio::null())
        .status();
}

fn gone_within(groups: &[u32], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if groups.iter().all(|group| !group_alive(*group)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
}

/// Whether a process of the group still runs: from /proc where there is one (zombies do
/// not count), else from `kill -0`.
fn group_alive(group: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return std::process::Command::new("kill")
            .args(["-0", "--", &format!("-{group}")])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
    };
    entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .any(|stat| running_in_group(&stat, group))
}

/// `/proc/PID/stat`: `PID (COMM) STATE PPID PGRP …`, where COMM may hold spaces and
/// parentheses.
fn running_in_group(stat: &str, group: u32) -> bool {
    let Some((_, fields)) = stat.rsplit_once(')') else {
        return false;
    };
    let mut fields = fields.split_whitespace();
    let state = fields.next();
    let pgrp = fields.nth(1).and_then(|pgrp| pgrp.parse::<u32>().ok());
    state != Some("Z") && pgrp == Some(group)
}

#[cfg(test)]
mod tests {
    use super::running_in_group;

    #[test]
    fn proc_stat_gives_the_group_and_zombies_do_not_count() {
        let stat = "4242 (docker compose) S 4200 4242 4100 34816 4242 4194560 5000 0 0 0";
        assert!(running_in_group(stat, 4242));
        assert!(!running_in_group(stat, 4200));
        assert!(running_in_group("7 (a) b) R 1 9 9 0", 9));
        assert!(!running_in_group("4242 (docker) Z 4200 4242 4100", 4242));
    }
}
