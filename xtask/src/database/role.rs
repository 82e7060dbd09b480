//! What the migrations leave in the database, read in one psql session: the newest
//! migration applied, and whether the app's role logs in with the password a deploy would
//! give it (its SCRAM verifier recomputed from that password: the password never leaves
//! this machine, and the verifier is never printed). A deploy that finds both as they
//! should be runs no migration container.

use anyhow::Context;
use base64::Engine as _;
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use xshell::Shell;

use super::Database;

/// `\gset` and `\if`: the history table may not exist yet, and a query of it would fail.
const SCRIPT: &str = "SELECT to_regclass('refinery_schema_history') IS NOT NULL AS migrated \\gset
\\if :migrated
SELECT 'applied ' || COALESCE(MAX(version), 0) FROM refinery_schema_history;
\\endif
SELECT 'role ' || COALESCE(rolpassword, '') FROM pg_authid WHERE rolname = :'role';
";

/// What the database says of its migrations and of a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// The newest migration applied; `None` before the first.
    pub applied: Option<i64>,
    /// The role's SCRAM verifier; `None` if there is no such role (or no password).
    verifier: Option<String>,
}

impl Migrated {
    /// Whether the role logs in with `password`.
    pub fn role_has(&self, password: &str) -> bool {
        self.verifier
            .as_deref()
            .is_some_and(|verifier| verifier_matches(verifier, password))
    }

    fn parse(text: &str) -> anyhow::Result<Migrated> {
        let mut migrated = Migrated {
            applied: None,
            verifier: None,
        };
        for line in text.lines() {
            if let Some(version) = line.strip_prefix("applied ") {
                let version = version.trim();
                migrated.applied = Some(version.parse().with_context(|| {
                    format!("unexpected answer for the migrations applied: `{version}`")
                })?);
            } else if let Some(verifier) = line.strip_prefix("role ") {
                migrated.verifier = Some(verifier.trim().to_owned()).filter(|v| !v.is_empty());
            }
        }
        Ok(migrated)
    }
}

impl Database {
    /// The migrations applied, and the verifier of `role` (any name: it goes in as a psql
    /// variable).
    pub fn migrated(&self, sh: &Shell, role: &str) -> anyhow::Result<Migrated> {
        let command = self
            .psql(None, &[("role", role)])
            .stdin_content("the query", SCRIPT.as_bytes().to_vec());
        Migrated::parse(&self.run(sh, &command)?)
    }
}

/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` (RFC 5803), as PostgreSQL
/// keeps it: whether `password` gives the same StoredKey. PostgreSQL prepares a password
/// with SASLprep first, which changes none but unusual Unicode: for those this answers
/// `false`, and a deploy then runs its migration container, as it always did.
pub fn verifier_matches(verifier: &str, password: &str) -> bool {
    let parsed = (|| {
        let rest = verifier.strip_prefix("SCRAM-SHA-256$")?;
        let (iterations_salt, keys) = rest.split_once('$')?;
        let (iterations, salt) = iterations_salt.split_once(':')?;
        let (stored_key, _server_key) = keys.split_once(':')?;
        let base64 = base64::engine::general_purpose::STANDARD;
        Some((
            iterations.parse::<u32>().ok()?,
            base64.decode(salt).ok()?,
            base64.decode(stored_key).ok()?,
        ))
    })();
    let Some((iterations, salt, stored_key)) = parsed else {
        return false;
    };
    let salted = hi(password.as_bytes(), &salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    Sha256::digest(client_key).as_slice() == stored_key.as_slice()
}

type HmacSha256 = hmac::Hmac<Sha256>;

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// RFC 5802's Hi(): PBKDF2 with HMAC-SHA-256, one block.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut first = salt.to_vec();
    first.extend_from_slice(&1u32.to_be_bytes());
    let mut previous = hmac(password, &first);
    let mut result = previous;
    for _ in 1..iterations {
        previous = hmac(password, &previous);
        for (byte, next) in result.iter_mut().zip(previous) {
            *byte ^= next;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verifier of `app-secret` as PostgreSQL keeps it, made by another implementation
    /// (Python's `hashlib.pbkdf2_hmac` and `hmac`).
    const VERIFIER: &str = "SCRAM-SHA-256$4096:jIGEK7y1ljOKbxO1i1o9CA==$ANpO7GHIUAfHV5fYyofSKyx2TzbROpl+1ynSSr6QyOg=:ZHxcTZWqQR+sj5EewmfoZQY0n72Q7jS8uWofUnkiz/o=";

    #[test]
    fn the_verifier_of_the_same_password_matches_and_no_other() {
        assert!(verifier_matches(VERIFIER, "app-secret"));
        assert!(!verifier_matches(VERIFIER, "app-secret "));
        assert!(!verifier_matches(VERIFIER, ""));
        assert!(!verifier_matches("md5abcdef", "app-secret"));
        assert!(!verifier_matches("SCRAM-SHA-256$x:y$z:w", "app-secret"));
    }

    #[test]
    fn one_session_says_the_migrations_and_the_role() {
        let both = Migrated::parse(&format!("applied 2\nrole {VERIFIER}\n")).unwrap();
        assert_eq!(both.applied, Some(2));
        assert!(both.role_has("app-secret"));
        let fresh = Migrated::parse("").unwrap();
        assert_eq!(fresh.applied, None);
        assert!(!fresh.role_has("app-secret"));
        assert!(!Migrated::parse("applied 0\nrole \n").unwrap().role_has(""));
        assert!(Migrated::parse("applied x\n").is_err());
    }
}
