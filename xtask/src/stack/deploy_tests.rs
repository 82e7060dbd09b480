//! The exact plans, checked as the lines `--dry-run` prints.

use std::time::Duration;

use super::*;
use crate::{
    database::backup::Before,
    docker::Engine,
    image::{Image, Reference, Source, reference::Revision},
    swarm::Volumes,
};

fn merged(services: &str) -> Model {
    Model::parse(&format!(
        "services:\n{services}{}",
        crate::stack::model::TEST_SETTINGS
    ))
    .unwrap()
}

fn dev() -> Model {
    merged(
        "  db:
    ports: [{ host_ip: 127.0.0.1, target: 5432, published: '5433' }]
  web: {}
  proxy:
    ports: [{ host_ip: 127.0.0.1, target: 80, published: '8000' }]
",
    )
}

fn prod() -> Model {
    merged(
        "  db: {}
  web: {}
  proxy:
    ports: [{ target: 80, published: '8080' }, { target: 443, published: '8443' }]
",
    )
}

fn release(registry: Option<&str>) -> Release {
    let image = Image {
        repository: "travial/app".into(),
        web_service: "web".into(),
    };
    Release {
        runs: Reference::new(
            match registry {
                Some(registry) => format!("{registry}/travial/app"),
                None => "travial/app".into(),
            },
            "0a1b2c3",
        ),
        image,
        registry: registry.map(str::to_owned),
        published: false,
        source: Some(Source {
            version: "0.1.0".into(),
            repository_url: "https://github.com/travial/travial".into(),
            revision: Revision {
                short_sha: "0a1b2c3".into(),
                dirty: false,
                commit_time: "2026-11-24T16:00:00+00:00".into(),
            },
            full_sha: "0a1b2c3d4e".into(),
            migrations: 2,
        }),
    }
}

fn stack(env: &str, engine: Engine) -> Stack {
    let secret = crate::docker::Secret::new("APP_DB_PASSWORD", "s3cret");
    release(None).applied_to(
        Stack::new(env, "travial", Target::Compose { engine }).with_secrets(vec![secret]),
    )
}

fn remote() -> Engine {
    Engine::choose(
        &xshell::Shell::new().unwrap(),
        Some("ssh://root@10.201.1.2"),
        None,
    )
    .unwrap()
}

fn lines(steps: &[Step]) -> Vec<String> {
    steps.iter().map(ToString::to_string).collect()
}

const OPTIONS: Options = Options {
    build: Build::Image,
    timeout: Duration::from_secs(60),
    before: Before::Nothing,
};

const BUILD: &str = "APP_IMAGE=travial/app APP_TAG=0a1b2c3 docker compose -p travial -f compose/compose.yaml \
    build --build-arg VERSION=0.1.0 --build-arg REVISION=0a1b2c3d4e --build-arg CREATED=2026-11-24T16:00:00+00:00 \
    --build-arg SOURCE=https://github.com/travial/travial --build-arg MIGRATIONS=2 web    \
    # unless travial/app:0a1b2c3 was built from this commit already";

/// The switch's lines, for a stack whose compose lines start with `compose`.
fn switch(compose: &str, docker: &str, timeout: u64) -> String {
    format!(
        "# nothing of what follows if web runs this image, settings and secrets already\n\
         {compose} up --detach --no-build --no-deps --no-recreate --scale web=<running + 1> web  # with the secrets APP_DB_PASSWORD\n\
         {docker} exec '<the new web>' app healthcheck --ready    # until it succeeds, for at most {timeout} s\n\
         {compose} up --detach --no-build --no-deps proxy\n\
         {compose} exec -T -e 'UPSTREAMS=<the new web>:8000' proxy caddy reload --config /etc/caddy/Caddyfile --adapter caddyfile\n\
         {docker} stop --time 10 '<each old web>'\n\
         {docker} rm '<each old web>'"
    )
}

#[test]
fn dev_builds_the_revision_switches_web_and_probes_through_the_published_ports() {
    let steps = plan(
        &stack("dev", Engine::Local),
        &dev(),
        &OPTIONS,
        &release(None),
    )
    .unwrap();
    let compose = "APP_IMAGE=travial/app APP_TAG=0a1b2c3 docker compose -p travial-dev \
        -f compose/compose.yaml -f compose/compose.dev.yaml";
    assert_eq!(
        lines(&steps),
        [
            BUILD.to_owned(),
            format!("{compose} up --detach --no-build db  # with the secrets APP_DB_PASSWORD"),
            "cargo xtask wait postgres://127.0.0.1:5433 --timeout 60s".to_owned(),
            format!(
                "{compose} run --rm --no-deps migrate  # with the secrets APP_DB_PASSWORD    \
                 # unless the database has every migration of the image and web's role is as set"
            ),
            switch(compose, "docker", 60),
            "cargo xtask wait http://127.0.0.1:8000/healthz --timeout 60s".to_owned(),
        ]
    );
    assert_eq!(
        steps[2].diagnose[0].to_string(),
        format!("{compose} logs --tail 30 db")
    );
    assert_eq!(steps[4].done, "web switched");
    assert_eq!(steps[4].starts.as_deref(), Some("web"));
}

#[test]
fn prod_follows_the_engines_healthcheck_where_the_db_port_is_not_published() {
    let options = Options {
        build: Build::Skip,
        timeout: Duration::from_secs(90),
        before: Before::Nothing,
    };
    let steps = plan(
        &stack("prod", Engine::Local),
        &prod(),
        &options,
        &release(None),
    )
    .unwrap();
    let compose = "APP_IMAGE=travial/app APP_TAG=0a1b2c3 docker compose -p travial-prod \
        -f compose/compose.yaml -f compose/compose.prod.yaml";
    assert_eq!(
        lines(&steps),
        [
            format!(
                "{compose} up --detach --no-build --wait --wait-timeout 90 db  # with the secrets APP_DB_PASSWORD"
            ),
            format!(
                "{compose} run --rm --no-deps migrate  # with the secrets APP_DB_PASSWORD    \
                 # unless the database has every migration of the image and web's role is as set"
            ),
            switch(compose, "docker", 90),
            "cargo xtask wait http://127.0.0.1:8080/healthz --timeout 90s".to_owned(),
        ]
    );
    assert!(!steps[0].diagnose.is_empty());
    assert!(steps[1].on_failure.contains("web was not started"));
}

#[test]
fn a_remote_engine_gets_the_image_over_ssh_and_is_waited_for_through_itself() {
    let steps = plan(&stack("dev", remote()), &dev(), &OPTIONS, &release(None)).unwrap();
    let compose = "APP_IMAGE=travial/app APP_TAG=0a1b2c3 docker --host ssh://root@10.201.1.2 compose \
        -p travial-dev -f compose/compose.yaml -f compose/compose.dev.yaml";
    assert_eq!(
        lines(&steps),
        [
            BUILD.to_owned(),
            "docker save travial/app:0a1b2c3 | docker --host ssh://root@10.201.1.2 load --quiet    \
             # unless root@10.201.1.2 has that image already"
                .to_owned(),
            format!("{compose} up --detach --no-build --wait --wait-timeout 60 db  # with the secrets APP_DB_PASSWORD"),
            format!(
                "{compose} run --rm --no-deps migrate  # with the secrets APP_DB_PASSWORD    \
                 # unless the database has every migration of the image and web's role is as set"
            ),
            switch(compose, "docker --host ssh://root@10.201.1.2", 60),
        ]
    );
    assert_eq!(steps[2].done, "db ready on root@10.201.1.2");
    assert_eq!(steps[4].done, "web switched on root@10.201.1.2");
}

#[test]
fn with_a_registry_the_image_is_pushed_here_and_pulled_there() {
    let release = release(Some("127.0.0.1:5000"));
    let steps = plan(
        &release.applied_to(Stack::new(
            "prod",
            "travial",
            Target::Compose { engine: remote() },
        )),
        &prod(),
        &OPTIONS,
        &release,
    )
    .unwrap();
    let lines = lines(&steps);
    assert_eq!(
        lines[1..4],
        [
            "docker tag travial/app:0a1b2c3 127.0.0.1:5000/travial/app:0a1b2c3",
            "docker push --quiet 127.0.0.1:5000/travial/app:0a1b2c3",
            "docker --host ssh://root@10.201.1.2 pull --quiet 127.0.0.1:5000/travial/app:0a1b2c3",
        ]
    );
    assert!(
        lines[4].starts_with("APP_IMAGE=127.0.0.1:5000/travial/app APP_TAG=0a1b2c3 docker --host"),
        "{}",
        lines[4]
    );
}

#[test]
fn an_image_already_in_the_registry_is_pulled_never_pushed_again() {
    let release = Release {
        published: true,
        ..release(Some("127.0.0.1:5000"))
    };
    assert_eq!(
        lines(&release.steps(&remote(), Build::Skip).unwrap()),
        ["docker --host ssh://root@10.201.1.2 pull --quiet 127.0.0.1:5000/travial/app:0a1b2c3"]
    );
}

#[test]
fn down_keeps_the_data_unless_asked() {
    let stack = stack("dev", Engine::Local);
    let keep = super::super::down::step(&stack, Volumes::Keep).to_string();
    assert!(keep.ends_with("down --remove-orphans"), "{keep}");
    let remove = super::super::down::step(&stack, Volumes::Remove).to_string();
    assert!(
        remove.ends_with("down --remove-orphans --volumes"),
        "{remove}"
    );
}

#[test]
fn no_step_of_a_deploy_removes_volumes() {
    for merged in [dev(), prod()] {
        let steps = plan(&stack("dev", remote()), &merged, &OPTIONS, &release(None)).unwrap();
        assert!(
            lines(&steps)
                .iter()
                .all(|line| !line.contains("--volumes") && !line.contains(" down"))
        );
    }
}

#[test]
fn a_backup_comes_once_the_database_is_ready_and_before_the_migrations() {
    let options = Options {
        before: Before::Backup {
            store: crate::database::Store::new(std::path::Path::new("/srv/t"), "dev", None, None),
            taken: Default::default(),
        },
        ..OPTIONS
    };
    let steps = plan(
        &stack("dev", Engine::Local),
        &dev(),
        &options,
        &release(None),
    )
    .unwrap();
    let lines = lines(&steps);
    assert_eq!(
        lines[3],
        "# if travial/app:0a1b2c3 brings migrations db's database lacks: a backup into \
         backups/dev/<ID>.dump, as `cargo xtask backup dev` takes it"
    );
    assert!(
        lines[2].starts_with("cargo xtask wait postgres://"),
        "{}",
        lines[2]
    );
    assert!(
        lines[4].contains(" run --rm --no-deps migrate"),
        "{}",
        lines[4]
    );
    assert!(steps[3].on_failure.contains("nothing was migrated"));
}
