//! `tcp://host:port`: ready when a connection opens. The PostgreSQL probe connects here too.
//!
//! Through Docker's userland proxy a published port accepts connections before the
//! container listens: there, `postgres://` or `http://` say more than `tcp://`.

use std::{
    net::{TcpStream, ToSocketAddrs},
    time::{Duration, Instant},
};

use super::{Failure, describe, time_left};

pub(super) fn probe(host: &str, port: u16, timeout: Duration) -> Result<(), Failure> {
    connect(host, port, Instant::now() + timeout).map(drop)
}

/// A connection to the first of the host's addresses that accepts one before `deadline`.
pub(super) fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, Failure> {
    // Resolved at each attempt: a container's name only appears in DNS once it runs. The
    // system resolver takes no timeout, but the caller never waits past the deadline.
    let addresses = (host, port)
        .to_socket_addrs()
        .map_err(|err| Failure::Other(format!("cannot resolve {host}: {}", describe(&err))))?;
    let mut failure = Failure::Other(format!("{host} has no address"));
    for address in addresses {
        let left = time_left(deadline).ok_or(Failure::Timeout)?;
        match TcpStream::connect_timeout(&address, left) {
            Ok(stream) => return Ok(stream),
            // `localhost` may be ::1 then 127.0.0.1: the last address's reason is kept.
            Err(err) => failure = err.into(),
        }
    }
    Err(failure)
}
