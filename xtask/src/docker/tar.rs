//! The little of the tar format the xtask needs to keep files on an engine through its API
//! alone (`docker import -`, `docker cp - CONTAINER:DIR`, `docker cp CONTAINER:PATH -`),
//! so that it works on a remote engine too: one archive of a few small files, written;
//! one file, read.

const BLOCK: usize = 512;

/// An entry to write: a directory (no content) or a file.
pub struct Entry<'a> {
    pub path: &'a str,
    pub mode: u32,
    pub content: Option<&'a [u8]>,
}

/// A ustar archive of `entries`, owned by root, dated at the epoch (a file's content is
/// what matters, and the same entries give the same bytes).
pub fn archive(entries: &[Entry]) -> Vec<u8> {
    let mut tar = Vec::new();
    for entry in entries {
        let content = entry.content.unwrap_or_default();
        let mut header = [0u8; BLOCK];
        let name = entry.path.as_bytes();
        assert!(
            name.len() < 100,
            "tar names of our own are short: {}",
            entry.path
        );
        header[..name.len()].copy_from_slice(name);
        octal(&mut header[100..108], u64::from(entry.mode));
        octal(&mut header[108..116], 0);
        octal(&mut header[116..124], 0);
        octal(&mut header[124..136], content.len() as u64);
        octal(&mut header[136..148], 0);
        header[156] = if entry.content.is_some() { b'0' } else { b'5' };
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field as spaces.
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|byte| u32::from(*byte)).sum();
        let checksum = format!("{sum:06o}\0 ");
        header[148..156].copy_from_slice(checksum.as_bytes());
        tar.extend_from_slice(&header);
        tar.extend_from_slice(content);
        tar.resize(tar.len().next_multiple_of(BLOCK), 0);
    }
    tar.resize(tar.len() + 2 * BLOCK, 0);
    tar
}

/// The content of the first regular file in `tar` (what `docker cp CONTAINER:FILE -`
/// prints), skipping the extended headers some writers put before it.
pub fn first_file(tar: &[u8]) -> Result<Vec<u8>, String> {
    let mut rest = tar;
    while rest.len() >= BLOCK {
        let header = &rest[..BLOCK];
        if header.iter().all(|byte| *byte == 0) {
            break;
        }
        let size = parse_octal(&header[124..136]).ok_or("a tar header with an unreadable size")?;
        let size = usize::try_from(size).map_err(|_| "a tar entry too large")?;
        let end = BLOCK + size;
        if rest.len() < end {
            return Err("the archive ends in the middle of a file".to_owned());
        }
        if matches!(header[156], b'0' | 0) {
            return Ok(rest[BLOCK..end].to_vec());
        }
        rest = &rest[end.next_multiple_of(BLOCK).min(rest.len())..];
    }
    Err("the archive holds no file".to_owned())
}

/// `value` as zero-padded octal digits and a NUL, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:0width$o}\0", width = field.len() - 1);
    field.copy_from_slice(digits.as_bytes());
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text: String = field
        .iter()
        .take_while(|byte| **byte != 0)
        .map(|byte| *byte as char)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_written_is_read_back() {
        let tar = archive(&[
            Entry {
                path: "xtask/",
                mode: 0o755,
                content: None,
            },
            Entry {
                path: "xtask/history.jsonl",
                mode: 0o644,
                content: Some(b"{\"a\":1}\n"),
            },
        ]);
        assert_eq!(tar.len() % BLOCK, 0);
        assert_eq!(first_file(&tar).unwrap(), b"{\"a\":1}\n");
        // What tar(1) itself reads.
        let listed = std::process::Command::new("tar")
            .arg("-tv")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                std::io::Write::write_all(&mut child.stdin.take().unwrap(), &tar)?;
                child.wait_with_output()
            })
            .unwrap();
        let listing = String::from_utf8_lossy(&listed.stdout);
        assert!(
            listing.contains("drwxr-xr-x") && listing.contains("xtask/history.jsonl"),
            "{listing}"
        );
        assert!(listing.contains(" 8 1970-01-01"), "{listing}");
    }

    #[test]
    fn broken_archives_are_refused() {
        assert!(first_file(&[]).is_err());
        assert!(first_file(&archive(&[])).is_err());
        let mut cut = archive(&[Entry {
            path: "f",
            mode: 0o644,
            content: Some(&[7; 600]),
        }]);
        cut.truncate(BLOCK + 100);
        assert_eq!(
            first_file(&cut).unwrap_err(),
            "the archive ends in the middle of a file"
        );
    }
}
