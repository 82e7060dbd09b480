//! What the wait shows on stderr: a live line on a terminal (not with `--quiet`), `ready:`
//! lines, and the reasons of the targets still not ready at the deadline.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use super::{Target, WaitOptions, seconds};
use crate::{interrupt, output};

/// How often the live line's elapsed time moves.
const REFRESH: Duration = Duration::from_millis(100);
/// Longer lines would wrap, and `\r` only returns to the start of the last row.
const MAX_LINE: usize = 78;
/// Carriage return, then erase the line.
const ERASE: &str = "\r\x1b[2K";

pub(super) struct Progress {
    live: bool,
    announce_ready: bool,
    started: Instant,
    /// What the live line shows now, if anything: redrawn only when it changes.
    drawn: Option<String>,
}

impl Progress {
    pub fn new(options: &WaitOptions, started: Instant) -> Progress {
        Progress {
            // Pipes and CI logs get no control characters.
            live: options.progress && output::live(),
            announce_ready: options.announce_ready,
            started,
            drawn: None,
        }
    }

    /// How long the caller may sleep before the live line needs redrawing.
    pub fn refresh(&self) -> Duration {
        match self.live {
            true => REFRESH,
            false => Duration::MAX,
        }
    }

    pub fn waiting(&mut self, pending: &[&Target]) {
        // After Ctrl-C the handler's last words must stay the last line.
        if !self.live || interrupt::requested() {
            return;
        }
        let line = waiting_line(pending, self.started.elapsed());
        if self.drawn.as_ref() != Some(&line) {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "{ERASE}{line}");
            let _ = stderr.flush();
            self.drawn = Some(line);
        }
    }

    pub fn ready(&mut self, target: &Target) {
        if self.announce_ready {
            self.clear();
            eprintln!("ready: {target} ({})", seconds(self.started.elapsed()));
        }
    }

    pub fn not_ready(&mut self, target: &Target, reason: &str) {
        self.clear();
        eprintln!("{target}: not ready: {reason}");
    }

    pub fn clear(&mut self) {
        if self.drawn.take().is_some() {
            eprint!("{ERASE}");
        }
    }
}

/// `waiting for postgres 127.0.0.1:5432, tcp 127.0.0.1:80 (1.2 s)`, or only a count when
/// the names would not fit on one line.
fn waiting_line(pending: &[&Target], elapsed: Duration) -> String {
    let names: Vec<String> = pending.iter().map(|target| target.to_string()).collect();
    let line = format!("waiting for {} ({})", names.join(", "), seconds(elapsed));
    if line.chars().count() <= MAX_LINE {
        return line;
    }
    match pending {
        [_] => format!("waiting for 1 target ({})", seconds(elapsed)),
        _ => format!(
            "waiting for {} targets ({})",
            pending.len(),
            seconds(elapsed)
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Target, waiting_line};

    #[test]
    fn the_live_line_names_what_is_awaited_while_it_fits() {
        let postgres = Target::parse("postgres://127.0.0.1:5432").unwrap();
        let tcp = Target::parse("tcp://127.0.0.1:80").unwrap();
        let elapsed = Duration::from_millis(1234);
        assert_eq!(
            waiting_line(&[&postgres, &tcp], elapsed),
            "waiting for postgres 127.0.0.1:5432, tcp 127.0.0.1:80 (1.2 s)"
        );
        let long = Target::parse(&format!("http://h/{}", "x".repeat(80))).unwrap();
        assert_eq!(
            waiting_line(&[&postgres, &long], elapsed),
            "waiting for 2 targets (1.2 s)"
        );
    }
}
