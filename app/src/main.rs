use std::{io::IsTerminal, process::ExitCode};

use app::{
    config::{self, Config, LogFormat},
    db, healthcheck,
    http::{self, AppState},
};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

const USAGE: &str =
    "usage: app serve | app migrate | app migrations | app healthcheck [--ready | --started]
  serve        serve the HTTP API and page (never migrates by itself)
  migrate      apply the pending database migrations and grant the app's role, then exit
  migrations   print the version of the newest migration this build knows, then exit
  healthcheck  exit 0 when the local server's /healthz answers 200 (for Docker);
               with --ready, its /readyz (the database answers it too); with
               --started, its /startedz (the database has answered once since start)

environment: DATABASE_URL (required, e.g. postgres://USER@HOST/DB),
             DATABASE_PASSWORD_FILE (the password, from a file), APP_ADDR (default
             0.0.0.0:8000), APP_LOG_FORMAT (pretty | json), RUST_LOG (levels),
             APP_WRITES_PER_MINUTE (per client, default 60), APP_TRUSTED_PROXIES (whose
             X-Forwarded-For names the client);
             for migrate: APP_DB_USER and APP_DB_PASSWORD_FILE, the web service's role";

enum Command {
    Serve,
    Migrate,
    Migrations,
    Healthcheck { path: &'static str },
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let command = match args.as_slice() {
        ["serve"] => Command::Serve,
        ["migrate"] => Command::Migrate,
        ["migrations"] => Command::Migrations,
        ["healthcheck"] => Command::Healthcheck { path: "/healthz" },
        ["healthcheck", "--ready"] => Command::Healthcheck { path: "/readyz" },
        ["healthcheck", "--started"] => Command::Healthcheck { path: "/startedz" },
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            // What a shell reports for a command stopped by a signal (128 + SIGINT).
            if matches!(err.downcast_ref(), Some(db::MigrateError::Interrupted)) {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(command: Command) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        // Docker runs this every few seconds: no runtime, no logging, no database settings.
        Command::Healthcheck { path } => {
            let target = healthcheck::local_target(config::listen_addr_from_env()?);
            Ok(healthcheck::check(target, path)?)
        }
        // What a rollback compares with the database's schema history: no database needed.
        Command::Migrations => {
            println!("{}", db::newest_migration());
            Ok(())
        }
        Command::Serve => run_async(serve),
        Command::Migrate => run_async(migrate),
    }
}

fn run_async<F: Future<Output = Result<(), Box<dyn std::error::Error>>>>(
    task: impl FnOnce(Config) -> F,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_env()?;
    init_logging(config.log_format);
    tokio::runtime::Runtime::new()?.block_on(task(config))
}

async fn serve(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(config.addr).await.map_err(|err| {
        format!(
            "cannot listen on {} ({err}): set APP_ADDR to a free address",
            config.addr
        )
    })?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    let state = AppState::new(db::pool(&config.database));
    let limits = http::Limits {
        writes_per_minute: config.writes_per_minute,
        trusted_proxies: config.trusted_proxies.clone(),
        ..http::Limits::default()
    };
    let router = http::app_with_limits(state, limits);
    http::serve(listener, router, shutdown_signal(), config.drain).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let report = db::migrate(
        &config.database,
        config.app_role.as_ref(),
        shutdown_signal(),
    )
    .await?;
    for name in &report.applied {
        println!("applied {name}");
    }
    println!(
        "database schema is up to date: {} migration(s) applied now, {} in all",
        report.applied.len(),
        report.total
    );
    Ok(())
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=debug"));
    // Colours only for a person at a terminal, never in `docker logs` or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on Ctrl-C or SIGTERM (what `docker stop` sends).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
