//! What `wait` can wait for, parsed from URLs before any waiting starts.

use std::{error::Error, fmt};

use crate::address::HostPort;

/// PostgreSQL's port when the URL gives none.
const POSTGRES_PORT: u16 = 5432;
/// The user of the startup message when the URL gives none: the official image's superuser.
/// Any user does: even one the server refuses proves that it accepts connections.
const POSTGRES_USER: &str = "postgres";

/// One thing to wait for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `postgres://[user[:password]@]host[:port][/database]` (also `postgresql://`): ready
    /// when the server answers a startup message as a server that accepts connections
    /// does. The password is never sent: no attempt goes past the authentication request.
    Postgres {
        host: String,
        port: u16,
        user: String,
        database: String,
    },
    /// `http://…` or `https://…`: ready on a 2xx answer to a GET.
    Http { url: String },
    /// `tcp://host:port`: ready when a connection opens.
    Tcp { host: String, port: u16 },
}

/// A target refused before any waiting: unknown scheme, no host, bad port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTarget {
    pub target: String,
    pub reason: String,
}

impl fmt::Display for BadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad target `{}`: {}", self.target, self.reason)
    }
}

impl Error for BadTarget {}

impl Target {
    /// Parses `postgres://…`, `http://…`, `https://…` or `tcp://host:port`.
    pub fn parse(text: &str) -> Result<Target, BadTarget> {
        let bad = |reason: String| BadTarget {
            target: text.to_owned(),
            reason,
        };
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            bad("no scheme: write postgres://, http://, https:// or tcp:// before it".into())
        })?;
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(
            scheme.as_str(),
            "postgres" | "postgresql" | "http" | "https" | "tcp"
        ) {
            return Err(bad(format!(
                "unknown scheme `{scheme}`: use postgres, http, https or tcp"
            )));
        }
        // The authority ends where the path, query or fragment starts.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, host_port) = match authority.rsplit_once('@') {
            Some((userinfo, host_port)) => (Some(userinfo), host_port),
            None => (None, authority),
        };
        let HostPort { host, port } = HostPort::parse(host_port).map_err(bad)?;
        match scheme.as_str() {
            "http" | "https" => {
                if scheme == "https" && !cfg!(feature = "tls") {
                    return Err(bad(
                        "https needs the xtask's `tls` feature, which this build leaves out \
                         (--no-default-features)"
                            .into(),
                    ));
                }
                // What ureq would refuse at each attempt is refused here, once.
                text.parse::<ureq::http::Uri>()
                    .map_err(|err| bad(format!("not a URL: {err}")))?;
                Ok(Target::Http {
                    url: text.to_owned(),
                })
            }
            "tcp" => {
                if !matches!(tail, "" | "/") {
                    return Err(bad("a tcp target is only host:port".into()));
                }
                let port = port.ok_or_else(|| bad("no port".into()))?;
                Ok(Target::Tcp { host, port })
            }
            _ => {
                let user = userinfo
                    .and_then(|userinfo| userinfo.split(':').next())
                    .filter(|user| !user.is_empty())
                    .unwrap_or(POSTGRES_USER)
                    .to_owned();
                let path = tail.split(['?', '#']).next().unwrap_or_default();
                let database = match path.trim_start_matches('/') {
                    // The server's own default: the database named after the user.
                    "" => user.clone(),
                    database => database.to_owned(),
                };
                Ok(Target::Postgres {
                    host,
                    port: port.unwrap_or(POSTGRES_PORT),
                    user,
                    database,
                })
            }
        }
    }
}

/// How the target appears in progress and failure lines: `postgres 127.0.0.1:5432`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Postgres { host, port, .. } => write!(f, "postgres {}", address(host, *port)),
            Target::Http { url } => f.write_str(url),
            Target::Tcp { host, port } => write!(f, "tcp {}", address(host, *port)),
        }
    }
}

/// `host:port`, with an IPv6 host in brackets.
fn address(host: &str, port: u16) -> HostPort {
    HostPort {
        host: host.to_owned(),
        port: Some(port),
    }
}

#[cfg(test)]
mod tests {
    use super::Target;

    fn postgres(host: &str, port: u16, user: &str, database: &str) -> Target {
        Target::Postgres {
            host: host.into(),
            port,
            user: user.into(),
            database: database.into(),
        }
    }

    #[test]
    fn postgres_urls_default_like_libpq() {
        let parse = |text| Target::parse(text).unwrap();
        assert_eq!(
            parse("postgres://127.0.0.1:5433"),
            postgres("127.0.0.1", 5433, "postgres", "postgres")
        );
        assert_eq!(
            parse("postgresql://app:secret@db/travial?sslmode=disable"),
            postgres("db", 5432, "app", "travial")
        );
        assert_eq!(
            parse("postgres://app@[::1]:6000/"),
            postgres("::1", 6000, "app", "app")
        );
        assert_eq!(parse("POSTGRES://h").to_string(), "postgres h:5432");
        assert_eq!(
            parse("postgres://[::1]:6000").to_string(),
            "postgres [::1]:6000"
        );
    }

    #[test]
    fn http_and_tcp_targets() {
        let url = "http://127.0.0.1:8080/healthz";
        assert_eq!(Target::parse(url), Ok(Target::Http { url: url.into() }));
        assert_eq!(Target::parse(url).unwrap().to_string(), url);
        assert_eq!(
            Target::parse("tcp://localhost:80"),
            Ok(Target::Tcp {
                host: "localhost".into(),
                port: 80
            })
        );
        assert_eq!(
            Target::parse("tcp://localhost:80").unwrap().to_string(),
            "tcp localhost:80"
        );
    }

    #[test]
    fn https_needs_the_tls_feature() {
        let parsed = Target::parse("https://example.org/");
        assert_eq!(parsed.is_ok(), cfg!(feature = "tls"), "{parsed:?}");
    }

    #[test]
    fn bad_targets_say_what_is_wrong() {
        let reason = |text| Target::parse(text).unwrap_err().reason;
        assert!(reason("127.0.0.1:5432").starts_with("no scheme"));
        assert!(reason("ftp://host").starts_with("unknown scheme `ftp`"));
        assert_eq!(reason("postgres://:5432"), "no host");
        assert_eq!(reason("http:///healthz"), "no host");
        assert_eq!(reason("postgres://user@"), "no host");
        assert!(reason("tcp://h:99999").starts_with("bad port `99999`"));
        assert!(reason("tcp://h:0").starts_with("bad port `0`"));
        assert!(reason("postgres://h:port").starts_with("bad port `port`"));
        assert_eq!(reason("tcp://h"), "no port");
        assert!(reason("tcp://h:1/path").contains("only host:port"));
        assert!(reason("tcp://[::1:80").contains("closing `]`"));
        assert!(reason("http://h:80/a b").starts_with("not a URL"));
        assert_eq!(
            Target::parse("ftp://h").unwrap_err().to_string(),
            "bad target `ftp://h`: unknown scheme `ftp`: use postgres, http, https or tcp"
        );
    }
}
