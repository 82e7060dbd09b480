//! The one way the xtask waits for something it must ask again and again (a new web
//! container's readiness, a swarm job's end, a stack's containers gone): bounded by a
//! timeout, paced by an interval, with a live line on a terminal, and on timeout an error
//! that says what did not happen and the last answer heard. `cargo xtask wait` has its own
//! loop, which tries several targets at once.

use std::{
    io::Write,
    thread,
    time::{Duration, Instant},
};

use crate::{interrupt, output};

/// Carriage return, then erase the line.
const ERASE: &str = "\r\x1b[2K";

/// What a check found.
pub enum Answer<T> {
    Ready(T),
    /// Not yet, and why (shown on the live line, and in the error at the deadline).
    NotYet(String),
}

#[derive(Debug, Clone)]
pub struct Poll {
    /// What is awaited, for the live line: `the new web to get ready`.
    pub waiting_for: String,
    /// What did not happen, for the error at the deadline: `the new web was not ready`.
    pub not_done: String,
    pub timeout: Duration,
    pub interval: Duration,
}

impl Poll {
    pub fn new(waiting_for: impl Into<String>, not_done: impl Into<String>) -> Poll {
        Poll {
            waiting_for: waiting_for.into(),
            not_done: not_done.into(),
            timeout: Duration::from_secs(60),
            interval: Duration::from_millis(200),
        }
    }

    pub fn timeout(mut self, timeout: Duration) -> Poll {
        self.timeout = timeout;
        self
    }

    pub fn every(mut self, interval: Duration) -> Poll {
        self.interval = interval;
        self
    }

    /// `check` until it answers `Ready` or fails, at most `timeout`: checked once more at
    /// the deadline, so that a check slower than the timeout still gets its answer.
    pub fn until<T>(
        &self,
        mut check: impl FnMut() -> anyhow::Result<Answer<T>>,
    ) -> anyhow::Result<T> {
        let started = Instant::now();
        let live = output::live();
        let result = loop {
            let last = match check() {
                Ok(Answer::Ready(value)) => break Ok(value),
                Ok(Answer::NotYet(reason)) => reason,
                Err(err) => break Err(err),
            };
            let elapsed = started.elapsed();
            if elapsed >= self.timeout {
                let last = match last.is_empty() {
                    true => String::new(),
                    false => format!(" ({last})"),
                };
                break Err(anyhow::anyhow!(
                    "{} within {} s{last}",
                    self.not_done,
                    self.timeout.as_secs()
                ));
            }
            if live && !interrupt::requested() {
                let mut stderr = std::io::stderr().lock();
                let _ = write!(
                    stderr,
                    "{ERASE}waiting for {} ({})",
                    self.waiting_for,
                    output::seconds(elapsed)
                );
                let _ = stderr.flush();
            }
            thread::sleep(self.interval.min(self.timeout - elapsed));
        };
        if live {
            eprint!("{ERASE}");
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_ends_the_wait_and_the_deadline_names_the_last_answer() {
        let mut calls = 0;
        let poll = Poll::new("x", "x did not happen").every(Duration::from_millis(1));
        let value = poll
            .until(|| {
                calls += 1;
                Ok(match calls {
                    3 => Answer::Ready(calls),
                    _ => Answer::NotYet("not yet".into()),
                })
            })
            .unwrap();
        assert_eq!(value, 3);
        let started = Instant::now();
        let err = poll
            .clone()
            .timeout(Duration::from_millis(30))
            .until(|| Ok(Answer::<()>::NotYet("still starting".into())))
            .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(
            err.to_string(),
            "x did not happen within 0 s (still starting)"
        );
        let failed = poll.until(|| -> anyhow::Result<Answer<()>> { anyhow::bail!("exited") });
        assert_eq!(failed.unwrap_err().to_string(), "exited");
    }
}
