//! The connection pool and the embedded, versioned migrations.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

/// How long a request waits for a connection before it gets a 503: a lost database must
/// fail requests quickly, not pile them up.
const POOL_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const POOL_SIZE: usize = 16;

/// An arbitrary constant shared by every `app migrate`: the key of the advisory lock that
/// lets only one of several concurrent runs apply the schema.
const MIGRATION_LOCK_KEY: i64 = 0x0074_7261_7669_616c; // "travial" in ASCII

mod embedded {
    refinery::embed_migrations!("migrations");
}

pub fn pool(config: &tokio_postgres::Config) -> Pool {
    let mut config = config.clone();
    config.connect_timeout(CONNECT_TIMEOUT);
    // Fast recycling checks `is_closed()`: a connection that died with the server is
    // dropped and a fresh one made, which is how the service recovers by itself.
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_TIMEOUT))
        .create_timeout(Some(POOL_TIMEOUT))
        .recycle_timeout(Some(POOL_TIMEOUT))
        .build()
        .expect("a runtime is set, so building the pool cannot fail")
}

/// What one `migrate` run did.
#[derive(Debug)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub total: usize,
}

/// Applies the pending migrations, holding an advisory lock so that concurrent runs wait for
/// each other and find nothing left to do.
pub async fn migrate(config: &tokio_postgres::Config) -> Result<MigrationReport, MigrateError> {
    let mut config = config.clone();
    config.connect_timeout(CONNECT_TIMEOUT);
    let (mut client, connection) = config.connect(NoTls).await.map_err(MigrateError::Connect)?;
    let connection = tokio::spawn(connection);

    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(MigrateError::Lock)?;
    let report = embedded::migrations::runner().run_async(&mut client).await;
    // The lock is the session's: closing the connection releases it even if this fails.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    drop(client);
    let _ = connection.await;

    let report = report.map_err(MigrateError::Apply)?;
    Ok(MigrationReport {
        applied: report
            .applied_migrations()
            .iter()
            .map(ToString::to_string)
            .collect(),
        total: embedded::migrations::runner().get_migrations().len(),
    })
}

#[derive(Debug)]
pub enum MigrateError {
    Connect(tokio_postgres::Error),
    Lock(tokio_postgres::Error),
    Apply(refinery::Error),
}

impl std::fmt::Display for MigrateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(err) => write!(
                f,
                "cannot connect to the database ({err}): check DATABASE_URL and that PostgreSQL is up"
            ),
            Self::Lock(err) => write!(f, "cannot take the migration lock: {err}"),
            Self::Apply(err) => write!(f, "migration failed, nothing after it was applied: {err}"),
        }
    }
}

impl std::error::Error for MigrateError {}
