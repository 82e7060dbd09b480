//! The exact plans, checked as the lines `--dry-run` prints.

use std::time::Duration;

use super::*;

const SETTINGS: &str = "x-xtask:
  db_service: db
  web_service: web
  migrate_service: migrate
  health_path: /healthz
";

fn merged(services: &str) -> Model {
    Model::parse(&format!("services:\n{services}{SETTINGS}")).unwrap()
}

fn dev() -> Model {
    merged(
        "  db:
    ports: [{ host_ip: 127.0.0.1, target: 5432, published: '5433' }]
  web:
    ports: [{ host_ip: 127.0.0.1, target: 8000, published: '8000' }]
",
    )
}

fn prod() -> Model {
    merged(
        "  db: {}
  web:
    ports: [{ target: 8000, published: '8080' }]
",
    )
}

fn stack(env: &str) -> Stack {
    Stack::new(env, "travial", crate::docker::Engine::Local)
}

fn lines(steps: &[Step]) -> Vec<String> {
    steps.iter().map(ToString::to_string).collect()
}

const OPTIONS: Options = Options {
    build: true,
    timeout: Duration::from_secs(60),
};

#[test]
fn dev_probes_postgres_and_web_through_their_published_ports() {
    let steps = plan(&stack("dev"), &dev(), &OPTIONS).unwrap();
    let compose =
        "docker compose -p travial-dev -f compose/compose.yaml -f compose/compose.dev.yaml";
    assert_eq!(
        lines(&steps),
        [
            format!("{compose} build"),
            format!("{compose} up --detach --no-build db"),
            "cargo xtask wait postgres://127.0.0.1:5433 --timeout 60s".to_owned(),
            format!("{compose} run --rm --no-deps migrate"),
            format!("{compose} up --detach --no-build --no-deps --force-recreate web"),
            "cargo xtask wait http://127.0.0.1:8000/healthz --timeout 60s".to_owned(),
        ]
    );
    assert_eq!(
        steps[2].diagnose[0].to_string(),
        format!("{compose} logs --tail 30 db")
    );
}

#[test]
fn prod_follows_the_engines_healthcheck_where_the_db_port_is_not_published() {
    let options = Options {
        build: false,
        timeout: Duration::from_secs(90),
    };
    let steps = plan(&stack("prod"), &prod(), &options).unwrap();
    let compose =
        "docker compose -p travial-prod -f compose/compose.yaml -f compose/compose.prod.yaml";
    assert_eq!(
        lines(&steps),
        [
            format!("{compose} up --detach --no-build --wait --wait-timeout 90 db"),
            format!("{compose} run --rm --no-deps migrate"),
            format!("{compose} up --detach --no-build --no-deps --force-recreate web"),
            "cargo xtask wait http://127.0.0.1:8080/healthz --timeout 90s".to_owned(),
        ]
    );
    assert!(!steps[0].diagnose.is_empty());
    assert!(steps[1].on_failure.contains("web was not started"));
}

#[test]
fn down_keeps_the_data_unless_asked() {
    let stack = stack("dev");
    let keep = super::super::down::step(&stack, false).to_string();
    assert!(keep.ends_with("down --remove-orphans"), "{keep}");
    let remove = super::super::down::step(&stack, true).to_string();
    assert!(
        remove.ends_with("down --remove-orphans --volumes"),
        "{remove}"
    );
}

#[test]
fn no_step_of_a_deploy_removes_volumes() {
    for merged in [dev(), prod()] {
        let steps = plan(&stack("dev"), &merged, &OPTIONS).unwrap();
        assert!(
            lines(&steps)
                .iter()
                .all(|line| !line.contains("--volumes") && !line.contains(" down"))
        );
    }
}
