//! The swarm's plans, checked as the exact lines `--dry-run` prints, from facts written
//! here: no swarm needed.

use std::time::Duration;

use super::*;
use crate::{
    database::{
        Store,
        backup::{Before, Taken},
    },
    docker::{Secret, SshHost},
    image::{Image, Reference},
    stack::Target,
    swarm::{
        facts::{Modes, Object, Salt},
        nodes::Node,
        objects::versioned,
    },
};

const MANAGER: &str = "docker --host ssh://root@10.201.21.2";

fn engine(url: &str) -> Engine {
    Engine::over_ssh(&SshHost::parse(url).unwrap())
}

fn manager() -> Engine {
    engine("ssh://root@10.201.21.2")
}

fn model() -> Model {
    Model::parse(include_str!("../../tests/data/swarm/model.json")).unwrap()
}

fn release(registry: Option<&str>) -> Release {
    let repository = match registry {
        Some(registry) => format!("{registry}/travial/app"),
        None => "travial/app".to_owned(),
    };
    Release {
        image: Image {
            repository: "travial/app".into(),
            web_service: "web".into(),
        },
        runs: Reference::new(repository, "0a1b2c3"),
        registry: registry.map(str::to_owned),
        published: false,
        source: None,
    }
}

fn stack(release: &Release) -> Stack {
    let secrets = vec![
        Secret::new("POSTGRES_PASSWORD", "owner-secret"),
        Secret::new("APP_DB_PASSWORD", "app-secret"),
    ];
    release.applied_to(
        Stack::new("prod", "travial", Target::Swarm { manager: manager() }).with_secrets(secrets),
    )
}

fn node(id: &str, status: &str, ssh: Option<&str>) -> Node {
    Node {
        id: id.into(),
        status: status.into(),
        availability: "active".into(),
        ssh: ssh.map(str::to_owned),
        db: false,
    }
}

/// Two nodes, the stack's objects as a first deploy left them, the salt `salt`.
fn facts(salt: Salt) -> Facts {
    Facts {
        nodes: vec![
            node("n1", "ready", Some("ssh://root@10.201.21.2")),
            node("n2", "ready", Some("ssh://root@10.201.22.2")),
        ],
        secrets: Vec::new(),
        configs: Vec::new(),
        salt,
        modes: Modes {
            endpoint: "dnsrr".into(),
            publish: "host".into(),
            encrypted: true,
        },
    }
}

fn name(key: &str, value: &str) -> String {
    versioned("travial-prod", key, &Salt::Existing("salt".into()), value)
}

fn lines(steps: &[Step]) -> Vec<String> {
    steps.iter().map(ToString::to_string).collect()
}

fn ship() -> String {
    let to = |address: &str| {
        format!(
            "docker save travial/app:0a1b2c3 | docker --host ssh://root@{address} load --quiet    \
             # unless root@{address} has that image already"
        )
    };
    format!("{}\n{}", to("10.201.21.2"), to("10.201.22.2"))
}

fn objects() -> Vec<String> {
    let secret = |key: &str, value: &str, variable: &str| {
        format!(
            "{MANAGER} secret create --label travial.stack=travial-prod {} -  # password from ${variable}",
            name(key, value)
        )
    };
    let caddyfile = model().config_content("caddyfile").unwrap();
    vec![
        secret("app_db_password", "app-secret", "APP_DB_PASSWORD"),
        secret("postgres_password", "owner-secret", "POSTGRES_PASSWORD"),
        format!(
            "{MANAGER} config create --label travial.stack=travial-prod {} -  # the config caddyfile on stdin",
            name("caddyfile", &caddyfile)
        ),
    ]
}

fn stack_deploy(prune: bool) -> String {
    format!(
        "{MANAGER} stack deploy --detach=true --quiet --compose-file - {}--resolve-image never travial-prod  \
         # the stack file on stdin, web's image <the ID of travial/app:0a1b2c3>; \
         unless no service changes, then until those that do converge",
        if prune { "--prune " } else { "" }
    )
}

/// A deploy's job: skipped when it would change nothing.
fn deploy_job() -> String {
    format!(
        "# unless the database has every migration of the image and web's role is as set:\n{}",
        job()
    )
}

fn job() -> String {
    format!(
        "{MANAGER} service create --detach --mode replicated-job --restart-condition none --no-resolve-image \
         --name travial-prod_migrate --network travial-prod_default \
         --constraint node.labels.travial.db==true \
         --label com.docker.stack.namespace=travial-prod --container-label com.docker.stack.namespace=travial-prod \
         --secret 'source={},target=postgres_password' --secret 'source={},target=app_db_password' \
         --env APP_DB_PASSWORD_FILE=/run/secrets/app_db_password --env APP_DB_USER=travial_app \
         --env APP_LOG_FORMAT=json --env DATABASE_PASSWORD_FILE=/run/secrets/postgres_password \
         --env DATABASE_URL=postgres://travial@db:5432/travial '<the ID of travial/app:0a1b2c3>' migrate\n\
         {MANAGER} service ps travial-prod_migrate    # until Complete or Failed\n\
         {MANAGER} service rm travial-prod_migrate",
        name("postgres_password", "owner-secret"),
        name("app_db_password", "app-secret"),
    )
}

const CONVERGED: &str = "docker --host ssh://root@10.201.21.2 service inspect travial-prod_web    \
    # updated, not rolled back, on travial/app:0a1b2c3";

const PRUNE: &str = "docker --host ssh://root@10.201.21.2 secret ls --filter label=travial.stack=travial-prod \
    --format '{{.Name}}\t{{.CreatedAt}}'\n\
    docker --host ssh://root@10.201.21.2 config ls --filter label=travial.stack=travial-prod \
    --format '{{.Name}}\t{{.CreatedAt}}'\n\
    docker --host ssh://root@10.201.21.2 secret rm '<older versions>'    # each but the current and the previous version";

fn plan_of<'a>(
    stack: &'a Stack,
    model: &'a Model,
    facts: &'a Facts,
    manager: &'a Engine,
) -> Plan<'a> {
    Plan::new(stack, manager, model, facts, Duration::from_secs(60))
}

#[test]
fn a_first_deploy_sends_the_image_makes_every_object_then_migrates_between_two_stack_deploys() {
    let (release, model, manager) = (release(None), model(), manager());
    let stack = stack(&release);
    let facts = facts(Salt::Existing("salt".into()));
    let steps = plan_of(&stack, &model, &facts, &manager)
        .deploy(&release, Build::Skip, &Before::Nothing)
        .unwrap();
    let mut expected = vec![ship()];
    expected.extend(objects());
    expected.extend([
        stack_deploy(false),
        deploy_job(),
        stack_deploy(true),
        CONVERGED.into(),
        PRUNE.into(),
    ]);
    assert_eq!(lines(&steps), expected);
    let done: Vec<&str> = steps.iter().map(|step| step.done.as_str()).collect();
    assert_eq!(
        done[4..8],
        [
            "db and proxy converged on root@10.201.21.2",
            "migrations applied on root@10.201.21.2",
            "stack deployed on root@10.201.21.2",
            "web converged on travial/app:0a1b2c3",
        ]
    );
    assert_eq!(steps[7].starts.as_deref(), Some("web"));
}

#[test]
fn what_the_swarm_has_already_is_not_made_again() {
    let (release, model, manager) = (release(None), model(), manager());
    let stack = stack(&release);
    let caddyfile = model.config_content("caddyfile").unwrap();
    let object = |name: String| Object {
        name,
        stack: Some("travial-prod".into()),
    };
    let facts = Facts {
        secrets: vec![
            object(name("app_db_password", "app-secret")),
            object(name("postgres_password", "owner-secret")),
        ],
        configs: vec![object(name("caddyfile", &caddyfile))],
        ..facts(Salt::Existing("salt".into()))
    };
    let steps = plan_of(&stack, &model, &facts, &manager)
        .deploy(&release, Build::Skip, &Before::Nothing)
        .unwrap();
    assert_eq!(
        lines(&steps),
        [
            ship(),
            stack_deploy(false),
            deploy_job(),
            stack_deploy(true),
            CONVERGED.into(),
            PRUNE.into()
        ]
    );
}

#[test]
fn the_first_deploy_makes_the_salt_first_and_a_dry_run_names_nothing_derived_from_a_value() {
    let (release, model, manager) = (release(None), model(), manager());
    let stack = stack(&release);
    let facts_new = facts(Salt::New("drawn-here".into()));
    let steps = plan_of(&stack, &model, &facts_new, &manager)
        .deploy(&release, Build::Skip, &Before::Nothing)
        .unwrap();
    assert_eq!(
        steps[1].to_string(),
        format!("{MANAGER} config create travial-xtask-salt -  # the salt, drawn here on stdin")
    );
    let secret = versioned(
        "travial-prod",
        "postgres_password",
        &Salt::New("drawn-here".into()),
        "owner-secret",
    );
    assert!(lines(&steps).iter().any(|line| line.contains(&secret)));

    let facts_unknown = facts(Salt::Unknown);
    let printed = lines(
        &plan_of(&stack, &model, &facts_unknown, &manager)
            .deploy(&release, Build::Skip, &Before::Nothing)
            .unwrap(),
    )
    .join("\n");
    assert!(
        printed.contains(
            "secret create --label travial.stack=travial-prod 'travial-prod_postgres_password_<version>' -"
        ),
        "{printed}"
    );
    assert!(!printed.contains("travial-xtask-salt"), "{printed}");
}

#[test]
fn through_a_registry_nothing_is_sent_and_the_nodes_pull_with_the_credentials_passed_on() {
    let (release, model, manager) = (release(Some("127.0.0.1:5000")), model(), manager());
    let stack = stack(&release);
    let facts = facts(Salt::Existing("salt".into()));
    let printed = lines(
        &plan_of(&stack, &model, &facts, &manager)
            .deploy(&release, Build::Skip, &Before::Nothing)
            .unwrap(),
    );
    assert_eq!(
        printed[..2],
        [
            "docker tag travial/app:0a1b2c3 127.0.0.1:5000/travial/app:0a1b2c3",
            "docker push --quiet 127.0.0.1:5000/travial/app:0a1b2c3",
        ]
    );
    assert!(printed.iter().all(|line| !line.contains("docker save")));
    assert!(
        printed[5].contains(
            "stack deploy --detach=true --quiet --compose-file - --with-registry-auth travial-prod  \
             # the stack file on stdin, web's image 127.0.0.1:5000/travial/app:0a1b2c3; \
             unless no service changes, then until those that do converge"
        ),
        "{}",
        printed[5]
    );
    assert!(printed[6].contains(" --with-registry-auth --name travial-prod_migrate "));
}

#[test]
fn a_rollback_brings_the_image_back_without_migrating_and_migrate_leaves_web_alone() {
    let (release, model, manager) = (release(None), model(), manager());
    let stack = stack(&release);
    let facts = facts(Salt::Existing("salt".into()));
    let plan = plan_of(&stack, &model, &facts, &manager);
    let mut expected = vec![ship()];
    expected.extend(objects());
    expected.extend([stack_deploy(true), CONVERGED.into(), PRUNE.into()]);
    assert_eq!(lines(&plan.rollback(&release).unwrap()), expected);

    let migrate = plan.migrate(&release, &Before::Nothing).unwrap();
    let mut expected = vec![ship()];
    expected.extend(objects());
    expected.extend([stack_deploy(false), job()]);
    assert_eq!(lines(&migrate), expected);
    assert_eq!(migrate[4].done, "db converged on root@10.201.21.2");
}

#[test]
fn a_node_without_its_address_cannot_be_sent_the_image_and_a_node_down_is_skipped() {
    let (release, model, manager) = (release(None), model(), manager());
    let stack = stack(&release);
    let mut down = facts(Salt::Existing("salt".into()));
    down.nodes[1].status = "down".into();
    let steps = plan_of(&stack, &model, &down, &manager)
        .deploy(&release, Build::Skip, &Before::Nothing)
        .unwrap();
    assert_eq!(steps[0].to_string().lines().count(), 1);
    let mut unlabelled = facts(Salt::Existing("salt".into()));
    unlabelled.nodes[1] = node("n2", "ready", None);
    let err = plan_of(&stack, &model, &unlabelled, &manager)
        .deploy(&release, Build::Skip, &Before::Nothing)
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .starts_with("node n2 has no `travial.ssh` label"),
        "{err}"
    );
}

#[test]
fn down_keeps_the_data_unless_asked_and_then_removes_each_nodes_volumes_and_the_objects() {
    let (release, model, manager) = (release(None), model(), manager());
    let stack = stack(&release);
    let facts = Facts {
        secrets: vec![
            Object {
                name: "travial-prod_postgres_password_0123".into(),
                stack: Some("travial-prod".into()),
            },
            Object {
                name: "travial-dev_postgres_password_4567".into(),
                stack: Some("travial-dev".into()),
            },
        ],
        ..facts(Salt::Existing("salt".into()))
    };
    let gone = |address: &str| {
        format!(
            "docker --host ssh://root@{address} ps --all --format '{{{{.ID}}}} {{{{.State}}}}' \
             --filter label=com.docker.stack.namespace=travial-prod    # until empty, the stopped ones removed"
        )
    };
    let keep = lines(&down(&stack, &manager, &model, &facts, Volumes::Keep).unwrap());
    assert_eq!(
        keep,
        [
            format!("{MANAGER} stack rm travial-prod"),
            format!("{}\n{}", gone("10.201.21.2"), gone("10.201.22.2")),
        ]
    );
    let remove = lines(&down(&stack, &manager, &model, &facts, Volumes::Remove).unwrap());
    assert_eq!(
        remove[2..],
        [
            "docker --host ssh://root@10.201.21.2 volume rm --force travial-prod_db-data \
             travial-prod_proxy-config travial-prod_proxy-data"
                .to_owned(),
            "docker --host ssh://root@10.201.22.2 volume rm --force travial-prod_db-data \
             travial-prod_proxy-config travial-prod_proxy-data"
                .to_owned(),
            format!("{MANAGER} secret rm travial-prod_postgres_password_0123"),
        ]
    );
}

#[test]
fn a_backup_comes_after_the_database_converged_and_before_the_job() {
    let (release, model, manager) = (release(None), model(), manager());
    let stack = stack(&release);
    let facts = facts(Salt::Existing("salt".into()));
    let before = Before::Backup {
        store: Store::new(std::path::Path::new("/srv/travial"), "prod", None, None),
        taken: Taken::default(),
    };
    let plan = plan_of(&stack, &model, &facts, &manager);
    let backup = "# if travial/app:0a1b2c3 brings migrations db's database lacks: a backup into \
                  backups/prod/<ID>.dump, as `cargo xtask backup prod` takes it";
    let deploy = lines(&plan.deploy(&release, Build::Skip, &before).unwrap());
    assert_eq!(deploy[5..7], [backup.to_owned(), deploy_job()]);
    let migrate = lines(&plan.migrate(&release, &before).unwrap());
    assert_eq!(migrate[5..], [backup.to_owned(), job()]);
    assert!(
        lines(&plan.rollback(&release).unwrap())
            .iter()
            .all(|line| !line.contains("backup")),
        "a rollback migrates nothing"
    );
}
