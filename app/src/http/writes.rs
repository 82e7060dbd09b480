//! Writes bounded per client: at most `APP_WRITES_PER_MINUTE` POSTs a minute from one
//! address (a burst of a tenth of that, at least one), then 429 with `Retry-After`.
//! Reads and health checks are never limited.
//!
//! The client's address is the connection's, unless the connection comes from a trusted
//! proxy: then the last address of its `X-Forwarded-For`, the one the proxy itself saw
//! (Caddy sets it and, trusting no one before it, drops what the client sent). The
//! proxies are named (`proxy`, `tasks.proxy` on a swarm) and resolved again now and then,
//! since their addresses change as they are recreated: a client that sends the header
//! itself, straight to web, is not believed.

use std::{
    collections::{HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU32,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};
use tokio::task::JoinSet;

/// How often the proxies' names are resolved again, and forgotten clients dropped.
pub const REFRESH: Duration = Duration::from_secs(15);
/// How soon a forwarded request from an unknown peer may have them resolved again: a
/// proxy started (or recreated) after web is believed at once, and a client that sends
/// the header itself costs at most one lookup a second.
const REFRESH_ON_MISS: Duration = Duration::from_secs(1);
/// How long a request waits for a name to resolve on a miss, and the refresh for one.
const LOOKUP_ON_MISS: Duration = Duration::from_millis(250);
const LOOKUP: Duration = Duration::from_secs(5);

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Default)]
pub struct Proxies {
    names: Vec<String>,
    /// Each name's addresses as last resolved (an address names itself).
    addresses: RwLock<HashMap<String, HashSet<IpAddr>>>,
    /// When a miss last had the names resolved again.
    resolved_on_miss: Mutex<Option<Instant>>,
}

impl Proxies {
    /// Names or addresses; an address is trusted at once, a name once resolved.
    pub fn new(names: &[String]) -> Proxies {
        let addresses = names
            .iter()
            .filter_map(|name| {
                let address: IpAddr = name.parse().ok()?;
                Some((name.clone(), HashSet::from([address.to_canonical()])))
            })
            .collect();
        Proxies {
            names: names.to_vec(),
            addresses: RwLock::new(addresses),
            resolved_on_miss: Mutex::new(None),
        }
    }

    /// Resolves the names again, side by side, each within `within`. A name that does not
    /// resolve (a proxy being recreated, `tasks.proxy` outside a swarm) trusts nothing
    /// until it does; one whose lookup takes longer (no DNS server answers for it) keeps
    /// the addresses it had.
    pub async fn refresh(&self, within: Duration) {
        let mut lookups = JoinSet::new();
        for name in &self.names {
            if name.parse::<IpAddr>().is_ok() {
                continue;
            }
            let name = name.clone();
            lookups.spawn(async move {
                let lookup = tokio::net::lookup_host((name.as_str(), 0));
                let found = match tokio::time::timeout(within, lookup).await {
                    Ok(Ok(found)) => Some(
                        found
                            .map(|address| address.ip().to_canonical())
                            .collect::<HashSet<_>>(),
                    ),
                    Ok(Err(_)) => Some(HashSet::new()),
                    Err(_) => None,
                };
                (name, found)
            });
        }
        while let Some(Ok((name, found))) = lookups.join_next().await {
            let Some(addresses) = found else {
                continue;
            };
            self.addresses
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(name, addresses);
        }
    }

    fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.addresses
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .any(|addresses| addresses.contains(&peer))
    }

    /// `client`, once the names are resolved again if `peer` forwards for someone, is
    /// not trusted yet, and no other miss had them resolved within `REFRESH_ON_MISS`.
    pub async fn client_resolving(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.names.is_empty() || self.trusts(peer) || !headers.contains_key("x-forwarded-for") {
            return self.client(peer, headers);
        }
        let due = {
            let mut last = self
                .resolved_on_miss
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let due = last.is_none_or(|last| last.elapsed() >= REFRESH_ON_MISS);
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            self.refresh(LOOKUP_ON_MISS).await;
        }
        self.client(peer, headers)
    }

    /// The client's address: the peer's, or the one a trusted proxy says it saw.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|address| address.trim().parse::<IpAddr>().ok())
            .next_back()
            .unwrap_or(peer)
    }
}

/// The limiter of writes, by client address.
pub struct Writes {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    pub proxies: Proxies,
}

impl Writes {
    pub fn new(per_minute: u32, proxies: Proxies) -> Writes {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(per_minute.get() / 10).unwrap_or(NonZeroU32::MIN);
        Writes {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            proxies,
        }
    }

    /// Clients that have written nothing lately cost nothing.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// `None` when `client` may write now, else how long it must wait.
    fn wait(&self, client: IpAddr) -> Option<Duration> {
        self.limiter.check_key(&client).err().map(|not_until| {
            not_until.wait_time_from(governor::clock::DefaultClock::default().now())
        })
    }
}

/// Keeps the resolved proxies current and the limiter's memory bounded, for as long as
/// the server runs.
pub async fn maintain(writes: Arc<Writes>) {
    loop {
        writes.proxies.refresh(LOOKUP).await;
        writes.forget_idle();
        tokio::time::sleep(REFRESH).await;
    }
}

/// The middleware: a POST beyond its client's rate gets 429 and `Retry-After` (whole
/// seconds, at least 1); anything else goes through untouched.
pub async fn limit(State(writes): State<Arc<Writes>>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    // Served without connection info only in tests that call the router directly.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    let client = writes
        .proxies
        .client_resolving(peer, request.headers())
        .await;
    let Some(wait) = writes.wait(client) else {
        return next.run(request).await;
    };
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        axum::Json(serde_json::json!({
            "error": format!("too many writes from {client}: try again in {} s", seconds.max(1))
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", value.parse().unwrap());
        headers
    }

    #[test]
    fn the_forwarded_address_counts_only_from_a_trusted_proxy() {
        let proxy: IpAddr = "172.18.0.5".parse().unwrap();
        let proxies = Proxies::new(&["172.18.0.5".to_owned(), "proxy".to_owned()]);
        let headers = forwarded("198.51.100.1, 203.0.113.9");
        // The proxy's own entry, the last: what came before is the client's to write.
        assert_eq!(
            proxies.client(proxy, &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let stranger: IpAddr = "172.18.0.9".parse().unwrap();
        assert_eq!(proxies.client(stranger, &headers), stranger);
        assert_eq!(proxies.client(proxy, &HeaderMap::new()), proxy);
        assert_eq!(proxies.client(proxy, &forwarded("not an address")), proxy);
        // An IPv4 proxy seen through an IPv6 socket.
        let mapped: IpAddr = "::ffff:172.18.0.5".parse().unwrap();
        assert_eq!(
            proxies.client(mapped, &headers),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[tokio::test]
    async fn a_proxy_that_came_after_the_last_resolution_is_believed_at_once() {
        // Named, never resolved yet: as when web starts before the proxy exists.
        let proxies = Proxies::new(&["localhost".to_owned()]);
        let localhost: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(!proxies.trusts(localhost));
        let headers = forwarded("203.0.113.9");
        assert_eq!(
            proxies.client_resolving(localhost, &headers).await,
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // A stranger's header is still not believed.
        let stranger: IpAddr = "172.18.0.9".parse().unwrap();
        assert_eq!(proxies.client_resolving(stranger, &headers).await, stranger);
    }

    #[test]
    fn a_client_past_its_burst_waits_and_another_does_not() {
        let writes = Writes::new(60, Proxies::default());
        let (one, two): (IpAddr, IpAddr) = (
            "198.51.100.1".parse().unwrap(),
            "198.51.100.2".parse().unwrap(),
        );
        // 60 a minute: a burst of 6, then one a second.
        for _ in 0..6 {
            assert_eq!(writes.wait(one), None);
        }
        let wait = writes.wait(one).expect("past the burst");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert_eq!(writes.wait(two), None);
    }
}
