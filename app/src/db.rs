//! The connection pool, the embedded versioned migrations, and the app's own role.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::config::AppRole;

/// How long a request waits for a connection before it gets a 503: a lost database must
/// fail requests quickly, not pile them up.
const POOL_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const POOL_SIZE: usize = 16;
/// No statement of a request may run longer: the server cancels it, the request fails.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// After a stop signal, how long the statement cancelled may take to roll back.
const CANCEL_GRACE: Duration = Duration::from_secs(5);

/// An arbitrary constant shared by every `app migrate`: the key of the advisory lock that
/// lets only one of several concurrent runs apply the schema.
pub const MIGRATION_LOCK_KEY: i64 = 0x0074_7261_7669_616c; // "travial" in ASCII

/// What the web service does, and all it may do: the app role's privileges, table by table.
/// A migration that adds a table the app uses adds it here.
/// `player_totals` is written by the database's own triggers, never by web.
const APP_PRIVILEGES: &[(&str, &str)] = &[
    ("players", "SELECT, INSERT"),
    ("scores", "SELECT, INSERT"),
    ("player_totals", "SELECT"),
];

mod embedded {
    refinery::embed_migrations!("migrations");
}

pub fn pool(config: &tokio_postgres::Config) -> Pool {
    let mut config = config.clone();
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("travial-web");
    let timeout = format!("-c statement_timeout={}", STATEMENT_TIMEOUT.as_millis());
    let options = match config.get_options() {
        Some(given) => format!("{given} {timeout}"),
        None => timeout,
    };
    config.options(options);
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

/// The version of the newest migration embedded in this build (`V2__scores`: 2).
pub fn newest_migration() -> i32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(refinery::Migration::version)
        .max()
        .unwrap_or(0)
}

/// What one `migrate` run did.
#[derive(Debug)]
pub struct MigrationReport {
    pub applied: Vec<String>,
    pub total: usize,
}

/// Applies the pending migrations, then makes and grants the app's role if one is given,
/// holding an advisory lock so that concurrent runs wait for each other and find nothing
/// left to do. When `stop` completes first (SIGTERM, Ctrl-C), the statement running is
/// cancelled, its migration rolled back, and the run ends with `Interrupted`.
pub async fn migrate(
    config: &tokio_postgres::Config,
    app_role: Option<&AppRole>,
    stop: impl Future<Output = ()>,
) -> Result<MigrationReport, MigrateError> {
    let mut config = config.clone();
    config.connect_timeout(CONNECT_TIMEOUT);
    config.application_name("travial-migrate");
    let (mut client, connection) = config.connect(NoTls).await.map_err(MigrateError::Connect)?;
    let connection = tokio::spawn(connection);
    let cancel = client.cancel_token();
    let database = config.get_dbname().unwrap_or_default().to_owned();

    let outcome = {
        let work = locked_migration(&mut client, app_role, &database);
        tokio::pin!(work);
        tokio::select! {
            outcome = &mut work => outcome,
            () = stop => {
                let _ = cancel.cancel_query(NoTls).await;
                let _ = tokio::time::timeout(CANCEL_GRACE, &mut work).await;
                Err(MigrateError::Interrupted)
            }
        }
    };
    // Closing the connection ends the session, and with it the lock, whatever happened.
    drop(client);
    let _ = connection.await;
    let applied = outcome?;
    Ok(MigrationReport {
        applied,
        total: embedded::migrations::runner().get_migrations().len(),
    })
}

/// Applies the embedded migrations up to `version` alone, nothing of the role: for tests of
/// a migration on a database of the versions before it.
pub async fn migrate_up_to(
    client: &mut tokio_postgres::Client,
    version: i32,
) -> Result<(), refinery::Error> {
    embedded::migrations::runner()
        .set_target(refinery::Target::Version(version))
        .run_async(client)
        .await
        .map(drop)
}

async fn locked_migration(
    client: &mut tokio_postgres::Client,
    app_role: Option<&AppRole>,
    database: &str,
) -> Result<Vec<String>, MigrateError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .map_err(MigrateError::Lock)?;
    let report = embedded::migrations::runner()
        .run_async(client)
        .await
        .map_err(MigrateError::Apply)?;
    if let Some(role) = app_role {
        grant_app_role(client, role, database)
            .await
            .map_err(MigrateError::Role)?;
    }
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    Ok(report
        .applied_migrations()
        .iter()
        .map(ToString::to_string)
        .collect())
}

/// The app's role, made if missing and set as it must be on every run (so a database made
/// before the role existed is upgraded, and a new password takes effect): it logs in with
/// the given password, is no superuser, owns nothing, and may do only `APP_PRIVILEGES`.
/// The password reaches the server as a SCRAM verifier, never in clear.
async fn grant_app_role(
    client: &tokio_postgres::Client,
    role: &AppRole,
    database: &str,
) -> Result<(), tokio_postgres::Error> {
    let name = quote_identifier(&role.name);
    let exists = client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role.name])
        .await?
        .is_some();
    if !exists {
        client.batch_execute(&format!("CREATE ROLE {name}")).await?;
    }
    let verifier = postgres_protocol::password::scram_sha_256(role.password.as_bytes());
    let mut statements = vec![
        format!(
            "ALTER ROLE {name} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
             NOBYPASSRLS PASSWORD '{verifier}'"
        ),
        format!(
            "GRANT CONNECT ON DATABASE {} TO {name}",
            quote_identifier(database)
        ),
        // PostgreSQL before 15 lets every role create tables in `public`; every version lets
        // every role create temporary tables: neither is web's to do.
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC".to_owned(),
        format!(
            "REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC",
            quote_identifier(database)
        ),
        format!("GRANT USAGE ON SCHEMA public TO {name}"),
        format!("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {name}"),
    ];
    for (table, privileges) in APP_PRIVILEGES {
        statements.push(format!(
            "GRANT {privileges} ON {} TO {name}",
            quote_identifier(table)
        ));
    }
    client.batch_execute(&statements.join(";\n")).await
}

/// `"name"`, with any `"` doubled: a role or database name as SQL takes it.
fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[derive(Debug)]
pub enum MigrateError {
    Connect(tokio_postgres::Error),
    Lock(tokio_postgres::Error),
    Apply(refinery::Error),
    Role(tokio_postgres::Error),
    Interrupted,
}

impl std::fmt::Display for MigrateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(err) => write!(
                f,
                "cannot connect to the database ({}): check DATABASE_URL, DATABASE_PASSWORD_FILE and that PostgreSQL is up",
                reason(err)
            ),
            Self::Lock(err) => write!(f, "cannot take the migration lock: {err}"),
            Self::Apply(err) => write!(f, "migration failed, nothing after it was applied: {err}"),
            Self::Role(err) => write!(
                f,
                "the schema is up to date, but the app's role could not be granted ({err}): \
                 DATABASE_URL's user must be the database's owner"
            ),
            Self::Interrupted => f.write_str(
                "interrupted: the migration in progress was cancelled and rolled back; run `app migrate` again",
            ),
        }
    }
}

impl std::error::Error for MigrateError {}

/// The server's own words when it refused (`password authentication failed for user …`),
/// else the driver's: tokio-postgres says only `db error` for the former.
fn reason(err: &tokio_postgres::Error) -> String {
    match err.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_newest_migration_is_the_highest_version_embedded() {
        assert_eq!(super::newest_migration(), 3);
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(super::quote_identifier("travial_app"), "\"travial_app\"");
        assert_eq!(super::quote_identifier("a\"b"), "\"a\"\"b\"");
    }
}
