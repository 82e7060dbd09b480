//! A Swarm cluster (issue: Swarm) of two real engines, each in a network namespace of its
//! own and reached over real SSH, which start without the app image and with no registry:
//! `swarm init` makes the cluster (and, run again, changes nothing); a deploy sends the
//! image to both nodes and runs web on both, each node's proxy answering; a redeploy
//! under load loses no request; an image that never gets healthy is rolled back by Swarm
//! itself while the old one keeps serving; `rollback` goes back; `migrate` runs its job on
//! the swarm; a drained node's work moves to the other; `down` keeps the data, `down
//! --volumes` leaves nothing.
//!
//! One cluster serves every test here: made (and first deployed) by the first test that
//! needs it, removed after the last. Each test brings the stack to the state it starts
//! from, so that any one of them runs alone too.
//!
//! This kernel has no IPVS: the stack uses DNS round robin and host-mode ports
//! (SWARM_ENDPOINT_MODE, SWARM_PUBLISH_MODE), as ../shared/SANDBOX.md says; nor ESP, which
//! the encrypted overlay needs between nodes (`ip xfrm state add … proto esp` is refused):
//! the stack's network here is plain (SWARM_OVERLAY); a unit test checks the default.

use std::{
    ops::{Deref, DerefMut},
    process::{Command, Output},
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use crate::e2e::{
    self, Sandbox, assert_success, exclusive,
    hosts::{self, Host, Hosts},
    http, image,
    load::Load,
    stderr,
};

/// The tests of this module: the last one to end removes the cluster.
const TESTS: usize = 15;
const PLAYER: &str = r#"{"name":"ann","city":"Rome","birthdate":"1990-05-17"}"#;

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn text(output: Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

struct Cluster {
    hosts: Hosts,
    sandbox: Sandbox,
    /// What the first `swarm init` and the first deploy printed.
    first_init: Output,
    first_deploy: Output,
    /// web's tasks on the manager and on the worker after the first deploy.
    first_placement: (usize, usize),
}

static CLUSTER: Mutex<Option<Result<Cluster, String>>> = Mutex::new(None);
static LEFT: AtomicUsize = AtomicUsize::new(TESTS);

/// The cluster, for one test at a time; made by the first.
struct Shared {
    cluster: MutexGuard<'static, Option<Result<Cluster, String>>>,
    _one_at_a_time: MutexGuard<'static, ()>,
}

fn cluster() -> Shared {
    let one_at_a_time = exclusive();
    let mut cluster = CLUSTER
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if cluster.is_none() {
        let made = std::panic::catch_unwind(Cluster::start).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_default()
        });
        *cluster = Some(made);
    }
    Shared {
        cluster,
        _one_at_a_time: one_at_a_time,
    }
}

impl Deref for Shared {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        match self.cluster.as_ref().unwrap() {
            Ok(cluster) => cluster,
            Err(why) => panic!("the cluster could not be made: {why}"),
        }
    }
}

impl DerefMut for Shared {
    fn deref_mut(&mut self) -> &mut Cluster {
        match self.cluster.as_mut().unwrap() {
            Ok(cluster) => cluster,
            Err(why) => panic!("the cluster could not be made: {why}"),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if LEFT.fetch_sub(1, Ordering::SeqCst) == 1 {
            // Hosts and sandbox go: the namespaces, engines and stacks with them.
            self.cluster.take();
        }
    }
}

impl Cluster {
    fn start() -> Cluster {
        let mut hosts = Hosts::start(&[21, 22]);
        // The test registry, at the same address on every node as here.
        let registry_port: u16 = e2e::setting("TEST_REGISTRY")
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        for host in &mut hosts.hosts {
            host.forward(registry_port);
        }
        let mut sandbox = Sandbox::new("swarm");
        for (name, value) in [
            ("PATH", hosts.path()),
            ("POSTGRES_PASSWORD", "swarm-owner-secret".to_owned()),
            ("APP_DB_PASSWORD", "swarm-app-secret".to_owned()),
            ("SWARM_ENDPOINT_MODE", "dnsrr".to_owned()),
            ("SWARM_PUBLISH_MODE", "host".to_owned()),
            ("SWARM_OVERLAY", "plain".to_owned()),
        ] {
            sandbox.set(name, &value);
        }
        // Given to the nodes as a registry would, and named by ID: with a name alone, Swarm
        // asks Docker Hub for it at every task start (as the xtask avoids for the app's image).
        for name in ["POSTGRES_IMAGE", "PROXY_IMAGE"] {
            hosts.load(sandbox.var(name));
            let id = Command::new("docker")
                .args(["image", "inspect", "--format", "{{.Id}}", sandbox.var(name)])
                .output()
                .unwrap();
            sandbox.set(name, &text(id));
        }
        image("swarm-2", "");
        // Exits at once (a usage error): never healthy.
        image("swarm-broken", "CMD [\"fly\"]");
        let (manager, worker) = (hosts.hosts[0].url(), hosts.hosts[1].url());
        let first_init = sandbox.xtask(&["swarm", "init", &manager, &worker]);
        assert_success(&first_init, "swarm init");
        let first_deploy = sandbox.xtask(&[
            "deploy",
            "prod",
            "--swarm",
            "--host",
            &manager,
            "--no-build",
        ]);
        assert_success(&first_deploy, "the first swarm deploy");
        let mut cluster = Cluster {
            hosts,
            sandbox,
            first_init,
            first_deploy,
            first_placement: (0, 0),
        };
        cluster.first_placement = cluster.placement();
        cluster.add_player();
        cluster
    }

    fn manager(&self) -> &Host {
        &self.hosts.hosts[0]
    }

    fn worker(&self) -> &Host {
        &self.hosts.hosts[1]
    }

    /// `xtask ARGS prod --swarm --host MANAGER`, with the variables `vars` on top of the
    /// sandbox's.
    fn on_swarm(&self, vars: &[(&str, &str)], args: &[&str]) -> Output {
        let url = self.manager().url();
        let mut all = args.to_vec();
        all.extend(["prod", "--swarm", "--host", &url]);
        self.xtask(vars, &all)
    }

    fn xtask(&self, vars: &[(&str, &str)], args: &[&str]) -> Output {
        Command::new(e2e::XTASK)
            .args(args)
            .current_dir(e2e::root())
            .envs(self.sandbox.vars.iter().cloned())
            .envs(vars.iter().copied())
            .output()
            .unwrap()
    }

    fn url_of(&self, host: &Host) -> String {
        format!("http://{}:{}", host.address, self.sandbox.var("WEB_PORT"))
    }

    fn web(&self) -> String {
        format!("{}_web", self.sandbox.project("prod"))
    }

    fn on(&self) -> String {
        format!("on root@{}", self.manager().address)
    }

    /// The release web runs, if it runs.
    fn release(&self) -> Option<String> {
        let format = "{{index .Spec.Labels \"travial.release\"}}";
        let spec = self
            .manager()
            .docker(&["service", "inspect", "--format", format, &self.web()]);
        spec.status.success().then(|| text(spec))
    }

    /// web on `tag` of the test's image, sent over SSH: deployed unless it runs it already;
    /// and the player the reads ask for there.
    fn deployed(&self, tag: &str) {
        if self.release().as_deref() != Some(&format!("{}:{tag}", e2e::APP_IMAGE)) {
            let deploy = self.on_swarm(&[("APP_TAG", tag)], &["deploy", "--no-build"]);
            assert_success(&deploy, &format!("deploy of {tag}"));
        }
        self.add_player();
    }

    /// The player the reads ask for, there whatever the tests before did.
    fn add_player(&self) {
        let url = format!("{}/api/players", self.url_of(self.manager()));
        let (status, body) = http("POST", &url, Some(PLAYER)).unwrap();
        assert!(status == 201 || status == 409, "{status} {body}");
    }

    /// The player, asked through `host`'s proxy: its status and body.
    fn player_through(&self, host: &Host) -> (u16, String) {
        http(
            "GET",
            &format!("{}/api/players/ann", self.url_of(host)),
            None,
        )
        .unwrap()
    }

    /// How many of the service's tasks run on `host`'s engine.
    fn tasks_on(&self, host: &Host) -> usize {
        let filter = format!("label=com.docker.swarm.service.name={}", self.web());
        text(host.docker(&["ps", "--quiet", "--filter", &filter]))
            .lines()
            .count()
    }

    /// How many of web's tasks run on the manager and on the worker, once those a
    /// rolling update replaced have finished stopping (they drain for up to 15 s).
    fn placement(&self) -> (usize, usize) {
        let count = || (self.tasks_on(self.manager()), self.tasks_on(self.worker()));
        for _ in 0..60 {
            let (manager, worker) = count();
            if manager + worker <= 2 {
                return (manager, worker);
            }
            thread::sleep(Duration::from_millis(500));
        }
        count()
    }

    /// The release web runs, checked against the image it runs: named by its ID, which is
    /// the ID of that release here (no registry: nothing else could have been pulled).
    fn web_release(&self) -> String {
        let format =
            "{{index .Spec.Labels \"travial.release\"}} {{.Spec.TaskTemplate.ContainerSpec.Image}}";
        let spec =
            text(
                self.manager()
                    .docker(&["service", "inspect", "--format", format, &self.web()]),
            );
        let (release, image) = spec.split_once(' ').unwrap();
        let here = Command::new("docker")
            .args(["image", "inspect", "--format", "{{.Id}}", release])
            .output()
            .unwrap();
        assert_eq!(image, text(here), "web runs another image than {release}");
        release.to_owned()
    }
}

fn reference(tag: &str) -> String {
    format!("{}:{tag}", e2e::APP_IMAGE)
}

#[test]
fn swarm_init_makes_the_cluster_and_run_again_changes_nothing() {
    let cluster = cluster();
    let (manager, worker) = (cluster.manager(), cluster.worker());
    let log = stderr(&cluster.first_init);
    for done in [
        format!("✓ a swarm {}", cluster.on()),
        format!(
            "✓ root@{} joined the swarm of root@{}",
            worker.address, manager.address
        ),
        format!(
            "✓ root@{} labelled travial.ssh={}, travial.db=true",
            manager.address,
            manager.url()
        ),
        format!(
            "✓ root@{} labelled travial.ssh={}",
            worker.address,
            worker.url()
        ),
    ] {
        assert!(log.contains(&done), "no `{done}` in:\n{log}");
    }
    let nodes = text(manager.docker(&["node", "ls", "--format", "{{.Status}} {{.Availability}}"]));
    assert_eq!(
        nodes.lines().collect::<Vec<_>>(),
        ["Ready Active", "Ready Active"],
        "{nodes}"
    );
    let again = cluster.xtask(&[], &["swarm", "init", &manager.url(), &worker.url()]);
    assert_success(&again, "swarm init, again");
    let log = stderr(&again);
    assert!(log.contains("nothing to change"), "{log}");
    assert!(
        !log.contains('✓'),
        "the second init changed something:\n{log}"
    );
}

#[test]
fn a_first_deploy_sends_the_image_to_both_nodes_and_each_node_serves() {
    let cluster = cluster();
    let (manager, worker) = (cluster.manager(), cluster.worker());
    let first = reference(e2e::APP_TAG);
    let log = stderr(&cluster.first_deploy);
    for host in [manager, worker] {
        let sent = format!("sent {first} to root@{} (", host.address);
        assert!(log.contains(&sent), "no `{sent}` in:\n{log}");
    }
    let migrated = format!(
        "✓ migrations applied by {}_migrate {}",
        cluster.sandbox.project("prod"),
        cluster.on()
    );
    assert!(log.contains(&migrated), "{log}");
    assert!(
        log.contains(&format!("✓ {} runs {first} (2/2)", cluster.web())),
        "{log}"
    );
    let up = stdout(&cluster.first_deploy);
    assert!(
        up.contains(&format!(
            "prod is up {}: {}/, and on every node",
            cluster.on(),
            cluster.url_of(manager)
        )),
        "{up}"
    );
    assert_eq!(cluster.first_placement, (1, 1), "web is not on both nodes");
    // Whatever the tests before did, what is written through one node is read through the
    // other.
    cluster.deployed(e2e::APP_TAG);
    let (status, body) = cluster.player_through(worker);
    assert_eq!(status, 200, "{}", body);
    assert_eq!(
        cluster.sandbox.resources("prod"),
        Vec::<String>::new(),
        "something runs here"
    );
}

#[test]
fn status_and_logs_through_the_environments_defaults() {
    let cluster = cluster();
    cluster.deployed(e2e::APP_TAG);
    let manager = cluster.manager().url();
    let defaults = [
        ("PROD_HOST", manager.as_str()),
        ("PROD_ORCHESTRATOR", "swarm"),
    ];
    let status = cluster.xtask(&defaults, &["status", "prod", "--json"]);
    assert_success(&status, "status");
    let services: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let replicas: Vec<(&str, &str)> = services
        .as_array()
        .unwrap()
        .iter()
        .map(|service| {
            (
                service["service"].as_str().unwrap(),
                service["replicas"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        replicas,
        [
            ("backup", "1/1"),
            ("db", "1/1"),
            ("proxy", "2/2"),
            ("web", "2/2")
        ]
    );
    let logs = cluster.xtask(&defaults, &["logs", "prod", "web"]);
    assert_success(&logs, "logs");
    // As `docker service logs` gives them: the app's own log (its stderr) on stderr, each
    // task's once (those that ran before too, as Swarm keeps them).
    let lines = stderr(&logs);
    let mut tasks: Vec<&str> = lines
        .lines()
        .filter(|line| line.contains("listening on"))
        .filter_map(|line| line.split_whitespace().find(|word| word.contains("_web.")))
        .collect();
    let logged = tasks.len();
    tasks.sort();
    tasks.dedup();
    assert!(
        logged >= 2 && tasks.len() == logged,
        "one per task:\n{lines}"
    );
}

#[test]
fn a_new_image_rolls_out_one_task_at_a_time_losing_no_request() {
    let cluster = cluster();
    cluster.deployed(e2e::APP_TAG);
    let load = Load::start(&cluster.url_of(cluster.worker()), "ann");
    thread::sleep(Duration::from_secs(1));
    let redeploy = cluster.on_swarm(&[("APP_TAG", "swarm-2")], &["deploy", "--no-build"]);
    assert_success(&redeploy, "the redeploy with a new image");
    let results = load.finish();
    assert_eq!(cluster.web_release(), reference("swarm-2"));
    results.assert_nothing_lost();
}

#[test]
fn an_image_that_never_gets_healthy_is_rolled_back_by_swarm_and_the_old_keeps_serving() {
    let cluster = cluster();
    cluster.deployed("swarm-2");
    let load = Load::start(&cluster.url_of(cluster.worker()), "ann");
    let failed = cluster.on_swarm(&[("APP_TAG", "swarm-broken")], &["deploy", "--no-build"]);
    let results = load.finish();
    let log = stderr(&failed);
    assert_eq!(failed.status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "error: web did not converge on the new image: {} was rolled back to {}",
            cluster.web(),
            reference("swarm-2")
        )),
        "{log}"
    );
    assert!(
        log.contains("--- the tasks that did not make it:") && log.contains("non-zero exit"),
        "the failed tasks are not shown:\n{log}"
    );
    assert_eq!(cluster.web_release(), reference("swarm-2"));
    results.assert_nothing_lost();
    let history = cluster.on_swarm(&[], &["history"]);
    assert_success(&history, "history");
    let newest = stdout(&history)
        .lines()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let words: Vec<&str> = newest.split_whitespace().collect();
    assert_eq!(
        (words[2], words[3], words[4]),
        ("deploy", reference("swarm-broken").as_str(), "failed:"),
        "{newest}"
    );
}

#[test]
fn rollback_goes_back_to_the_image_that_served_before() {
    let cluster = cluster();
    cluster.deployed(e2e::APP_TAG);
    cluster.deployed("swarm-2");
    let rollback = cluster.on_swarm(&[], &["rollback"]);
    assert_success(&rollback, "rollback");
    let first = reference(e2e::APP_TAG);
    assert!(
        stdout(&rollback).contains(&format!("prod is back on {first} {}", cluster.on())),
        "{}",
        stdout(&rollback)
    );
    assert_eq!(cluster.web_release(), first);
    let history = cluster.on_swarm(&[], &["history"]);
    assert_success(&history, "history");
    let rows: Vec<(String, String, String)> = stdout(&history)
        .lines()
        .skip(1)
        .take(2)
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            (
                words[2].to_owned(),
                words[3].to_owned(),
                words[4].to_owned(),
            )
        })
        .collect();
    let row =
        |command: &str, image: &str| (command.to_owned(), image.to_owned(), "succeeded".to_owned());
    assert_eq!(
        rows,
        [
            row("rollback", &first),
            row("deploy", &reference("swarm-2"))
        ]
    );
}

#[test]
fn migrate_runs_its_job_on_the_swarm_and_leaves_web_as_it_is() {
    let cluster = cluster();
    cluster.deployed(e2e::APP_TAG);
    let manager = cluster.manager();
    let web_tasks = |host: &Host| {
        let filter = format!("label=com.docker.swarm.service.name={}", cluster.web());
        text(host.docker(&["ps", "--quiet", "--no-trunc", "--filter", &filter]))
    };
    let before = (web_tasks(manager), web_tasks(cluster.worker()));
    // As the environment's defaults say (x-xtask: host, orchestrator), the way a team runs
    // it: no --swarm, no --host.
    let url = manager.url();
    let migrate = cluster.xtask(
        &[("PROD_HOST", url.as_str()), ("PROD_ORCHESTRATOR", "swarm")],
        &["migrate", "prod", "--timeout", "30s"],
    );
    assert_success(&migrate, "migrate on the swarm");
    let log = stderr(&migrate);
    let migrated = format!(
        "✓ migrations applied by {}_migrate {}",
        cluster.sandbox.project("prod"),
        cluster.on()
    );
    assert!(log.contains(&migrated), "{log}");
    // Echoed as `docker --host ssh://… compose …` on a remote engine.
    let compose = log.lines().any(|line| {
        line.starts_with("$ ") && line.split_whitespace().any(|word| word == "compose")
    });
    assert!(!compose, "Compose was asked:\n{log}");
    let compose_project = format!(
        "label=com.docker.compose.project={}",
        cluster.sandbox.project("prod")
    );
    assert_eq!(
        text(manager.docker(&["ps", "--all", "--quiet", "--filter", &compose_project])),
        "",
        "a Compose container on the manager"
    );
    assert_eq!(
        (web_tasks(manager), web_tasks(cluster.worker())),
        before,
        "web was replaced"
    );
    let (status, body) = cluster.player_through(manager);
    assert_eq!(status, 200, "{}", body);
}

#[test]
fn a_drained_node_moves_its_work_to_the_other_and_the_service_stays_up() {
    let cluster = cluster();
    cluster.deployed(e2e::APP_TAG);
    let (manager, worker) = (cluster.manager(), cluster.worker());
    // Unlike an update (above: nothing lost), a drain is not a deploy of ours: we have seen
    // one request of 324 lost once (a POST answered 502 as the new task came up), so it
    // is held to keeping the service up, not to losing nothing.
    let load = Load::start(&cluster.url_of(manager), "ann");
    let worker_id = text(worker.docker(&["info", "--format", "{{.Swarm.NodeID}}"]));
    let drain = manager.docker(&["node", "update", "--availability", "drain", &worker_id]);
    assert!(drain.status.success(), "{drain:?}");
    let mut moved = false;
    for _ in 0..120 {
        if cluster.tasks_on(manager) == 2 && cluster.tasks_on(worker) == 0 {
            moved = true;
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    let active = manager.docker(&["node", "update", "--availability", "active", &worker_id]);
    assert!(active.status.success(), "{active:?}");
    assert!(moved, "web did not move off the drained node");
    // Back in service, the worker runs its proxy again (a global service's task).
    let mut serving = false;
    for _ in 0..120 {
        let health = http("GET", &format!("{}/healthz", cluster.url_of(worker)), None);
        if matches!(health, Ok((200, _))) {
            serving = true;
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    assert!(serving, "the worker's proxy did not come back");
    let (status, body) = cluster.player_through(manager);
    assert_eq!(status, 200, "{}", body);
    let results = load.finish();
    assert!(results.rate() > 50.0, "{results:?}");
    assert!(
        results.failures.len() * 100 <= results.sent as usize,
        "more than 1% lost while draining: {results:?}"
    );
}

#[test]
fn a_redeploy_of_what_runs_changes_nothing_over_one_connection_per_node() {
    let cluster = cluster();
    cluster.deployed(e2e::APP_TAG);
    let (manager, worker) = (cluster.manager(), cluster.worker());
    // Settled first: the deploy before this one may have changed something still.
    assert_success(
        &cluster.on_swarm(&[("APP_TAG", e2e::APP_TAG)], &["deploy", "--no-build"]),
        "a deploy",
    );
    let tasks = |host: &Host| {
        let filter = format!(
            "label=com.docker.stack.namespace={}",
            cluster.sandbox.project("prod")
        );
        text(host.docker(&["ps", "--quiet", "--filter", &filter]))
    };
    let before = (tasks(manager), tasks(worker));
    let logins = (manager.ssh_logins(), worker.ssh_logins());
    let again = cluster.on_swarm(&[("APP_TAG", e2e::APP_TAG)], &["deploy", "--no-build"]);
    assert_success(&again, "the same deploy again");
    let log = stderr(&again);
    for skipped in [
        "✓ backup, db and proxy unchanged",
        "✓ no migration to apply: ",
        "✓ backup, db, proxy and web unchanged",
    ] {
        assert!(log.contains(skipped), "no `{skipped}` in:\n{log}");
    }
    assert!(!log.contains("stack deploy"), "{log}");
    assert_eq!(
        (
            manager.ssh_logins() - logins.0,
            worker.ssh_logins() - logins.1
        ),
        (1, 1),
        "one connection per node (the worker's: does it have the image?)"
    );
    assert_eq!(
        (tasks(manager), tasks(worker)),
        before,
        "a container was replaced"
    );
}

#[test]
fn through_a_registry_each_node_pulls_and_nothing_is_sent_over_ssh() {
    let cluster = cluster();
    cluster.deployed(e2e::APP_TAG);
    let (manager, worker) = (cluster.manager(), cluster.worker());
    let registry = e2e::setting("TEST_REGISTRY");
    let config = e2e::DockerConfig::new("swarm-registry");
    let password = std::fs::read_to_string(e2e::setting("TEST_REGISTRY_PASSWORD_FILE")).unwrap();
    let (config_path, user) = (config.path(), e2e::setting("TEST_REGISTRY_USER"));
    let pulled = cluster.on_swarm(
        &[
            ("DOCKER_CONFIG", config_path.as_str()),
            ("DOCKER_USERNAME", user.as_str()),
            ("DOCKER_PASSWORD", password.trim()),
            ("APP_TAG", "swarm-2"),
        ],
        &["deploy", "--no-build", "--registry", &registry],
    );
    assert_success(&pulled, "deploy through the registry");
    let log = stderr(&pulled);
    assert!(!log.contains("sent "), "sent over SSH:\n{log}");
    let through = format!("{registry}/{}", reference("swarm-2"));
    let released = text(manager.docker(&[
        "service",
        "inspect",
        "--format",
        "{{index .Spec.Labels \"travial.release\"}} {{.Spec.TaskTemplate.ContainerSpec.Image}}",
        &cluster.web(),
    ]));
    assert!(
        released.starts_with(&format!("{through} {through}@sha256:")),
        "{released}"
    );
    let (on_manager, on_worker) = cluster.placement();
    assert_eq!(on_manager + on_worker, 2);
    assert!(
        !text(worker.docker(&[
            "image",
            "ls",
            "--quiet",
            &format!("{registry}/{}", e2e::APP_IMAGE)
        ]))
        .is_empty(),
        "the worker did not pull"
    );
}

#[test]
fn with_down_the_data_stays_and_with_volumes_nothing_is_left() {
    let cluster = cluster();
    cluster.deployed(e2e::APP_TAG);
    let (manager, worker) = (cluster.manager(), cluster.worker());
    assert_success(&cluster.on_swarm(&[], &["down"]), "down");
    assert_eq!(
        text(manager.docker(&["service", "ls", "--quiet"])),
        "",
        "services left"
    );
    let deploy = cluster.on_swarm(&[], &["deploy", "--no-build"]);
    assert_success(&deploy, "deploy after down");
    let (status, body) = cluster.player_through(worker);
    assert_eq!(status, 200, "down lost the data: {}", body);
    // Without a terminal to type the environment's name on, and without --yes: refused,
    // nothing removed.
    let refused = cluster.on_swarm(&[], &["down", "--volumes"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("on every node of the swarm"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(
        cluster.player_through(worker).0,
        200,
        "refused, yet removed"
    );
    assert_success(
        &cluster.on_swarm(&[], &["down", "--volumes", "--yes"]),
        "down --volumes --yes",
    );
    for host in [manager, worker] {
        for kind in [&["ps", "--all"][..], &["volume", "ls"]] {
            let mut args = kind.to_vec();
            args.push("--quiet");
            assert_eq!(
                text(host.docker(&args)),
                "",
                "{kind:?} left on {}",
                host.address
            );
        }
    }
    assert_eq!(
        text(manager.docker(&["secret", "ls", "--quiet"])),
        "",
        "secrets left"
    );
}

#[test]
fn backup_psql_maintenance_and_restore_go_to_the_databases_node() {
    let cluster = cluster();
    cluster.deployed(e2e::APP_TAG);
    let (manager, worker) = (cluster.manager(), cluster.worker());
    let backup = cluster.on_swarm(&[], &["backup"]);
    assert_success(&backup, "backup on the swarm");
    assert!(
        stdout(&backup).contains("migrations up to V3"),
        "{}",
        stdout(&backup)
    );
    let url = manager.url();
    let deleted = std::process::Command::new(e2e::XTASK)
        .args(["psql", "prod", "--swarm", "--host", &url])
        .current_dir(e2e::root())
        .envs(cluster.sandbox.vars.iter().cloned())
        .stdin(std::fs::File::open(write_sql("DELETE FROM players;\n")).unwrap())
        .output()
        .unwrap();
    assert_success(&deleted, "psql on the swarm");
    assert_eq!(cluster.player_through(worker).0, 404);

    // The maintenance page on every node's proxy, health checks aside.
    let maintenance = |mode: &str| {
        cluster.xtask(
            &[],
            &["maintenance", "prod", mode, "--swarm", "--host", &url],
        )
    };
    assert_success(&maintenance("on"), "maintenance on");
    for host in [manager, worker] {
        let (status, body) = cluster.player_through(host);
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("Back soon"), "{body}");
        let health = http("GET", &format!("{}/healthz", cluster.url_of(host)), None).unwrap();
        assert_eq!(health.0, 200);
    }
    assert_success(&maintenance("off"), "maintenance off");

    let restore = cluster.on_swarm(&[], &["restore", "--yes"]);
    assert_success(&restore, "restore on the swarm");
    for host in [manager, worker] {
        let (status, body) = cluster.player_through(host);
        assert_eq!(status, 200, "{body}");
    }
    // The stack's own scheduled service keeps backups beside the database.
    let list = cluster.on_swarm(&[], &["backup", "list"]);
    assert_success(&list, "backup list");
    assert!(
        stdout(&list).contains("the scheduled backups"),
        "{}",
        stdout(&list)
    );
}

/// SQL in a file, for a command's stdin.
fn write_sql(sql: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("travial-e2e-sql-{}", std::process::id()));
    std::fs::write(&path, sql).unwrap();
    path
}

#[test]
fn swarm_init_never_labels_a_second_node_for_the_database() {
    let cluster = cluster();
    let (manager, worker) = (cluster.manager(), cluster.worker());
    let id = |host: &Host| text(host.docker(&["info", "--format", "{{.Swarm.NodeID}}"]));
    let (manager_id, worker_id) = (id(manager), id(worker));
    // The worker made a manager too, then named first: it is not given the database.
    let promoted = manager.docker(&["node", "promote", &worker_id]);
    assert!(promoted.status.success(), "{promoted:?}");
    // A manager once it has joined the managers' consensus: until then its engine says not.
    hosts::wait_until("the promoted worker's manager role", || {
        text(worker.docker(&["info", "--format", "{{.Swarm.ControlAvailable}}"])) == "true"
    });
    let init = cluster.xtask(&[], &["swarm", "init", &worker.url(), &manager.url()]);
    let demoted = manager.docker(&["node", "demote", &worker_id]);
    assert_success(&init, "swarm init with the other manager first");
    assert!(demoted.status.success(), "{demoted:?}");
    assert!(
        stderr(&init).contains(&format!("the database stays on node {manager_id}")),
        "{}",
        stderr(&init)
    );
    let labelled = |node: &str| {
        text(manager.docker(&[
            "node",
            "inspect",
            "--format",
            "{{index .Spec.Labels \"travial.db\"}}",
            node,
        ]))
    };
    assert_eq!(labelled(&manager_id), "true");
    assert_ne!(labelled(&worker_id), "true", "a second database node");
}

#[test]
fn a_database_outage_restarts_no_web_task_which_answers_503_and_recovers_by_itself() {
    let cluster = cluster();
    cluster.deployed(e2e::APP_TAG);
    let (manager, worker) = (cluster.manager(), cluster.worker());
    let running = || {
        text(manager.docker(&[
            "service",
            "ps",
            "--quiet",
            "--filter",
            "desired-state=running",
            &cluster.web(),
        ]))
    };
    let before = running();
    let db = format!("{}_db", cluster.sandbox.project("prod"));
    let scale = |replicas: &str| {
        let scaled = manager.docker(&["service", "scale", "--detach", &format!("{db}={replicas}")]);
        assert!(scaled.status.success(), "{scaled:?}");
    };
    scale("0");
    // Under a client's reads through both nodes for 30 s: 503s (the database is
    // unavailable), never a refused connection or a proxy's error.
    let started = std::time::Instant::now();
    let mut statuses = std::collections::BTreeMap::new();
    while started.elapsed() < Duration::from_secs(30) {
        for host in [manager, worker] {
            let answer = http(
                "GET",
                &format!("{}/api/players/ann", cluster.url_of(host)),
                None,
            );
            let key = match answer {
                Ok((status, _)) => status.to_string(),
                Err(why) => why,
            };
            *statuses.entry(key).or_insert(0) += 1;
        }
        thread::sleep(Duration::from_millis(100));
    }
    scale("1");
    assert!(
        statuses.keys().all(|key| key == "503" || key == "200"),
        "{statuses:?}"
    );
    assert!(statuses.contains_key("503"), "{statuses:?}");
    assert_eq!(running(), before, "web tasks were restarted");
    let mut back = false;
    for _ in 0..120 {
        if cluster.player_through(worker).0 == 200 && cluster.player_through(manager).0 == 200 {
            back = true;
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    assert!(back, "web did not recover by itself");
    assert_eq!(running(), before, "web tasks were restarted");
}

#[test]
fn old_secret_versions_go_but_the_current_and_the_previous() {
    let cluster = cluster();
    cluster.deployed(e2e::APP_TAG);
    let manager = cluster.manager();
    let versions = || {
        let names = text(manager.docker(&["secret", "ls", "--format", "{{.Name}}"]));
        names
            .lines()
            .filter(|name| name.contains("_app_db_password_"))
            .count()
    };
    for password in ["swarm-app-secret-2", "swarm-app-secret-3"] {
        let rotated = cluster.on_swarm(&[("APP_DB_PASSWORD", password)], &["deploy", "--no-build"]);
        assert_success(&rotated, "a deploy with a new password");
    }
    assert_eq!(versions(), 2, "the current and the previous only");
    // Back to the cluster's own password, for the tests after.
    assert_success(
        &cluster.on_swarm(&[], &["deploy", "--no-build"]),
        "the password back",
    );
    assert_eq!(versions(), 2);
    assert_eq!(cluster.player_through(manager).0, 200);
}
