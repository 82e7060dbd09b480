//! `app healthcheck [--ready]`: the container's own probe. The runtime image has no curl or
//! wget, so the binary asks itself over plain HTTP/1.1 with std only: /healthz (alive), or
//! /readyz (alive and its database answers: what a deploy waits for before switching).

use std::{
    io::{Read, Write},
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream},
    time::Duration,
};

const TIMEOUT: Duration = Duration::from_secs(2);

/// Where a server listening on `listen` can be reached from the same machine.
pub fn local_target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// GETs `path` and succeeds on a 200.
pub fn check(target: SocketAddr, path: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT)
        .map_err(|err| format!("cannot connect to {target}: {err}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .and_then(|()| {
            stream.write_all(
                format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
        })
        .map_err(|err| format!("cannot send the request to {target}: {err}"))?;
    let mut head = [0u8; 64];
    let read = stream
        .read(&mut head)
        .map_err(|err| format!("no answer from {target}: {err}"))?;
    let status_line = String::from_utf8_lossy(&head[..read]);
    let status_line = status_line.lines().next().unwrap_or_default();
    if status_line.split(' ').nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("{path} answered `{status_line}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_addresses_become_loopback() {
        let target = local_target("0.0.0.0:8000".parse().unwrap());
        assert_eq!(target.to_string(), "127.0.0.1:8000");
        let target = local_target("[::]:9000".parse().unwrap());
        assert_eq!(target.to_string(), "[::1]:9000");
        let target = local_target("10.1.2.3:80".parse().unwrap());
        assert_eq!(target.to_string(), "10.1.2.3:80");
    }
}
