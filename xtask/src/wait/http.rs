//! `http://…` and `https://…`: ready on a 2xx answer to a GET.

use std::time::Duration;

use ureq::Agent;

use super::{Failure, describe};

pub(super) fn probe(url: &str, timeout: Duration) -> Result<(), Failure> {
    // A fresh agent per attempt: no pooled connection to a server that has since restarted.
    let agent: Agent = Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // Ask the service itself: a proxy (HTTP_PROXY) would answer in its place, and could
        // not reach a port published on this machine's loopback anyway.
        .proxy(None)
        .user_agent("cargo-xtask-wait")
        .build()
        .into();
    match agent.get(url).call() {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(Failure::Other(format!("status {}", response.status()))),
        Err(ureq::Error::Timeout(_)) => Err(Failure::Timeout),
        Err(ureq::Error::Io(err)) => Err(err.into()),
        Err(ureq::Error::HostNotFound) => Err(Failure::Other("host not found".into())),
        Err(err) => Err(Failure::Other(describe(&err))),
    }
}
