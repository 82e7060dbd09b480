//! What every command shows on stderr, and how much of it: each step's `✓` line, the docker
//! commands echoed as they run, `error:` and `hint:` lines. `--quiet` keeps only errors (and
//! the result on stdout); `--verbose` also echoes the commands that only check or read.
//! Colour only on a terminal, and never with `NO_COLOR` set.

use std::{
    io::{IsTerminal, Write},
    sync::{
        OnceLock,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use crate::hint;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors and the final result only.
    Quiet = 0,
    /// The steps and the commands that act.
    Normal = 1,
    /// Also every command that only checks or reads.
    Verbose = 2,
}

static VERBOSITY: AtomicU8 = AtomicU8::new(Verbosity::Normal as u8);

pub fn set_verbosity(verbosity: Verbosity) {
    VERBOSITY.store(verbosity as u8, Ordering::Relaxed);
}

pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

pub fn quiet() -> bool {
    verbosity() == Verbosity::Quiet
}

/// Whether a live line (a spinner, a progress line rewritten in place) may be drawn:
/// pipes and CI logs get no control characters.
pub fn live() -> bool {
    !quiet() && std::io::stderr().is_terminal()
}

/// A line of progress that is not a timed step (`✓ wrote /etc/apt/keyrings/docker.asc`):
/// silent with `--quiet`.
pub fn progress(line: &str) {
    if !quiet() {
        eprintln!("{line}");
    }
}

/// A step that ended well: `✓ db ready (0.8 s)`.
pub fn done(what: &str, elapsed: Duration) {
    if !quiet() {
        eprintln!("{} {what} ({})", paint(GREEN, "✓"), seconds(elapsed));
    }
}

/// A command that acts, as it starts: `$ docker compose … up --detach db`.
pub fn command(line: &str) {
    if !quiet() {
        eprintln!("{}", paint(DIM, &format!("$ {line}")));
    }
}

/// A command that only checks or reads (`docker info`): echoed with `--verbose` only.
pub fn check(line: &str) {
    if verbosity() == Verbosity::Verbose {
        eprintln!("{}", paint(DIM, &format!("$ {line}")));
    }
}

/// `error: …` with the causes joined, then `hint: …` when the error knows its fix.
pub fn error(err: &anyhow::Error) {
    eprintln!("{} {}", paint(RED, "error:"), error_line(err));
    if let Some(fix) = hint::of(err) {
        eprintln!("{}", hint_line(fix));
    }
}

/// The last words of an interrupted command: `interrupted during step 2 of 5 (db ready):
/// db is running, web was not started`, over the live line if one is drawn.
/// Never panics: after SIGHUP the terminal may be gone, and the exit must still come.
pub fn interrupted(state: Option<&str>, fix: Option<&str>) {
    let erase = if live() { "\r\x1b[2K" } else { "" };
    let mut text = format!("{erase}{}", paint(RED, "interrupted"));
    if let Some(state) = state {
        text.push_str(&format!(" {state}"));
    }
    if let Some(fix) = fix {
        text.push_str(&format!("\n{}", hint_line(fix)));
    }
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// `warning: …`: something went wrong that does not change the command's result.
pub fn warning(err: &anyhow::Error) {
    eprintln!("warning: {}", error_line(err));
}

/// `hint: …`, coloured like the rest.
pub fn hint_line(fix: &str) -> String {
    format!("{} {fix}", paint(CYAN, "hint:"))
}

/// The outermost message first, each cause after a colon: anyhow's `{:#}`.
pub fn error_line(err: &anyhow::Error) -> String {
    format!("{err:#}")
}

/// `0.8 s`: how elapsed times are shown.
pub fn seconds(elapsed: Duration) -> String {
    format!("{:.1} s", elapsed.as_secs_f64())
}

/// `db, proxy and backup`.
pub fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `10.6 MB`: how sizes are shown.
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `5.0 MB/s`.
pub fn rate(bytes: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(0.001);
    format!("{:.1} MB/s", bytes as f64 / 1e6 / seconds)
}

/// How often a live byte count is redrawn.
const REDRAW: Duration = Duration::from_millis(250);

/// The live line while bytes go somewhere (an image sent, a dump received): the count and
/// the rate, on a terminal only.
pub struct Bytes {
    label: String,
    started: std::time::Instant,
    last: std::cell::Cell<std::time::Instant>,
    live: bool,
}

impl Bytes {
    pub fn new(label: String) -> Bytes {
        let started = std::time::Instant::now();
        Bytes {
            label,
            started,
            last: std::cell::Cell::new(started),
            live: live(),
        }
    }

    pub fn show(&self, sent: u64) {
        if !self.live || self.last.get().elapsed() < REDRAW {
            return;
        }
        self.last.set(std::time::Instant::now());
        eprint!(
            "\r\x1b[2K{}: {} ({})",
            self.label,
            megabytes(sent),
            rate(sent, self.started.elapsed())
        );
        let _ = std::io::stderr().flush();
    }

    pub fn clear(&self) {
        if self.live {
            eprint!("\r\x1b[2K");
        }
    }
}

/// Columns aligned on their widest cell; the last one as it is.
pub fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut line = String::new();
        for (index, cell) in cells.iter().enumerate() {
            if index == N - 1 {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:width$}  ", width = widths[index]));
            }
        }
        line.trim_end().to_owned() + "\n"
    };
    let mut text = line(*header);
    for row in rows {
        text.push_str(&line(row.each_ref().map(String::as_str)));
    }
    text
}

const RED: &str = "1;31";
const GREEN: &str = "32";
const CYAN: &str = "1;36";
const DIM: &str = "2";

fn paint(style: &str, text: &str) -> String {
    if colour() {
        format!("\x1b[{style}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// Decided once: stderr is a terminal and `NO_COLOR` is unset or empty (no-color.org).
fn colour() -> bool {
    static COLOUR: OnceLock<bool> = OnceLock::new();
    *COLOUR.get_or_init(|| {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        !no_color && std::io::stderr().is_terminal()
    })
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;
    use crate::hint::Hint;

    #[test]
    fn the_error_line_joins_the_causes_and_the_hint_stays_apart() {
        let err = Err::<(), _>(Hint::new("port 5432 is already in use", "set DB_PORT"))
            .context("db did not start")
            .unwrap_err();
        assert_eq!(
            error_line(&err),
            "db did not start: port 5432 is already in use"
        );
        assert_eq!(hint::of(&err), Some("set DB_PORT"));
    }

    #[test]
    fn elapsed_times_have_one_decimal() {
        assert_eq!(seconds(Duration::from_millis(1234)), "1.2 s");
    }

    #[test]
    fn sizes_and_rates_read_like_the_rest() {
        assert_eq!(megabytes(10_600_000), "10.6 MB");
        assert_eq!(rate(10_000_000, Duration::from_secs(2)), "5.0 MB/s");
        assert_eq!(rate(0, Duration::ZERO), "0.0 MB/s");
    }
}
