//! A swarm stack from an environment's merged Compose model, as plain data: what `docker
//! stack deploy` takes (JSON is YAML).
//! No `build:`, nothing Swarm ignores; `deploy:` settings for a cluster: web replicated
//! and spread over the nodes, updated start-first and only once healthy, rolled back by
//! itself when an update fails; the database on the one node labelled for it, with its
//! volume; the proxy on every node. Secrets and configs are the versioned ones the deploy
//! made (they are immutable in Swarm).

use std::collections::BTreeMap;

use anyhow::Context;
use serde_json::{Map, Value, json};

use crate::stack::{Model, Service, Settings};

/// The node label that places the database (its volume lives there): `swarm init` puts it
/// on the manager.
pub const DB_NODE_LABEL: &str = "travial.db";

/// What the stack file depends on besides the model.
#[derive(Debug, Clone)]
pub struct Options {
    /// What web runs: `REPOSITORY:TAG`, or a stand-in for that image's ID (`StackDeploy`
    /// puts the ID in when it runs).
    pub web_image: String,
    /// `REPOSITORY:TAG`, in web's `travial.release` label, whatever names its image.
    pub web_release: String,
    pub web_replicas: u32,
    /// `vip` (a real cluster) or `dnsrr` (no IPVS, as in the tests).
    pub endpoint_mode: String,
    /// `ingress` (the routing mesh) or `host` (each node's own port).
    pub publish_mode: String,
    /// The overlay between nodes encrypted: every query of web to the database crosses it.
    pub encrypted: bool,
    /// Each secret's and config's key in the model → its versioned name in the swarm.
    pub secrets: BTreeMap<String, String>,
    pub configs: BTreeMap<String, String>,
    /// The services to include: a deploy first updates all but web (and migrates), then web.
    pub services: Vec<String>,
}

/// The stack file for `options.services` of `model`.
pub fn stack_file(model: &Model, options: &Options) -> anyhow::Result<Value> {
    let mut out = Map::new();
    for name in &options.services {
        let service = model
            .services
            .get(name)
            .with_context(|| format!("the merged model has no service `{name}`"))?;
        out.insert(
            name.clone(),
            service_of(name, service, &model.xtask, options)?,
        );
    }
    let names_of = |keys: &BTreeMap<String, String>| -> Value {
        keys.iter()
            .map(|(key, name)| (key.clone(), json!({ "external": true, "name": name })))
            .collect::<Map<String, Value>>()
            .into()
    };
    let volumes: Map<String, Value> = model
        .volumes
        .keys()
        .map(|key| (key.clone(), json!({})))
        .collect();
    // Attachable: the migration job joins it.
    let mut network = json!({ "driver": "overlay", "attachable": true });
    if options.encrypted {
        network["driver_opts"] = json!({ "encrypted": "" });
    }
    Ok(json!({
        "version": "3.9",
        "services": out,
        "networks": { "default": network },
        "volumes": volumes,
        "secrets": names_of(&options.secrets),
        "configs": names_of(&options.configs),
    }))
}

fn service_of(
    name: &str,
    service: &Service,
    settings: &Settings,
    options: &Options,
) -> anyhow::Result<Value> {
    let mut out = Map::new();
    let is_web = name == settings.web_service;
    out.insert(
        "image".into(),
        match is_web {
            true => Value::String(options.web_image.clone()),
            false => json!(service.image),
        },
    );
    if !service.command.is_empty() {
        out.insert("command".into(), json!(service.command));
    }
    // What Swarm runs as it is; `build`, `depends_on`, `restart`, `security_opt` and the
    // like are Compose's alone.
    for key in [
        "entrypoint",
        "healthcheck",
        "logging",
        "cap_drop",
        "read_only",
        "stop_grace_period",
        "sysctls",
        "user",
        "working_dir",
    ] {
        if let Some(value) = service.other.get(key).filter(|value| !value.is_null()) {
            out.insert(key.into(), serde_json::to_value(value)?);
        }
    }
    let set: Map<String, Value> = service
        .environment
        .iter()
        .filter_map(|(key, value)| Some((key.clone(), Value::String(value.clone()?))))
        .collect();
    if !set.is_empty() {
        out.insert("environment".into(), set.into());
    }
    if !service.secrets.is_empty() {
        // In Swarm a secret's target is its file's name in /run/secrets.
        let secrets: Vec<Value> = service
            .secrets
            .iter()
            .map(|secret| {
                let target = secret.target.as_deref().unwrap_or(&secret.source);
                json!({ "source": secret.source, "target": target.trim_start_matches("/run/secrets/") })
            })
            .collect();
        out.insert("secrets".into(), secrets.into());
    }
    if !service.configs.is_empty() {
        let configs: Vec<Value> = service
            .configs
            .iter()
            .map(|config| match &config.target {
                Some(target) => json!({ "source": config.source, "target": target }),
                None => json!({ "source": config.source }),
            })
            .collect();
        out.insert("configs".into(), configs.into());
    }
    if !service.volumes.is_empty() {
        let volumes: Vec<Value> = service
            .volumes
            .iter()
            .map(|volume| json!({ "type": "volume", "source": volume.source, "target": volume.target }))
            .collect();
        out.insert("volumes".into(), volumes.into());
    }
    if !service.ports.is_empty() {
        let ports = service
            .ports
            .iter()
            .map(|port| {
                let published = port
                    .published
                    .as_deref()
                    .with_context(|| format!("{name} publishes a port without a number"))?;
                let published = published
                    .parse::<u64>()
                    .with_context(|| format!("{name} publishes `{published}`"))?;
                Ok(json!({
                    "target": port.target,
                    "published": published,
                    "protocol": port.protocol.as_deref().unwrap_or("tcp"),
                    "mode": options.publish_mode,
                }))
            })
            .collect::<anyhow::Result<Vec<Value>>>()?;
        out.insert("ports".into(), ports.into());
    }
    out.insert("networks".into(), json!(["default"]));
    if is_web {
        // Updates wait for this: the new task serves, and has reached its database; later,
        // only liveness (a database outage must not get every task killed).
        let mut test = vec![Value::String("CMD".into())];
        test.extend(settings.started_command.iter().cloned().map(Value::String));
        out.insert(
            "healthcheck".into(),
            json!({ "test": test, "interval": "2s", "timeout": "3s", "retries": 3, "start_period": "10s" }),
        );
        // Swarm takes a stopping task out of its DNS, but Caddy keeps its connections to
        // it: the app serves on for a while, closing each after its response (longer
        // than Caddy keeps one idle), then finishes in its 8 s of grace.
        out.entry("environment").or_insert_with(|| json!({}))["APP_DRAIN_SECONDS"] = "3".into();
        out.insert("stop_grace_period".into(), json!("15s"));
    }
    let deploy = service
        .other
        .get("deploy")
        .map(serde_json::to_value)
        .transpose()?
        .unwrap_or(Value::Null);
    out.insert("deploy".into(), deploy_of(name, &deploy, settings, options));
    Ok(out.into())
}

/// `given`: the service's `deploy` in the model, of which its resources are kept.
fn deploy_of(name: &str, given: &Value, settings: &Settings, options: &Options) -> Value {
    let mut deploy = Map::new();
    if let Some(resources) = given
        .get("resources")
        .filter(|resources| !resources.is_null())
    {
        let mut resources = resources.clone();
        // Swarm's schema takes cpus as a string.
        for kind in ["limits", "reservations"] {
            if let Some(cpus) = resources[kind].get("cpus").cloned() {
                if let Some(number) = cpus.as_f64() {
                    resources[kind]["cpus"] = Value::String(format!("{number:.2}"));
                }
            }
        }
        deploy.insert("resources".into(), resources);
    }
    deploy.insert("endpoint_mode".into(), options.endpoint_mode.clone().into());
    deploy.insert(
        "restart_policy".into(),
        json!({ "condition": "any", "delay": "2s" }),
    );
    if name == settings.db_service {
        deploy.insert("replicas".into(), 1.into());
        deploy.insert(
            "placement".into(),
            json!({ "constraints": [format!("node.labels.{DB_NODE_LABEL} == true")] }),
        );
        // One database at a time on its volume. A short monitor: `stack deploy` waits that
        // long on each service in turn, changed or not, before it calls it stable.
        deploy.insert(
            "update_config".into(),
            json!({ "order": "stop-first", "monitor": "1s" }),
        );
    } else if name == settings.web_service {
        deploy.insert("replicas".into(), options.web_replicas.into());
        // What a rollback returns to with the rest of the spec: the xtask reads it back.
        deploy.insert(
            "labels".into(),
            json!({ super::tasks::RELEASE_LABEL: options.web_release }),
        );
        deploy.insert(
            "placement".into(),
            json!({ "preferences": [{ "spread": "node.id" }] }),
        );
        deploy.insert(
            "update_config".into(),
            json!({ "parallelism": 1, "order": "start-first", "failure_action": "rollback", "monitor": "5s" }),
        );
        deploy.insert(
            "rollback_config".into(),
            json!({ "parallelism": 1, "order": "start-first" }),
        );
    } else if Some(name) == settings.backup_service.as_deref() {
        // Beside the database, its volume on the same node as the database's.
        deploy.insert("replicas".into(), 1.into());
        deploy.insert(
            "placement".into(),
            json!({ "constraints": [format!("node.labels.{DB_NODE_LABEL} == true")] }),
        );
    } else if name == settings.proxy_service {
        // On every node: with host-mode ports, each node answers on its own address.
        deploy.insert("mode".into(), "global".into());
        deploy.insert(
            "update_config".into(),
            json!({ "order": "stop-first", "monitor": "1s" }),
        );
    }
    deploy.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        Model::parse(include_str!("../../tests/data/swarm/model.json")).unwrap()
    }

    fn options(services: &[&str]) -> Options {
        Options {
            web_image: "sha256:0a1b2c3d".into(),
            web_release: "travial/app:0a1b2c3".into(),
            web_replicas: 2,
            endpoint_mode: "dnsrr".into(),
            publish_mode: "host".into(),
            encrypted: true,
            secrets: [
                (
                    "postgres_password".to_owned(),
                    "travial-prod_postgres_password_0123456789ab".to_owned(),
                ),
                (
                    "app_db_password".to_owned(),
                    "travial-prod_app_db_password_ba9876543210".to_owned(),
                ),
            ]
            .into(),
            configs: [(
                "caddyfile".to_owned(),
                "travial-prod_caddyfile_feedfacecafe".to_owned(),
            )]
            .into(),
            services: services.iter().map(|name| (*name).to_owned()).collect(),
        }
    }

    #[test]
    fn web_is_replicated_spread_updated_start_first_and_rolled_back_by_itself() {
        let stack = stack_file(&model(), &options(&["db", "proxy", "web"])).unwrap();
        let web = &stack["services"]["web"];
        assert_eq!(
            web["image"], "sha256:0a1b2c3d",
            "by ID, as the nodes were sent it"
        );
        assert_eq!(
            web["deploy"]["labels"]["travial.release"],
            "travial/app:0a1b2c3"
        );
        assert!(
            web.get("build").is_none()
                && web.get("depends_on").is_none()
                && web.get("restart").is_none()
        );
        assert_eq!(web["deploy"]["replicas"], 2);
        assert_eq!(web["deploy"]["endpoint_mode"], "dnsrr");
        assert_eq!(web["deploy"]["update_config"]["order"], "start-first");
        assert_eq!(web["deploy"]["update_config"]["failure_action"], "rollback");
        assert_eq!(
            web["deploy"]["placement"]["preferences"][0]["spread"],
            "node.id"
        );
        assert_eq!(
            web["healthcheck"]["test"],
            json!(["CMD", "app", "healthcheck", "--started"])
        );
        assert_eq!(
            web["secrets"],
            json!([{ "source": "app_db_password", "target": "app_db_password" }])
        );
        assert_eq!(web["deploy"]["resources"]["limits"]["cpus"], "1.00");
        assert_eq!(web["environment"]["APP_DRAIN_SECONDS"], "3");
        assert_eq!(
            web["stop_grace_period"], "15s",
            "the drain, then 8 s of grace"
        );
        assert_eq!(
            web["environment"]["DATABASE_URL"],
            "postgres://travial_app@db:5432/travial"
        );
    }

    #[test]
    fn the_database_stays_on_its_node_and_the_proxy_runs_on_every_one() {
        let stack = stack_file(&model(), &options(&["db", "proxy"])).unwrap();
        assert!(
            stack["services"].get("web").is_none(),
            "the first phase leaves web alone"
        );
        let db = &stack["services"]["db"];
        assert_eq!(
            db["deploy"]["placement"]["constraints"],
            json!(["node.labels.travial.db == true"])
        );
        assert_eq!(
            db["volumes"],
            json!([{ "type": "volume", "source": "db-data", "target": "/var/lib/postgresql/data" }])
        );
        let proxy = &stack["services"]["proxy"];
        assert_eq!(proxy["deploy"]["mode"], "global");
        // A reload's new listener takes the connections queued on the old one.
        assert_eq!(proxy["sysctls"], json!({ "net.ipv4.tcp_migrate_req": "1" }));
        assert_eq!(
            proxy["ports"][0],
            json!({ "target": 80, "published": 8080, "protocol": "tcp", "mode": "host" })
        );
        assert_eq!(
            stack["secrets"]["postgres_password"],
            json!({ "external": true, "name": "travial-prod_postgres_password_0123456789ab" })
        );
        assert_eq!(
            stack["configs"]["caddyfile"]["name"],
            "travial-prod_caddyfile_feedfacecafe"
        );
        assert_eq!(stack["networks"]["default"]["attachable"], true);
        assert_eq!(
            stack["networks"]["default"]["driver_opts"],
            json!({ "encrypted": "" }),
            "queries cross the overlay in clear"
        );
        assert_eq!(
            stack["volumes"],
            json!({ "db-data": {}, "proxy-config": {}, "proxy-data": {} })
        );
    }

    #[test]
    fn the_caddyfile_is_written_as_caddy_reads_it() {
        let content = model().config_content("caddyfile").unwrap();
        assert!(content.contains("to {$UPSTREAMS}"), "{content}");
        assert!(!content.contains("$$"));
    }
}
