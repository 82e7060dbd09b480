//! The database's safety net end to end (issue: backups tied to migrations, restores known
//! to work), on this machine's engine: a backup, rows deleted, a restore that brings them
//! back while web keeps its container and the proxy shows the maintenance page; a backup
//! taken while a client writes is consistent; a dump cut short or altered fails `verify`;
//! a restore without a terminal and without `--yes` changes nothing; a deploy backs up
//! only when its image brings migrations; `rollback --restore` goes back to the data from
//! before them; the scheduled service backs up on the host and `backup pull` copies it.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use serde_json::Value;

use crate::e2e::{self, Sandbox, assert_success, exclusive, http, image, load::Load, stderr};

const PLAYER: &str = r#"{"name":"ann","city":"Rome","birthdate":"1990-05-17"}"#;

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// dev deployed, with ann and `scores` scores of hers.
fn deployed(name: &str, scores: u32) -> Sandbox {
    let sandbox = Sandbox::new(name);
    assert_success(
        &sandbox.xtask(&["deploy", "dev", "--no-build"]),
        "deploy dev",
    );
    let (status, body) = http("POST", &sandbox.web_url("/api/players"), Some(PLAYER)).unwrap();
    assert_eq!(status, 201, "{body}");
    for points in 1..=scores {
        let score = format!(r#"{{"place":"Forum","points":{points}}}"#);
        let url = sandbox.web_url("/api/players/ann/scores");
        assert_eq!(http("POST", &url, Some(&score)).unwrap().0, 201);
    }
    sandbox
}

/// The manifests in the sandbox's backup directory, oldest first.
fn manifests(sandbox: &Sandbox) -> Vec<Value> {
    let dir = sandbox.backups().join("dev");
    let mut found: Vec<Value> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "json"))
                .map(|entry| {
                    serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap()
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|manifest: &Value| manifest["id"].as_str().unwrap().to_owned());
    found
}

fn ann(sandbox: &Sandbox) -> (u16, String) {
    http("GET", &sandbox.web_url("/api/players/ann"), None).unwrap()
}

fn web_container(sandbox: &Sandbox) -> String {
    let ps = sandbox.compose("dev", &["ps", "--quiet", "web"]);
    String::from_utf8_lossy(&ps.stdout).trim().to_owned()
}

/// An answer's status and whether it was the maintenance page, or why there was none.
type Answer = Result<(u16, bool), String>;

/// What a client sees while something runs, polling until stopped.
struct Watcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Answer>>>,
    worker: Option<thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(url: String) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let worker = {
            let (stop, seen) = (stop.clone(), seen.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let answer = http("GET", &url, None)
                        .map(|(status, body)| (status, body.contains("Back soon")));
                    seen.lock().unwrap().push(answer);
                    thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Watcher {
            stop,
            seen,
            worker: Some(worker),
        }
    }

    fn finish(mut self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        self.worker.take().unwrap().join().unwrap();
        self.seen.lock().unwrap().clone()
    }
}

#[test]
fn a_restore_brings_deleted_rows_back_behind_the_maintenance_page_without_a_redeploy() {
    let _one_at_a_time = exclusive();
    let sandbox = deployed("restore", 3);
    let backup = sandbox.xtask(&["backup", "dev"]);
    assert_success(&backup, "backup dev");
    assert!(
        stdout(&backup).contains("4 tables, 8 rows, migrations up to V3"),
        "{}",
        stdout(&backup)
    );
    let taken = manifests(&sandbox);
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0]["tables"]["public.players"], 1);
    assert_eq!(taken[0]["tables"]["public.scores"], 3);
    assert_eq!(taken[0]["migrations"], serde_json::json!([1, 2, 3]));
    let id = taken[0]["id"].as_str().unwrap().to_owned();
    let dump = sandbox.backups().join("dev").join(format!("{id}.dump"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&dump).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the dump may be read by others");

    // The data lost, through the console: SQL on stdin, as the owner, no password.
    let deleted = sandbox.xtask_input(
        &["psql", "dev"],
        "DELETE FROM scores; DELETE FROM players;\n",
    );
    assert_success(&deleted, "psql dev");
    assert_eq!(ann(&sandbox).0, 404);

    // Without a terminal to ask on and without --yes, nothing happens.
    let refused = sandbox.xtask_input(&["restore", "dev"], "dev\n");
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("there is no terminal to ask on"),
        "{}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("pass --yes"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(ann(&sandbox).0, 404, "a refused restore restored");
    assert_eq!(
        manifests(&sandbox).len(),
        1,
        "a refused restore took a backup"
    );

    let web = web_container(&sandbox);
    let watcher = Watcher::start(sandbox.web_url("/api/players/ann"));
    thread::sleep(Duration::from_millis(200));
    let restore = sandbox.xtask(&["restore", "dev", "--yes"]);
    thread::sleep(Duration::from_millis(300));
    let seen = watcher.finish();
    assert_success(&restore, "restore dev --yes");
    let (status, body) = ann(&sandbox);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""score_count":3"#), "{body}");
    assert_eq!(web_container(&sandbox), web, "web was replaced");
    // Before: not found (deleted); while it swapped: the maintenance page; after: found.
    // Never an error of the proxy or a refused connection.
    let pages = seen
        .iter()
        .filter(|answer| matches!(answer, Ok((503, true))))
        .count();
    assert!(pages > 0, "no maintenance page while restoring: {seen:?}");
    for answer in &seen {
        assert!(
            matches!(answer, Ok((200 | 404, false)) | Ok((503, true))),
            "{answer:?} while restoring, in {seen:?}"
        );
    }
    assert_eq!(seen.last(), Some(&Ok((200, false))));

    // The data it replaced was backed up first, and the history says so.
    let after = manifests(&sandbox);
    assert_eq!(after.len(), 2);
    assert_eq!(after[1]["kind"], "restore");
    assert_eq!(after[1]["tables"]["public.players"], 0);
    let history = sandbox.xtask(&["history", "dev", "--json"]);
    let records: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(records[0]["command"], "restore");
    assert_eq!(records[0]["result"], "succeeded");
    assert_eq!(records[0]["backup"], after[1]["id"]);
    // web's role still reads and writes: grants came back with the migrations.
    let score = r#"{"place":"Colosseum","points":7}"#;
    let url = sandbox.web_url("/api/players/ann/scores");
    assert_eq!(http("POST", &url, Some(score)).unwrap().0, 201);
    let list = sandbox.xtask(&["backup", "list", "dev"]);
    assert_success(&list, "backup list");
    assert!(stdout(&list).contains(&id), "{}", stdout(&list));
}

#[test]
fn a_backup_under_writes_is_consistent_and_verify_catches_a_cut_or_altered_dump() {
    let _one_at_a_time = exclusive();
    let sandbox = deployed("consistent", 1);
    let load = Load::start(
        &format!("http://127.0.0.1:{}", sandbox.var("WEB_PORT")),
        "ann",
    );
    thread::sleep(Duration::from_millis(500));
    let backup = sandbox.xtask(&["backup", "dev"]);
    thread::sleep(Duration::from_millis(500));
    let results = load.finish();
    assert_success(&backup, "backup dev under load");
    results.assert_nothing_lost();
    // Restored into a throwaway server, each table holds what the manifest counted, though
    // scores were written all along.
    let verify = sandbox.xtask(&["backup", "verify", "dev"]);
    assert_success(&verify, "verify");
    assert!(
        stdout(&verify).contains("as its manifest says"),
        "{}",
        stdout(&verify)
    );
    let taken = manifests(&sandbox);
    let id = taken[0]["id"].as_str().unwrap();
    let counted = taken[0]["tables"]["public.scores"].as_u64().unwrap();
    assert!(counted > 1, "no score written while backing up: {counted}");

    let dump = sandbox.backups().join("dev").join(format!("{id}.dump"));
    let whole = std::fs::read(&dump).unwrap();
    std::fs::write(&dump, &whole[..whole.len() / 2]).unwrap();
    let cut = sandbox.xtask(&["backup", "verify", "dev", id]);
    assert_eq!(cut.status.code(), Some(1));
    assert!(stderr(&cut).contains("truncated"), "{}", stderr(&cut));
    let mut altered = whole.clone();
    let middle = altered.len() / 2;
    altered[middle] ^= 0xff;
    std::fs::write(&dump, &altered).unwrap();
    let changed = sandbox.xtask(&["backup", "verify", "dev", id]);
    assert_eq!(changed.status.code(), Some(1));
    assert!(stderr(&changed).contains("altered"), "{}", stderr(&changed));
    // Nor does a restore take it.
    let restore = sandbox.xtask(&["restore", "dev", id, "--yes"]);
    assert_eq!(restore.status.code(), Some(1));
    assert!(stderr(&restore).contains("altered"), "{}", stderr(&restore));
    assert_eq!(ann(&sandbox).0, 200);
}

#[test]
fn a_deploy_backs_up_only_when_its_image_brings_migrations() {
    let _one_at_a_time = exclusive();
    let mut sandbox = deployed("pending", 1);
    // The first deploy found no migration to protect.
    assert_eq!(manifests(&sandbox).len(), 0);
    let again = sandbox.xtask(&["deploy", "dev", "--no-build"]);
    assert_success(&again, "deploy again");
    assert!(
        stderr(&again).contains("no backup needed: the database has every migration"),
        "{}",
        stderr(&again)
    );
    assert_eq!(manifests(&sandbox).len(), 0);

    // An image that says it knows one more: a backup comes first, named in the history.
    image("migrations-4", "LABEL travial.migrations=4");
    sandbox.set("APP_TAG", "migrations-4");
    let deploy = sandbox.xtask(&["deploy", "dev", "--no-build"]);
    assert_success(&deploy, "deploy of an image with a new migration");
    let taken = manifests(&sandbox);
    assert_eq!(taken.len(), 1, "{}", stderr(&deploy));
    assert_eq!(taken[0]["kind"], "migrations");
    assert_eq!(taken[0]["tables"]["public.players"], 1);
    let log = stderr(&deploy);
    let backed_up = log.find("✓ backup ").unwrap();
    let migrated = log.find("✓ migrations applied").unwrap();
    assert!(backed_up < migrated, "{log}");
    let history = sandbox.xtask(&["history", "dev", "--json"]);
    let records: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(records[0]["backup"], taken[0]["id"]);

    // --no-backup skips it; `migrate` takes one like a deploy.
    let skipped = sandbox.xtask(&["deploy", "dev", "--no-build", "--no-backup"]);
    assert_success(&skipped, "deploy --no-backup");
    assert_eq!(manifests(&sandbox).len(), 1);
    let migrate = sandbox.xtask(&["migrate", "dev"]);
    assert_success(&migrate, "migrate");
    assert_eq!(manifests(&sandbox).len(), 2);

    // A backup that cannot be written stops the deploy before anything migrates.
    let blocked = sandbox.backups().join("blocked");
    std::fs::write(&blocked, "a file where the directory should be").unwrap();
    sandbox.set("BACKUP_DIR", blocked.to_str().unwrap());
    let failed = sandbox.xtask(&["deploy", "dev", "--no-build"]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let log = stderr(&failed);
    assert!(log.contains("nothing was migrated"), "{log}");
    assert!(!log.contains("✓ migrations applied"), "{log}");
    assert!(!log.contains("web switched"), "{log}");
    assert_eq!(ann(&sandbox).0, 200);
}

#[test]
fn rollback_restore_goes_back_to_the_data_from_before_the_migrations() {
    let _one_at_a_time = exclusive();
    let mut sandbox = deployed("rollback-restore", 2);
    let first = format!("{}:{}", e2e::APP_IMAGE, e2e::APP_TAG);
    image("migrations-4", "LABEL travial.migrations=4");
    sandbox.set("APP_TAG", "migrations-4");
    assert_success(
        &sandbox.xtask(&["deploy", "dev", "--no-build"]),
        "deploy of an image with a new migration",
    );
    let before = manifests(&sandbox)[0]["id"].as_str().unwrap().to_owned();
    // What that migration would have done: V4 applied, a score written under it.
    let applied = sandbox.xtask_input(
        &["psql", "dev"],
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) \
         VALUES (4, 'fake', '2026-12-05T00:00:00Z', '0');\n",
    );
    assert_success(&applied, "V4 marked applied");
    let score = r#"{"place":"Pantheon","points":9}"#;
    let url = sandbox.web_url("/api/players/ann/scores");
    assert_eq!(http("POST", &url, Some(score)).unwrap().0, 201);

    let refused = sandbox.xtask(&["rollback", "dev"]);
    assert_eq!(refused.status.code(), Some(1));
    let log = stderr(&refused);
    assert!(log.contains("knows the migrations up to V3"), "{log}");
    assert!(
        log.contains(&format!(
            "`cargo xtask rollback dev --restore` also restores backup {before}"
        )),
        "{log}"
    );
    let unasked = sandbox.xtask_input(&["rollback", "dev", "--restore"], "dev\n");
    assert_eq!(unasked.status.code(), Some(1));
    assert!(
        stderr(&unasked).contains("no terminal"),
        "{}",
        stderr(&unasked)
    );

    let rollback = sandbox.xtask(&["rollback", "dev", "--restore", "--yes"]);
    assert_success(&rollback, "rollback --restore");
    assert!(
        stdout(&rollback).contains(&format!("dev is back on {first}")),
        "{}",
        stdout(&rollback)
    );
    let (status, body) = ann(&sandbox);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""score_count":2"#), "{body}");
    let schema = sandbox.xtask_input(
        &["psql", "dev", "--", "--tuples-only", "--no-align"],
        "SELECT MAX(version) FROM refinery_schema_history;\n",
    );
    assert_eq!(stdout(&schema).trim(), "3");
    let history = sandbox.xtask(&["history", "dev", "--json"]);
    let records: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(records[0]["command"], "rollback");
    assert_eq!(records[0]["image"], first.as_str());
    assert_eq!(records[0]["result"], "succeeded");
}

#[test]
fn the_scheduled_service_backs_up_on_the_host_and_pull_copies_it_here() {
    let _one_at_a_time = exclusive();
    let mut sandbox = Sandbox::new("scheduled");
    sandbox.set("POSTGRES_PASSWORD", "sched:owner\\secret");
    sandbox.set("APP_DB_PASSWORD", "sched-app-secret");
    assert_success(
        &sandbox.xtask(&["deploy", "prod", "--no-build"]),
        "deploy prod",
    );
    let (status, body) = http("POST", &sandbox.web_url("/api/players"), Some(PLAYER)).unwrap();
    assert_eq!(status, 201, "{body}");
    // One at each start: restarted, it takes one with ann.
    let restart = sandbox.compose("prod", &["restart", "backup"]);
    assert!(restart.status.success(), "{restart:?}");
    let mut listed = String::new();
    for _ in 0..60 {
        let list = sandbox.xtask(&["backup", "list", "prod"]);
        listed = stdout(&list);
        if listed.matches("MB").count() >= 2 {
            break;
        }
        thread::sleep(Duration::from_millis(500));
    }
    assert!(listed.contains("the scheduled backups"), "{listed}");
    let pull = sandbox.xtask(&["backup", "pull", "prod"]);
    assert_success(&pull, "backup pull");
    let dir = sandbox.backups().join("prod");
    let pulled: Vec<Value> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "json"))
        .map(|entry| serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap())
        .collect();
    assert!(pulled.len() >= 2, "{}", stderr(&pull));
    assert!(
        pulled
            .iter()
            .all(|manifest| manifest["kind"] == "scheduled")
    );
    assert!(
        pulled
            .iter()
            .any(|manifest| manifest["tables"]["public.players"] == 1),
        "{pulled:?}"
    );
    let again = sandbox.xtask(&["backup", "pull", "prod"]);
    assert_success(&again, "backup pull again");
    assert!(
        stdout(&again).contains("nothing to pull"),
        "{}",
        stdout(&again)
    );
    let verify = sandbox.xtask(&["backup", "verify", "prod"]);
    assert_success(&verify, "verify a pulled backup");
}
