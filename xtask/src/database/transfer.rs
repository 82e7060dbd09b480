//! A dump streamed between an engine and a file here, through the xtask: counted for the
//! progress line and hashed on the way, never copied anywhere else on either side.

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::Path,
    time::Instant,
};

use anyhow::Context;
use sha2::{Digest, Sha256};
use xshell::Shell;

use crate::{
    docker::{Command, run::Piped},
    output,
};

const CHUNK: usize = 256 * 1024;

/// What went through: its size and its SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub size: u64,
    pub sha256: String,
    pub elapsed: std::time::Duration,
}

/// `command`'s stdout into `path`: a new file, mode 0600, never one that exists; written as
/// `PATH.partial` and renamed once complete, removed if anything fails.
pub fn receive(
    sh: &Shell,
    command: &Command,
    path: &Path,
    label: &str,
) -> anyhow::Result<Received> {
    if path.exists() {
        anyhow::bail!("{} exists already", path.display());
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let received = receive_into(sh, command, &partial, label);
    let renamed = received.and_then(|received| {
        std::fs::rename(&partial, path).with_context(|| {
            format!("cannot rename {} to {}", partial.display(), path.display())
        })?;
        Ok(received)
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    renamed
}

fn receive_into(
    sh: &Shell,
    command: &Command,
    path: &Path,
    label: &str,
) -> anyhow::Result<Received> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let mut piped = Piped::act(sh, command)?;
    let mut source = piped.stdout.take().context("the dump has no output")?;
    let progress = output::Bytes::new(label.to_owned());
    let started = Instant::now();
    let mut hash = Sha256::new();
    let mut size = 0;
    let mut buffer = vec![0; CHUNK];
    let copied: anyhow::Result<()> = loop {
        match source.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(read) => {
                hash.update(&buffer[..read]);
                if let Err(err) = file.write_all(&buffer[..read]) {
                    break Err(err).with_context(|| format!("cannot write {}", path.display()));
                }
                size += read as u64;
                progress.show(size);
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => break Err(err).context("the stream stopped"),
        }
    };
    drop(source);
    progress.clear();
    // Its own failure first: it explains a stream that stopped.
    piped.wait()?;
    copied?;
    file.sync_all()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Received {
        size,
        sha256: hex(&hash.finalize()),
        elapsed: started.elapsed(),
    })
}

/// `path` into `command`'s stdin; the bytes sent.
pub fn send(sh: &Shell, path: &Path, command: &Command, label: &str) -> anyhow::Result<u64> {
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut piped = Piped::act(sh, command)?;
    let mut sink = piped.stdin.take().context("the command takes no input")?;
    // Whatever it prints is its own business: read, so that it never blocks on a full pipe.
    let output = piped.stdout.take().map(|mut stdout| {
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()))
    });
    let progress = output::Bytes::new(label.to_owned());
    let mut sent = 0;
    let mut buffer = vec![0; CHUNK];
    let copied: anyhow::Result<()> = loop {
        match file.read(&mut buffer) {
            Ok(0) => break Ok(()),
            Ok(read) => {
                // The command stopped reading: its own words say why, below.
                if let Err(err) = sink.write_all(&buffer[..read]) {
                    break Err(err).context("the command stopped reading");
                }
                sent += read as u64;
                progress.show(sent);
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => break Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    };
    drop(sink);
    progress.clear();
    if let Some(output) = output {
        let _ = output.join();
    }
    piped.wait()?;
    copied?;
    Ok(sent)
}

/// The SHA-256 and size of a file here.
pub fn digest(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hash = Sha256::new();
    let mut size = 0;
    let mut buffer = vec![0; CHUNK];
    loop {
        let read = file
            .read(&mut buffer)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if read == 0 {
            break;
        }
        hash.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((size, hex(&hash.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_lands_in_a_new_private_file_with_its_digest() {
        let dir = std::env::temp_dir().join(format!("xtask-transfer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let sh = Shell::new().unwrap();
        let path = dir.join("x.dump");
        let received = receive(&sh, &Command::new("printf", ["abc"]), &path, "x").unwrap();
        // `printf abc | sha256sum`
        assert_eq!(
            received.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(received.size, 3);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(digest(&path).unwrap(), (3, received.sha256.clone()));
        assert!(
            receive(&sh, &Command::new("printf", ["x"]), &path, "x").is_err(),
            "overwritten"
        );
        let failed = receive(
            &sh,
            &Command::new("false", Vec::<String>::new()),
            &dir.join("y"),
            "y",
        );
        assert!(failed.is_err());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "a partial file is left"
        );
        assert_eq!(
            send(&sh, &path, &Command::new("wc", ["-c"]), "x").unwrap(),
            3
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
