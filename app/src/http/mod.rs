//! The HTTP side: one router per resource, merged in `app`.

mod error;
mod health;
mod page;
mod players;
mod ranking;

use std::{future::IntoFuture, io, time::Duration};

use axum::Router;
use deadpool_postgres::Pool;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

pub use players::MAX_NAME_CHARS;

/// After a stop signal, requests in flight get this long to finish: less than the 10 s that
/// Docker waits before it kills the container.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(health::router())
        .merge(players::router())
        .merge(ranking::router())
        .merge(page::router())
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `shutdown` completes, then lets requests in flight finish, for at most
/// `SHUTDOWN_GRACE`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("stop signal received, finishing requests in flight");
            let _ = stopping_tx.send(());
        })
        .into_future();
    let grace_expired = async move {
        if stopping_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = server => result,
        () = grace_expired => {
            tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}, stopping anyway");
            Ok(())
        }
    }
}
