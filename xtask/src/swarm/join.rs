//! `docker swarm join` without the join token on a command line: the token is a secret
//! (whoever has it joins the cluster), and `docker swarm join --token` would show it in the
//! process list. The request goes to the node's engine API instead, through `docker system
//! dial-stdio` (the engine's socket on stdin and stdout, over SSH for a remote one), the
//! token in the JSON body on stdin.

use anyhow::{Context, bail};
use serde_json::json;
use xshell::Shell;

use crate::docker::{Engine, run};

/// Joins the engine of `node` to the swarm whose manager is at `manager_address`.
pub fn join(
    sh: &Shell,
    node: &Engine,
    advertise: &str,
    manager_address: &str,
    token: &str,
) -> anyhow::Result<()> {
    let body = json!({
        "ListenAddr": "0.0.0.0:2377",
        "AdvertiseAddr": advertise,
        "RemoteAddrs": [format!("{manager_address}:2377")],
        "JoinToken": token,
    })
    .to_string();
    let request = format!(
        "POST /v1.41/swarm/join HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let dial = node.docker(["system", "dial-stdio"]).stdin_content(
        "the join request (the token in its body)",
        request.into_bytes(),
    );
    let output = run::act_reading(sh, &dial)?;
    let answer = String::from_utf8_lossy(&output);
    let status = answer
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .context("the engine gave no answer to the join request")?;
    if status != "200" {
        let reason = answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .and_then(|body| {
                serde_json::from_str::<serde_json::Value>(
                    body.lines()
                        .find(|line| line.starts_with('{'))
                        .unwrap_or(body),
                )
                .ok()
            })
            .and_then(|body| body["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| answer.lines().next().unwrap_or_default().to_owned());
        bail!("{node} did not join the swarm: {reason}");
    }
    Ok(())
}
