//! The ranking: players ordered by their total points, overall or within one city.

use axum::{
    Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    routing::get,
};
use serde::{Deserialize, Serialize};

use super::{AppState, error::ApiError};

const DEFAULT_LIMIT: i64 = 10;
const MAX_LIMIT: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/ranking", get(ranking))
}

#[derive(Deserialize)]
struct RankingQuery {
    city: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize)]
pub struct RankedPlayer {
    /// Players with equal totals share a rank (1, 2, 2, 4).
    pub rank: i64,
    pub name: String,
    pub city: String,
    pub total_points: i64,
}

async fn ranking(
    State(state): State<AppState>,
    query: Result<Query<RankingQuery>, QueryRejection>,
) -> Result<Json<Vec<RankedPlayer>>, ApiError> {
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let city = query.city.as_deref().filter(|city| !city.is_empty());
    Ok(Json(top_players(&state, city, limit).await?))
}

/// The top of the ranking: the first `limit` rows of an index on (total, name), overall or
/// within the city (one query each, so that each has its index): the same cost whatever
/// the number of players and scores. Ties are broken by name so that the order is stable
/// from one request to the next.
pub async fn top_players(
    state: &AppState,
    city: Option<&str>,
    limit: i64,
) -> Result<Vec<RankedPlayer>, ApiError> {
    let client = state.pool.get().await?;
    let rows = match city {
        None => {
            client
                .query(
                    "SELECT RANK() OVER (ORDER BY total_points DESC) AS rank,
                            name, city, total_points
                     FROM player_totals
                     ORDER BY total_points DESC, name
                     LIMIT $1",
                    &[&limit],
                )
                .await?
        }
        Some(city) => {
            client
                .query(
                    "SELECT RANK() OVER (ORDER BY total_points DESC) AS rank,
                            name, city, total_points
                     FROM player_totals
                     WHERE city = $1
                     ORDER BY total_points DESC, name
                     LIMIT $2",
                    &[&city, &limit],
                )
                .await?
        }
    };
    Ok(rows
        .iter()
        .map(|row| RankedPlayer {
            rank: row.get("rank"),
            name: row.get("name"),
            city: row.get("city"),
            total_points: row.get("total_points"),
        })
        .collect())
}
