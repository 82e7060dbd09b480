//! Secrets end to end (issue: secrets that stay secret): prod deployed with passwords that
//! hold every awkward character, from a secrets file; the app works; the passwords are in
//! no container's configuration, no printed line, no process's arguments; web connects
//! as a role that may not change the schema. And the commands that only look at or stop a
//! stack need no secret at all.

use crate::e2e;

use std::{
    process::Command,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::Duration,
};

use crate::e2e::{Sandbox, assert_success, exclusive, http, stderr};

const PASSWORD: &str = "p@ss/w:rd %41?#x y'z";
const APP_PASSWORD: &str = "app p@ss/w:rd %41?#x";

/// A directory of the test's own with `prod.env`, mode 0600.
struct SecretsFile(std::path::PathBuf);

impl SecretsFile {
    fn new(name: &str) -> SecretsFile {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("travial-e2e-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("prod.env");
        std::fs::write(
            &file,
            format!(
                "# test secrets\nPOSTGRES_PASSWORD={PASSWORD}\nAPP_DB_PASSWORD=\"{APP_PASSWORD}\"\n"
            ),
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        SecretsFile(file)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for SecretsFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
    }
}

fn without_secrets(mut sandbox: Sandbox) -> Sandbox {
    sandbox
        .vars
        .retain(|(key, _)| key != "POSTGRES_PASSWORD" && key != "APP_DB_PASSWORD");
    sandbox
}

fn leaks(text: &str) -> Vec<&'static str> {
    [PASSWORD, APP_PASSWORD]
        .into_iter()
        .filter(|secret| text.contains(secret))
        .collect()
}

/// `psql` inside db, over its socket, as `user`: the output, or the error.
fn psql(sandbox: &Sandbox, user: &str, sql: &str) -> Result<String, String> {
    let output = sandbox.compose(
        "prod",
        &[
            "exec", "-T", "db", "psql", "-U", user, "-d", "travial", "-At", "-c", sql,
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match output.status.success() {
        true => Ok(stdout),
        false => Err(stderr(&output)),
    }
}

#[test]
fn prod_secrets_stay_out_of_containers_output_and_process_lists() {
    let _one_at_a_time = exclusive();
    let sandbox = without_secrets(Sandbox::new("secrets"));
    let secrets = SecretsFile::new("secrets");

    // Watch every process's arguments while the deploy runs.
    let deploying = AtomicBool::new(true);
    let (deploy, seen) = thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            let mut seen = Vec::new();
            while deploying.load(Ordering::Relaxed) {
                let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
                let list = String::from_utf8_lossy(&ps.stdout).into_owned();
                if !leaks(&list).is_empty() {
                    seen.push(list);
                }
                thread::sleep(Duration::from_millis(20));
            }
            seen
        });
        let deploy = sandbox.xtask(&["deploy", "prod", "--no-build", "--secrets", secrets.path()]);
        deploying.store(false, Ordering::Relaxed);
        (deploy, watcher.join().unwrap())
    });
    assert_success(&deploy, "deploy prod");
    assert!(
        seen.is_empty(),
        "a password was on a command line: {seen:?}"
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&deploy.stdout),
        stderr(&deploy)
    );
    assert_eq!(leaks(&printed), Vec::<&str>::new(), "{printed}");

    // The app works, through a role of its own.
    let player = r#"{"name":"ann","city":"Rome","birthdate":"1990-05-17"}"#;
    let (status, body) = http("POST", &sandbox.web_url("/api/players"), Some(player)).unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        http("GET", &sandbox.web_url("/readyz"), None).unwrap().0,
        200
    );

    // No container's configuration holds a password.
    let ids = sandbox.compose("prod", &["ps", "--all", "--quiet"]);
    let ids: Vec<String> = String::from_utf8_lossy(&ids.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 4, "db, proxy, web and the scheduled backups");
    let inspect = Command::new("docker")
        .arg("inspect")
        .args(&ids)
        .output()
        .unwrap();
    assert_success(&inspect, "docker inspect");
    assert_eq!(
        leaks(&String::from_utf8_lossy(&inspect.stdout)),
        Vec::<&str>::new()
    );

    // No container logged one, and no layer of the images they run holds one.
    for id in &ids {
        let logs = Command::new("docker").args(["logs", id]).output().unwrap();
        assert_success(&logs, "docker logs");
        let logged = format!(
            "{}{}",
            String::from_utf8_lossy(&logs.stdout),
            String::from_utf8_lossy(&logs.stderr)
        );
        assert_eq!(leaks(&logged), Vec::<&str>::new(), "{id}: {logged}");
        let image = Command::new("docker")
            .args(["inspect", "--format", "{{.Image}}", id])
            .output()
            .unwrap();
        let image = String::from_utf8_lossy(&image.stdout).trim().to_owned();
        let history = Command::new("docker")
            .args(["history", "--no-trunc", &image])
            .output()
            .unwrap();
        assert_success(&history, "docker history");
        let layers = String::from_utf8_lossy(&history.stdout).into_owned();
        assert_eq!(leaks(&layers), Vec::<&str>::new(), "{layers}");
    }

    // `config` never prints them, even with them in its environment.
    let mut config = Command::new(e2e::XTASK);
    config
        .args(["config", "prod"])
        .current_dir(e2e::root())
        .envs(sandbox.vars.iter().cloned())
        .env("POSTGRES_PASSWORD", PASSWORD)
        .env("APP_DB_PASSWORD", APP_PASSWORD);
    let config = config.output().unwrap();
    assert_success(&config, "config prod");
    let shown = String::from_utf8_lossy(&config.stdout);
    assert!(shown.contains("postgres_password"), "{shown}");
    assert_eq!(leaks(&shown), Vec::<&str>::new(), "{shown}");

    // web's sessions are its own role's, which is no superuser and may not change the schema.
    let web_roles = psql(
        &sandbox,
        "travial",
        "SELECT DISTINCT usename || ' ' || rolsuper FROM pg_stat_activity a \
         JOIN pg_roles r ON r.rolname = a.usename WHERE application_name = 'travial-web'",
    )
    .unwrap();
    assert_eq!(web_roles, "travial_app false");
    let drop = psql(&sandbox, "travial_app", "DROP TABLE scores").unwrap_err();
    assert!(drop.contains("must be owner"), "{drop}");
    let create = psql(&sandbox, "travial_app", "CREATE TABLE mine (id int)").unwrap_err();
    assert!(
        create.contains("permission denied for schema public"),
        "{create}"
    );

    // Looking at and stopping the stack need no secret.
    for args in [
        &["status", "prod"][..],
        &["status", "prod", "--json"],
        &["logs", "prod", "db"],
        &["down", "prod"],
    ] {
        let output = sandbox.xtask(args);
        assert_success(&output, &args.join(" "));
    }
}
