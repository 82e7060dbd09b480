//! Liveness never touches the database, so a database outage does not get the web process
//! restarted; readiness makes one round trip, so traffic waits until it would succeed.

use std::time::Duration;

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde_json::{Value, json};

use super::AppState;

const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(liveness))
        .route("/readyz", get(readiness))
}

async fn liveness() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readiness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match tokio::time::timeout(READINESS_TIMEOUT, database_round_trip(&state)).await {
        Ok(Ok(())) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(Err(reason)) => unavailable(reason),
        Err(_) => unavailable(format!(
            "the database did not answer within {READINESS_TIMEOUT:?}"
        )),
    }
}

async fn database_round_trip(state: &AppState) -> Result<(), String> {
    let client = state.pool.get().await.map_err(|err| err.to_string())?;
    client
        .execute("SELECT 1", &[])
        .await
        .map_err(|err| err.to_string())?;
    Ok(())
}

fn unavailable(reason: String) -> (StatusCode, Json<Value>) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "unavailable", "reason": reason })),
    )
}
