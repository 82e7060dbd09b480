//! `status` and `logs` of an environment deployed as a swarm stack, through its manager.

use anyhow::bail;
use serde::{Deserialize, Serialize};
use xshell::Shell;

use super::service_name;
use crate::{
    docker::{Engine, run},
    stack::{Model, Stack},
};

/// `docker stack services`, or with `json`, `[{service, mode, replicas, image, ports}]`.
pub fn status(sh: &Shell, stack: &Stack, manager: &Engine, json: bool) -> anyhow::Result<()> {
    if !json {
        run::print(sh, &manager.docker(["stack", "services", &stack.project]))?;
        return run::print(
            sh,
            &manager.docker([
                "stack",
                "ps",
                "--filter",
                "desired-state=running",
                &stack.project,
            ]),
        );
    }
    let listing = run::read(
        sh,
        &manager.docker([
            "stack",
            "services",
            "--format",
            "{{json .}}",
            &stack.project,
        ]),
    )?;
    let services = parse_services(&listing, &stack.project)?;
    println!("{}", serde_json::to_string_pretty(&services)?);
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listed {
    name: String,
    mode: String,
    replicas: String,
    image: String,
    #[serde(default)]
    ports: String,
}

/// A service of the stack, for scripts.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Service {
    pub service: String,
    pub mode: String,
    /// `2/2`: running, and wanted.
    pub replicas: String,
    pub image: String,
    pub ports: String,
}

fn parse_services(listing: &str, project: &str) -> anyhow::Result<Vec<Service>> {
    let mut services: Vec<Service> = listing
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let listed: Listed = serde_json::from_str(line)?;
            Ok(Service {
                service: listed
                    .name
                    .trim_start_matches(&format!("{project}_"))
                    .to_owned(),
                mode: listed.mode,
                replicas: listed.replicas,
                image: listed.image,
                ports: listed.ports,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    services.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(services)
}

/// Whether `logs` keeps printing new lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

/// `docker service logs` of one service, or of each in turn.
pub fn logs(
    sh: &Shell,
    stack: &Stack,
    manager: &Engine,
    model: &Model,
    service: Option<&str>,
    follow: Follow,
) -> anyhow::Result<()> {
    let settings = &model.xtask;
    let all = [
        &settings.db_service,
        &settings.proxy_service,
        &settings.web_service,
    ];
    let services: Vec<&str> = match service {
        Some(service) => vec![service],
        None if follow == Follow::Yes => {
            bail!("name the service to follow: in a swarm, logs are followed one service at a time")
        }
        None => all.iter().map(|name| name.as_str()).collect(),
    };
    for service in services {
        let mut args = vec![
            "service".to_owned(),
            "logs".to_owned(),
            "--timestamps".to_owned(),
        ];
        if follow == Follow::Yes {
            args.push("--follow".to_owned());
        }
        args.push(service_name(stack, service));
        run::print(sh, &manager.docker(args))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn stack_services_as_scripts_read_them() {
        let listing = r#"{"ID":"h4u4","Image":"postgres:17","Mode":"replicated","Name":"travial-prod_db","Ports":"","Replicas":"1/1"}
{"ID":"ht9m","Image":"travial/app:0a1b2c3","Mode":"replicated","Name":"travial-prod_web","Ports":"","Replicas":"2/2"}
"#;
        let services = super::parse_services(listing, "travial-prod").unwrap();
        assert_eq!(services[1].service, "web");
        assert_eq!(services[1].replicas, "2/2");
        assert_eq!(
            serde_json::to_string(&services[0]).unwrap(),
            r#"{"service":"db","mode":"replicated","replicas":"1/1","image":"postgres:17","ports":""}"#
        );
    }
}
