//! `app migrate` and the app's own role: made and granted on every run, least-privileged,
//! its password from a file and never in clear on the wire, an older database upgraded.

mod support;

use std::{
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
};

use support::TestDb;

const APP: &str = env!("CARGO_BIN_EXE_app");
const PASSWORD: &str = "p@ss/w:rd %41?#x y'z";

/// A role of the test's own (roles are the whole server's), dropped after its database.
struct Role {
    name: String,
    dir: std::path::PathBuf,
}

impl Role {
    fn new() -> Role {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "travial_app_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        Role { name, dir }
    }

    /// `app migrate` as the owner, making this role with `password` (from a file).
    fn migrate(&self, db: &TestDb, password: &str) -> Output {
        let file = self.dir.join("password");
        std::fs::write(&file, format!("{password}\n")).unwrap();
        Command::new(APP)
            .arg("migrate")
            .env("DATABASE_URL", db.url())
            .env("APP_DB_USER", &self.name)
            .env("APP_DB_PASSWORD_FILE", &file)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    }

    async fn connect(
        &self,
        db: &TestDb,
        password: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let mut config = db.config.clone();
        config.user(&self.name).password(password);
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let statement = format!("DROP ROLE IF EXISTS {}", self.name);
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(support::admin_execute(&statement));
        })
        .join();
    }
}

fn assert_success(output: &Output) {
    assert!(output.status.success(), "{output:?}");
}

/// The SQLSTATE of a statement the role may not run.
async fn refused(client: &tokio_postgres::Client, statement: &str) -> String {
    let err = client.batch_execute(statement).await.expect_err(statement);
    err.code()
        .map(|code| code.code().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_app_role_may_only_read_and_add_players_and_scores() {
    let role = Role::new();
    let db = TestDb::empty().await;
    assert_success(&role.migrate(&db, PASSWORD));

    let app = role
        .connect(&db, PASSWORD)
        .await
        .expect("the role logs in with its password");
    app.batch_execute(
        "INSERT INTO players (name, city, birthdate) VALUES ('ann', 'Rome', '1990-05-17');
         INSERT INTO scores (player_id, place, points) SELECT id, 'Forum', 3 FROM players;
         SELECT * FROM players JOIN scores ON scores.player_id = players.id",
    )
    .await
    .expect("what the app does");

    let insufficient = "42501";
    assert_eq!(refused(&app, "DROP TABLE scores").await, insufficient);
    assert_eq!(
        refused(&app, "CREATE TABLE mine (id int)").await,
        insufficient
    );
    assert_eq!(
        refused(&app, "CREATE TEMPORARY TABLE scratch (id int)").await,
        insufficient
    );
    assert_eq!(refused(&app, "DELETE FROM players").await, insufficient);
    assert_eq!(
        refused(&app, "UPDATE scores SET points = 1000").await,
        insufficient
    );
    assert_eq!(
        refused(&app, "SELECT * FROM refinery_schema_history").await,
        insufficient
    );

    let owner = db.client().await;
    let row = owner
        .query_one(
            "SELECT rolsuper, rolcreatedb, rolcreaterole,
                    (SELECT count(*) FROM pg_class WHERE relowner = r.oid)
             FROM pg_roles r WHERE rolname = $1",
            &[&role.name],
        )
        .await
        .unwrap();
    let (superuser, createdb, createrole, owned): (bool, bool, bool, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(
        (superuser, createdb, createrole, owned),
        (false, false, false, 0)
    );
}

#[tokio::test]
async fn an_older_database_is_upgraded_and_a_new_password_takes_effect() {
    let role = Role::new();
    let db = TestDb::empty().await;
    // A database made before the app had a role of its own: migrated by the owner alone.
    let before = Command::new(APP)
        .arg("migrate")
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_success(&before);
    db.client()
        .await
        .batch_execute(
            "INSERT INTO players (name, city, birthdate) VALUES ('ann', 'Rome', '1990-05-17')",
        )
        .await
        .unwrap();

    assert_success(&role.migrate(&db, PASSWORD));
    let app = role.connect(&db, PASSWORD).await.unwrap();
    let count: i64 = app
        .query_one("SELECT count(*) FROM players", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1, "the data made before is there for the role");

    // Rotation: the next run sets the new password; the old one no longer logs in.
    assert_success(&role.migrate(&db, "rotated-secret"));
    assert!(role.connect(&db, PASSWORD).await.is_err());
    assert!(role.connect(&db, "rotated-secret").await.is_ok());
}

#[tokio::test]
async fn the_password_never_reaches_the_server_in_clear() {
    let role = Role::new();
    let db = TestDb::empty().await;
    assert_success(&role.migrate(&db, PASSWORD));
    let stored: String = db
        .client()
        .await
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&role.name],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");
    assert!(!stored.contains(PASSWORD));
}
