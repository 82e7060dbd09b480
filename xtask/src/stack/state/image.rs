//! The image of the lock and the history: nothing but a directory for the history and a
//! program that only waits (`/pause`, a few machine instructions in an ELF file written
//! here), imported on the engine from an archive the xtask makes (`docker import`, no
//! registry, nothing of the stack's). Its containers run, so that the `docker system
//! prune` and `docker container prune` that servers run from cron, which remove every
//! stopped or created container, leave them alone.

use anyhow::bail;
use xshell::Shell;

use crate::docker::{Engine, images, run, tar};

/// The image, by the content it has: a new one when that changes.
pub const STATE_IMAGE: &str = "travial-xtask/state:2";

/// `docker run` of a container of the state image named `name` with `labels`: running,
/// so that no prune removes it; kept running across a restart of the engine; killed at
/// once when removed.
pub fn run_waiting(engine: &Engine, name: &str, labels: &[String]) -> crate::docker::Command {
    let mut args: Vec<&str> = vec![
        "run",
        "--detach",
        "--name",
        name,
        "--network",
        "none",
        "--restart",
        "always",
        "--stop-signal",
        "SIGKILL",
    ];
    for label in labels {
        args.extend(["--label", label]);
    }
    args.push(STATE_IMAGE);
    engine.docker(args)
}
pub const HISTORY_DIR: &str = "xtask";
/// What runs in the containers.
pub const PAUSE: &str = "/pause";

/// The state image, made on the engine if it lacks it.
pub fn ensure(sh: &Shell, engine: &Engine) -> anyhow::Result<()> {
    if images::has(sh, engine, STATE_IMAGE)? {
        return Ok(());
    }
    let architecture = run::read(
        sh,
        &engine.docker(["info", "--format", "{{.Architecture}}"]),
    )?;
    let Some(pause) = pause_for(architecture.trim()) else {
        bail!(
            "{engine} runs on {}: the deploy lock's containers run on x86_64 and aarch64 only",
            architecture.trim()
        );
    };
    let archive = tar::archive(&[
        tar::Entry {
            path: &format!("{HISTORY_DIR}/"),
            mode: 0o755,
            content: None,
        },
        tar::Entry {
            path: PAUSE.trim_start_matches('/'),
            mode: 0o755,
            content: Some(&pause),
        },
    ]);
    let import = engine
        .docker([
            "import",
            "--message",
            "cargo xtask: the deploy lock and history",
            "--change",
            &format!("CMD [\"{PAUSE}\"]"),
            "-",
            STATE_IMAGE,
        ])
        .stdin_content("a directory and a program that waits", archive);
    run::read(sh, &import)?;
    Ok(())
}

/// The waiting program for an architecture as `docker info` names it (`uname -m`).
fn pause_for(architecture: &str) -> Option<Vec<u8>> {
    match architecture {
        "x86_64" | "amd64" => Some(elf(X86_64, &X86_64_PAUSE)),
        "aarch64" | "arm64" => Some(elf(AARCH64, &AARCH64_PAUSE)),
        _ => None,
    }
}

const X86_64: u16 = 0x3e;
const AARCH64: u16 = 0xb7;
/// `loop: mov eax, 34 (pause); syscall; jmp loop`.
const X86_64_PAUSE: [u8; 9] = [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7];
/// `loop: mov x0..x3, #0; mov x8, #73 (ppoll: no descriptors, no timeout); svc #0; b loop`.
const AARCH64_PAUSE: [u32; 7] = [
    0xd280_0000,
    0xd280_0001,
    0xd280_0002,
    0xd280_0003,
    0xd280_0928,
    0xd400_0001,
    0x17ff_fffa,
];

/// Where the file is loaded, and where its code starts: right after the two headers.
const BASE: u64 = 0x40_0000;
const HEADERS: u64 = 64 + 56;

/// A static ELF64 executable of one loadable segment: the headers, then `code`.
fn elf<C: Code + ?Sized>(machine: u16, code: &C) -> Vec<u8> {
    let code = code.bytes();
    let size = HEADERS + code.len() as u64;
    let mut file = Vec::with_capacity(size as usize);
    // ELF header: 64-bit, little-endian, version 1, System V.
    file.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&2u16.to_le_bytes()); // an executable
    file.extend_from_slice(&machine.to_le_bytes());
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // entry
    file.extend_from_slice(&64u64.to_le_bytes()); // program headers
    file.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    file.extend_from_slice(&0u32.to_le_bytes());
    file.extend_from_slice(&64u16.to_le_bytes());
    file.extend_from_slice(&56u16.to_le_bytes());
    file.extend_from_slice(&1u16.to_le_bytes());
    file.extend_from_slice(&[0; 6]);
    // The one segment: the whole file, readable and executable.
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&5u32.to_le_bytes());
    file.extend_from_slice(&0u64.to_le_bytes());
    file.extend_from_slice(&BASE.to_le_bytes());
    file.extend_from_slice(&BASE.to_le_bytes());
    file.extend_from_slice(&size.to_le_bytes());
    file.extend_from_slice(&size.to_le_bytes());
    file.extend_from_slice(&0x1000u64.to_le_bytes());
    file.extend_from_slice(&code);
    file
}

/// Machine code, as the bytes the file holds.
trait Code {
    fn bytes(&self) -> Vec<u8>;
}

impl Code for [u8; 9] {
    fn bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl Code for [u32; 7] {
    fn bytes(&self) -> Vec<u8> {
        self.iter().flat_map(|word| word.to_le_bytes()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::{
        os::unix::fs::PermissionsExt,
        process::Command,
        time::{Duration, Instant},
    };

    use super::*;

    #[test]
    fn the_headers_say_what_the_loader_needs() {
        let file = pause_for("aarch64").unwrap();
        assert_eq!(file.len(), 120 + 28);
        assert_eq!(&file[..4], b"\x7fELF");
        assert_eq!(u16::from_le_bytes([file[18], file[19]]), AARCH64);
        assert_eq!(
            u64::from_le_bytes(file[24..32].try_into().unwrap()),
            BASE + 120
        );
        assert_eq!(u64::from_le_bytes(file[96..104].try_into().unwrap()), 148);
        assert!(pause_for("armv7l").is_none());
    }

    /// The x86_64 program, run here: it waits (still running after a while) until killed.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_program_waits_until_killed() {
        let path = std::env::temp_dir().join(format!("xtask-pause-{}", std::process::id()));
        std::fs::write(&path, pause_for("x86_64").unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = Command::new(&path).spawn().unwrap();
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(300) {
            assert!(child.try_wait().unwrap().is_none(), "it ended by itself");
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        std::fs::remove_file(&path).unwrap();
    }
}
