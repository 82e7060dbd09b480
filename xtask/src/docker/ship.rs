//! An image sent from this machine's engine to another's without a registry: `docker save`
//! here piped into `docker load` there, through the xtask (which counts the bytes for the
//! progress line), never a file the xtask writes on either side; and only when the other
//! engine lacks that image, so that a redeploy of the same image sends nothing.

use std::{
    io::{Read, Write},
    process::Stdio,
    thread,
    time::Instant,
};

use anyhow::Context;
use xshell::Shell;

use super::{Command, Engine, diagnosis, images, run};
use crate::{hint::Hint, image::Reference, interrupt, output};

const CHUNK: usize = 256 * 1024;

/// What shipping did, for the step's line: `sent … to a (…); b has … already`.
pub fn ship_to_each(sh: &Shell, image: &Reference, to: &[Engine]) -> anyhow::Result<String> {
    let image = image.to_string();
    let done: Vec<String> = to
        .iter()
        .map(|engine| ship(sh, &image, engine))
        .collect::<anyhow::Result<_>>()?;
    Ok(done.join("; "))
}

fn ship(sh: &Shell, image: &str, to: &Engine) -> anyhow::Result<String> {
    let here = images::fingerprint(sh, &Engine::Local, image)?.with_context(|| {
        format!("there is no image {image} here to send: build it (deploy without --no-build)")
    })?;
    if images::fingerprint(sh, to, image)?.as_deref() == Some(here.as_str()) {
        return Ok(format!("{to} has {image} already (0 bytes sent)"));
    }
    let started = Instant::now();
    let bytes = stream(sh, image, to)?;
    anyhow::ensure!(
        images::fingerprint(sh, to, image)?.as_deref() == Some(here.as_str()),
        "{to} loaded {image}, but it differs from this machine's: another tag by that name?"
    );
    Ok(format!(
        "sent {image} to {to} ({}, {})",
        output::megabytes(bytes),
        output::rate(bytes, started.elapsed())
    ))
}

/// `docker save` here into `docker load` there; the bytes sent.
fn stream(sh: &Shell, image: &str, to: &Engine) -> anyhow::Result<u64> {
    let save = Engine::Local.docker(["save", image]);
    let load = to.docker(["load", "--quiet"]);
    let progress = output::Bytes::new(format!("sending {image} to {to}"));
    pipe(sh, &save, &load, &progress).with_context(|| format!("{to} did not load {image}"))
}

/// `save | load`, through this process; the bytes that went through.
fn pipe(
    sh: &Shell,
    save: &Command,
    load: &Command,
    progress: &output::Bytes,
) -> anyhow::Result<u64> {
    output::command(&format!("{save} | {load}"));
    let mut saver = run::process(sh, save)?
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| run::cannot_run(save))?;
    let saving = interrupt::register(saver.id());
    let mut loader = run::process(sh, load)?
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| run::cannot_run(load))?;
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
    // Both ends closed before waiting: a docker save with more to write then gets a broken
    // pipe and ends, instead of waiting forever for a reader (docker load stopped early).
    drop((sink, source));
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
    let load_status = loaded.with_context(|| run::cannot_run(load))?;
    // docker load reports some failures on stdout, in its stream of messages.
    let load_words = format!("{load_errors}{load_output}");
    let load_failed = load_words
        .lines()
        .any(|line| line.trim_start().to_lowercase().starts_with("error"));
    // Its failure first: it also makes docker save fail, with a broken pipe.
    if !load_status.success() || load_failed {
        return Err(failure(&format!("`{load}` failed"), &load_words, load));
    }
    if !saved.with_context(|| run::cannot_run(save))?.success() {
        return Err(failure(&format!("`{save}` failed"), &save_errors, save));
    }
    copied.context("the stream stopped")?;
    Ok(sent)
}

fn failure(what: &str, words: &str, command: &Command) -> anyhow::Error {
    match diagnosis::explain(words, command) {
        Some((reason, fix)) => Hint::maybe(format!("{what}: {reason}"), fix),
        None => anyhow::anyhow!("{what}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A load that stops reading midway (a full disk there) fails the send at once, with its
    /// own words, instead of leaving the save waiting forever for a reader.
    #[test]
    fn a_load_that_stops_reading_ends_the_send_with_its_reason() {
        let sh = Shell::new().unwrap();
        let save = Command::new("head", ["-c", "50000000", "/dev/zero"]);
        let load = Command::new(
            "sh",
            [
                "-c",
                "head -c 100000 >/dev/null; echo 'write /x: no space left on device' >&2; exit 1",
            ],
        );
        let progress = output::Bytes::new("sending app:1".into());
        let started = Instant::now();
        let err = pipe(&sh, &save, &load, &progress).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let text = format!("{err:#}");
        assert!(text.contains("is full"), "{text}");
        let whole = Command::new("head", ["-c", "3000000", "/dev/zero"]);
        let count = Command::new("wc", ["-c"]);
        assert_eq!(pipe(&sh, &whole, &count, &progress).unwrap(), 3_000_000);
    }
}
