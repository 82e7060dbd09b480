//! Players and the scores they earn at the places they visit.

use axum::{
    Json, Router,
    extract::{
        Path, Query, State,
        rejection::{JsonRejection, QueryRejection},
    },
    http::StatusCode,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime};

use super::{AppState, error::ApiError};

pub const MAX_NAME_CHARS: usize = 20;
const MAX_TEXT_CHARS: usize = 100;
const MAX_POINTS: i32 = 1_000_000;
/// The most recent scores a player's page shows unless `?scores=N` asks for fewer or more.
const DEFAULT_SCORES: i64 = 20;
const MAX_SCORES: i64 = 100;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/players", post(create_player))
        .route("/api/players/{name}", get(show_player))
        .route("/api/players/{name}/scores", post(add_score))
}

#[derive(Deserialize)]
struct NewPlayer {
    name: String,
    city: String,
    birthdate: Date,
}

#[derive(Serialize)]
pub struct Player {
    pub name: String,
    pub city: String,
    pub birthdate: Date,
    pub total_points: i64,
    /// How many scores the player has in all.
    pub score_count: i64,
    /// The most recent ones, newest first: a bounded page, however many there are.
    pub scores: Vec<Score>,
}

#[derive(Deserialize)]
struct PlayerQuery {
    scores: Option<i64>,
}

#[derive(Deserialize)]
struct NewScore {
    place: String,
    points: i32,
}

#[derive(Serialize)]
pub struct Score {
    pub place: String,
    pub points: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub scored_at: OffsetDateTime,
}

async fn create_player(
    State(state): State<AppState>,
    payload: Result<Json<NewPlayer>, JsonRejection>,
) -> Result<(StatusCode, Json<Player>), ApiError> {
    let Json(new) = payload?;
    let name = required_text("name", &new.name, MAX_NAME_CHARS)?;
    let city = required_text("city", &new.city, MAX_TEXT_CHARS)?;
    check_birthdate(new.birthdate)?;

    let client = state.pool.get().await?;
    let inserted = client
        .execute(
            "INSERT INTO players (name, city, birthdate) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
            &[&name, &city, &new.birthdate],
        )
        .await?;
    if inserted == 0 {
        return Err(ApiError::Conflict(format!(
            "player `{name}` already exists"
        )));
    }
    let player = Player {
        name: name.to_owned(),
        city: city.to_owned(),
        birthdate: new.birthdate,
        total_points: 0,
        score_count: 0,
        scores: Vec::new(),
    };
    Ok((StatusCode::CREATED, Json(player)))
}

async fn show_player(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<PlayerQuery>, QueryRejection>,
) -> Result<Json<Player>, ApiError> {
    let Query(query) = query?;
    let limit = query.scores.unwrap_or(DEFAULT_SCORES);
    if !(0..=MAX_SCORES).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "scores must be between 0 and {MAX_SCORES}"
        )));
    }
    Ok(Json(find(&state, &name, limit).await?))
}

/// The player named `name` with their `limit` most recent scores: two index lookups,
/// whatever the number of scores.
pub async fn find(state: &AppState, name: &str, limit: i64) -> Result<Player, ApiError> {
    // No stored name holds a NUL, and PostgreSQL cannot even compare one.
    if name.contains('\0') {
        return Err(unknown_player(name));
    }
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "SELECT p.id, p.name, p.city, p.birthdate, t.total_points, t.score_count
             FROM players p JOIN player_totals t ON t.player_id = p.id
             WHERE p.name = $1",
            &[&name],
        )
        .await?
        .ok_or_else(|| unknown_player(name))?;
    let id: i64 = row.get("id");
    let scores: Vec<Score> = client
        .query(
            "SELECT place, points, scored_at FROM scores WHERE player_id = $1
             ORDER BY id DESC LIMIT $2",
            &[&id, &limit],
        )
        .await?
        .iter()
        .map(|score| Score {
            place: score.get("place"),
            points: score.get("points"),
            scored_at: score.get("scored_at"),
        })
        .collect();
    Ok(Player {
        name: row.get("name"),
        city: row.get("city"),
        birthdate: row.get("birthdate"),
        total_points: row.get("total_points"),
        score_count: row.get("score_count"),
        scores,
    })
}

async fn add_score(
    State(state): State<AppState>,
    Path(name): Path<String>,
    payload: Result<Json<NewScore>, JsonRejection>,
) -> Result<(StatusCode, Json<Score>), ApiError> {
    let Json(new) = payload?;
    if name.contains('\0') {
        return Err(unknown_player(&name));
    }
    let place = required_text("place", &new.place, MAX_TEXT_CHARS)?;
    if !(1..=MAX_POINTS).contains(&new.points) {
        return Err(ApiError::BadRequest(format!(
            "points must be between 1 and {MAX_POINTS}"
        )));
    }

    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "INSERT INTO scores (player_id, place, points)
             SELECT id, $2, $3 FROM players WHERE name = $1
             RETURNING place, points, scored_at",
            &[&name, &place, &new.points],
        )
        .await?
        .ok_or_else(|| unknown_player(&name))?;
    let score = Score {
        place: row.get("place"),
        points: row.get("points"),
        scored_at: row.get("scored_at"),
    };
    Ok((StatusCode::CREATED, Json(score)))
}

fn unknown_player(name: &str) -> ApiError {
    ApiError::NotFound(format!("no player named `{name}`"))
}

/// The earliest birthdate a player may have: a person, not a date PostgreSQL cannot store.
fn earliest_birthdate() -> Date {
    Date::from_calendar_date(1900, Month::January, 1).expect("a valid date")
}

fn check_birthdate(birthdate: Date) -> Result<(), ApiError> {
    if birthdate > OffsetDateTime::now_utc().date() {
        return Err(ApiError::BadRequest("birthdate is in the future".into()));
    }
    if birthdate < earliest_birthdate() {
        return Err(ApiError::BadRequest(format!(
            "birthdate is before {}",
            earliest_birthdate()
        )));
    }
    Ok(())
}

/// Trims `value` and checks it is neither empty, nor longer than `max_chars` characters,
/// nor holding control characters (a NUL, which PostgreSQL's text cannot store, among them).
fn required_text<'a>(field: &str, value: &'a str, max_chars: usize) -> Result<&'a str, ApiError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ApiError::BadRequest(format!("{field} must not be empty")));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!(
            "{field} must not contain control characters"
        )));
    }
    if value.chars().count() > max_chars {
        return Err(ApiError::BadRequest(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_counted_in_characters() {
        assert_eq!(required_text("name", "  Zoë ", 20).unwrap(), "Zoë");
        assert!(required_text("name", &"é".repeat(20), 20).is_ok());
        assert!(required_text("name", &"é".repeat(21), 20).is_err());
        assert!(required_text("name", "   ", 20).is_err());
        assert!(required_text("name", "a\0b", 20).is_err());
        assert!(required_text("city", "Rome\n", 20).is_ok());
        assert!(required_text("city", "Ro\u{7}me", 20).is_err());
    }

    #[test]
    fn birthdates_are_of_people() {
        let date = |y, m, d| Date::from_calendar_date(y, Month::try_from(m).unwrap(), d).unwrap();
        assert!(check_birthdate(date(1990, 5, 17)).is_ok());
        assert!(check_birthdate(date(1900, 1, 1)).is_ok());
        assert!(check_birthdate(date(1899, 12, 31)).is_err());
        assert!(check_birthdate(date(-5000, 1, 1)).is_err());
        assert!(check_birthdate(date(9999, 1, 1)).is_err());
    }
}
