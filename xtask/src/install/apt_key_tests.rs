use super::*;

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/install/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
}

fn armor(packets: &[u8]) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(packets);
    let lines: Vec<&str> = data
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect();
    format!("{ARMOR_BEGIN}\n\n{}\n{ARMOR_END}\n", lines.join("\n"))
}

#[test]
fn dockers_real_key_has_dockers_fingerprint() {
    assert_eq!(
        DOCKER.to_string(),
        "9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88"
    );
    let key = data("docker.asc");
    assert_eq!(fingerprint(&key).unwrap(), DOCKER);
    verify(&key, DOCKER).unwrap();
}

/// A key made with `gpg --quick-gen-key … ed25519`; `gpg --with-colons --show-keys
/// --fingerprint` printed this fingerprint for it.
#[test]
fn another_valid_key_is_refused_unless_its_own_fingerprint_is_given() {
    let key = data("other-key.asc");
    let its_own: Fingerprint = "7C90E34CEECC831E5F0542E0A76FEDC88BDEF0E0".parse().unwrap();
    assert_eq!(fingerprint(&key).unwrap(), its_own);
    let refusal = verify(&key, DOCKER).unwrap_err().to_string();
    assert_eq!(
        refusal,
        "its fingerprint is 7C90 E34C EECC 831E 5F05 42E0 A76F EDC8 8BDE F0E0, not 9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88"
    );
    verify(&key, its_own).unwrap();
}

#[test]
fn new_format_packet_headers_give_the_same_fingerprint() {
    let packets = dearmor(&data("docker.asc")).unwrap();
    let (tag, body, rest) = next_packet(&packets).unwrap();
    assert_eq!((tag, body.len()), (TAG_PUBLIC_KEY, 525));
    // New format, tag 6, five-octet length.
    let mut rewritten = vec![0xC0 | TAG_PUBLIC_KEY, 255];
    rewritten.extend_from_slice(&(body.len() as u32).to_be_bytes());
    rewritten.extend_from_slice(body);
    rewritten.extend_from_slice(rest);
    assert_eq!(fingerprint(&armor(&rewritten)).unwrap(), DOCKER);
}

#[test]
fn garbage_and_smuggled_keys_are_refused() {
    let docker = data("docker.asc");
    let other = data("other-key.asc");
    let both_blocks = format!("{docker}{other}");
    let mut both_keys = dearmor(&docker).unwrap();
    both_keys.extend(dearmor(&other).unwrap());
    // Docker's certificate with a packet appended that no public certificate holds: a
    // secret key (new-format tag 5) whose body is the public key's, as an attacker's
    // would start; a secret subkey (old-format tag 7); literal data (tag 11).
    let packets = dearmor(&docker).unwrap();
    let (_, public_body, _) = next_packet(&packets).unwrap();
    let mut with_secret_key = packets.clone();
    with_secret_key.extend([0xC0 | 5, 255]);
    with_secret_key.extend((public_body.len() as u32).to_be_bytes());
    with_secret_key.extend(public_body);
    let mut with_secret_subkey = packets.clone();
    with_secret_subkey.extend([0x80 | (7 << 2), 3, 4, 0, 0]);
    let mut with_literal_data = packets.clone();
    with_literal_data.extend([0xC0 | 11, 2, b'b', 0]);
    let mut damaged = docker.clone();
    damaged.replace_range(100..101, if &docker[100..101] == "A" { "B" } else { "A" });
    let cases: &[(&str, &str)] = &[
        ("", "not one ASCII-armored"),
        ("<html>404 Not Found</html>", "not one ASCII-armored"),
        (
            &format!("{ARMOR_BEGIN}\n\n!!!!\n{ARMOR_END}"),
            "not valid base64",
        ),
        (&armor(b"\x01\x02\x03"), "not OpenPGP data"),
        (
            &armor(&[0x99, 0x02, 0x00, 0x04]),
            "ends in the middle of a packet",
        ),
        (&both_blocks, "more than one armor block"),
        (&armor(&both_keys), "more than one public key"),
        (&damaged, "checksum does not match"),
        (
            &armor(&[0xB4, 0x01, b'x']),
            "does not start with a public key",
        ),
        (&armor(&with_secret_key), "tag 5 (a secret key)"),
        (&armor(&with_secret_subkey), "tag 7 (a secret subkey)"),
        (
            &armor(&with_literal_data),
            "tag 11, which a public key certificate never holds",
        ),
    ];
    for (text, expected) in cases {
        let err = fingerprint(text).unwrap_err().to_string();
        assert!(
            err.contains(expected),
            "{text:?}: `{err}` lacks `{expected}`"
        );
        assert!(verify(text, DOCKER).is_err());
    }
}

#[test]
fn fingerprints_parse_as_people_write_them() {
    for text in [
        "9DC8 5822 9FC7 DD38 854A E2D8 8D81 803C 0EBF CD88",
        "9DC8 5822 9FC7 DD38 854A  E2D8 8D81 803C 0EBF CD88",
        "9dc858229fc7dd38854ae2d88d81803c0ebfcd88",
        "0x9DC858229FC7DD38854AE2D88D81803C0EBFCD88",
    ] {
        assert_eq!(text.parse::<Fingerprint>(), Ok(DOCKER), "{text}");
    }
    for bad in ["0EBFCD88", "9DC858229FC7DD38854AE2D88D81803C0EBFCD8Z", ""] {
        assert!(bad.parse::<Fingerprint>().is_err(), "{bad}");
    }
}

#[test]
fn file_urls_are_read_from_the_disk() {
    let path = format!(
        "{}/tests/data/install/docker.asc",
        env!("CARGO_MANIFEST_DIR")
    );
    assert_eq!(
        fetch(&format!("file://{path}")).unwrap(),
        data("docker.asc")
    );
    assert!(fetch("file:///nonexistent/gpg").is_err());
}

/// Some mirrors re-armor keys with headers (RFC 4880 §6.2): accepted, and what is written
/// is the canonical armor of the packets checked, not the text fetched.
#[test]
fn armor_headers_are_read_as_headers_and_never_written() {
    let key = data("docker.asc");
    let with_headers = key.replacen(
        ARMOR_BEGIN,
        &format!("{ARMOR_BEGIN}\nComment: re-armored by a mirror\nVersion: GnuPG v2"),
        1,
    );
    assert_ne!(with_headers, key);
    let canonical = verify(&with_headers, DOCKER).unwrap();
    assert_eq!(canonical, verify(&key, DOCKER).unwrap());
    assert!(!canonical.contains("Comment"), "{canonical}");
    assert_eq!(fingerprint(&canonical).unwrap(), DOCKER);
    assert!(
        canonical.starts_with(&format!("{ARMOR_BEGIN}\n\nmQ")),
        "{canonical}"
    );
    assert!(canonical.lines().all(|line| line.len() <= 64));
    // What is not a header, where headers go, is refused, not taken for data.
    for bad in [
        format!("{ARMOR_BEGIN}\nnot a header\n"),
        format!("{ARMOR_BEGIN}\n: empty key\n"),
        format!("{ARMOR_BEGIN} trailing\n"),
    ] {
        let text = key.replacen(&format!("{ARMOR_BEGIN}\n"), &bad, 1);
        assert!(verify(&text, DOCKER).is_err(), "{bad}");
    }
}
