//! Liveness never touches the database, so a database outage does not get the web process
//! restarted; readiness makes one round trip, so traffic waits until it would succeed.
//! Started (`/startedz`) is liveness once the database has answered one round trip since
//! the process started: what a swarm's healthcheck asks, so that an update never routes
//! to a new task that cannot reach its database, and an outage later restarts nothing.

use std::{sync::atomic::Ordering, time::Duration};

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde_json::{Value, json};

use super::AppState;

const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(liveness))
        .route("/readyz", get(readiness))
        .route("/startedz", get(started))
}

async fn started(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    if state.started.load(Ordering::Relaxed) {
        return (StatusCode::OK, Json(json!({ "status": "started" })));
    }
    readiness(State(state)).await
}

async fn liveness() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// A 503 says only that the database is unavailable: the driver's words (user names,
/// hosts) go to the log, not to whoever asks.
async fn readiness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let detail = match tokio::time::timeout(READINESS_TIMEOUT, database_round_trip(&state)).await {
        Ok(Ok(())) => {
            state.started.store(true, Ordering::Relaxed);
            return (StatusCode::OK, Json(json!({ "status": "ready" })));
        }
        Ok(Err(reason)) => reason,
        Err(_) => format!("the database did not answer within {READINESS_TIMEOUT:?}"),
    };
    tracing::warn!(%detail, "not ready");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "reason": "database unavailable" })),
    )
}

async fn database_round_trip(state: &AppState) -> Result<(), String> {
    let client = state.pool.get().await.map_err(|err| err.to_string())?;
    client
        .execute("SELECT 1", &[])
        .await
        .map_err(|err| err.to_string())?;
    Ok(())
}
