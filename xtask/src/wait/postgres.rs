//! `postgres://…`: ready when the server answers a startup message as one that accepts
//! connections does, the verdict of `pg_isready`, in a few lines of the v3 protocol over
//! std TCP (no libpq, no psql, no client crate).
//!
//! The first answer decides: an authentication request of any kind (or AuthenticationOk)
//! means ready; an ErrorResponse means ready too (a wrong password, user or database still
//! proves the server accepts connections), unless its SQLSTATE says the server cannot take
//! connections now: starting up, shutting down, in recovery. The password is never sent.

use std::{
    fmt,
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use super::{Failure, tcp, time_left};

/// Protocol 3.0, as the startup message spells it.
const PROTOCOL_3_0: u32 = 3 << 16;
/// Where PostgreSQL's log shows who asked.
const APPLICATION_NAME: &str = "cargo xtask wait";
/// A first answer is tens of bytes; a bigger length means the peer is not PostgreSQL.
const MAX_MESSAGE: usize = 64 * 1024;
/// The SQLSTATEs of a server that is up but cannot take connections yet (or any more):
/// cannot_connect_now (57P03: starting up, shutting down, not yet accepting connections in
/// recovery), admin_shutdown (57P01) and crash_shutdown (57P02). pg_isready only knows the
/// first; the other two reach a connection that arrives as the server goes down.
const NOT_READY_STATES: [&str; 3] = ["57P03", "57P01", "57P02"];

pub(super) fn probe(
    host: &str,
    port: u16,
    user: &str,
    database: &str,
    timeout: Duration,
) -> Result<(), Failure> {
    let deadline = Instant::now() + timeout;
    let mut stream = tcp::connect(host, port, deadline)?;
    // A message of tens of bytes into a fresh socket's buffer: this write never blocks.
    stream.write_all(&startup_message(user, database))?;
    let (kind, body) = read_answer(&mut stream, deadline)?;
    if kind == b'R' && body.starts_with(&0u32.to_be_bytes()) {
        // AuthenticationOk (trust): a session started, so end it as a client should.
        // Otherwise closing is enough: the server drops a half-authenticated connection
        // silently, as it does pg_isready's.
        let _ = stream.write_all(&terminate_message());
    }
    verdict(kind, &body)
}

fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = PROTOCOL_3_0.to_be_bytes().to_vec();
    let parameters = [
        ("user", user),
        ("database", database),
        ("application_name", APPLICATION_NAME),
    ];
    for (name, value) in parameters {
        for text in [name, value] {
            body.extend_from_slice(text.as_bytes());
            body.push(0);
        }
    }
    body.push(0);
    with_length(None, body)
}

fn terminate_message() -> Vec<u8> {
    with_length(Some(b'X'), Vec::new())
}

/// A message: its type byte (none for the startup message), then its length, which counts
/// itself but not the type byte, then the body.
fn with_length(kind: Option<u8>, body: Vec<u8>) -> Vec<u8> {
    let length = u32::try_from(body.len() + 4).expect("a message of a few bytes");
    let mut message: Vec<u8> = kind.into_iter().collect();
    message.extend_from_slice(&length.to_be_bytes());
    message.extend(body);
    message
}

/// The first message that is not a notice: its type byte and its body.
fn read_answer(stream: &mut TcpStream, deadline: Instant) -> Result<(u8, Vec<u8>), Failure> {
    loop {
        let mut header = [0; 5];
        read_exact_by(stream, &mut header, deadline)?;
        let [kind, length @ ..] = header;
        if !b"REvN".contains(&kind) {
            return Err(not_postgres());
        }
        let length = u32::from_be_bytes(length) as usize;
        if !(4..=MAX_MESSAGE).contains(&length) {
            return Err(not_postgres());
        }
        let mut body = vec![0; length - 4];
        read_exact_by(stream, &mut body, deadline)?;
        if kind != b'N' {
            return Ok((kind, body));
        }
    }
}

fn not_postgres() -> Failure {
    Failure::Other("the answer is not PostgreSQL's".into())
}

/// `read_exact`, where no read waits past `deadline`.
fn read_exact_by(
    stream: &mut TcpStream,
    mut buffer: &mut [u8],
    deadline: Instant,
) -> Result<(), Failure> {
    while !buffer.is_empty() {
        let left = time_left(deadline).ok_or(Failure::Timeout)?;
        stream.set_read_timeout(Some(left))?;
        match stream.read(buffer) {
            Ok(0) => {
                return Err(Failure::Other(
                    "the server closed the connection without an answer".into(),
                ));
            }
            Ok(read) => buffer = &mut buffer[read..],
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Ready or not, from the server's first answer.
fn verdict(kind: u8, body: &[u8]) -> Result<(), Failure> {
    match kind {
        // An authentication request, or NegotiateProtocolVersion before one.
        b'R' | b'v' => Ok(()),
        b'E' => {
            let error = ServerError::parse(body);
            match NOT_READY_STATES.contains(&error.code.as_str()) {
                true => Err(Failure::Other(error.to_string())),
                false => Ok(()),
            }
        }
        _ => Err(not_postgres()),
    }
}

/// The fields of an ErrorResponse that say what happened.
#[derive(Debug, Default, PartialEq, Eq)]
struct ServerError {
    code: String,
    message: String,
}

impl ServerError {
    /// Fields are a type byte and a NUL-terminated text each; a zero byte ends them.
    fn parse(body: &[u8]) -> ServerError {
        let mut error = ServerError::default();
        let mut rest = body;
        while let [field, tail @ ..] = rest {
            if *field == 0 {
                break;
            }
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            let text = String::from_utf8_lossy(&tail[..end]).into_owned();
            match field {
                b'C' => error.code = text,
                b'M' => error.message = text,
                _ => {}
            }
            rest = tail.get(end + 1..).unwrap_or_default();
        }
        error
    }
}

/// `the database system is starting up (57P03)`
impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::{Failure, ServerError, startup_message, terminate_message, verdict};

    /// What PostgreSQL 15 sends while it starts up, as captured from a real server.
    const STARTING_UP: &[u8] = b"SFATAL\0VFATAL\0C57P03\0Mthe database system is starting up\0\
        Fpostmaster.c\0L2356\0RProcessStartupPacket\0\0";

    fn error_body(code: &str, message: &str) -> Vec<u8> {
        format!("SFATAL\0VFATAL\0C{code}\0M{message}\0\0").into_bytes()
    }

    #[test]
    fn the_startup_message_is_protocol_3() {
        let message = startup_message("app", "travial");
        let mut expected = vec![0, 0, 0, 0, 0, 3, 0, 0];
        expected.extend_from_slice(b"user\0app\0database\0travial\0");
        expected.extend_from_slice(b"application_name\0cargo xtask wait\0\0");
        expected[3] = u8::try_from(expected.len()).unwrap();
        assert_eq!(message, expected);
        assert_eq!(terminate_message(), [b'X', 0, 0, 0, 4]);
    }

    #[test]
    fn error_fields_are_decoded() {
        assert_eq!(
            ServerError::parse(STARTING_UP),
            ServerError {
                code: "57P03".into(),
                message: "the database system is starting up".into()
            }
        );
        // A truncated body yields what it has rather than failing.
        assert_eq!(ServerError::parse(b"C57P0").code, "57P0");
        assert_eq!(ServerError::parse(b"").code, "");
    }

    #[test]
    fn starting_up_and_shutting_down_are_not_ready() {
        assert_eq!(
            verdict(b'E', STARTING_UP),
            Err(Failure::Other(
                "the database system is starting up (57P03)".into()
            ))
        );
        let shutting_down = error_body("57P03", "the database system is shutting down");
        assert!(verdict(b'E', &shutting_down).is_err());
        let terminated = error_body(
            "57P01",
            "terminating connection due to administrator command",
        );
        assert!(verdict(b'E', &terminated).is_err());
    }

    #[test]
    fn any_authentication_request_or_refusal_is_ready() {
        // AuthenticationOk, AuthenticationMD5Password (with its salt), AuthenticationSASL.
        assert_eq!(verdict(b'R', &[0, 0, 0, 0]), Ok(()));
        assert_eq!(verdict(b'R', &[0, 0, 0, 5, 1, 2, 3, 4]), Ok(()));
        assert_eq!(verdict(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0"), Ok(()));
        for (code, message) in [
            ("28P01", "password authentication failed for user \"app\""),
            ("28000", "role \"nobody\" does not exist"),
            ("3D000", "database \"nothing\" does not exist"),
            ("53300", "sorry, too many clients already"),
        ] {
            assert_eq!(verdict(b'E', &error_body(code, message)), Ok(()), "{code}");
        }
    }

    #[test]
    fn another_protocol_is_not_ready() {
        assert!(verdict(b'H', b"TTP/1.1 400 Bad Request").is_err());
    }
}
