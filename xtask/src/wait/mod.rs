//! `cargo xtask wait`: readiness probes for PostgreSQL, HTTP and TCP, and the one wait loop
//! that the command and `deploy` share.
//!
//! Each target gets a thread that tries it until it is ready or the deadline passes, backing
//! off between attempts; each attempt is bounded by the per-attempt timeout and by the time
//! left. The calling thread only collects what the probes report and draws the progress.

mod http;
mod postgres;
mod progress;
mod target;
mod tcp;

use std::{
    error::Error,
    fmt, io,
    sync::mpsc::{self, RecvTimeoutError},
    thread,
    time::{Duration, Instant},
};

pub use target::{BadTarget, Target};

use crate::cli::WaitArgs;
use progress::Progress;

/// How long all targets together may take, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The first pause between two attempts at one target.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(50);
/// The most one attempt may take: a connection and the first answer.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// Pauses grow up to this, so a target that takes long is not hammered.
const MAX_INTERVAL: Duration = Duration::from_secs(1);
/// How much each pause grows over the one before. Gently: a server becomes ready a second
/// or three after it starts, and the pause in force then is how late we notice. Doubling
/// reaches the 1 s cap within 1.5 s (a median delay of 350 ms in the benchmark); growing by a
/// tenth keeps the pause near 150 ms at 1 s and reaches the cap after about 10 s.
const BACKOFF_GROWTH: f64 = 1.1;
/// A zero interval would be a busy loop.
const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// The most one attempt is given, whatever is asked: the probes add it to the current
/// instant, which a duration of centuries would overflow.
const LONGEST_ATTEMPT: Duration = Duration::from_secs(3600);
/// What a deadline too far to represent becomes: a century is forever for a wait.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// How long past the deadline the attempts then in flight may take to say why they failed.
const LAST_REPORTS: Duration = Duration::from_millis(100);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitOptions {
    /// The deadline for all targets together, from the call.
    pub timeout: Duration,
    /// The first pause between attempts at one target; it grows by a tenth up to 1 s.
    pub interval: Duration,
    /// The most one attempt may take; never beyond the deadline.
    pub attempt_timeout: Duration,
    /// A live line on stderr with what is still awaited, when stderr is a terminal.
    pub progress: bool,
    /// A `ready: TARGET (0.8 s)` line on stderr as each target becomes ready.
    pub announce_ready: bool,
}

impl Default for WaitOptions {
    fn default() -> WaitOptions {
        WaitOptions {
            timeout: DEFAULT_TIMEOUT,
            interval: DEFAULT_INTERVAL,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            progress: true,
            announce_ready: true,
        }
    }
}

/// The deadline passed before every target was ready.
#[derive(Debug)]
pub struct NotReady {
    /// The timeout that passed.
    pub waited: Duration,
    /// The targets still not ready, each with the reason its last attempt gave.
    pub pending: Vec<(Target, String)>,
}

impl fmt::Display for NotReady {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let targets: Vec<String> = self.pending.iter().map(|(t, _)| t.to_string()).collect();
        write!(
            f,
            "timed out after {} waiting for {}",
            seconds(self.waited),
            targets.join(", ")
        )
    }
}

impl Error for NotReady {}

/// `cargo xtask wait TARGET…`: every target is parsed before any waiting starts.
pub fn run(args: &WaitArgs) -> anyhow::Result<()> {
    let targets = args
        .targets
        .iter()
        .map(|text| Target::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    wait_for(&targets, &args.options())?;
    Ok(())
}

impl WaitArgs {
    pub fn options(&self) -> WaitOptions {
        WaitOptions {
            timeout: self.timeout,
            interval: self.interval,
            attempt_timeout: self.attempt_timeout,
            progress: !self.quiet,
            announce_ready: !self.quiet,
        }
    }
}

/// What `deploy` does at each of its waits: `cargo xtask wait TARGET --timeout …`, with the
/// progress line but without the `ready:` line, which the step's own line replaces.
pub fn wait_for_one(target: &str, timeout: Duration) -> anyhow::Result<()> {
    let target = Target::parse(target)?;
    let options = WaitOptions {
        timeout,
        announce_ready: false,
        ..WaitOptions::default()
    };
    wait_for(&[target], &options)?;
    Ok(())
}

/// Waits until every target is ready, all at once, or until `options.timeout` passes.
///
/// On stderr: the progress and `ready:` lines as `options` asks, and at the deadline, always,
/// one `TARGET: not ready: REASON` line per target still not ready.
pub fn wait_for(targets: &[Target], options: &WaitOptions) -> Result<(), NotReady> {
    let started = Instant::now();
    let deadline = started
        .checked_add(options.timeout)
        .unwrap_or(started + FOREVER);
    let (sender, events) = mpsc::channel();
    for (index, target) in targets.iter().enumerate() {
        let (target, options, sender) = (target.clone(), options.clone(), sender.clone());
        thread::spawn(move || {
            keep_trying(&target, &options, deadline, |outcome| {
                sender.send((index, outcome)).is_ok()
            })
        });
    }
    drop(sender);

    let mut board = Board::new(targets);
    let mut progress = Progress::new(options, started);
    loop {
        let pending: Vec<&Target> = board.pending().map(|(target, _)| target).collect();
        let Some(left) = time_left(deadline).filter(|_| !pending.is_empty()) else {
            break;
        };
        progress.waiting(&pending);
        match events.recv_timeout(left.min(progress.refresh())) {
            Ok(event) => board.record(event, &mut progress),
            Err(RecvTimeoutError::Timeout) => {}
            // Every probe has given up: they only do so at the deadline.
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // Attempts end with the deadline too: let those then in flight report their reason (a
    // timeout, for a first attempt that lasted until then) rather than show none.
    let grace = Instant::now() + LAST_REPORTS;
    while let Some(left) = time_left(grace).filter(|_| board.pending().next().is_some()) {
        match events.recv_timeout(left) {
            Ok(event) => board.record(event, &mut progress),
            Err(_) => break,
        }
    }
    progress.clear();

    let pending: Vec<(Target, String)> = board
        .pending()
        .map(|(target, reason)| (target.clone(), reason.to_owned()))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    for (target, reason) in &pending {
        progress.not_ready(target, reason);
    }
    Err(NotReady {
        waited: options.timeout,
        pending,
    })
}

/// What the probes have reported so far: which targets are ready, and why the others are
/// not yet.
struct Board<'a> {
    targets: &'a [Target],
    reasons: Vec<Option<String>>,
}

impl<'a> Board<'a> {
    fn new(targets: &'a [Target]) -> Board<'a> {
        let not_tried = String::from("no attempt before the deadline");
        Board {
            targets,
            reasons: vec![Some(not_tried); targets.len()],
        }
    }

    fn record(&mut self, (index, outcome): (usize, Result<(), String>), progress: &mut Progress) {
        match outcome {
            Ok(()) => {
                self.reasons[index] = None;
                progress.ready(&self.targets[index]);
            }
            Err(reason) => self.reasons[index] = Some(reason),
        }
    }

    /// The targets not ready yet, each with its last reason.
    fn pending(&self) -> impl Iterator<Item = (&'a Target, &str)> {
        let targets = self.targets;
        targets
            .iter()
            .zip(&self.reasons)
            .filter_map(|(target, reason)| Some((target, reason.as_deref()?)))
    }
}

/// One target's thread: attempts until one succeeds, `report` returns false (nobody
/// listens any more) or the deadline passes. Reports `Err(reason)` after each failure.
fn keep_trying(
    target: &Target,
    options: &WaitOptions,
    deadline: Instant,
    report: impl Fn(Result<(), String>) -> bool,
) {
    let mut pauses = backoff(options.interval);
    let mut reported = false;
    while let Some(left) = time_left(deadline) {
        let budget = left.min(options.attempt_timeout).min(LONGEST_ATTEMPT);
        let outcome = match attempt(target, budget) {
            Ok(()) => {
                report(Ok(()));
                return;
            }
            // An attempt the deadline cut short says nothing new: keep the reason before.
            Err(Failure::Timeout) if reported && budget < options.attempt_timeout => None,
            Err(Failure::Timeout) => Some(format!("no answer within {}", human(budget))),
            Err(Failure::Other(reason)) => Some(reason),
        };
        if let Some(reason) = outcome {
            reported = true;
            if !report(Err(reason)) {
                return;
            }
        }
        let pause = pauses.next().unwrap_or(MAX_INTERVAL);
        match time_left(deadline) {
            Some(left) => thread::sleep(pause.min(left)),
            None => return,
        }
    }
}

/// One probe, bounded by `timeout`.
fn attempt(target: &Target, timeout: Duration) -> Result<(), Failure> {
    match target {
        Target::Postgres {
            host,
            port,
            user,
            database,
        } => postgres::probe(host, *port, user, database, timeout),
        Target::Http { url } => http::probe(url, timeout),
        Target::Tcp { host, port } => tcp::probe(host, *port, timeout),
    }
}

/// Why one attempt did not find its target ready.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    /// No answer within the attempt's time (the caller knows how long that was).
    Timeout,
    /// Anything else, in words: `connection refused`.
    Other(String),
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Failure {
        match err.kind() {
            // A read that times out reports WouldBlock on Unix, TimedOut on Windows.
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => Failure::Timeout,
            _ => Failure::Other(describe(&err)),
        }
    }
}

/// An error in our style: `connection refused`, not `Connection refused (os error 111)`.
fn describe(err: &impl fmt::Display) -> String {
    let text = err.to_string();
    let text = match text.find(" (os error") {
        Some(end) => &text[..end],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::from("unknown error"),
    }
}

/// The pauses between attempts: `first`, growing by a tenth up to 1 s (or `first`, if
/// longer).
fn backoff(first: Duration) -> impl Iterator<Item = Duration> {
    let first = first.max(MIN_INTERVAL);
    let cap = first.max(MAX_INTERVAL);
    std::iter::successors(Some(first), move |pause| {
        let grown = Duration::try_from_secs_f64(pause.as_secs_f64() * BACKOFF_GROWTH);
        Some(grown.unwrap_or(cap).min(cap))
    })
}

/// The time until `deadline`, if any is left.
fn time_left(deadline: Instant) -> Option<Duration> {
    Some(deadline.saturating_duration_since(Instant::now())).filter(|left| !left.is_zero())
}

/// `0.8 s`: how elapsed times are shown.
fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

/// `150 ms` or `2.0 s`: how budgets are shown.
fn human(duration: Duration) -> String {
    match duration < Duration::from_secs(1) {
        true => format!("{} ms", duration.as_millis()),
        false => seconds(duration),
    }
}

#[cfg(test)]
mod tests;
