//! `host[:port]` as every address the xtask takes is written (`wait` targets, `ssh://`
//! hosts, registries, Docker endpoints): `host`, `host:port`, `[v6]` or `[v6]:port`. The
//! host is a DNS name or an IP address and nothing else, so that it is safe as an argument
//! of ssh or docker and never reads as an option or shell syntax.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// Without brackets: `::1`.
    pub host: String,
    pub port: Option<u16>,
}

impl HostPort {
    pub fn parse(text: &str) -> Result<HostPort, String> {
        let (host, port) = match text.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or("an IPv6 address lacks its closing `]`")?;
                let port = match after {
                    "" => None,
                    after => Some(
                        after
                            .strip_prefix(':')
                            .ok_or("junk after the IPv6 address")?,
                    ),
                };
                if !is_ipv6(host) {
                    return Err(format!("`{host}` is not an IPv6 address"));
                }
                (host, port)
            }
            None => {
                let (host, port) = match text.split_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (text, None),
                };
                if host.is_empty() {
                    return Err("no host".into());
                }
                if !is_host_name(host) {
                    return Err(format!(
                        "`{host}` is not a host name or an IP address (letters, digits, `.`, `-`)"
                    ));
                }
                (host, port)
            }
        };
        let port = port
            .map(|port| match port.parse::<u16>() {
                Ok(0) | Err(_) => Err(format!("bad port `{port}`: expected 1 to 65535")),
                Ok(port) => Ok(port),
            })
            .transpose()?;
        Ok(HostPort {
            host: host.to_owned(),
            port,
        })
    }

    /// The host as a URL or `host:port` takes it: an IPv6 address in brackets.
    pub fn host_for_url(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]", self.host),
            false => self.host.clone(),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.host_for_url())?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// A DNS name (labels of letters, digits, `-` and `_`, none starting or ending with `-`)
/// or an IPv4 address, which reads as one.
fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_ipv6(host: &str) -> bool {
    host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_people_write_them() {
        let parse = |text| HostPort::parse(text).unwrap();
        assert_eq!(
            parse("db.example:5432"),
            HostPort {
                host: "db.example".into(),
                port: Some(5432)
            }
        );
        assert_eq!(parse("10.201.1.2").port, None);
        assert_eq!(parse("[::1]:22").host, "::1");
        assert_eq!(parse("[::1]:22").to_string(), "[::1]:22");
        assert_eq!(parse("my_host").to_string(), "my_host");
        for (bad, why) in [
            ("", "no host"),
            (":80", "no host"),
            ("h:0", "bad port `0`: expected 1 to 65535"),
            ("h:port", "bad port `port`: expected 1 to 65535"),
            ("[::1", "an IPv6 address lacks its closing `]`"),
            ("[::1]x", "junk after the IPv6 address"),
            ("[x;y]", "`x;y` is not an IPv6 address"),
        ] {
            assert_eq!(HostPort::parse(bad).unwrap_err(), why, "{bad}");
        }
        for hostile in [
            "h;id", "$(id)", "h|x", "h&x", "h'x", "h\"x", "<h>", "-oProxy", "a b", "h`x`",
        ] {
            assert!(HostPort::parse(hostile).is_err(), "{hostile}");
        }
    }
}
