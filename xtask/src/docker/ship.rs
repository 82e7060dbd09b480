//! An image sent from this machine's engine to another's without a registry: `docker save`
//! here piped into `docker load` there, through the xtask (which counts the bytes for the
//! progress line), never a file on either side; and only when the other engine lacks that
//! image, by ID, so that a redeploy of the same image sends nothing.

use std::{
    io::{Read, Write},
    process::Stdio,
    thread,
    time::{Duration, Instant},
};

use anyhow::Context;
use xshell::Shell;

use super::{Engine, diagnosis, run};
use crate::{hint::Hint, interrupt, output};

/// How often the live progress line is redrawn.
const REDRAW: Duration = Duration::from_millis(250);
const CHUNK: usize = 256 * 1024;

/// What shipping did, for the step's line.
pub fn ship(sh: &Shell, image: &str, to: &Engine) -> anyhow::Result<String> {
    let here = image_id(sh, &Engine::Local, image)?.with_context(|| {
        format!("there is no image {image} here to send: build it (deploy without --no-build)")
    })?;
    if image_id(sh, to, image)?.as_deref() == Some(here.as_str()) {
        return Ok(format!("{to} has {image} already (0 bytes sent)"));
    }
    let started = Instant::now();
    let bytes = stream(sh, image, to)?;
    let there = image_id(sh, to, image)?;
    anyhow::ensure!(
        there.as_deref() == Some(here.as_str()),
        "{to} loaded {image}, but as another image ({}) than this machine's ({here})",
        there.unwrap_or_default()
    );
    Ok(format!(
        "sent {image} to {to} ({}, {})",
        megabytes(bytes),
        rate(bytes, started.elapsed())
    ))
}

/// The image's ID on `engine`, `None` when it has no such image.
fn image_id(sh: &Shell, engine: &Engine, image: &str) -> anyhow::Result<Option<String>> {
    let inspect = engine.docker(["image", "inspect", "--format", "{{.Id}}", image]);
    let output = run::probe(sh, &inspect)?;
    if output.status.success() {
        return Ok(Some(
            String::from_utf8_lossy(&output.stdout).trim().to_owned(),
        ));
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No such image") || stderr.contains("no such image") {
        return Ok(None);
    }
    let (reason, fix) =
        diagnosis::explain(&stderr).unwrap_or_else(|| (output.status.to_string(), None));
    Err(Hint::maybe(
        format!("cannot inspect {image} on {engine}: {reason}"),
        fix,
    ))
}

/// `docker save` here into `docker load` there; the bytes sent.
fn stream(sh: &Shell, image: &str, to: &Engine) -> anyhow::Result<u64> {
    let save = Engine::Local.docker(["save", image]);
    let load = to.docker(["load", "--quiet"]);
    output::command(&format!("{save} | {load}"));
    let mut saver = run::process(sh, &save)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| run::cannot_run(&save))?;
    let saving = interrupt::register(saver.id());
    let mut loader = run::process(sh, &load)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| run::cannot_run(&load))?;
    let loading = interrupt::register(loader.id());
    let save_errors = saver
        .stderr
        .take()
        .map(|pipe| thread::spawn(move || run::read_all(pipe)));
    let load_output = loader
        .stdout
        .take()
        .map(|pipe| thread::spawn(move || run::read_all(pipe)));
    let load_errors = loader
        .stderr
        .take()
        .map(|pipe| thread::spawn(move || run::read_all(pipe)));

    let mut source = saver.stdout.take().context("docker save has no output")?;
    let mut sink = loader.stdin.take().context("docker load takes no input")?;
    let progress = Progress::new(image, to);
    let mut sent: u64 = 0;
    let mut buffer = vec![0; CHUNK];
    let copied = loop {
        match source.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(read) => {
                if let Err(err) = sink.write_all(&buffer[..read]) {
                    // docker load stopped reading: its own words say why, below.
                    break Err(err);
                }
                sent += read as u64;
                progress.show(sent);
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => break Err(err),
        }
    };
    drop(sink);
    progress.clear();
    let saved = saver.wait();
    let loaded = loader.wait();
    drop((saving, loading));
    interrupt::wait_if_interrupted();
    let text = |reader: Option<thread::JoinHandle<Vec<u8>>>| {
        String::from_utf8_lossy(
            &reader
                .and_then(|reader| reader.join().ok())
                .unwrap_or_default(),
        )
        .into_owned()
    };
    let (save_errors, load_output, load_errors) =
        (text(save_errors), text(load_output), text(load_errors));
    if !saved.with_context(|| run::cannot_run(&save))?.success() {
        return Err(failure(&format!("`{save}` failed"), &save_errors));
    }
    let load_status = loaded.with_context(|| run::cannot_run(&load))?;
    // docker load reports some failures on stdout, in its stream of messages.
    let load_words = format!("{load_errors}{load_output}");
    if !load_status.success() || load_words.contains("rror") {
        return Err(failure(&format!("{to} did not load {image}"), &load_words));
    }
    copied.with_context(|| format!("sending {image} to {to} stopped"))?;
    Ok(sent)
}

fn failure(what: &str, words: &str) -> anyhow::Error {
    match diagnosis::explain(words) {
        Some((reason, fix)) => Hint::maybe(format!("{what}: {reason}"), fix),
        None => anyhow::anyhow!("{what}"),
    }
}

/// The live line while an image is sent: bytes and rate, on a terminal only.
struct Progress {
    label: String,
    started: Instant,
    last: std::cell::Cell<Instant>,
    live: bool,
}

impl Progress {
    fn new(image: &str, to: &Engine) -> Progress {
        let started = Instant::now();
        Progress {
            label: format!("sending {image} to {to}"),
            started,
            last: std::cell::Cell::new(started),
            live: output::live(),
        }
    }

    fn show(&self, sent: u64) {
        if !self.live || self.last.get().elapsed() < REDRAW {
            return;
        }
        self.last.set(Instant::now());
        eprint!(
            "\r\x1b[2K{}: {} ({})",
            self.label,
            megabytes(sent),
            rate(sent, self.started.elapsed())
        );
        let _ = std::io::stderr().flush();
    }

    fn clear(&self) {
        if self.live {
            eprint!("\r\x1b[2K");
        }
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn rate(bytes: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64().max(0.001);
    format!("{:.1} MB/s", bytes as f64 / 1e6 / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_read_like_the_rest() {
        assert_eq!(megabytes(10_600_000), "10.6 MB");
        assert_eq!(rate(10_000_000, Duration::from_secs(2)), "5.0 MB/s");
        assert_eq!(rate(0, Duration::ZERO), "0.0 MB/s");
    }
}
