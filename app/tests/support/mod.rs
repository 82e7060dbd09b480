//! What the app's integration tests share: a database of their own on the test server,
//! migrated, dropped at the end.

#![allow(dead_code)]

pub mod cluster;

use std::{
    str::FromStr,
    sync::atomic::{AtomicU32, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use app::{db, http::AppState};
use tokio_postgres::NoTls;

/// The server the API tests run against; `.ci/run` starts it and sets this password.
const DEFAULT_ADMIN_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into())
}

/// A database of its own, so tests run in parallel without seeing each other's rows.
pub struct TestDb {
    pub name: String,
    pub config: tokio_postgres::Config,
}

impl TestDb {
    /// An empty database, not migrated.
    pub async fn empty() -> TestDb {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "travial_test_{}_{}_{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        admin_execute(&format!("CREATE DATABASE {name}")).await;
        let mut config = tokio_postgres::Config::from_str(&admin_url()).unwrap();
        config.dbname(&name);
        TestDb { name, config }
    }

    /// A database with the schema applied.
    pub async fn migrated() -> TestDb {
        let db = TestDb::empty().await;
        db::migrate(&db.config, None, std::future::pending())
            .await
            .expect("migrate the test database");
        db
    }

    pub fn state(&self) -> AppState {
        AppState::new(db::pool(&self.config))
    }

    pub fn url(&self) -> String {
        let admin = admin_url();
        let (server, _) = admin.rsplit_once('/').unwrap();
        format!("{server}/{}", self.name)
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.config).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs outside any runtime guarantee: give the cleanup a runtime of its own.
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(admin_execute(&statement));
        })
        .join();
    }
}

pub async fn admin_execute(statement: &str) {
    let config = tokio_postgres::Config::from_str(&admin_url()).unwrap();
    let client = connect(&config).await;
    client
        .batch_execute(statement)
        .await
        .unwrap_or_else(|err| panic!("{statement}: {err}"));
}

pub async fn connect(config: &tokio_postgres::Config) -> tokio_postgres::Client {
    let (client, connection) = config.connect(NoTls).await.unwrap_or_else(|err| {
        panic!(
            "cannot reach the test PostgreSQL server ({err}): run .ci/run, \
             or set TEST_DATABASE_URL to a server where you may create databases"
        )
    });
    tokio::spawn(connection);
    client
}
