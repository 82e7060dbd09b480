//! The HTTP side: one router per resource, merged in `app`.

mod error;
mod health;
mod pages;
mod players;
mod ranking;
pub mod writes;

use std::{
    future::IntoFuture,
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
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
#[derive(Clone, Debug)]
pub struct Limits {
    /// No request may take longer: it then gets a 503, whatever it was waiting for.
    pub request_timeout: Duration,
    /// Requests served at once; more wait their turn (within `request_timeout`), so a
    /// flood costs waiting connections, not memory or database sessions.
    pub concurrent_requests: usize,
    /// Writes (POST) one client may make a minute (see `writes`).
    pub writes_per_minute: u32,
    /// Whose `X-Forwarded-For` names the client: the proxy's names or addresses.
    pub trusted_proxies: Vec<String>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            request_timeout: Duration::from_secs(10),
            concurrent_requests: 128,
            writes_per_minute: crate::config::DEFAULT_WRITES_PER_MINUTE,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    /// Whether the database has answered once since the process started (see `/startedz`).
    pub started: Arc<AtomicBool>,
}

impl AppState {
    pub fn new(pool: Pool) -> AppState {
        AppState {
            pool,
            started: Arc::new(AtomicBool::new(false)),
        }
    }
}

pub fn app(state: AppState) -> Router {
    app_with_limits(state, Limits::default())
}

/// The health checks answer beside the limits of the rest: a flood of requests waiting
/// their turn must not make a busy web look dead (and get it restarted), nor hide a
/// database outage. They bound their own work. Writes are limited per client (`writes`),
/// before they wait for a turn.
pub fn app_with_limits(state: AppState, limits: Limits) -> Router {
    let writes = Arc::new(writes::Writes::new(
        limits.writes_per_minute,
        writes::Proxies::new(&limits.trusted_proxies),
    ));
    // Inside a runtime (the server's, a test's): the proxies resolved, idle clients dropped.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(writes::maintain(writes.clone()));
    }
    Router::new()
        .merge(players::router())
        .merge(ranking::router())
        .merge(pages::router())
        .layer(middleware::from_fn_with_state(writes, writes::limit))
        .layer(middleware::from_fn_with_state(
            Arc::new(Semaphore::new(limits.concurrent_requests)),
            one_of_the_concurrent_requests,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        .merge(health::router())
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

/// Serves until `shutdown` completes, then keeps serving for `drain`, each response closing
/// its connection, then lets requests in flight finish, for at most `SHUTDOWN_GRACE`.
///
/// The drain is for a proxy that keeps connections open to this server, when nothing tells
/// it first that the server stops (Swarm only takes the task out of its DNS): a connection
/// the server closes while idle may carry the proxy's next request as it closes, and that
/// request is lost if it is not one the proxy may send again (a POST). Draining, each
/// connection in use is closed after a response, which the proxy sees.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> io::Result<()> {
    let draining = Arc::new(AtomicBool::new(false));
    let router = router.layer(middleware::map_response_with_state(
        draining.clone(),
        close_when_draining,
    ));
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    // The peer's address, for the limit of writes.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown.await;
            if !drain.is_zero() {
                tracing::info!("stop signal received, draining for {drain:?}");
                draining.store(true, Ordering::Relaxed);
                tokio::time::sleep(drain).await;
            }
            tracing::info!("finishing requests in flight");
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

async fn close_when_draining(
    State(draining): State<Arc<AtomicBool>>,
    mut response: Response,
) -> Response {
    if draining.load(Ordering::Relaxed) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
