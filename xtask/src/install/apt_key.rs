//! Docker's signing key: fetched, then trusted only if its OpenPGP v4 fingerprint is the
//! expected one (RFC 4880 §12.2: SHA-1 over 0x99, a two-octet length and the public-key
//! packet's body). No gpg needed: apt reads the ASCII-armored file itself (`Signed-By:`).

use std::{fmt, str::FromStr, time::Duration};

use anyhow::{Context, bail};
use base64::Engine;

/// Docker's published fingerprint (docs.docker.com/engine/install/debian).
pub const DOCKER: Fingerprint = Fingerprint([
    0x9D, 0xC8, 0x58, 0x22, 0x9F, 0xC7, 0xDD, 0x38, 0x85, 0x4A, 0xE2, 0xD8, 0x8D, 0x81, 0x80, 0x3C,
    0x0E, 0xBF, 0xCD, 0x88,
]);

const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Docker's key is 3.8 kB; anything far bigger is not a key.
const MAX_KEY_BYTES: usize = 256 * 1024;

const ARMOR_BEGIN: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const ARMOR_END: &str = "-----END PGP PUBLIC KEY BLOCK-----";
const TAG_PUBLIC_KEY: u8 = 6;
/// What a transferable public key holds after its primary key (RFC 4880 §11.1): signatures
/// (2), trust packets (12), user IDs (13), public subkeys (14) and user attributes (17).
/// Anything else (a secret key, 5 or 7, above all) some parsers read as the start of
/// another certificate: it is refused.
const CERTIFICATE_TAGS: &[u8] = &[2, 12, 13, 14, 17];

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 20]);

/// As Docker prints it: `9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88`.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<String> = self
            .0
            .chunks(2)
            .map(|pair| format!("{:02X}{:02X}", pair[0], pair[1]))
            .collect();
        f.write_str(&groups.join(" "))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Forty hexadecimal digits, in any case, spaces allowed (as gpg and Docker's docs print them).
impl FromStr for Fingerprint {
    type Err = String;

    fn from_str(text: &str) -> Result<Fingerprint, String> {
        let digits: String = text
            .trim_start_matches("0x")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if digits.len() != 40 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "`{text}` is not an OpenPGP v4 fingerprint: write its 40 hexadecimal digits, as `gpg --fingerprint` prints them"
            ));
        }
        let mut bytes = [0; 20];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).expect("checked hex digits");
        }
        Ok(Fingerprint(bytes))
    }
}

/// The key file at `url`: `https://` or `http://` through ureq, `file://` from the disk.
pub fn fetch(url: &str) -> anyhow::Result<String> {
    if let Some(path) = url.strip_prefix("file://") {
        return std::fs::read_to_string(path).with_context(|| format!("read the key at {url}"));
    }
    if url.starts_with("https://") && !cfg!(feature = "tls") {
        bail!(
            "cannot fetch {url}: this xtask is built without TLS: build it with `--features tls`"
        );
    }
    let config = ureq::Agent::config_builder().timeout_global(Some(FETCH_TIMEOUT));
    #[cfg(feature = "tls")]
    let config = config.tls_config(
        ureq::tls::TlsConfig::builder()
            .root_certs(root_certs())
            .build(),
    );
    let agent: ureq::Agent = config.build().into();
    let mut response = agent
        .get(url)
        .call()
        .with_context(|| format!("fetch the key at {url}"))?;
    response
        .body_mut()
        .with_config()
        .limit(MAX_KEY_BYTES as u64)
        .read_to_string()
        .with_context(|| format!("read the key at {url}"))
}

/// The system's certificate authorities, as apt and curl use them (those of a proxy that
/// inspects TLS included); Mozilla's where the system has none. The fingerprint, not TLS,
/// is what makes the key trusted.
#[cfg(feature = "tls")]
fn root_certs() -> ureq::tls::RootCerts {
    const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
    let pem = std::fs::read(SYSTEM_BUNDLE).unwrap_or_default();
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        ureq::tls::RootCerts::WebPki
    } else {
        ureq::tls::RootCerts::new_with_certs(&certs)
    }
}

/// Checks that `armored` is one ASCII-armored OpenPGP public key, and no more, whose
/// fingerprint is `expected`. apt would trust every key in the file: a second primary key,
/// a second armor block or anything unreadable is refused, not skipped. What to write for
/// apt is its canonical armor: exactly the packets checked, never the text fetched (whose
/// armor headers a mirror may have added).
pub fn verify(armored: &str, expected: Fingerprint) -> anyhow::Result<String> {
    let packets = dearmor(armored)?;
    let actual = fingerprint_of(&packets)?;
    if actual != expected {
        bail!("its fingerprint is {actual}, not {expected}");
    }
    Ok(armor(&packets))
}

/// The fingerprint of the one primary key in an armored public key block.
#[cfg(test)]
pub fn fingerprint(armored: &str) -> anyhow::Result<Fingerprint> {
    fingerprint_of(&dearmor(armored)?)
}

/// The armor of `packets` as gpg writes it: no header, lines of 64, the CRC24.
fn armor(packets: &[u8]) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let data = engine.encode(packets);
    let mut text = format!("{ARMOR_BEGIN}\n\n");
    for line in data.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        text.push('\n');
    }
    let crc = crc24(packets).to_be_bytes();
    text.push_str(&format!("={}\n{ARMOR_END}\n", engine.encode(&crc[1..])));
    text
}

fn fingerprint_of(packets: &[u8]) -> anyhow::Result<Fingerprint> {
    let mut primary = None;
    let mut rest = packets;
    while !rest.is_empty() {
        let (tag, body, after) = next_packet(rest)?;
        if tag == TAG_PUBLIC_KEY {
            if primary.is_some() {
                bail!("it holds more than one public key");
            }
            primary = Some(body);
        } else if primary.is_none() {
            bail!("it does not start with a public key (packet tag {tag})");
        } else if !CERTIFICATE_TAGS.contains(&tag) {
            bail!(
                "it holds a packet of tag {tag}{}, which a public key certificate never holds",
                match tag {
                    5 => " (a secret key)",
                    7 => " (a secret subkey)",
                    _ => "",
                }
            );
        }
        rest = after;
    }
    let body = primary.context("it holds no public key")?;
    match body.first() {
        Some(4) => {}
        Some(version) => {
            bail!("its key is OpenPGP version {version}: only version 4 keys are supported")
        }
        None => bail!("its public key packet is empty"),
    }
    let length = u16::try_from(body.len()).context("its public key packet is too long")?;
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(&[0x99]);
    sha1.update(&length.to_be_bytes());
    sha1.update(body);
    Ok(Fingerprint(sha1.digest().bytes()))
}

/// The binary packets of the one armor block that is the whole text (RFC 4880 §6.2); the
/// CRC24 line, when present, is checked.
fn dearmor(text: &str) -> anyhow::Result<Vec<u8>> {
    let text = text.trim();
    let Some(inner) = text
        .strip_prefix(ARMOR_BEGIN)
        .and_then(|rest| rest.strip_suffix(ARMOR_END))
    else {
        bail!("it is not one ASCII-armored OpenPGP public key block");
    };
    if inner.contains("-----") {
        bail!("it holds more than one armor block");
    }
    let mut lines = inner.lines().map(str::trim);
    if lines.next().is_some_and(|rest| !rest.is_empty()) {
        bail!("its armor has text after {ARMOR_BEGIN} on the same line");
    }
    // Armor headers (RFC 4880 §6.2: `Version: …`, `Comment: …`), each `Key: Value`, end
    // with a blank line; a line that is none is a mistake, not data.
    loop {
        let line = lines
            .next()
            .context("its armor has no blank line before the data")?;
        if line.is_empty() {
            break;
        }
        let header = line.split_once(": ").is_some_and(|(key, _)| {
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !header {
            bail!("its armor has `{line}` where a header (`Key: Value`) or a blank line goes");
        }
    }
    let mut data = String::new();
    let mut checksum = None;
    for line in lines.filter(|line| !line.is_empty()) {
        match line.strip_prefix('=') {
            Some(crc) if checksum.is_none() => checksum = Some(crc.to_owned()),
            _ if checksum.is_some() => bail!("its armor has data after the checksum"),
            _ => data.push_str(line),
        }
    }
    let packets = base64::engine::general_purpose::STANDARD
        .decode(&data)
        .context("its armor is not valid base64")?;
    if let Some(crc) = checksum {
        let crc = base64::engine::general_purpose::STANDARD
            .decode(&crc)
            .context("its armor checksum is not valid base64")?;
        if crc.len() != 3 || crc[..] != crc24(&packets).to_be_bytes()[1..] {
            bail!("its armor checksum does not match: the key was damaged on the way");
        }
    }
    if packets.is_empty() {
        bail!("its armor is empty");
    }
    Ok(packets)
}

/// One packet (RFC 4880 §4.2, old and new headers): its tag, its body and what follows.
fn next_packet(bytes: &[u8]) -> anyhow::Result<(u8, &[u8], &[u8])> {
    let truncated = || anyhow::anyhow!("it ends in the middle of a packet");
    let header = bytes[0];
    if header & 0x80 == 0 {
        bail!("it is not OpenPGP data (byte {header:#04x} where a packet starts)");
    }
    let (tag, length, header_len) = if header & 0x40 != 0 {
        let first = *bytes.get(1).ok_or_else(truncated)? as usize;
        let (length, len_len) = match first {
            0..=191 => (first, 1),
            192..=223 => (
                ((first - 192) << 8) + *bytes.get(2).ok_or_else(truncated)? as usize + 192,
                2,
            ),
            255 => (be_length(bytes.get(2..6).ok_or_else(truncated)?), 5),
            _ => bail!("it uses partial packet lengths, which a public key may not"),
        };
        (header & 0x3f, length, 1 + len_len)
    } else {
        let len_len = match header & 0x03 {
            0 => 1,
            1 => 2,
            2 => 4,
            _ => bail!("it uses an indeterminate packet length, which a public key may not"),
        };
        let length = be_length(bytes.get(1..1 + len_len).ok_or_else(truncated)?);
        ((header >> 2) & 0x0f, length, 1 + len_len)
    };
    let end = header_len
        .checked_add(length)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(truncated)?;
    Ok((tag, &bytes[header_len..end], &bytes[end..]))
}

fn be_length(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .fold(0, |length, &byte| (length << 8) | byte as usize)
}

/// RFC 4880 §6.1.
fn crc24(bytes: &[u8]) -> u32 {
    let mut crc: u32 = 0x00B7_04CE;
    for &byte in bytes {
        crc ^= (byte as u32) << 16;
        for _ in 0..8 {
            crc <<= 1;
            if crc & 0x0100_0000 != 0 {
                crc ^= 0x0186_4CFB;
            }
        }
    }
    crc & 0x00FF_FFFF
}

#[cfg(test)]
#[path = "apt_key_tests.rs"]
mod tests;
