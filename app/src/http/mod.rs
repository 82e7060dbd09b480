//! The HTTP side: one router per resource, merged in `app`.

mod error;
mod health;
mod page;
mod players;
mod ranking;

use std::{future::IntoFuture, io, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::Response,
};
use deadpool_postgres::Pool;
use tokio::{net::TcpListener, sync::Semaphore};
use tower_http::{timeout::TimeoutLayer, trace::TraceLayer};

pub use players::MAX_NAME_CHARS;

/// After a stop signal, requests in flight get this long to finish: less than the 10 s that
/// Docker waits before it kills the container.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Bounds on the work of requests.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// No request may take longer: it then gets a 503, whatever it was waiting for.
    pub request_timeout: Duration,
    /// Requests served at once; more wait their turn (within `request_timeout`), so a
    /// flood costs waiting connections, not memory or database sessions.
    pub concurrent_requests: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            request_timeout: Duration::from_secs(10),
            concurrent_requests: 128,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
}

pub fn app(state: AppState) -> Router {
    app_with_limits(state, Limits::default())
}

pub fn app_with_limits(state: AppState, limits: Limits) -> Router {
    Router::new()
        .merge(health::router())
        .merge(players::router())
        .merge(ranking::router())
        .merge(page::router())
        .layer(middleware::from_fn_with_state(
            Arc::new(Semaphore::new(limits.concurrent_requests)),
            one_of_the_concurrent_requests,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Waits for a turn among the requests served at once, inside the request's timeout: a
/// request that waits too long gets its 503 like one that runs too long.
async fn one_of_the_concurrent_requests(
    State(turns): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    // The semaphore is never closed, so acquiring only waits.
    let _turn = turns.acquire().await;
    next.run(request).await
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
